"""The models users build: :class:`RNN`, :class:`LSTM`, :class:`GRU` and :class:`Ensemble`.

Each class names a cell (:data:`numrnn.nn.cells.CELLS`) and its options; everything else
(layers, directions, lengths, the head, forward and BPTT) is
:class:`~numrnn.nn.recurrent.Recurrent`'s.
"""

import copy

import numpy as np

from .. import _checks
from .cells import CELLS, MODELS, variants
from .recurrent import Recurrent

__all__ = ["GRU", "LSTM", "PER_MEMBER", "RNN", "Ensemble", "ensemble", "from_config"]


class RNN(Recurrent):
    """Elman RNN, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Parameters
    ----------
    nonlinearity : "tanh" (default) or "relu" (with ``init="identity"``: the IRNN of
        Le, Jaitly & Hinton 2015).
    Others as in :class:`~numrnn.nn.recurrent.Recurrent`.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 4, nonlinearity="relu", seed=0)
    >>> model.forward(np.zeros((5, 2, 3))).output.shape
    (5, 2, 4)
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

    Parameters
    ----------
    forget_bias : float or None; sets the forget gate's effective bias (the sum of the f
        blocks of ``bias_ih`` and ``bias_hh``) exactly, e.g. 1.0 (Gers et al. 2000).
    Others as in :class:`~numrnn.nn.recurrent.Recurrent`.
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

    Parameters
    ----------
    reset_after : bool; True (default) is PyTorch's and cuDNN's form
        ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; False the original
        ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``. Same parameter names.
    Others as in :class:`~numrnn.nn.recurrent.Recurrent`.
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
    or (K, T, B, D), and returns ``output`` (K, T, B, ...) and ``state`` (K, layers*dirs, B, H);
    ``backward`` takes ``d_output`` (K, ...) and returns stacked gradients; diagnostics gain
    a ``member`` dimension. The kernels run (member, block of sequences) items in parallel.

    Parameters
    ----------
    models : sequence of RNN, LSTM or GRU with equal configurations.
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
        """The members as separate models, with copies of their current weights."""
        out = []
        for k, shell in enumerate(self._shells):
            m = copy.copy(shell)
            m.params = {name: v[k].copy() for name, v in self.params.items()}
            out.append(m)
        return out

    def to_torch(self):
        raise TypeError("an Ensemble has no torch equivalent; convert its members (unstack())")

    def _stack_input(self, x):
        x = np.asarray(x)
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
    """Run K models of the same shape as one :class:`Ensemble` (see there)."""
    return Ensemble(models)


def from_config(cell, **kwargs):
    """Build a model from a cell's config name ("rnn_tanh", "rnn_relu", "lstm", "gru") and
    the constructor's arguments, e.g. ``from_config("rnn_relu", input_size=2, hidden_size=8)``.

    Raises
    ------
    ValueError for an unknown cell name, listing the known ones.
    """
    known = variants()
    if cell not in known:
        raise ValueError(f"cell must be one of {', '.join(known)}, got {cell!r}")
    spec, options = known[cell]
    return MODELS[spec.name](**{**options, **kwargs})
