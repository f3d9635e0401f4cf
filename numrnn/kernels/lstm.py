"""LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate), PyTorch gate order i, f, g, o.

    i, f, o = sigmoid(.), g = tanh(.)   of   xp_t + W_hh h_{t-1} + b_hh
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Forward and BPTT side by side; array contract in ``numrnn/kernels/rnn.py``.
"""

import numpy as np
from numba import njit

from ._config import FASTMATH
from ._math import sigmoid, tanh


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def lstm_forward(xp, whh_t, bhh, h0, c0, batch_sizes):
    """Run the LSTM recurrence over all steps.

    Parameters
    ----------
    xp : (T, B, 4H) input projection.
    whh_t : (H, 4H) ``W_hh.T``, C-contiguous.
    bhh : (4H,)
    h0, c0 : (B, H)
    batch_sizes : (T,) int64

    Returns
    -------
    hs, cs : (T+1, B, H) hidden and cell states (``[0]`` the initial ones).
    gates : (T, B, 4H) gate activations i, f, g, o.
    tcs : (T, B, H) tanh(c_t).
        BPTT needs all four; memory (2(T+1) + 5T) B H numbers.
    """
    T, B, G = xp.shape
    H = G // 4
    zero = xp.dtype.type(0)
    hs = np.empty((T + 1, B, H), xp.dtype)
    cs = np.empty((T + 1, B, H), xp.dtype)
    gates = np.empty((T, B, G), xp.dtype)
    tcs = np.zeros((T, B, H), xp.dtype)
    hs[0] = h0
    cs[0] = c0
    for t in range(T):
        n = batch_sizes[t]
        a = gates[t]
        np.dot(hs[t][:n], whh_t, a[:n])
        for b in range(n):
            for k in range(G):
                a[b, k] += xp[t, b, k] + bhh[k]
            for j in range(H):
                i = sigmoid(a[b, j])
                f = sigmoid(a[b, H + j])
                g = tanh(a[b, 2 * H + j])
                o = sigmoid(a[b, 3 * H + j])
                c = f * cs[t, b, j] + i * g
                tc = tanh(c)
                a[b, j] = i
                a[b, H + j] = f
                a[b, 2 * H + j] = g
                a[b, 3 * H + j] = o
                cs[t + 1, b, j] = c
                tcs[t, b, j] = tc
                hs[t + 1, b, j] = o * tc
        hs[t + 1, n:] = zero
        cs[t + 1, n:] = zero
        a[n:] = zero
    return hs, cs, gates, tcs


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def lstm_backward(hs, cs, gates, tcs, whh, dout, dhT, dcT, batch_sizes, norms, cnorms):
    """BPTT through :func:`lstm_forward`.

    Parameters
    ----------
    hs, cs, gates, tcs : saved by the forward pass.
    whh : (4H, H) ``W_hh``, C-contiguous.
    dout : (T, B, H) gradient w.r.t. the outputs ``hs[1:]``.
    dhT, dcT : (B, H) gradients w.r.t. each sequence's final h and c.
    batch_sizes : (T,) int64
    norms, cnorms : (T, B) or (0, 0) optional outputs: ||dL/dh_t||, ||dL/dc_t||.

    Returns
    -------
    dxp : (T, B, 4H) gradient w.r.t. the gate pre-activations.
    dwhh : (4H, H)
    dbhh : (4H,)
    dh0, dc0 : (B, H)
    """
    T, B, G = gates.shape
    H = G // 4
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    want_norms = norms.shape[0] == T
    dxp = np.zeros((T, B, G), hs.dtype)
    dh = dhT.copy()
    dc = dcT.copy()
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        for b in range(n):
            ssh = zero
            ssc = zero
            for j in range(H):
                i = gates[t, b, j]
                f = gates[t, b, H + j]
                g = gates[t, b, 2 * H + j]
                o = gates[t, b, 3 * H + j]
                tc = tcs[t, b, j]
                gh = dh[b, j] + dout[t, b, j]  # total dL/dh_t
                gc = dc[b, j] + gh * o * (one - tc * tc)  # total dL/dc_t
                ssh += gh * gh
                ssc += gc * gc
                dc[b, j] = gc * f  # on to c_{t-1}
                dxp[t, b, j] = gc * g * i * (one - i)
                dxp[t, b, H + j] = gc * cs[t, b, j] * f * (one - f)
                dxp[t, b, 2 * H + j] = gc * i * (one - g * g)
                dxp[t, b, 3 * H + j] = gh * tc * o * (one - o)
            if want_norms:
                norms[t, b] = np.sqrt(ssh)
                cnorms[t, b] = np.sqrt(ssc)
        if want_norms:
            norms[t, n:] = np.nan
            cnorms[t, n:] = np.nan
        np.dot(dxp[t][:n], whh, dh[:n])
    flat = dxp.reshape(T * B, G)
    dwhh = np.dot(flat.T, hs[:T].reshape(T * B, H))
    dbhh = flat.sum(axis=0)
    return dxp, dwhh, dbhh, dh, dc


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def lstm_step_jacobian(J, cs, gates, tcs, whh, t, b):
    """Write the step Jacobian of the state s = (h, c) of sequence b at step t into J (2H, 2H).

    Rows and columns are ordered (h, c)::

        dc/dh_prev = diag(c_prev f(1-f)) W_f + diag(g i(1-i)) W_i + diag(i(1-g^2)) W_g
        dh/dh_prev = diag(tanh(c) o(1-o)) W_o + diag(u) dc/dh_prev,   u = o (1 - tanh(c)^2)
        dc/dc_prev = diag(f),   dh/dc_prev = diag(u f)
    """
    H = whh.shape[1]
    one = cs.dtype.type(1)
    J[:] = 0
    for i in range(H):
        ig = gates[t, b, i]
        f = gates[t, b, H + i]
        g = gates[t, b, 2 * H + i]
        o = gates[t, b, 3 * H + i]
        tc = tcs[t, b, i]
        u = o * (one - tc * tc)
        a_i = g * ig * (one - ig)
        a_f = cs[t, b, i] * f * (one - f)
        a_g = ig * (one - g * g)
        a_o = tc * o * (one - o)
        for j in range(H):
            dc = a_i * whh[i, j] + a_f * whh[H + i, j] + a_g * whh[2 * H + i, j]
            J[H + i, j] = dc
            J[i, j] = a_o * whh[3 * H + i, j] + u * dc
        J[H + i, H + i] = f
        J[i, H + i] = u * f
