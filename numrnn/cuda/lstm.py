"""LSTM on the GPU, twins of ``numrnn.kernels.lstm``: persistent kernels and per-step
launches, with the cell's pointwise math in one place (``_unit_forward``/``_unit_backward``).

Same names, signatures, array contract (leading member axis K) and return values as the
CPU kernels (NumPy in, NumPy out); see ``numrnn/cuda/__init__.py`` for the two paths.
"""

import math

import numpy as np
from numba import cuda

from . import _common as cm

# ----------------------------------------------------------------- the cell, per unit


@cuda.jit(device=True)
def _unit_forward(a, xp, bhh, hs, cs, gates, tcs, m, t, b, j):
    """Unit j of row b at step t: writes the gates i, f, g, o, c_t, tanh(c_t) and h_t;
    returns h_t[j].

    a : (4H,) the row's ``h_{t-1} @ W_hh.T``; c_{t-1} is read from ``cs``.
    """
    H = tcs.shape[3]
    one = xp.dtype.type(1)
    i = cm.sigmoid(a[j] + xp[m, t, b, j] + bhh[m, j], one)
    f = cm.sigmoid(a[H + j] + xp[m, t, b, H + j] + bhh[m, H + j], one)
    g = math.tanh(a[2 * H + j] + xp[m, t, b, 2 * H + j] + bhh[m, 2 * H + j])
    o = cm.sigmoid(a[3 * H + j] + xp[m, t, b, 3 * H + j] + bhh[m, 3 * H + j], one)
    c = f * cs[m, t, b, j] + i * g
    tc = math.tanh(c)
    gates[m, t, b, j] = i
    gates[m, t, b, H + j] = f
    gates[m, t, b, 2 * H + j] = g
    gates[m, t, b, 3 * H + j] = o
    cs[m, t + 1, b, j] = c
    tcs[m, t, b, j] = tc
    hs[m, t + 1, b, j] = o * tc
    return o * tc


@cuda.jit(device=True)
def _unit_backward(dh, dc, dout, cs, gates, tcs, dg, m, t, b, j):
    """Unit j of row b at step t of BPTT: writes the gate gradients ``dg[q*H + j]`` and
    replaces the running dL/dc_t in ``dc[j]`` by dL/dc_{t-1}.

    dh : (H,) the row's gradient from step t+1 (dL/dh_t = dh[j] + dout); dc : (H,);
    dg : (4H,) output. Returns ((dL/dh_t[j])^2, (dL/dc_t[j])^2) for the norms.
    """
    H = tcs.shape[3]
    one = cs.dtype.type(1)
    i = gates[m, t, b, j]
    f = gates[m, t, b, H + j]
    g = gates[m, t, b, 2 * H + j]
    o = gates[m, t, b, 3 * H + j]
    tc = tcs[m, t, b, j]
    gh = dh[j] + dout[m, t, b, j]  # total dL/dh_t
    gc = dc[j] + gh * o * (one - tc * tc)  # total dL/dc_t
    dc[j] = gc * f  # on to c_{t-1}
    dg[j] = gc * g * i * (one - i)
    dg[H + j] = gc * cs[m, t, b, j] * f * (one - f)
    dg[2 * H + j] = gc * i * (one - g * g)
    dg[3 * H + j] = gh * tc * o * (one - o)
    return gh * gh, gc * gc


# ------------------------------------------------------------------ persistent kernels


@cuda.jit
def _forward(xp, whh_t, bhh, lens, hs, cs, gates, tcs, w_shared):
    """One block per (sequence b, member m), the whole time loop inside.

    Dynamic shared memory: h (H), a (4H), [scratch], [W_hh.T (H*4H)]. A thread owns
    the units j = tid, tid + nt, ... in every step, so c_{t-1} is read back from ``cs``
    by the thread that wrote it and needs no shared copy.
    """
    _, T, B, G = xp.shape
    H = G // 4
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = xp.dtype.type(0)
    sm = cuda.shared.array(0, dtype=xp.dtype)
    h = sm[0:H]
    a = sm[H : H + G]
    off = H + G + 2 * nt
    cm.stage(sm, off, whh_t[m], H * G, w_shared, tid, nt)
    w = sm[off : off + H * G] if w_shared else whh_t[m]
    for j in range(tid, H, nt):
        h[j] = hs[m, 0, b, j]
    cuda.syncthreads()
    for t in range(lens[b]):
        for k in range(tid, G, nt):  # gate pre-activations, one row of W_hh per k
            s = zero
            for q in range(H):
                s += h[q] * w[q * G + k]
            a[k] = s
        cuda.syncthreads()
        for j in range(tid, H, nt):
            h[j] = _unit_forward(a, xp, bhh, hs, cs, gates, tcs, m, t, b, j)
        cuda.syncthreads()


@cuda.jit
def _backward(
    hs, cs, gates, tcs, whh, dout, lens, want_norms, w_shared, dxp, dh0, dc0, norms, cnorms
):
    """BPTT, one block per (sequence b, member m). ``dh0``, ``dc0`` hold dL/dh_T, dL/dc_T
    on entry; ``dc0`` doubles as the running dL/dc (each unit touched by one thread only).

    Shared: dh (H), dg (4H), scratch (2nt), [W_hh (4H*H)].
    """
    _, T, B, G = gates.shape
    H = G // 4
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = hs.dtype.type(0)
    sm = cuda.shared.array(0, dtype=hs.dtype)
    dh = sm[0:H]
    dg = sm[H : H + G]
    red = sm[H + G : H + G + 2 * nt]
    off = H + G + 2 * nt
    cm.stage(sm, off, whh[m], G * H, w_shared, tid, nt)
    w = sm[off : off + G * H] if w_shared else whh[m]
    for j in range(tid, H, nt):
        dh[j] = dh0[m, b, j]
    cuda.syncthreads()
    dc = dc0[m, b]
    for t in range(lens[b] - 1, -1, -1):
        ssh = zero
        ssc = zero
        for j in range(tid, H, nt):
            sh, sc = _unit_backward(dh, dc, dout, cs, gates, tcs, dg, m, t, b, j)
            ssh += sh
            ssc += sc
            for q in range(4):
                dxp[m, t, b, q * H + j] = dg[q * H + j]
        if want_norms:
            cm.store_norm(norms, m, t, b, red[0:nt], tid, nt, ssh)
            cm.store_norm(cnorms, m, t, b, red[nt : 2 * nt], tid, nt, ssc)
        cuda.syncthreads()
        for k in range(tid, H, nt):  # dL/dh_{t-1} = W_hh^T dg
            s = zero
            for q in range(G):
                s += dg[q] * w[q * H + k]
            dh[k] = s
        cuda.syncthreads()
    for j in range(tid, H, nt):
        dh0[m, b, j] = dh[j]


# ------------------------------------------------- per-step path: the pointwise kernels


@cuda.jit
def _step_forward(a, xp, bhh, hs, cs, gates, tcs, t):
    """Step t, after ``a[:, :n] = hs[:, t, :n] @ W_hh.T``: one block per (row b, member m)."""
    H = tcs.shape[3]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    for j in range(cuda.threadIdx.x, H, cuda.blockDim.x):
        _unit_forward(a[m, b], xp, bhh, hs, cs, gates, tcs, m, t, b, j)


@cuda.jit
def _step_backward(dh, dc, dout, cs, gates, tcs, want_norms, dxp, norms, cnorms, t):
    """Step t of BPTT before ``dh[:, :n] = dxp[:, t, :n] @ W_hh``: one block per (row b,
    member m). Shared: the two norms' reduction scratch (2nt)."""
    H = tcs.shape[3]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    ssh = cs.dtype.type(0)
    ssc = cs.dtype.type(0)
    for j in range(tid, H, nt):
        sh, sc = _unit_backward(dh[m, b], dc[m, b], dout, cs, gates, tcs, dxp[m, t, b], m, t, b, j)
        ssh += sh
        ssc += sc
    if want_norms:
        red = cuda.shared.array(0, dtype=cs.dtype)
        cm.store_norm(norms, m, t, b, red[0:nt], tid, nt, ssh)
        cm.store_norm(cnorms, m, t, b, red[nt : 2 * nt], tid, nt, ssc)


# ----------------------------------------------------------------------- host drivers


def lstm_forward(x, wih_t, bih, whh_t, bhh, h0, c0, batch_sizes):
    """Run the LSTM recurrence over all steps on the GPU.

    Parameters
    ----------
    x : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    wih_t : (K, D, 4H) ``W_ih.T``.
    bih : (K, 4H)
    whh_t : (K, H, 4H) ``W_hh.T``.
    bhh : (K, 4H)
    h0, c0 : (K, B, H)
    batch_sizes : (T,) int64

    Returns
    -------
    hs, cs : (K, T+1, B, H) hidden and cell states (``[:, 0]`` the initial ones).
    gates : (K, T, B, 4H) gate activations i, f, g, o.
    tcs : (K, T, B, H) tanh(c_t).
    """
    _, T, B, _ = x.shape
    K, H, G = whh_t.shape
    dt = whh_t.dtype
    d_xp = cm.project(x, wih_t, bih)
    (d_b,) = cm.to_device(bhh)
    d_hs, d_cs = cm.states(h0, T), cm.states(c0, T)
    d_gates = cm.zeros((K, T, B, G), dt)
    d_tcs = cm.zeros((K, T, B, H), dt)
    out = (d_hs, d_cs, d_gates, d_tcs)
    nt = cm.threads_for(G)
    stepwise, w_shared, nbytes = cm.plan(H * G, H + G, nt, dt)
    if stepwise and B and K:
        (d_w,) = cm.to_device(whh_t)
        d_a = cuda.device_array((K, B, G), dt)
        nt = cm.threads_for(H)  # the cell kernel loops over units, not gate rows
        for t in range(T):
            n = int(batch_sizes[t])  # active rows, a prefix; batch_sizes is a host array
            if n == 0:
                break
            cm.matmul(d_hs[:, t, :n], d_w, d_a[:, :n])
            _step_forward[(n, K), nt](d_a, d_xp, d_b, *out, t)
    elif B and K:
        d_w, d_lens = cm.to_device(cm.per_member(whh_t), cm.lengths(batch_sizes, B))
        _forward[(B, K), nt, 0, nbytes](d_xp, d_w, d_b, d_lens, *out, w_shared)
    return tuple(d.copy_to_host() for d in out)


def lstm_backward(hs, cs, gates, tcs, whh, wih, xin, dout, dhT, dcT, batch_sizes, norms,
                  cnorms):  # fmt: skip
    """BPTT through :func:`lstm_forward` on the GPU.

    Parameters
    ----------
    hs, cs, gates, tcs : saved by the forward pass.
    whh : (K, 4H, H) ``W_hh``.
    wih : (K, 4H, D) ``W_ih``, for the input's gradient; (K, 4H, 0) for none.
    xin : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT, dcT : (K, B, H) gradients w.r.t. each sequence's final h and c.
    batch_sizes : (T,) int64
    norms, cnorms : (K, T, B) or (0, 0, 0) optional outputs, filled in place with
        ||dL/dh_t|| and ||dL/dc_t||.

    Returns
    -------
    dx : (K, T, B, D) gradient w.r.t. the input x; (K, T, B, 0) for ``wih`` (K, 4H, 0).
    dwih : (K, 4H, D)
    dbih : (K, 4H)
    dwhh : (K, 4H, H)
    dbhh : (K, 4H) (equal to dbih)
    dh0, dc0 : (K, B, H)
    """
    K, T, B, G = gates.shape
    H = G // 4
    dt = hs.dtype
    want = norms.shape[1] == T
    d_hs, d_cs, d_gates, d_tcs, d_dout = cm.to_device(hs, cs, gates, tcs, dout)
    d_dh, d_dc = cm.running(dhT), cm.running(dcT)  # the running dL/dh, dL/dc; then dh0, dc0
    d_dxp = cm.zeros((K, T, B, G), dt)
    d_norms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    d_cnorms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    nt = cm.threads_for(H)
    stepwise, w_shared, nbytes = cm.plan(G * H, H + G, nt, dt)
    if stepwise and B and K:
        (d_w,) = cm.to_device(whh)
        for t in range(T - 1, -1, -1):
            n = int(batch_sizes[t])
            if n:
                _step_backward[(n, K), nt, 0, cm.norm_bytes(nt, dt, 2)](
                    d_dh, d_dc, d_dout, d_cs, d_gates, d_tcs, want, d_dxp, d_norms, d_cnorms, t
                )
                cm.matmul(d_dxp[:, t, :n], d_w, d_dh[:, :n])
    elif B and K:
        d_w, d_lens = cm.to_device(cm.per_member(whh), cm.lengths(batch_sizes, B))
        _backward[(B, K), nt, 0, nbytes](
            d_hs,
            d_cs,
            d_gates,
            d_tcs,
            d_w,
            d_dout,
            d_lens,
            want,
            w_shared,
            d_dxp,
            d_dh,
            d_dc,
            d_norms,
            d_cnorms,
        )
    d_dw = cuda.device_array((K, G, H), dt)
    d_db = cuda.device_array((K, G), dt)
    d_g = d_dxp.reshape(K, T * B, G)
    cm.weight_grads(d_g, d_hs.reshape(K, (T + 1) * B, H), d_dw, d_db)
    d_dwih = cm.input_weight_grads(d_g, xin)
    if want:
        norms[...] = d_norms.copy_to_host()
        cnorms[...] = d_cnorms.copy_to_host()
    dx = cm.input_grad(d_g, wih, (K, T, B, wih.shape[2]))
    dwih, dw, db, dh, dc = (d.copy_to_host() for d in (d_dwih, d_dw, d_db, d_dh, d_dc))
    return dx, dwih, db, dw, db.copy(), dh, dc
