"""What a cell is, written once: the :class:`CellSpec` registry and the glue to its kernels.

A :class:`CellSpec` says everything the rest of numrnn needs to know about a kind of cell:
its gates (PyTorch's order, one ``H``-row block of ``weight_ih``/``weight_hh`` each), its
state variables, the ``torch.nn`` class with the same parameters, the options a model of
it takes, and the names under which configs (sweeps, stored results) refer to it. Every
other module asks the registry :data:`CELLS` instead of testing cell names.

A :class:`Cell` is one configured cell (a spec and its options). It turns one direction
of one layer's input into its state trajectory and back, by calling its backend's
kernels:

``forward(k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes) -> (states, cache)``
    ``x`` is the layer's input (K or 1, T, B, D), C-contiguous; ``states`` is a tuple of
    (K, T+1, B, H) trajectories, one per state variable (h; or h and c for LSTM);
    ``cache`` is what ``backward`` needs.
``backward(k, cache, w_ih, w_hh, xin, dout, dfinal, batch_sizes, norms) -> (dx, wgrads, dstate0)``
    ``xin`` is the layer's input (K or 1, T, B, D); ``dx`` the gradient with respect to
    it, made inside the time loop (``w_ih`` (K, G, 0) for none: then ``dx`` is (K, T, B,
    0)); ``wgrads`` the gradients of (W_ih, b_ih, W_hh, b_hh), taken in one pass over the
    gate gradients.
    ``dfinal`` and ``dstate0`` are tuples like ``state0``; ``norms`` is a tuple of
    (K, T, B) arrays (filled with ||dL/ds_t||) or of (0, 0, 0) arrays (skipped).
``jacobian_args(cache) -> (kind, hs, cs, gates, aux)``
    the cache in the uniform layout of ``numrnn/kernels/jacobian.py``.
``cache_like(K, T, B, H, dtype) -> cache``
    zeros of the shapes and types of ``forward``'s cache, for compiling ``backward``
    without a forward pass (``numrnn/nn/ahead.py``).

``k`` is a backend's kernel namespace, :func:`kernels`: the compiled CPU kernels of
``numrnn/kernels/`` or their CUDA twins in ``numrnn/cuda/`` (same names, same array
contracts). This module only arranges the weights in the layout each kernel multiplies
by (transposed copies are made once per call, not per step).

Adding a cell: its kernels (``numrnn/kernels/<name>.py``, ``numrnn/cuda/<name>.py``), a
:class:`Cell` subclass here and its :class:`CellSpec` entry in :data:`CELLS`.
"""

from dataclasses import dataclass, field

import numpy as np

from .._checks import check_bool, check_choice
from .._registry import Registry
from ..kernels import Namespace
from ..kernels.jacobian import KINDS as JACOBIAN_KINDS

BACKENDS = ("cpu", "cuda")

# callers run these under kernels._parallel.serial_blas: they parallelise themselves
_CPU = Namespace("numrnn.kernels")


def kernels(backend="cpu"):
    """The kernels of a backend, by name (``lstm_forward``, ...); ``numrnn.cuda`` mirrors
    ``numrnn.kernels``.

    Raises
    ------
    ValueError for an unknown backend; RuntimeError (from ``numrnn.cuda``) when CUDA is
    asked for and neither a GPU nor Numba's simulator is available.
    """
    if backend == "cpu":
        return _CPU
    check_choice("backend", backend, BACKENDS)
    from .. import cuda

    return cuda.kernels()


def _none(dtype):
    return np.zeros((0, 0, 0, 0), dtype)


def _t(w):
    """Per-member transpose (K, A, B) -> (K, B, A), C-contiguous."""
    return np.ascontiguousarray(w.transpose(0, 2, 1))


@dataclass(frozen=True)
class CellSpec:
    """The facts about a kind of cell that models, diagnostics, sweeps and interop use.

    Attributes
    ----------
    name : the kernels' prefix and ``model.cell_type`` ("rnn", "lstm", "gru").
    gates : gate names in PyTorch's order; ``weight_ih``/``weight_hh`` have one H-row
        block per gate. A cell without gates has one block, named after its state.
    states : state variables, e.g. ("h", "c"); each is (layers*dirs, B, H).
    torch_class : name of the ``torch.nn`` module with the same parameters.
    cell : the :class:`Cell` subclass that calls the kernels.
    options : the model options that configure the cell, with their defaults.
    variants : config names of the cell (``model.cell`` in sweeps, ``attrs["cell"]``) and
        the options each stands for.
    """

    name: str
    gates: tuple
    states: tuple
    torch_class: str
    cell: type
    options: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)

    @property
    def n_gates(self):
        return len(self.gates)

    def state_size(self, hidden_size):
        """Size of the state s whose Jacobians diagnostics take: H per state variable."""
        return len(self.states) * hidden_size

    def make(self, **options):
        """A :class:`Cell` with these options (defaults for those not given)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"cell {self.name!r} takes no option(s) {unknown}")
        return self.cell(self, **{**self.options, **options})


class Cell:
    """A configured cell: its :class:`CellSpec` and options; subclasses call the kernels."""

    def __init__(self, spec, **options):
        self.spec = spec
        self.options = options

    @property
    def state_names(self):
        return self.spec.states

    @property
    def n_gates(self):
        return self.spec.n_gates

    @property
    def name(self):
        """The config name of this variant, e.g. "rnn_relu"."""
        for name, opts in self.spec.variants.items():
            if all(self.options[k] == v for k, v in opts.items()):
                return name
        return self.spec.name

    def torch_options(self):
        """Keyword arguments of the equivalent ``torch.nn`` module; ValueError if none has
        this cell's form."""
        return {}


class RNNCell(Cell):
    """Elman cell, ``h' = act(xp + W_hh h + b_hh)`` with act = tanh or ReLU."""

    def __init__(self, spec, nonlinearity):
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(spec, nonlinearity=nonlinearity)
        self.relu = nonlinearity == "relu"

    def forward(self, k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes):
        hs = k.rnn_forward(x, _t(w_ih), b_ih, _t(w_hh), b_hh, state0[0], batch_sizes, self.relu)
        return (hs,), hs

    def cache_like(self, K, T, B, H, dtype):
        return np.zeros((K, T + 1, B, H), dtype)

    def backward(self, k, cache, w_ih, w_hh, xin, dout, dfinal, batch_sizes, norms):
        *grads, dh0 = k.rnn_backward(
            cache, w_hh, w_ih, xin, dout, dfinal[0], batch_sizes, self.relu, norms[0]
        )
        return grads[0], grads[1:], (dh0,)

    def jacobian_args(self, cache):
        none = _none(cache.dtype)
        return JACOBIAN_KINDS[self.name], cache, none, none, none

    def torch_options(self):
        return {"nonlinearity": self.options["nonlinearity"]}


class LSTMCell(Cell):
    """LSTM cell, gates i, f, g, o; state (h, c)."""

    def forward(self, k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes):
        hs, cs, gates, tcs = k.lstm_forward(x, _t(w_ih), b_ih, _t(w_hh), b_hh, *state0, batch_sizes)
        return (hs, cs), (hs, cs, gates, tcs)

    def cache_like(self, K, T, B, H, dtype):
        trajectory, step = (K, T + 1, B, H), (K, T, B, H)
        return tuple(np.zeros(s, dtype) for s in (trajectory, trajectory, (K, T, B, 4 * H), step))

    def backward(self, k, cache, w_ih, w_hh, xin, dout, dfinal, batch_sizes, norms):
        hs, cs, gates, tcs = cache
        *grads, dh0, dc0 = k.lstm_backward(
            hs, cs, gates, tcs, w_hh, w_ih, xin, dout, *dfinal, batch_sizes, *norms
        )
        return grads[0], grads[1:], (dh0, dc0)

    def jacobian_args(self, cache):
        hs, cs, gates, tcs = cache
        return JACOBIAN_KINDS["lstm"], hs, cs, gates, tcs


class GRUCell(Cell):
    """GRU cell, gates r, z, n; ``reset_after`` selects PyTorch's form or Cho et al.'s."""

    def __init__(self, spec, reset_after):
        super().__init__(spec, reset_after=check_bool("reset_after", reset_after))
        self.reset_after = self.options["reset_after"]

    def _weights(self, w_hh):
        """(whh_t, whn_t, whh, whn): the layouts gru_forward and gru_backward multiply by."""
        H = w_hh.shape[2]
        if self.reset_after:
            empty = np.zeros((0, 0, 0), w_hh.dtype)
            return _t(w_hh), empty, w_hh, empty
        w_rz = np.ascontiguousarray(w_hh[:, : 2 * H])
        w_n = np.ascontiguousarray(w_hh[:, 2 * H :])
        return _t(w_rz), _t(w_n), w_rz, w_n

    def forward(self, k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes):
        whh_t, whn_t, _, _ = self._weights(w_hh)
        hs, gates, aux = k.gru_forward(
            x, _t(w_ih), b_ih, whh_t, whn_t, b_hh, state0[0], batch_sizes, self.reset_after
        )
        return (hs,), (hs, gates, aux)

    def cache_like(self, K, T, B, H, dtype):
        return tuple(np.zeros(s, dtype) for s in ((K, T + 1, B, H), (K, T, B, 3 * H), (K, T, B, H)))

    def backward(self, k, cache, w_ih, w_hh, xin, dout, dfinal, batch_sizes, norms):
        hs, gates, aux = cache
        _, _, whh, whn = self._weights(w_hh)
        *grads, dh0 = k.gru_backward(hs, gates, aux, whh, whn, w_ih, xin, dout, dfinal[0],
                                     batch_sizes, self.reset_after, norms[0])  # fmt: skip
        return grads[0], grads[1:], (dh0,)

    def jacobian_args(self, cache):
        hs, gates, aux = cache
        kind = JACOBIAN_KINDS["gru_after" if self.reset_after else "gru_before"]
        return kind, hs, _none(hs.dtype), gates, aux

    def torch_options(self):
        if not self.reset_after:
            raise ValueError(
                "torch.nn.GRU has only the reset-after form; this model has reset_after=False"
            )
        return {}


#: Every cell numrnn knows, by ``CellSpec.name``.
CELLS = Registry("cell", {spec.name: spec for spec in (
    CellSpec("rnn", gates=("h",), states=("h",), torch_class="RNN", cell=RNNCell,
             options={"nonlinearity": "tanh"},
             variants={"rnn_tanh": {"nonlinearity": "tanh"},
                       "rnn_relu": {"nonlinearity": "relu"}}),
    CellSpec("lstm", gates=("i", "f", "g", "o"), states=("h", "c"), torch_class="LSTM",
             cell=LSTMCell, variants={"lstm": {}}),
    CellSpec("gru", gates=("r", "z", "n"), states=("h",), torch_class="GRU", cell=GRUCell,
             options={"reset_after": True}, variants={"gru": {}}),
)})  # fmt: skip


#: The model class of each cell (``numrnn.RNN`` for "rnn", ...); model classes register
#: themselves when they are defined (``Recurrent.__init_subclass__``).
MODELS = Registry("model")


def variants():
    """{config name: (spec, options)} of every cell variant, e.g. "rnn_relu"."""
    return {name: (spec, opts) for spec in CELLS.values() for name, opts in spec.variants.items()}
