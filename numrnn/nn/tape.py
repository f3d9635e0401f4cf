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
    """What :meth:`~numrnn.nn.recurrent.Recurrent.forward` saves.

    Attributes
    ----------
    model : the model that ran the pass (``backward`` refuses a tape of another model).
    packed : the batch layout (:class:`~numrnn.nn.packing.PackedBatch`).
    K : number of members (1 for a single model).
    kernels : the backend's kernel namespace, used again by ``backward``.
    weights : the parameters the pass ran with, checked, (K, ...) each.
    layers : a :class:`LayerTape` per (layer, direction), index ``layer * dirs + d``.
    masks : dropout masks applied between layers (training mode), bottom up.
    feats : the head's input, (K, T, B, F) or (K, B, F); None without a head.
    head_mask : the dropout mask of the head's input, or None.
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

    @property
    def T(self):
        return self.packed.T

    @property
    def B(self):
        return self.packed.B

    def layer(self, layer, d):
        """The :class:`LayerTape` of ``layer``'s direction ``d``."""
        return self.layers[layer * self.model.num_directions + d]

    def __repr__(self):
        return f"Tape(K={self.K}, T={self.T}, B={self.B}, {len(self.layers)} layer directions)"


@dataclass
class Forward:
    """Result of ``model.forward``.

    Attributes
    ----------
    output : (T, B, dirs*H) layer outputs, or the head's output (T, B, O) / (B, O).
    state : (layers*dirs, B, H) final states, a tuple (h, c) for the LSTM.
    tape : what ``backward`` and the diagnostics need (:class:`Tape`).
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
    params : dict of gradients, same keys and shapes as ``model.params``.
    input : (T, B, D) gradient w.r.t. x; None when not asked for (``input_grad=False``).
    state : gradient w.r.t. the initial state, same layout as ``state``.
    norms : dict of (layers, dirs, B, T) arrays ``grad_norm`` (||dL/dh_t||) and, for the
        LSTM, ``cell_grad_norm`` (||dL/dc_t||) when asked for; NaN past a sequence's end.
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
