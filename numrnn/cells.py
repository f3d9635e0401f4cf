"""The three cells behind one interface, so that layers, directions and lengths are composed once.

A cell turns a layer's input projection into its state trajectory and back:

``forward(xp, w_hh, b_hh, state0, batch_sizes) -> (states, cache)``
    ``states`` is a tuple of (T+1, B, H) trajectories, one per state variable
    (h; or h and c for LSTM); ``cache`` is what ``backward`` needs.
``backward(cache, w_hh, dout, dfinal, batch_sizes, norms) -> (dxp, dw_hh, db_hh, dstate0)``
    ``dfinal`` and ``dstate0`` are tuples like ``state0``; ``norms`` is a tuple of
    (T, B) arrays (filled with ||dL/ds_t||) or of (0, 0) arrays (skipped).

Cells are looked up by name in :data:`CELLS`. The compiled kernels are in
``numrnn/kernels/``; this module only arranges the weights in the layout each
kernel multiplies by (transposed copies are made once per call, not per step).
"""

import numpy as np

from .kernels.gru import gru_backward, gru_forward
from .kernels.lstm import lstm_backward, lstm_forward
from .kernels.rnn import rnn_backward, rnn_forward


class RNNCell:
    """Elman cell, ``h' = act(xp + W_hh h + b_hh)`` with act = tanh or ReLU."""

    n_gates = 1
    state_names = ("h",)

    def __init__(self, nonlinearity="tanh"):
        self.nonlinearity = nonlinearity
        self.relu = nonlinearity == "relu"

    def forward(self, xp, w_hh, b_hh, state0, batch_sizes):
        hs = rnn_forward(xp, np.ascontiguousarray(w_hh.T), b_hh, state0[0], batch_sizes, self.relu)
        return (hs,), hs

    def backward(self, cache, w_hh, dout, dfinal, batch_sizes, norms):
        dxp, dw, db, dh0 = rnn_backward(cache, w_hh, dout, dfinal[0], batch_sizes, self.relu, norms[0])
        return dxp, dw, db, (dh0,)


class LSTMCell:
    """LSTM cell, gates i, f, g, o; state (h, c)."""

    n_gates = 4
    state_names = ("h", "c")

    def forward(self, xp, w_hh, b_hh, state0, batch_sizes):
        hs, cs, gates, tcs = lstm_forward(
            xp, np.ascontiguousarray(w_hh.T), b_hh, state0[0], state0[1], batch_sizes
        )
        return (hs, cs), (hs, cs, gates, tcs)

    def backward(self, cache, w_hh, dout, dfinal, batch_sizes, norms):
        hs, cs, gates, tcs = cache
        dxp, dw, db, dh0, dc0 = lstm_backward(
            hs, cs, gates, tcs, w_hh, dout, dfinal[0], dfinal[1], batch_sizes, norms[0], norms[1]
        )
        return dxp, dw, db, (dh0, dc0)


class GRUCell:
    """GRU cell, gates r, z, n; ``reset_after`` selects PyTorch's form or Cho et al.'s."""

    n_gates = 3
    state_names = ("h",)

    def __init__(self, reset_after=True):
        self.reset_after = bool(reset_after)

    def _weights(self, w_hh):
        """(whh_t, whn_t, whh, whn): the layouts gru_forward and gru_backward multiply by."""
        H = w_hh.shape[1]
        if self.reset_after:
            empty = np.zeros((0, 0), w_hh.dtype)
            return np.ascontiguousarray(w_hh.T), empty, w_hh, empty
        w_rz, w_n = w_hh[: 2 * H], w_hh[2 * H :]
        return np.ascontiguousarray(w_rz.T), np.ascontiguousarray(w_n.T), w_rz, w_n

    def forward(self, xp, w_hh, b_hh, state0, batch_sizes):
        whh_t, whn_t, _, _ = self._weights(w_hh)
        hs, gates, aux = gru_forward(xp, whh_t, whn_t, b_hh, state0[0], batch_sizes, self.reset_after)
        return (hs,), (hs, gates, aux)

    def backward(self, cache, w_hh, dout, dfinal, batch_sizes, norms):
        hs, gates, aux = cache
        _, _, whh, whn = self._weights(w_hh)
        dxp, dw, db, dh0 = gru_backward(
            hs, gates, aux, whh, whn, dout, dfinal[0], batch_sizes, self.reset_after, norms[0]
        )
        return dxp, dw, db, (dh0,)
