"""GRU cell (Cho et al. 2014), PyTorch gate order r, z, n, in both of its forms.

    r = sigmoid(xp_r + W_hr h + b_hr),  z = sigmoid(xp_z + W_hz h + b_hz)
    reset after  (PyTorch, cuDNN):  n = tanh(xp_n + r * (W_hn h + b_hn))
    reset before (Cho et al.):      n = tanh(xp_n + W_hn (r * h) + b_hn)
    h' = (1 - z) * n + z * h

One kernel serves both forms: they differ only in where r enters the candidate.
Forward and BPTT side by side; array contract in ``numrnn/kernels/rnn.py``.

The recurrent weights come in the layout each form multiplies by:
reset after, one product per step with ``whh_t = W_hh.T`` (H, 3H);
reset before, ``whh_t = W_hh[:2H].T`` (H, 2H) for r and z, then ``whn_t = W_hn.T``
(H, H) applied to r * h.
"""

import numpy as np
from numba import njit

from ._config import FASTMATH
from ._math import sigmoid, tanh


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def gru_forward(xp, whh_t, whn_t, bhh, h0, batch_sizes, reset_after):
    """Run the GRU recurrence over all steps.

    Parameters
    ----------
    xp : (T, B, 3H) input projection.
    whh_t : (H, 3H) if ``reset_after`` else (H, 2H), see the module docstring.
    whn_t : (H, H) ``W_hn.T`` when not ``reset_after``; unused (may be (0, 0)) otherwise.
    bhh : (3H,)
    h0 : (B, H)
    batch_sizes : (T,) int64
    reset_after : bool

    Returns
    -------
    hs : (T+1, B, H) states.
    gates : (T, B, 3H) activations r, z, n.
    aux : (T, B, H) ``W_hn h + b_hn`` (reset after) or ``r * h_{t-1}`` (reset before):
        the factor BPTT needs for r. Memory (T+1) B H + 4 T B H numbers.
    """
    T, B, G = xp.shape
    H = G // 3
    K = whh_t.shape[1]
    zero = xp.dtype.type(0)
    hs = np.empty((T + 1, B, H), xp.dtype)
    gates = np.zeros((T, B, G), xp.dtype)
    aux = np.zeros((T, B, H), xp.dtype)
    hh = np.empty((B, K), xp.dtype)  # h_{t-1} @ whh_t
    hn = np.empty((B, H), xp.dtype)  # (r * h_{t-1}) @ W_hn.T, reset before only
    hs[0] = h0
    for t in range(T):
        n = batch_sizes[t]
        hp = hs[t]
        np.dot(hp[:n], whh_t, hh[:n])
        for b in range(n):
            for j in range(H):
                r = sigmoid(xp[t, b, j] + hh[b, j] + bhh[j])
                z = sigmoid(xp[t, b, H + j] + hh[b, H + j] + bhh[H + j])
                gates[t, b, j] = r
                gates[t, b, H + j] = z
                if reset_after:
                    a = hh[b, 2 * H + j] + bhh[2 * H + j]
                    aux[t, b, j] = a
                    c = tanh(xp[t, b, 2 * H + j] + r * a)
                    gates[t, b, 2 * H + j] = c
                    hs[t + 1, b, j] = c + z * (hp[b, j] - c)
                else:
                    aux[t, b, j] = r * hp[b, j]
        if not reset_after:
            np.dot(aux[t][:n], whn_t, hn[:n])
            for b in range(n):
                for j in range(H):
                    c = tanh(xp[t, b, 2 * H + j] + hn[b, j] + bhh[2 * H + j])
                    z = gates[t, b, H + j]
                    gates[t, b, 2 * H + j] = c
                    hs[t + 1, b, j] = c + z * (hp[b, j] - c)
        hs[t + 1, n:] = zero
    return hs, gates, aux


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def gru_backward(hs, gates, aux, whh, whn, dout, dhT, batch_sizes, reset_after, norms):
    """BPTT through :func:`gru_forward`.

    Parameters
    ----------
    hs, gates, aux : saved by the forward pass.
    whh : (K, H) ``W_hh`` (K = 3H, reset after) or ``W_hh[:2H]`` (K = 2H, reset before).
    whn : (H, H) ``W_hn`` for reset before; unused otherwise.
    dout : (T, B, H) gradient w.r.t. the outputs ``hs[1:]``.
    dhT : (B, H) gradient w.r.t. each sequence's final state.
    batch_sizes : (T,) int64
    reset_after : bool
    norms : (T, B) or (0, 0) optional output: ||dL/dh_t||_2.

    Returns
    -------
    dxp : (T, B, 3H) gradient w.r.t. the input projection.
    dwhh : (3H, H)
    dbhh : (3H,)
    dh0 : (B, H)
    """
    T, B, G = gates.shape
    H = G // 3
    K = whh.shape[0]
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    want_norms = norms.shape[0] == T
    dxp = np.zeros((T, B, G), hs.dtype)
    dgh = np.zeros((T, B, K), hs.dtype)  # gradient w.r.t. h_{t-1} @ whh_t
    dn = np.zeros((T, B, H), hs.dtype)  # reset before: gradient of n's pre-activation
    drh = np.empty((B, H), hs.dtype)  # reset before: gradient w.r.t. r * h_{t-1}
    dhz = np.empty((B, H), hs.dtype)  # the direct path h_{t-1} -> h_t through z * h
    dh = dhT.copy()
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        for b in range(n):
            ss = zero
            for j in range(H):
                r = gates[t, b, j]
                z = gates[t, b, H + j]
                c = gates[t, b, 2 * H + j]
                g = dh[b, j] + dout[t, b, j]  # total dL/dh_t
                ss += g * g
                dc = g * (one - z) * (one - c * c)
                dz = g * (hs[t, b, j] - c) * z * (one - z)
                dhz[b, j] = g * z
                dxp[t, b, H + j] = dz
                dgh[t, b, H + j] = dz
                dxp[t, b, 2 * H + j] = dc
                if reset_after:
                    dr = dc * aux[t, b, j] * r * (one - r)
                    dxp[t, b, j] = dr
                    dgh[t, b, j] = dr
                    dgh[t, b, 2 * H + j] = dc * r
                else:
                    dn[t, b, j] = dc
            if want_norms:
                norms[t, b] = np.sqrt(ss)
        if want_norms:
            norms[t, n:] = np.nan
        if not reset_after:
            np.dot(dn[t][:n], whn, drh[:n])
            for b in range(n):
                for j in range(H):
                    r = gates[t, b, j]
                    dr = drh[b, j] * hs[t, b, j] * r * (one - r)
                    dxp[t, b, j] = dr
                    dgh[t, b, j] = dr
                    dhz[b, j] += drh[b, j] * r
        np.dot(dgh[t][:n], whh, dh[:n])
        for b in range(n):
            for j in range(H):
                dh[b, j] += dhz[b, j]
    dwhh = np.zeros((G, H), hs.dtype)
    dbhh = np.zeros(G, hs.dtype)
    flat = dgh.reshape(T * B, K)
    np.dot(flat.T, hs[:T].reshape(T * B, H), dwhh[:K])
    dbhh[:K] = flat.sum(axis=0)
    if not reset_after:
        flat = dn.reshape(T * B, H)
        np.dot(flat.T, aux.reshape(T * B, H), dwhh[K:])
        dbhh[K:] = flat.sum(axis=0)
    return dxp, dwhh, dbhh, dh


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def gru_step_jacobian(J, hs, gates, aux, whh, t, b, reset_after):
    """Write the step Jacobian dh_{t+1}/dh_t of sequence b into J (H, H); ``whh`` is W_hh (3H, H).

    With h' = (1-z) n + z h and a = (1-z)(1-n^2)::

        J = diag(z) + diag((h-n) z(1-z)) W_z + dn-part
        reset after:  dn-part = diag(a r) W_n + diag(a (W_n h + b_n) r(1-r)) W_r
        reset before: dn-part = diag(a) W_n (diag(r) + diag(h r(1-r)) W_r)
    """
    H = whh.shape[1]
    one = hs.dtype.type(1)
    for i in range(H):
        r = gates[t, b, i]
        z = gates[t, b, H + i]
        n = gates[t, b, 2 * H + i]
        a = (one - z) * (one - n * n)
        a_z = (hs[t, b, i] - n) * z * (one - z)
        if reset_after:
            a_r = a * aux[t, b, i] * r * (one - r)
            a_n = a * r
            for j in range(H):
                J[i, j] = a_r * whh[i, j] + a_z * whh[H + i, j] + a_n * whh[2 * H + i, j]
        else:
            for j in range(H):
                J[i, j] = a_z * whh[H + i, j]
        J[i, i] += z
    if not reset_after:
        # diag(a) W_n diag(r) + (diag(a) W_n diag(h r(1-r))) W_r, the only H^3 term
        M = np.empty((H, H), hs.dtype)
        for i in range(H):
            a = (one - gates[t, b, H + i]) * (one - gates[t, b, 2 * H + i] ** 2)
            for j in range(H):
                r = gates[t, b, j]
                J[i, j] += a * whh[2 * H + i, j] * r
                M[i, j] = a * whh[2 * H + i, j] * hs[t, b, j] * r * (one - r)
        J += np.dot(M, np.ascontiguousarray(whh[:H]))
