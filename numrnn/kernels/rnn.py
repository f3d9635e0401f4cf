"""Elman RNN cell, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or ReLU.

Forward and BPTT live side by side. Both run the whole time loop in compiled code.

Shared array contract (all three cells, see ``numrnn/kernels/__init__.py``)
------------------------------------------------------------------------
xp : (T, B, G*H)
    Input projection ``x @ W_ih.T + b_ih`` for every step, computed by the caller
    in one matrix product.
batch_sizes : (T,) int64
    Number of active sequences at each step. The batch is sorted by length,
    longest first, so the active rows are always a prefix ``[:n]``: inactive
    rows are neither read nor written and their state is carried unchanged,
    exactly like PyTorch's packed sequences.
hs : (T+1, B, H)
    ``hs[0]`` is the initial state, ``hs[t+1]`` the state after step t; rows
    past a sequence's end are zero, so ``hs[1:]`` is the layer's output.
dout : (T, B, H)
    Gradient of the loss w.r.t. the output ``hs[1:]`` (from the layer above or
    the loss), rows past a sequence's end are ignored.
norms : (T, B) or (0, 0)
    When its shape is (T, B), the BPTT kernel writes the 2-norm of the total
    derivative dL/dh_t there (NaN past a sequence's end).
"""

import numpy as np
from numba import njit

from ._config import FASTMATH
from ._math import tanh


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def rnn_forward(xp, whh_t, bhh, h0, batch_sizes, relu):
    """Run the Elman recurrence over all steps.

    Parameters
    ----------
    xp : (T, B, H) input projection.
    whh_t : (H, H) ``W_hh.T``, C-contiguous.
    bhh : (H,)
    h0 : (B, H)
    batch_sizes : (T,) int64
    relu : bool, ReLU instead of tanh.

    Returns
    -------
    hs : (T+1, B, H) all states; the only thing BPTT needs (the activation's
        derivative is a function of its output). Memory: (T+1) B H numbers.
    """
    T, B, H = xp.shape
    zero = xp.dtype.type(0)
    hs = np.empty((T + 1, B, H), xp.dtype)
    hs[0] = h0
    for t in range(T):
        n = batch_sizes[t]
        h = hs[t + 1]
        np.dot(hs[t][:n], whh_t, h[:n])
        for b in range(n):
            for j in range(H):
                a = h[b, j] + xp[t, b, j] + bhh[j]
                # `a < 0` is False for NaN, so NaN propagates through ReLU as in torch
                h[b, j] = (zero if a < zero else a) if relu else tanh(a)
        h[n:] = zero
    return hs


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def rnn_backward(hs, whh, dout, dhT, batch_sizes, relu, norms):
    """BPTT through :func:`rnn_forward`.

    Parameters
    ----------
    hs : (T+1, B, H) states saved by the forward pass.
    whh : (H, H) ``W_hh`` (not transposed), C-contiguous.
    dout : (T, B, H) gradient w.r.t. the outputs ``hs[1:]``.
    dhT : (B, H) gradient w.r.t. the final state of each sequence.
    batch_sizes : (T,) int64
    relu : bool
    norms : (T, B) or (0, 0) optional output: ||dL/dh_t||_2.

    Returns
    -------
    dxp : (T, B, H) gradient w.r.t. the input projection (= the pre-activation).
    dwhh : (H, H)
    dbhh : (H,)
    dh0 : (B, H)
    """
    T1, B, H = hs.shape
    T = T1 - 1
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    want_norms = norms.shape[0] == T
    dxp = np.zeros((T, B, H), hs.dtype)
    dh = dhT.copy()
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        h = hs[t + 1]
        for b in range(n):
            ss = zero
            for j in range(H):
                g = dh[b, j] + dout[t, b, j]  # total derivative dL/dh_t
                ss += g * g
                hj = h[b, j]
                dxp[t, b, j] = g * (one if hj > zero else zero) if relu else g * (one - hj * hj)
            if want_norms:
                norms[t, b] = np.sqrt(ss)
        if want_norms:
            norms[t, n:] = np.nan
        # dL/dh_{t-1} through the recurrence; rows >= n carry dh unchanged
        np.dot(dxp[t][:n], whh, dh[:n])
    flat = dxp.reshape(T * B, H)
    dwhh = np.dot(flat.T, hs[:T].reshape(T * B, H))
    dbhh = flat.sum(axis=0)
    return dxp, dwhh, dbhh, dh


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def rnn_step_jacobian(J, hs, whh, t, b, relu):
    """Write the step Jacobian dh_{t+1}/dh_t = diag(act'(a_t)) W_hh of sequence b into J (H, H).

    ``hs`` and ``t`` use the kernel's indexing: step t maps ``hs[t]`` to ``hs[t+1]``.
    """
    H = whh.shape[1]
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    for i in range(H):
        h = hs[t + 1, b, i]
        d = (one if h > zero else zero) if relu else one - h * h
        for j in range(H):
            J[i, j] = d * whh[i, j]
