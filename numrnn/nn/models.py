"""The models users build: :class:`RNN`, :class:`LSTM`, :class:`GRU` and :class:`Ensemble`.

Each class names a cell (:data:`numrnn.nn.cells.CELLS`) and its options; everything else
(layers, directions, lengths, the head, forward and BPTT) is
:class:`~numrnn.nn.recurrent.Recurrent`'s.
"""

import copy

import numpy as np

from .. import _checks
from . import embedding as _emb
from .cells import CELLS, MODELS, variants
from .recurrent import Recurrent

__all__ = ["GRU", "LSTM", "PER_MEMBER", "RNN", "Ensemble", "ensemble", "from_config"]


class RNN(Recurrent):
    """Elman RNN, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Parameters
    ----------
    input_size : int
        ``D``, the number of input features.
    hidden_size : int
        ``H``, the number of hidden units of each layer and direction.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    bidirectional : bool, default False
        Give every layer a backward direction; the output is then ``(T, B, 2H)``, forward
        first.
    dtype : {"float64", "float32"}, default "float64"
        The dtype of the parameters, and of every input and result.
    seed : int, numpy.random.Generator or None
        The source of the initial weights; None draws fresh entropy.
    nonlinearity : {"tanh", "relu"}, default "tanh"
        The activation ``act``; ``"relu"`` with ``init="identity"`` is the IRNN of Le,
        Jaitly & Hinton (2015).
    **kwargs
        ``init``, ``output_size``, ``readout``, ``dropout``, ``vocab_size`` and
        ``padding_idx``, as in :class:`~numrnn.nn.Recurrent`.

    Attributes
    ----------
    params : dict of str to ndarray
        ``weight_ih_l0`` (H, D), ``weight_hh_l0`` (H, H), ``bias_ih_l0`` and ``bias_hh_l0``
        (H,), ... with PyTorch's names and shapes (see :func:`numrnn.nn.params.shapes`).

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 4, nonlinearity="relu", seed=0)
    >>> sorted(model.params)
    ['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
    >>> res = model.forward(np.zeros((5, 2, 3)))      # x is (T, B, D)
    >>> res.output.shape, res.state.shape             # (T, B, H), (layers*dirs, B, H)
    ((5, 2, 4), (1, 2, 4))
    """

    cell_type = "rnn"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        nonlinearity="tanh",
        **kwargs,
    ):
        self.cell = CELLS["rnn"].make(nonlinearity=nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dtype, seed, **kwargs)

    def __repr__(self):
        return super().__repr__()[:-1] + f", nonlinearity={self.nonlinearity!r})"


class LSTM(Recurrent):
    """LSTM (Hochreiter & Schmidhuber 1997), PyTorch's gate order i, f, g, o; state (h, c).

    The gates are the four H-row blocks of ``weight_ih``/``weight_hh``/the biases, in the
    order i, f, g, o; ``c_t = f * c_{t-1} + i * g`` and ``h_t = o * tanh(c_t)``.

    Parameters
    ----------
    input_size : int
        ``D``, the number of input features.
    hidden_size : int
        ``H``, the number of hidden units of each layer and direction.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    bidirectional : bool, default False
        Give every layer a backward direction; the output is then ``(T, B, 2H)``, forward
        first.
    dtype : {"float64", "float32"}, default "float64"
        The dtype of the parameters, and of every input and result.
    seed : int, numpy.random.Generator or None
        The source of the initial weights; None draws fresh entropy.
    forget_bias : float or None, default None
        Set the forget gate's effective bias (the sum of the f blocks of ``bias_ih`` and
        ``bias_hh``) to exactly this, e.g. 1.0 (Gers et al. 2000); None leaves the biases
        as ``init`` made them.
    **kwargs
        ``init``, ``output_size``, ``readout``, ``dropout``, ``vocab_size`` and
        ``padding_idx``, as in :class:`~numrnn.nn.Recurrent`.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.LSTM(3, 4, seed=0, forget_bias=1.0)
    >>> model.params["weight_hh_l0"].shape               # (4H, H), gates i, f, g, o
    (16, 4)
    >>> b = model.params["bias_ih_l0"] + model.params["bias_hh_l0"]
    >>> b[4:8]                                           # the f block
    array([1., 1., 1., 1.])
    >>> h, c = model.forward(np.zeros((5, 2, 3))).state  # the state is a pair
    >>> h.shape, c.shape
    ((1, 2, 4), (1, 2, 4))
    """

    cell_type = "lstm"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        forget_bias=None,
        **kwargs,
    ):
        self.cell = CELLS["lstm"].make()
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dtype, seed, **kwargs)

    def _init_params(self, init, seed):
        return super()._init_params(init, seed, forget_bias=self.forget_bias)

    @property
    def config(self):
        return {**super().config, "forget_bias": self.forget_bias}


class GRU(Recurrent):
    """GRU (Cho et al. 2014), PyTorch's gate order r, z, n.

    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` alike, ``h' = (1 - z) * n + z * h``,
    with ``n`` in one of two forms (``reset_after``).

    Parameters
    ----------
    input_size : int
        ``D``, the number of input features.
    hidden_size : int
        ``H``, the number of hidden units of each layer and direction.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    bidirectional : bool, default False
        Give every layer a backward direction; the output is then ``(T, B, 2H)``, forward
        first.
    dtype : {"float64", "float32"}, default "float64"
        The dtype of the parameters, and of every input and result.
    seed : int, numpy.random.Generator or None
        The source of the initial weights; None draws fresh entropy.
    reset_after : bool, default True
        True is PyTorch's and cuDNN's form ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
        False the original of Cho et al. ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``.
        Both have the same parameter names and shapes; only True converts to ``torch.nn.GRU``.
    **kwargs
        ``init``, ``output_size``, ``readout``, ``dropout``, ``vocab_size`` and
        ``padding_idx``, as in :class:`~numrnn.nn.Recurrent`.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> x = np.random.default_rng(0).standard_normal((5, 2, 3))
    >>> after = nr.GRU(3, 4, seed=0)
    >>> before = nr.GRU(3, 4, seed=0, reset_after=False)   # same weights, the other form
    >>> after.params["weight_hh_l0"].shape                  # (3H, H), gates r, z, n
    (12, 4)
    >>> bool(np.allclose(after.forward(x).output, before.forward(x).output))
    False
    """

    cell_type = "gru"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        reset_after=True,
        **kwargs,
    ):
        self.cell = CELLS["gru"].make(reset_after=reset_after)
        self.reset_after = self.cell.reset_after
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dtype, seed, **kwargs)

    @property
    def config(self):
        return {**super().config, "reset_after": self.reset_after}


#: What may differ between an ensemble's members: how their weights were made.
PER_MEMBER = ("init", "seed", "forget_bias")


class Ensemble(Recurrent):
    """K independent networks of the same shape, run together in one compiled call per layer.

    Built from models of one class and configuration that differ only in their weights
    (initializers, seeds, forget bias). The API is the model's, with a leading member axis:
    ``params[k]`` is (K, ...) stacked; ``forward`` takes x (T, B, D) shared by all members
    or (K, T, B, D) (token ids (T, B) or (K, T, B) for models with an embedding), and
    returns ``output`` (K, T, B, ...) and ``state`` (K, layers*dirs, B, H); ``backward``
    takes ``d_output`` (K, ...) and returns stacked gradients; diagnostics gain
    a ``member`` dimension. The kernels run (member, block of sequences) items in parallel.

    Parameters
    ----------
    models : sequence of RNN, LSTM or GRU
        K >= 1 models of one class whose configurations are equal except for ``init``,
        ``seed`` and ``forget_bias`` (:data:`PER_MEMBER`); their weights are copied.

    Raises
    ------
    TypeError
        For an empty sequence, something other than single numrnn models, or an Ensemble.
    ValueError
        For models of different classes or configurations, naming the first that differs.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> models = [nr.RNN(3, 4, seed=s) for s in range(5)]
    >>> ens = nr.Ensemble(models)
    >>> ens.params["weight_hh_l0"].shape                     # (K, H, H)
    (5, 4, 4)
    >>> x = np.random.default_rng(0).standard_normal((6, 2, 3))
    >>> res = ens.forward(x)                                 # x shared by the members
    >>> res.output.shape                                     # (K, T, B, H)
    (5, 6, 2, 4)
    >>> bool(np.allclose(res.output[3], models[3].forward(x).output))
    True
    """

    def __init__(self, models):
        models = list(models)
        if not models or not all(isinstance(m, Recurrent) for m in models):
            raise TypeError("models must be a non-empty sequence of numrnn RNN, LSTM or GRU models")
        first = models[0]
        if isinstance(first, Ensemble):
            raise TypeError("models must be single networks, got an Ensemble")
        shape_keys = [k for k in first.config if k not in PER_MEMBER]
        for i, m in enumerate(models):
            if type(m) is not type(first) or any(
                m.config[k] != first.config[k] for k in shape_keys
            ):
                raise ValueError(
                    f"models must share class and configuration; models[{i}] has "
                    f"{type(m).__name__} {m.config}, "
                    f"models[0] {type(first).__name__} {first.config}"
                )
        self.__dict__.update({k: v for k, v in vars(first).items() if k != "params"})
        # the members without their weights: what unstack() rebuilds each model from
        self._shells = [copy.copy(m) for m in models]
        for shell in self._shells:
            del shell.params
        self._template = self._shells[0]
        self.members = len(models)
        self.stacked = True
        self.cell_type = first.cell_type
        self.params = {k: np.stack([m.params[k] for m in models]) for k in first.params}

    @property
    def config(self):
        configs = [m.config for m in self._shells]
        per_member = {k: [c.get(k) for c in configs] for k in PER_MEMBER}
        return {**self._template.config, **per_member, "members": self.members}

    def __repr__(self):
        differ = {k: v for k, v in self.config.items() if k in PER_MEMBER and len(set(map(
            repr, v))) > 1}  # fmt: skip
        extra = "".join(f", {k}={v!r}" for k, v in differ.items())
        return f"Ensemble({self.members} x {self._template!r}{extra})"

    def unstack(self):
        """The members as separate models, with copies of their current weights.

        Returns
        -------
        list of RNN, LSTM or GRU
            K models, member k's configuration and weights in the k-th.
        """
        out = []
        for k, shell in enumerate(self._shells):
            m = copy.copy(shell)
            m.params = {name: v[k].copy() for name, v in self.params.items()}
            out.append(m)
        return out

    def to_torch(self, embedding=False):
        raise TypeError("an Ensemble has no torch equivalent; convert its members (unstack())")

    def _stack_input(self, x):
        x = np.asarray(x)
        if self.vocab_size is not None:  # token ids (T, B) shared, or (K, T, B)
            per_member = x.ndim == 3
            shape = ((self.members,) if per_member else ()) + ("T", "B")
            ids = _emb.check_ids("x", x, shape, self.vocab_size)
            return ids if per_member else ids[None]
        lead = (self.members,) if x.ndim == 4 else ()
        shape = lead + ("T", "B", self.input_size)
        x = _checks.check_array("x", x, shape if x.ndim == 4 else shape[-3:], self.dtype)
        return x if x.ndim == 4 else x[None]

    def _stack_state(self, name, state, B):
        shape = (self.members, self.num_layers * self.num_directions, B, self.hidden_size)
        return self._check_state(name, state, shape)

    def _stack_weights(self):
        return self._check_params(self.params, (self.members,))

    def _unstack(self, a):
        return a


def ensemble(models):
    """Run K models of the same shape as one :class:`Ensemble` (see there).

    Parameters
    ----------
    models : sequence of RNN, LSTM or GRU
        Models of one class and configuration, differing only in their weights.

    Returns
    -------
    Ensemble

    Examples
    --------
    >>> import numrnn as nr
    >>> nr.ensemble([nr.LSTM(2, 3, seed=s) for s in range(4)]).members
    4
    """
    return Ensemble(models)


def from_config(cell, **kwargs):
    """Build a model from a cell's config name and the constructor's arguments.

    Parameters
    ----------
    cell : {"rnn_tanh", "rnn_relu", "lstm", "gru"}
        The config name (``model.cell`` in sweep configs, ``attrs["cell"]`` of results).
    **kwargs
        The model class's arguments (``input_size``, ``hidden_size``, ...).

    Returns
    -------
    RNN, LSTM or GRU

    Raises
    ------
    ValueError
        For an unknown cell name, listing the known ones.

    Examples
    --------
    >>> from numrnn.nn import from_config
    >>> from_config("rnn_relu", input_size=2, hidden_size=8).nonlinearity
    'relu'
    """
    known = variants()
    if cell not in known:
        raise ValueError(f"cell must be one of {', '.join(known)}, got {cell!r}")
    spec, options = known[cell]
    return MODELS[spec.name](**{**options, **kwargs})
