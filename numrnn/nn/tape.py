"""What a forward pass returns and saves for BPTT and diagnostics, as typed records.

:class:`Forward` is what ``model.forward`` returns: the output and final state for the
caller, and a :class:`Tape` of everything ``model.backward`` and the diagnostics read
again (the packed layout, the weights it ran with, each layer's input and cell cache,
the dropout masks, the head's input). Memory: per layer and direction, the cell's cache
(the state trajectories (K, T+1, B, H) and, for gated cells, the gate activations
(K, T, B, G*H)) plus the layer's input (K or 1, T, B, D).
"""

from dataclasses import dataclass, field

import numpy as np

from .packing import PackedBatch


def _shape(a):
    if isinstance(a, tuple):
        return "(" + ", ".join(_shape(x) for x in a) + ")"
    return "None" if a is None else f"array{tuple(np.shape(a))}"


@dataclass(frozen=True, eq=False)
class LayerTape:
    """One direction of one layer: its input (K or 1, T, B, D) in that direction's time
    order, and the cell's cache (see :mod:`numrnn.nn.cells`)."""

    xin: np.ndarray
    cache: object


@dataclass(frozen=True, eq=False)
class Tape:
    """What :meth:`~numrnn.nn.Recurrent.forward` saves (``Forward.tape``).

    Memory: per layer and direction, the cell's cache (the state trajectories
    (K, T+1, B, H) and, for gated cells, the gate activations (K, T, B, G*H)) plus the
    layer's input (K or 1, T, B, D).

    Attributes
    ----------
    model : RNN, LSTM, GRU or Ensemble
        The model that ran the pass (``backward`` refuses a tape of another model).
    packed : PackedBatch
        The batch layout (:class:`~numrnn.nn.packing.PackedBatch`): sort order, lengths,
        active sequences per step.
    K : int
        Number of members (1 for a single model).
    kernels : Namespace
        The backend's kernel namespace, used again by ``backward``.
    weights : dict of str to ndarray
        The parameters the pass ran with, checked, (K, ...) each.
    layers : tuple of LayerTape
        One per (layer, direction), index ``layer * dirs + d``: the layer's input in that
        direction's time order and the cell's cache.
    masks : tuple of ndarray
        Dropout masks applied between layers (training mode), bottom up.
    feats : ndarray or None
        The head's input, (K, T, B, F) or (K, B, F); None without a head.
    head_mask : ndarray or None
        The dropout mask of the head's input, or None.
    ids : ndarray or None
        A model with an embedding: the token ids (K or 1, T, B) in the caller's batch
        order, whose rows of ``weight_emb`` get the input's gradient; None otherwise.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.LSTM(3, 4, num_layers=2, seed=0)
    >>> tape = model.forward(np.zeros((5, 2, 3))).tape
    >>> tape
    Tape(K=1, T=5, B=2, 2 layer directions)
    >>> hs, cs, gates, tanh_c = tape.layer(1, 0).cache   # the LSTM's cache
    >>> hs.shape, gates.shape                            # (K, T+1, B, H), (K, T, B, 4H)
    ((1, 6, 2, 4), (1, 5, 2, 16))
    """

    model: object
    packed: PackedBatch
    K: int
    kernels: object
    weights: dict
    layers: tuple
    masks: tuple = ()
    feats: object = None
    head_mask: object = None
    ids: object = None

    @property
    def T(self):
        return self.packed.T

    @property
    def B(self):
        return self.packed.B

    def layer(self, layer, d):
        """The :class:`LayerTape` of ``layer``'s direction ``d``.

        Parameters
        ----------
        layer : int
            0 is the bottom layer.
        d : int
            0 forward, 1 backward.

        Returns
        -------
        LayerTape
        """
        return self.layers[layer * self.model.num_directions + d]

    def __repr__(self):
        return f"Tape(K={self.K}, T={self.T}, B={self.B}, {len(self.layers)} layer directions)"


@dataclass
class Forward:
    """Result of ``model.forward``.

    Attributes
    ----------
    output : ndarray
        (T, B, dirs*H), the top layer's outputs (forward direction first), or the head's
        output (T, B, O) or (B, O); an :class:`~numrnn.Ensemble` adds a leading K axis.
    state : ndarray or tuple of two ndarrays
        (layers*dirs, B, H), each sequence's final state after its last step (its own
        length); a tuple (h, c) for the LSTM.
    tape : Tape
        What ``backward`` and the diagnostics need (:class:`~numrnn.nn.tape.Tape`).

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> res = nr.RNN(3, 4, num_layers=2, seed=0).forward(np.zeros((5, 2, 3)))
    >>> res
    Forward(output=array(5, 2, 4), state=array(2, 2, 4))
    >>> bool(np.array_equal(res.state[1], res.output[-1]))   # top layer, last step
    True
    """

    output: np.ndarray
    state: object
    tape: Tape = field(repr=False, default=None)

    def __repr__(self):
        return f"Forward(output={_shape(self.output)}, state={_shape(self.state)})"


@dataclass
class Gradients:
    """Result of ``model.backward``.

    Attributes
    ----------
    params : dict of str to ndarray
        Gradients, with the same keys and shapes as ``model.params``.
    input : ndarray or None
        (T, B, D), the gradient with respect to x; for a model with an embedding, with
        respect to the embedded input ``weight_emb[x]``. None when not asked for
        (``input_grad=False``).
    state : ndarray or tuple of two ndarrays
        The gradient with respect to the initial state, in the layout of ``state``.
    norms : dict of str to ndarray
        (layers, dirs, B, T) arrays ``grad_norm`` (||dL/dh_t||) and, for the LSTM,
        ``cell_grad_norm`` (||dL/dc_t||) when asked for (``norms=True``); NaN past a
        sequence's end. Empty otherwise.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 4, seed=0)
    >>> res = model.forward(np.ones((5, 2, 3)))
    >>> model.backward(res, np.ones_like(res.output), input_grad=False)
    Gradients(params={weight_ih_l0: array(4, 3), weight_hh_l0: array(4, 4),
        bias_ih_l0: array(4,), bias_hh_l0: array(4,)}, input=None, state=array(1, 2, 4),
        norms={})
    """

    params: dict
    input: np.ndarray
    state: object
    norms: dict = field(default_factory=dict)

    def __repr__(self):
        params = ", ".join(f"{k}: {_shape(v)}" for k, v in self.params.items())
        norms = ", ".join(f"{k}: {_shape(v)}" for k, v in self.norms.items())
        return (f"Gradients(params={{{params}}}, input={_shape(self.input)}, "
                f"state={_shape(self.state)}, norms={{{norms}}})")  # fmt: skip
