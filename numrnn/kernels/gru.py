"""GRU cell (Cho et al. 2014), PyTorch gate order r, z, n, in both of its forms.

    r = sigmoid(xp_r + W_hr h + b_hr),  z = sigmoid(xp_z + W_hz h + b_hz)
    reset after  (PyTorch, cuDNN):  n = tanh(xp_n + r * (W_hn h + b_hn))
    reset before (Cho et al.):      n = tanh(xp_n + W_hn (r * h) + b_hn)
    h' = (1 - z) * n + z * h

One kernel serves both forms: they differ only in where r enters the candidate.
Forward, BPTT and the step Jacobian side by side; array contract in ``numrnn/kernels/rnn.py``.

The recurrent weights come in the layout each form multiplies by (per member):
reset after, one product per step with ``whh_t = W_hh.T`` (H, 3H);
reset before, ``whh_t = W_hh[:2H].T`` (H, 2H) for r and z, then ``whn_t = W_hn.T``
(H, H) applied to r * h.
"""

import numpy as np
from numba import njit

from ._compiling import before_forward, callee
from ._config import FASTMATH, product_plan
from ._math import sigmoid, tanh
from ._parallel import active_end, clear, loop_blocks, run_items, span
from ._views import borrow
from .linalg import (
    copy2d,
    dot_rows,
    input_grad,
    loop_weights,
    matmul_tn,
    project,
    step_dot,
    step_weights,
)


def gru_forward(x, wih_t, bih, whh_t, whn_t, bhh, h0, batch_sizes, reset_after):
    """Run the GRU recurrence over all steps.

    Parameters
    ----------
    x : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    wih_t : (K, D, 3H) ``W_ih.T``, C-contiguous.
    bih : (K, 3H)
    whh_t : (K, H, 3H) if ``reset_after`` else (K, H, 2H), see the module docstring.
    whn_t : (K, H, H) ``W_hn.T`` when not ``reset_after``; unused (may be (0, 0, 0)) otherwise.
    bhh : (K, 3H)
    h0 : (K, B, H)
    batch_sizes : (T,) int64
    reset_after : bool

    Returns
    -------
    hs : (K, T+1, B, H) states.
    gates : (K, T, B, 3H) activations r, z, n.
    aux : (K, T, B, H) ``W_hn h + b_hn`` (reset after) or ``r * h_{t-1}`` (reset before):
        the factor BPTT needs for r. Memory K ((T+1) B H + 4 T B H) numbers.
    """
    before_forward("gru", _forward_items, x.dtype)  # a second process may start
    K, G, H = wih_t.shape[0], wih_t.shape[2], whh_t.shape[1]
    _, T, B, _ = x.shape
    hs = np.empty((K, T + 1, B, H), x.dtype)
    gates = np.empty((K, T, B, G), x.dtype)
    aux = np.empty((K, T, B, H), x.dtype)
    hs[:, 0] = h0
    items, per_member, rows = loop_blocks(K, B, 3, H, T)
    plan = product_plan()
    whh, whn = step_weights(whh_t, rows, plan), step_weights(whn_t, rows, plan)
    wih = step_weights(wih_t, rows, plan)
    whh_t, whn_t = loop_weights(whh_t, rows, plan), loop_weights(whn_t, rows, plan)
    wih_t = loop_weights(wih_t, rows, plan)
    run_items(_forward_items, items, x, wih_t, wih, bih, whh_t, whh, whn_t, whn, bhh, hs, gates,
              aux, batch_sizes, reset_after, per_member, rows, plan)  # fmt: skip
    return hs, gates, aux


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _forward_items(x, wih_t, wih, bih, whh_t, whh, whn_t, whn, bhh, hs, gates, aux, batch_sizes,
                   reset_after, per_member, rows, plan, first, step):  # fmt: skip
    """The work items ``range(first, K * per_member, step)`` of :func:`gru_forward`, which
    writes ``hs[:, 1:]``, ``gates`` and ``aux``."""
    # the arguments' views uncounted (the caller holds them; see _views)
    x, wih_t, wih, bih, whh_t, whh, whn_t, whn, bhh, hs, gates, aux, batch_sizes = borrow(
        x, wih_t, wih, bih, whh_t, whh, whn_t, whn, bhh, hs, gates, aux, batch_sizes
    )
    K, T, B, G = gates.shape
    H = G // 3
    dt = x.dtype
    xp = np.empty((rows, G), dt)  # the step's input projection
    hh = np.empty((rows, G if reset_after else 2 * H), dt)  # h_{t-1} @ whh_t (maybe padded)
    hn = np.empty((rows, H), dt)  # (r * h_{t-1}) @ W_hn.T, reset before only
    scratch = np.empty(rows * G, dt)  # project's BLAS result
    for item in range(first, K * per_member, step):
        m, lo, hi = span(item, per_member, rows, B)
        mx = m if x.shape[0] == K else 0
        bias = bhh[m]
        br, bz, bn = bias[:H], bias[H : 2 * H], bias[2 * H :]
        for t in range(T):
            n = active_end(batch_sizes, t, lo, hi)
            if n == lo:  # the block's sequences have all ended (lengths only decrease)
                clear(hs, m, t + 1, T + 1, lo, hi)
                clear(gates, m, t, T, lo, hi)
                clear(aux, m, t, T, lo, hi)
                break
            clear(hs, m, t + 1, t + 2, n, hi)
            clear(gates, m, t, t + 1, n, hi)
            clear(aux, m, t, t + 1, n, hi)
            # (reset after keeps W_in x_t apart from r * (W_hn h_{t-1} + b_hn))
            project(x[mx, t][lo:n], wih_t[m], wih[m], bih[m], xp[: n - lo], False, scratch, plan)
            step_dot(hs[m, t][lo:n], whh_t[m], whh[m], hh[: n - lo], plan)
            for b in range(lo, n):
                xb, q, g = xp[b - lo], hh[b - lo], gates[m, t, b]
                xr, xz, xn = xb[:H], xb[H : 2 * H], xb[2 * H :]
                gr, gz, gn = g[:H], g[H : 2 * H], g[2 * H :]
                hp, hb, ab = hs[m, t, b], hs[m, t + 1, b], aux[m, t, b]
                for j in range(H):
                    gr[j] = sigmoid(xr[j] + q[j] + br[j])
                    gz[j] = sigmoid(xz[j] + q[H + j] + bz[j])
                if reset_after:
                    for j in range(H):
                        a = q[2 * H + j] + bn[j]
                        ab[j] = a
                        c = tanh(xn[j] + gr[j] * a)
                        gn[j] = c
                        hb[j] = c + gz[j] * (hp[j] - c)
                else:
                    for j in range(H):
                        ab[j] = gr[j] * hp[j]
            if not reset_after:
                step_dot(aux[m, t][lo:n], whn_t[m], whn[m], hn[: n - lo], plan)
                for b in range(lo, n):
                    xn, g, hp, hb, q = (
                        xp[b - lo, 2 * H :],
                        gates[m, t, b],
                        hs[m, t, b],
                        hs[m, t + 1, b],
                        hn[b - lo],
                    )
                    gz, gn = g[H : 2 * H], g[2 * H :]
                    for j in range(H):
                        c = tanh(xn[j] + q[j] + bn[j])
                        gn[j] = c
                        hb[j] = c + gz[j] * (hp[j] - c)


def gru_backward(hs, gates, aux, whh, whn, wih, xin, dout, dhT, batch_sizes, reset_after,
                 norms):  # fmt: skip
    """BPTT through :func:`gru_forward`.

    Parameters
    ----------
    hs, gates, aux : saved by the forward pass.
    whh : (K, C, H) ``W_hh`` (C = 3H, reset after) or ``W_hh[:2H]`` (C = 2H, reset before).
    whn : (K, H, H) ``W_hn`` for reset before; unused otherwise.
    wih : (K, 3H, D) ``W_ih``, C-contiguous, for the input's gradient; or (K, 3H, 0) for
        none.
    xin : (Kx, T, B, D) the layer's input.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT : (K, B, H) gradient w.r.t. each sequence's final state.
    batch_sizes : (T,) int64
    reset_after : bool
    norms : (K, T, B) or (0, 0, 0) optional output: ||dL/dh_t||_2.

    Returns
    -------
    dx : (K, T, B, D) gradient w.r.t. the input x (zero past a sequence's end); (K, T, B,
        0) for ``wih`` (K, 3H, 0).
    dwih : (K, 3H, D)
    dbih : (K, 3H)
    dwhh : (K, 3H, H)
    dbhh : (K, 3H)
    dh0 : (K, B, H)
    """
    K, T, B, G = gates.shape
    H = G // 3
    dxp = np.empty(gates.shape, hs.dtype)  # gradient w.r.t. the input projection
    dgh = np.empty((K, T, B, whh.shape[1]), hs.dtype)  # gradient w.r.t. h_{t-1} @ whh_t
    # reset before: gradient of n's pre-activation
    dn = np.empty((K, T, B, H) if not reset_after else (0, 0, 0, 0), hs.dtype)
    dh = dhT.copy()
    items, per_member, rows = loop_blocks(K, B, 3, H, T)
    plan = product_plan()
    whh_t, whn_t = step_weights(whh, rows, plan), step_weights(whn, rows, plan)
    run_items(_backward_items, items, hs, gates, aux, whh, whh_t, whn, whn_t, dout, dh, dxp, dgh,
              dn, batch_sizes, reset_after, norms, per_member, rows, plan)  # fmt: skip
    none = np.empty((0, 0, 0, 0), hs.dtype)
    dwih, _, dbih = matmul_tn(dxp, xin, none)
    dwhh, _, dbhh = matmul_tn(dgh, hs, none)
    # dL/dx after the loop, as one product: made inside it, as rnn.py and lstm.py do, it
    # was no faster at (100, 32, 32, 64) in float64 (the loop makes two products a step)
    dx = input_grad(dxp, wih)
    if reset_after:
        return dx, dwih, dbih, dwhh, dbhh, dh
    # reset before: W_hn multiplies r * h_{t-1}, saved in aux
    dwn, _, dbn = matmul_tn(dn, aux, none)
    return dx, dwih, dbih, np.concatenate((dwhh, dwn), 1), np.concatenate((dbhh, dbn), 1), dh


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _backward_items(hs, gates, aux, whh, whh_t, whn, whn_t, dout, dh, dxp, dgh, dn, batch_sizes,
                    reset_after, norms, per_member, rows, plan, first, step):  # fmt: skip
    """The work items ``range(first, K * per_member, step)`` of :func:`gru_backward`: the
    time loop, writing ``dxp``, ``dgh``, ``dn`` and ``norms`` and taking ``dh`` to step 0."""
    # the arguments' views uncounted (the caller holds them; see _views)
    hs, gates, aux, whh, whh_t, whn, whn_t, dout, dh, dxp, dgh, dn, batch_sizes, norms = borrow(
        hs, gates, aux, whh, whh_t, whn, whn_t, dout, dh, dxp, dgh, dn, batch_sizes, norms
    )
    K, T, B, G = gates.shape
    H = G // 3
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    want_norms = norms.shape[1] == T
    drh = np.empty((rows, H), hs.dtype)  # reset before: gradient w.r.t. r * h_{t-1}
    dhz = np.empty((rows, H), hs.dtype)  # the direct path h_{t-1} -> h_t through z * h
    for item in range(first, K * per_member, step):
        m, lo, hi = span(item, per_member, rows, B)
        for t in range(T - 1, -1, -1):
            n = active_end(batch_sizes, t, lo, hi)
            clear(dxp, m, t, t + 1, n, hi)
            clear(dgh, m, t, t + 1, n, hi)
            if not reset_after:
                clear(dn, m, t, t + 1, n, hi)
            if n == lo:
                if want_norms:
                    norms[m, t, lo:hi] = np.nan
                continue
            for b in range(lo, n):
                g, d, q = gates[m, t, b], dxp[m, t, b], dgh[m, t, b]
                gr, gz, gn = g[:H], g[H : 2 * H], g[2 * H :]
                dr, dz, dc = d[:H], d[H : 2 * H], d[2 * H :]
                hp, dhb, ob = hs[m, t, b], dh[m, b], dout[m, t, b]
                zb, ab = dhz[b - lo], aux[m, t, b]
                ss = zero
                for j in range(H):
                    r, z, c = gr[j], gz[j], gn[j]
                    gt = dhb[j] + ob[j]  # total dL/dh_t
                    ss += gt * gt
                    dcj = gt * (one - z) * (one - c * c)
                    dzj = gt * (hp[j] - c) * z * (one - z)
                    zb[j] = gt * z
                    dz[j] = dzj
                    q[H + j] = dzj
                    dc[j] = dcj
                    if reset_after:
                        drj = dcj * ab[j] * r * (one - r)
                        dr[j] = drj
                        q[j] = drj
                        q[2 * H + j] = dcj * r
                    else:
                        dn[m, t, b, j] = dcj
                if want_norms:
                    norms[m, t, b] = np.sqrt(ss)
            if want_norms:
                norms[m, t, n:hi] = np.nan
            if not reset_after:
                step_dot(dn[m, t][lo:n], whn[m], whn_t[m], drh[: n - lo], plan)
                for b in range(lo, n):
                    gr, dr, q = gates[m, t, b, :H], dxp[m, t, b, :H], dgh[m, t, b]
                    hp, rb, zb = hs[m, t, b], drh[b - lo], dhz[b - lo]
                    for j in range(H):
                        r = gr[j]
                        drj = rb[j] * hp[j] * r * (one - r)
                        dr[j] = drj
                        q[j] = drj
                        zb[j] += rb[j] * r
            step_dot(dgh[m, t][lo:n], whh[m], whh_t[m], dh[m][lo:n], plan)
            for b in range(lo, n):
                dhb, zb = dh[m, b], dhz[b - lo]
                for j in range(H):
                    dhb[j] += zb[j]


@callee(fastmath=FASTMATH)
def gru_step_jacobian(J, hs, gates, aux, whh, m, t, b, reset_after, plan):
    """Write the step Jacobian dh_{t+1}/dh_t of member m's sequence b into J (H, H);
    ``whh`` is that member's W_hh (3H, H); ``plan``: the products' (``_config.product_plan``).

    With h' = (1-z) n + z h and a = (1-z)(1-n^2)::

        J = diag(z) + diag((h-n) z(1-z)) W_z + dn-part
        reset after:  dn-part = diag(a r) W_n + diag(a (W_n h + b_n) r(1-r)) W_r
        reset before: dn-part = diag(a) W_n (diag(r) + diag(h r(1-r)) W_r)
    """
    H = whh.shape[1]
    one = hs.dtype.type(1)
    for i in range(H):
        r = gates[m, t, b, i]
        z = gates[m, t, b, H + i]
        n = gates[m, t, b, 2 * H + i]
        a = (one - z) * (one - n * n)
        a_z = (hs[m, t, b, i] - n) * z * (one - z)
        if reset_after:
            a_r = a * aux[m, t, b, i] * r * (one - r)
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
            a = (one - gates[m, t, b, H + i]) * (one - gates[m, t, b, 2 * H + i] ** 2)
            for j in range(H):
                r = gates[m, t, b, j]
                J[i, j] += a * whh[2 * H + i, j] * r
                M[i, j] = a * whh[2 * H + i, j] * hs[m, t, b, j] * r * (one - r)
        P = np.empty((H, H), hs.dtype)
        dot_rows(M, whh[:H], P, plan, P[:0])  # the drivers' plan: one compiled dot_rows
        copy2d(J, P, True)
