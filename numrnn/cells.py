"""The three cells behind one interface, so that layers, directions and lengths are composed once.

A cell turns a layer's input into its state trajectory and back:

``forward(k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes) -> (states, cache)``
    ``x`` is the layer's input (K or 1, T, B, D), C-contiguous; ``states`` is a tuple of
    (K, T+1, B, H) trajectories, one per state variable (h; or h and c for LSTM);
    ``cache`` is what ``backward`` needs.
``backward(k, cache, w_hh, xin, dout, dfinal, batch_sizes, norms) -> (dxp, wgrads, dstate0)``
    ``xin`` is the layer's input (K or 1, T, B, D); ``wgrads`` the gradients of
    (W_ih, b_ih, W_hh, b_hh), taken in one pass over the gate gradients ``dxp``.
    ``dfinal`` and ``dstate0`` are tuples like ``state0``; ``norms`` is a tuple of
    (K, T, B) arrays (filled with ||dL/ds_t||) or of (0, 0, 0) arrays (skipped).
``jacobian_args(cache) -> (kind, hs, cs, gates, aux)``
    the cache in the uniform layout of ``numrnn/kernels/jacobian.py``.

``k`` is a backend's kernel namespace, :func:`kernels`: the compiled CPU kernels of
``numrnn/kernels/`` or their CUDA twins in ``numrnn/cuda/`` (same names, same array
contracts). This module only arranges the weights in the layout each kernel multiplies
by (transposed copies are made once per call, not per step).
"""

import types

import numpy as np

from .kernels import gru, lstm, rnn

BACKENDS = ("cpu", "cuda")

# callers run these under kernels._parallel.serial_blas: they parallelise themselves
_CPU = types.SimpleNamespace(
    rnn_forward=rnn.rnn_forward,
    rnn_backward=rnn.rnn_backward,
    lstm_forward=lstm.lstm_forward,
    lstm_backward=lstm.lstm_backward,
    gru_forward=gru.gru_forward,
    gru_backward=gru.gru_backward,
)


def kernels(backend="cpu"):
    """The six kernels of a backend, by name; ``numrnn.cuda`` mirrors ``numrnn.kernels``.

    Raises
    ------
    ValueError for an unknown backend; RuntimeError (from ``numrnn.cuda``) when CUDA is
    asked for and neither a GPU nor Numba's simulator is available.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cpu":
        return _CPU
    from . import cuda

    return cuda.kernels()


def _none(dtype):
    return np.zeros((0, 0, 0, 0), dtype)


def _t(w):
    """Per-member transpose (K, A, B) -> (K, B, A), C-contiguous."""
    return np.ascontiguousarray(w.transpose(0, 2, 1))


class RNNCell:
    """Elman cell, ``h' = act(xp + W_hh h + b_hh)`` with act = tanh or ReLU."""

    n_gates = 1
    state_names = ("h",)

    def __init__(self, nonlinearity="tanh"):
        self.nonlinearity = nonlinearity
        self.relu = nonlinearity == "relu"

    def forward(self, k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes):
        hs = k.rnn_forward(x, _t(w_ih), b_ih, _t(w_hh), b_hh, state0[0], batch_sizes, self.relu)
        return (hs,), hs

    def backward(self, k, cache, w_hh, xin, dout, dfinal, batch_sizes, norms):
        *grads, dh0 = k.rnn_backward(
            cache, w_hh, xin, dout, dfinal[0], batch_sizes, self.relu, norms[0]
        )
        return grads[0], grads[1:], (dh0,)

    def jacobian_args(self, cache):
        return (
            1 if self.relu else 0,
            cache,
            _none(cache.dtype),
            _none(cache.dtype),
            _none(cache.dtype),
        )


class LSTMCell:
    """LSTM cell, gates i, f, g, o; state (h, c)."""

    n_gates = 4
    state_names = ("h", "c")

    def forward(self, k, x, w_ih, b_ih, w_hh, b_hh, state0, batch_sizes):
        hs, cs, gates, tcs = k.lstm_forward(x, _t(w_ih), b_ih, _t(w_hh), b_hh, *state0, batch_sizes)
        return (hs, cs), (hs, cs, gates, tcs)

    def backward(self, k, cache, w_hh, xin, dout, dfinal, batch_sizes, norms):
        hs, cs, gates, tcs = cache
        *grads, dh0, dc0 = k.lstm_backward(
            hs, cs, gates, tcs, w_hh, xin, dout, *dfinal, batch_sizes, *norms
        )
        return grads[0], grads[1:], (dh0, dc0)

    def jacobian_args(self, cache):
        hs, cs, gates, tcs = cache
        return 2, hs, cs, gates, tcs


class GRUCell:
    """GRU cell, gates r, z, n; ``reset_after`` selects PyTorch's form or Cho et al.'s."""

    n_gates = 3
    state_names = ("h",)

    def __init__(self, reset_after=True):
        self.reset_after = bool(reset_after)

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

    def backward(self, k, cache, w_hh, xin, dout, dfinal, batch_sizes, norms):
        hs, gates, aux = cache
        _, _, whh, whn = self._weights(w_hh)
        *grads, dh0 = k.gru_backward(
            hs, gates, aux, whh, whn, xin, dout, dfinal[0], batch_sizes, self.reset_after, norms[0]
        )
        return grads[0], grads[1:], (dh0,)

    def jacobian_args(self, cache):
        hs, gates, aux = cache
        return 3 if self.reset_after else 4, hs, _none(hs.dtype), gates, aux
