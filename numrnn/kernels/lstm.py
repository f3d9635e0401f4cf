"""LSTM cell (Hochreiter & Schmidhuber 1997, with forget gate), PyTorch gate order i, f, g, o.

    i, f, o = sigmoid(.), g = tanh(.)   of   xp_t + W_hh h_{t-1} + b_hh
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Forward, BPTT and the step Jacobian side by side; array contract in ``numrnn/kernels/rnn.py``.
"""

import numpy as np
from numba import njit

from ._compiling import before_forward, callee
from ._config import FASTMATH, product_plan
from ._math import sigmoid, tanh
from ._parallel import active_end, clear, loop_blocks, run_items, span
from ._views import borrow
from .linalg import (
    input_grad,
    loop_input_weights,
    loop_weights,
    matmul_tn,
    project,
    step_dot,
    step_weights,
)


def lstm_forward(x, wih_t, bih, whh_t, bhh, h0, c0, batch_sizes):
    """Run the LSTM recurrence over all steps.

    Parameters
    ----------
    x : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    wih_t : (K, D, 4H) ``W_ih.T``, C-contiguous.
    bih : (K, 4H)
    whh_t : (K, H, 4H) ``W_hh.T``, C-contiguous.
    bhh : (K, 4H)
    h0, c0 : (K, B, H)
    batch_sizes : (T,) int64

    Returns
    -------
    hs, cs : (K, T+1, B, H) hidden and cell states (``[:, 0]`` the initial ones).
    gates : (K, T, B, 4H) gate activations i, f, g, o (zero past each sequence's end,
        like every saved array).
    tcs : (K, T, B, H) tanh(c_t).
        BPTT needs all four; memory K (2(T+1) + 5T) B H numbers.
    """
    before_forward("lstm", _forward_items, x.dtype)  # a second process may start
    K, H, G = whh_t.shape
    _, T, B, _ = x.shape
    hs = np.empty((K, T + 1, B, H), x.dtype)
    cs = np.empty((K, T + 1, B, H), x.dtype)
    gates = np.empty((K, T, B, G), x.dtype)
    tcs = np.empty((K, T, B, H), x.dtype)
    hs[:, 0] = h0
    cs[:, 0] = c0
    items, per_member, rows = loop_blocks(K, B, 4, H, T)
    plan = product_plan()
    whh, wih = step_weights(whh_t, rows, plan), step_weights(wih_t, rows, plan)
    whh_t, wih_t = loop_weights(whh_t, rows, plan), loop_weights(wih_t, rows, plan)
    run_items(_forward_items, items, x, wih_t, wih, bih, whh_t, whh, bhh, hs, cs, gates, tcs,
              batch_sizes, per_member, rows, plan)  # fmt: skip
    return hs, cs, gates, tcs


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _forward_items(x, wih_t, wih, bih, whh_t, whh, bhh, hs, cs, gates, tcs, batch_sizes,
                   per_member, rows, plan, first, step):  # fmt: skip
    """The work items ``range(first, K * per_member, step)`` of :func:`lstm_forward`, which
    writes ``hs[:, 1:]``, ``cs[:, 1:]``, ``gates`` and ``tcs``."""
    # the arguments' views uncounted (the caller holds them; see _views)
    x, wih_t, wih, bih, whh_t, whh, bhh, hs, cs, gates, tcs, batch_sizes = borrow(
        x, wih_t, wih, bih, whh_t, whh, bhh, hs, cs, gates, tcs, batch_sizes
    )
    K, T, B, G = gates.shape
    H = G // 4
    rec = np.empty((rows, G), x.dtype)  # the gates' pre-activations, less b_hh
    scratch = np.empty(rows * G, x.dtype)  # project's BLAS result
    for item in range(first, K * per_member, step):
        m, lo, hi = span(item, per_member, rows, B)
        mx = m if x.shape[0] == K else 0
        bias = bhh[m]
        for t in range(T):
            n = active_end(batch_sizes, t, lo, hi)
            if n == lo:  # the block's sequences have all ended (lengths only decrease)
                clear(gates, m, t, T, lo, hi)
                clear(tcs, m, t, T, lo, hi)
                clear(hs, m, t + 1, T + 1, lo, hi)
                clear(cs, m, t + 1, T + 1, lo, hi)
                break
            clear(gates, m, t, t + 1, n, hi)
            clear(tcs, m, t, t + 1, n, hi)
            clear(hs, m, t + 1, t + 2, n, hi)
            clear(cs, m, t + 1, t + 2, n, hi)
            # W_hh h_{t-1} + W_ih x_t + b_ih of the block's rows, while they are in cache
            step_dot(hs[m, t][lo:n], whh_t[m], whh[m], rec[: n - lo], plan)
            project(x[mx, t][lo:n], wih_t[m], wih[m], bih[m], rec[: n - lo], True, scratch, plan)
            for b in range(lo, n):
                a, r = gates[m, t, b], rec[b - lo]
                for k in range(G):
                    a[k] = r[k] + bias[k]
                # one 1-d view per gate: contiguous, non-overlapping rows vectorise
                ai, af, ag, ao = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
                cp, cn, hn, tc = cs[m, t, b], cs[m, t + 1, b], hs[m, t + 1, b], tcs[m, t, b]
                for j in range(H):
                    i = sigmoid(ai[j])
                    f = sigmoid(af[j])
                    g = tanh(ag[j])
                    o = sigmoid(ao[j])
                    c = f * cp[j] + i * g
                    th = tanh(c)
                    ai[j] = i
                    af[j] = f
                    ag[j] = g
                    ao[j] = o
                    cn[j] = c
                    tc[j] = th
                    hn[j] = o * th


def lstm_backward(hs, cs, gates, tcs, whh, wih, xin, dout, dhT, dcT, batch_sizes, norms,
                  cnorms):  # fmt: skip
    """BPTT through :func:`lstm_forward`.

    Parameters
    ----------
    hs, cs, gates, tcs : saved by the forward pass.
    whh : (K, 4H, H) ``W_hh``, C-contiguous.
    wih : (K, 4H, D) ``W_ih``, C-contiguous, for the input's gradient; or (K, 4H, 0) for
        none.
    xin : (Kx, T, B, D) the layer's input.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT, dcT : (K, B, H) gradients w.r.t. each sequence's final h and c.
    batch_sizes : (T,) int64
    norms, cnorms : (K, T, B) or (0, 0, 0) optional outputs: ||dL/dh_t||, ||dL/dc_t||.

    Returns
    -------
    dx : (K, T, B, D) gradient w.r.t. the input x (zero past a sequence's end); (K, T, B,
        0) for ``wih`` (K, 4H, 0).
    dwih : (K, 4H, D)
    dbih : (K, 4H)
    dwhh : (K, 4H, H)
    dbhh : (K, 4H) (equal to dbih)
    dh0, dc0 : (K, B, H)
    """
    K, T, B, _ = gates.shape
    dxp = np.empty(gates.shape, hs.dtype)  # dL/d(gate pre-activations)
    dh = dhT.copy()
    dc = dcT.copy()
    items, per_member, rows = loop_blocks(K, B, 4, hs.shape[3], T)
    plan = product_plan()
    wih_l = loop_input_weights(wih, per_member)
    dx = np.empty((K, T, B, wih_l.shape[2]), hs.dtype)
    whh_p, wih_p = step_weights(whh, rows, plan), step_weights(wih_l, rows, plan)
    run_items(_backward_items, items, cs, gates, tcs, whh, whh_p, wih_l, wih_p, dout, dh, dc,
              dxp, dx, batch_sizes, norms, cnorms, per_member, rows, plan)  # fmt: skip
    dwhh, dwih, db = matmul_tn(dxp, hs, xin)
    return input_grad(dxp, wih, dx), dwih, db, dwhh, db.copy(), dh, dc


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _backward_items(cs, gates, tcs, whh, whh_p, wih, wih_p, dout, dh, dc, dxp, dx, batch_sizes,
                    norms, cnorms, per_member, rows, plan, first, step):  # fmt: skip
    """The work items ``range(first, K * per_member, step)`` of :func:`lstm_backward`: the
    time loop, writing ``dxp``, ``dx`` and the norms and taking ``dh``, ``dc`` back to step
    0; ``whh_p``, ``wih_p``: :func:`step_weights` of ``whh`` and ``wih``."""
    # the arguments' views uncounted (the caller holds them; see _views)
    cs, gates, tcs, whh, whh_p, wih, wih_p, dout, dh, dc, dxp, dx, batch_sizes, norms, cnorms = (
        borrow(cs, gates, tcs, whh, whh_p, wih, wih_p, dout, dh, dc, dxp, dx, batch_sizes, norms,
               cnorms)
    )  # fmt: skip
    K, T, B, G = gates.shape
    H = G // 4
    zero = cs.dtype.type(0)
    one = cs.dtype.type(1)
    want_norms = norms.shape[1] == T
    for item in range(first, K * per_member, step):
        m, lo, hi = span(item, per_member, rows, B)
        for t in range(T - 1, -1, -1):
            n = active_end(batch_sizes, t, lo, hi)
            clear(dxp, m, t, t + 1, n, hi)
            clear(dx, m, t, t + 1, n, hi)
            if n == lo:
                if want_norms:
                    norms[m, t, lo:hi] = np.nan
                    cnorms[m, t, lo:hi] = np.nan
                continue
            for b in range(lo, n):
                a, d = gates[m, t, b], dxp[m, t, b]
                ai, af, ag, ao = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
                di, df, dg, do = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
                tc, cp, ob = tcs[m, t, b], cs[m, t, b], dout[m, t, b]
                dhb, dcb = dh[m, b], dc[m, b]
                ssh = zero
                ssc = zero
                for j in range(H):
                    i, f, g, o = ai[j], af[j], ag[j], ao[j]
                    gh = dhb[j] + ob[j]  # total dL/dh_t
                    gc = dcb[j] + gh * o * (one - tc[j] * tc[j])  # total dL/dc_t
                    ssh += gh * gh
                    ssc += gc * gc
                    dcb[j] = gc * f  # on to c_{t-1}
                    di[j] = gc * g * i * (one - i)
                    df[j] = gc * cp[j] * f * (one - f)
                    dg[j] = gc * i * (one - g * g)
                    do[j] = gh * tc[j] * o * (one - o)
                if want_norms:
                    norms[m, t, b] = np.sqrt(ssh)
                    cnorms[m, t, b] = np.sqrt(ssc)
            if want_norms:
                norms[m, t, n:hi] = np.nan
                cnorms[m, t, n:hi] = np.nan
            # on to dL/dh_{t-1}, and dL/dx_t
            g = dxp[m, t][lo:n]
            for p in range(2):  # one call site: LLVM inlines step_dot's code once
                w, wp, out = (whh[m], whh_p[m], dh[m]) if p == 0 else (wih[m], wih_p[m], dx[m, t])
                step_dot(g, w, wp, out[lo:n], plan)


@callee(fastmath=FASTMATH)
def lstm_step_jacobian(J, cs, gates, tcs, whh, m, t, b):
    """Write the step Jacobian of the state s = (h, c) of member m's sequence b at step t
    into J (2H, 2H); ``whh`` is that member's W_hh (4H, H).

    Rows and columns are ordered (h, c)::

        dc/dh_prev = diag(c_prev f(1-f)) W_f + diag(g i(1-i)) W_i + diag(i(1-g^2)) W_g
        dh/dh_prev = diag(tanh(c) o(1-o)) W_o + diag(u) dc/dh_prev,   u = o (1 - tanh(c)^2)
        dc/dc_prev = diag(f),   dh/dc_prev = diag(u f)
    """
    H = whh.shape[1]
    one = cs.dtype.type(1)
    J[:] = 0
    for i in range(H):
        ig = gates[m, t, b, i]
        f = gates[m, t, b, H + i]
        g = gates[m, t, b, 2 * H + i]
        o = gates[m, t, b, 3 * H + i]
        tc = tcs[m, t, b, i]
        u = o * (one - tc * tc)
        a_i = g * ig * (one - ig)
        a_f = cs[m, t, b, i] * f * (one - f)
        a_g = ig * (one - g * g)
        a_o = tc * o * (one - o)
        for j in range(H):
            dc = a_i * whh[i, j] + a_f * whh[H + i, j] + a_g * whh[2 * H + i, j]
            J[H + i, j] = dc
            J[i, j] = a_o * whh[3 * H + i, j] + u * dc
        J[H + i, H + i] = f
        J[i, H + i] = u * f
