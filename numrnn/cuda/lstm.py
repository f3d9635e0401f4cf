"""LSTM on the GPU: persistent forward and BPTT kernels, twins of ``numrnn.kernels.lstm``.

Same names, signatures, array contract (leading member axis K) and return values as the
CPU kernels (NumPy in, NumPy out); see ``numrnn/cuda/__init__.py`` for the block/thread mapping.
"""

import math

import numpy as np
from numba import cuda

from . import _common as cm


@cuda.jit
def _forward(xp, whh_t, bhh, h0, c0, lens, hs, cs, gates, tcs, w_shared):
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
    one = xp.dtype.type(1)
    sm = cuda.shared.array(0, dtype=xp.dtype)
    h = sm[0:H]
    a = sm[H : H + G]
    off = H + G + 2 * nt
    cm.stage(sm, off, whh_t[m], H * G, w_shared)
    w = sm[off : off + H * G] if w_shared else whh_t[m]
    for j in range(tid, H, nt):
        h[j] = h0[m, b, j]
        hs[m, 0, b, j] = h0[m, b, j]
        cs[m, 0, b, j] = c0[m, b, j]
    cuda.syncthreads()
    L = lens[b]
    for t in range(L):
        for k in range(tid, G, nt):  # gate pre-activations, one row of W_hh per k
            s = zero
            for q in range(H):
                s += h[q] * w[q * G + k]
            a[k] = s + xp[m, t, b, k] + bhh[m, k]
        cuda.syncthreads()
        for j in range(tid, H, nt):
            i = cm.sigmoid(a[j], one)
            f = cm.sigmoid(a[H + j], one)
            g = math.tanh(a[2 * H + j])
            o = cm.sigmoid(a[3 * H + j], one)
            c = f * cs[m, t, b, j] + i * g
            tc = math.tanh(c)
            gates[m, t, b, j] = i
            gates[m, t, b, H + j] = f
            gates[m, t, b, 2 * H + j] = g
            gates[m, t, b, 3 * H + j] = o
            cs[m, t + 1, b, j] = c
            tcs[m, t, b, j] = tc
            h[j] = o * tc
            hs[m, t + 1, b, j] = o * tc
        cuda.syncthreads()


@cuda.jit
def _backward(
    hs,
    cs,
    gates,
    tcs,
    whh,
    dout,
    dhT,
    dcT,
    lens,
    want_norms,
    w_shared,
    dxp,
    dh0,
    dc0,
    norms,
    cnorms,
):
    """BPTT, one block per (sequence b, member m).

    Shared: dh (H), dg (4H), scratch (2nt), [W_hh (4H*H)].

    ``dc0`` doubles as the running dL/dc (each unit touched by one thread only).
    """
    _, T, B, G = gates.shape
    H = G // 4
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    sm = cuda.shared.array(0, dtype=hs.dtype)
    dh = sm[0:H]
    dg = sm[H : H + G]
    red = sm[H + G : H + G + 2 * nt]
    off = H + G + 2 * nt
    cm.stage(sm, off, whh[m], G * H, w_shared)
    w = sm[off : off + G * H] if w_shared else whh[m]
    for j in range(tid, H, nt):
        dh[j] = dhT[m, b, j]
        dc0[m, b, j] = dcT[m, b, j]
    cuda.syncthreads()
    L = lens[b]
    for t in range(L - 1, -1, -1):
        ssh = zero
        ssc = zero
        for j in range(tid, H, nt):
            i = gates[m, t, b, j]
            f = gates[m, t, b, H + j]
            g = gates[m, t, b, 2 * H + j]
            o = gates[m, t, b, 3 * H + j]
            tc = tcs[m, t, b, j]
            gh = dh[j] + dout[m, t, b, j]  # total dL/dh_t
            gc = dc0[m, b, j] + gh * o * (one - tc * tc)  # total dL/dc_t
            ssh += gh * gh
            ssc += gc * gc
            dc0[m, b, j] = gc * f  # on to c_{t-1}
            dg[j] = gc * g * i * (one - i)
            dg[H + j] = gc * cs[m, t, b, j] * f * (one - f)
            dg[2 * H + j] = gc * i * (one - g * g)
            dg[3 * H + j] = gh * tc * o * (one - o)
            for q in range(4):
                dxp[m, t, b, q * H + j] = dg[q * H + j]
        if want_norms:
            sh = cm.block_sum(red[0:nt], tid, nt, ssh)
            sc = cm.block_sum(red[nt : 2 * nt], tid, nt, ssc)
            if tid == 0:
                norms[m, t, b] = math.sqrt(sh)
                cnorms[m, t, b] = math.sqrt(sc)
        cuda.syncthreads()
        for k in range(tid, H, nt):  # dL/dh_{t-1} = W_hh^T dg
            s = zero
            for q in range(G):
                s += dg[q] * w[q * H + k]
            dh[k] = s
        cuda.syncthreads()
    for j in range(tid, H, nt):
        dh0[m, b, j] = dh[j]


def lstm_forward(xp, whh_t, bhh, h0, c0, batch_sizes):
    """Run the LSTM recurrence over all steps on the GPU.

    Parameters
    ----------
    xp : (K, T, B, 4H) input projection.
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
    K, T, B, G = xp.shape
    H = G // 4
    dt = xp.dtype
    d_xp, d_w, d_b, d_h0, d_c0, d_lens = cm.to_device(
        xp, cm.per_member(whh_t), bhh, h0, c0, cm.lengths(batch_sizes, B)
    )
    d_hs = cm.zeros((K, T + 1, B, H), dt)
    d_cs = cm.zeros((K, T + 1, B, H), dt)
    d_gates = cm.zeros((K, T, B, G), dt)
    d_tcs = cm.zeros((K, T, B, H), dt)
    nt = cm.threads_for(G)
    w_shared, nbytes = cm.shared_plan(H * G, H + G, nt, dt)
    if B and K:
        _forward[(B, K), nt, 0, nbytes](
            d_xp, d_w, d_b, d_h0, d_c0, d_lens, d_hs, d_cs, d_gates, d_tcs, w_shared
        )
    return tuple(d.copy_to_host() for d in (d_hs, d_cs, d_gates, d_tcs))


def lstm_backward(hs, cs, gates, tcs, whh, dout, dhT, dcT, batch_sizes, norms, cnorms):
    """BPTT through :func:`lstm_forward` on the GPU.

    Parameters
    ----------
    hs, cs, gates, tcs : saved by the forward pass.
    whh : (K, 4H, H) ``W_hh``.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT, dcT : (K, B, H) gradients w.r.t. each sequence's final h and c.
    batch_sizes : (T,) int64
    norms, cnorms : (K, T, B) or (0, 0, 0) optional outputs, filled in place with
        ||dL/dh_t|| and ||dL/dc_t||.

    Returns
    -------
    dxp : (K, T, B, 4H)
    dwhh : (K, 4H, H)
    dbhh : (K, 4H)
    dh0, dc0 : (K, B, H)
    """
    K, T, B, G = gates.shape
    H = G // 4
    dt = hs.dtype
    want = norms.shape[1] == T
    d_hs, d_cs, d_gates, d_tcs, d_w, d_dout, d_dhT, d_dcT, d_lens = cm.to_device(
        hs, cs, gates, tcs, cm.per_member(whh), dout, dhT, dcT, cm.lengths(batch_sizes, B)
    )
    d_dxp = cm.zeros((K, T, B, G), dt)
    d_dh0 = cuda.device_array((K, B, H), dt)
    d_dc0 = cuda.device_array((K, B, H), dt)
    d_norms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    d_cnorms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    nt = cm.threads_for(H)
    w_shared, nbytes = cm.shared_plan(G * H, H + G, nt, dt)
    if B and K:
        _backward[(B, K), nt, 0, nbytes](
            d_hs,
            d_cs,
            d_gates,
            d_tcs,
            d_w,
            d_dout,
            d_dhT,
            d_dcT,
            d_lens,
            want,
            w_shared,
            d_dxp,
            d_dh0,
            d_dc0,
            d_norms,
            d_cnorms,
        )
    d_dw = cuda.device_array((K, G, H), dt)
    d_db = cuda.device_array((K, G), dt)
    cm.weight_grads(d_dxp.reshape(K, T * B, G), d_hs.reshape(K, (T + 1) * B, H), d_dw, d_db)
    if want:
        norms[...] = d_norms.copy_to_host()
        cnorms[...] = d_cnorms.copy_to_host()
    return tuple(d.copy_to_host() for d in (d_dxp, d_dw, d_db, d_dh0, d_dc0))
