"""GRU on the GPU, both forms: persistent forward and BPTT kernels, twins of ``numrnn.kernels.gru``.

One kernel per direction serves both forms through the ``reset_after`` flag, exactly as
on the CPU; the weights come in the same layouts (see ``numrnn/kernels/gru.py``). Same
names, signatures, array contract (leading member axis K) and return values as the CPU
kernels (NumPy in, NumPy out); see ``numrnn/cuda/__init__.py`` for the block/thread mapping.
"""

import math

import numpy as np
from numba import cuda

from . import _common as cm


@cuda.jit
def _forward(xp, whh_t, whn_t, bhh, h0, lens, reset_after, w_shared, hs, gates, aux):
    """One block per (sequence b, member m), the whole time loop inside.

    Dynamic shared memory: h (H), hh (C), rh (H), [scratch], [whh_t (H*C), whn_t (H*H)
    when reset before]: 3H*H weights either way.
    """
    _, T, B, G = xp.shape
    H = G // 3
    C = 3 * H if reset_after else 2 * H
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = xp.dtype.type(0)
    one = xp.dtype.type(1)
    sm = cuda.shared.array(0, dtype=xp.dtype)
    h = sm[0:H]
    hh = sm[H : H + C]  # h_{t-1} @ whh_t
    rh = sm[H + C : 2 * H + C]  # r * h_{t-1}, reset before only
    off = 2 * H + C + 2 * nt
    nn = 0 if reset_after else H * H
    cm.stage(sm, off, whh_t[m], H * C, w_shared)
    cm.stage(sm, off + H * C, whn_t[m], nn, w_shared)
    w = sm[off : off + H * C] if w_shared else whh_t[m]
    wn = sm[off + H * C : off + H * C + nn] if w_shared else whn_t[m]
    for j in range(tid, H, nt):
        h[j] = h0[m, b, j]
        hs[m, 0, b, j] = h0[m, b, j]
    cuda.syncthreads()
    L = lens[b]
    for t in range(L):
        for k in range(tid, C, nt):
            s = zero
            for q in range(H):
                s += h[q] * w[q * C + k]
            hh[k] = s
        cuda.syncthreads()
        # a thread reads and writes only its own units of h below: no sync needed inside
        for j in range(tid, H, nt):
            hp = h[j]
            r = cm.sigmoid(xp[m, t, b, j] + hh[j] + bhh[m, j], one)
            z = cm.sigmoid(xp[m, t, b, H + j] + hh[H + j] + bhh[m, H + j], one)
            gates[m, t, b, j] = r
            gates[m, t, b, H + j] = z
            if reset_after:
                a = hh[2 * H + j] + bhh[m, 2 * H + j]
                aux[m, t, b, j] = a
                c = math.tanh(xp[m, t, b, 2 * H + j] + r * a)
                gates[m, t, b, 2 * H + j] = c
                h[j] = c + z * (hp - c)
                hs[m, t + 1, b, j] = h[j]
            else:
                rh[j] = r * hp
                aux[m, t, b, j] = r * hp
        if not reset_after:
            cuda.syncthreads()
            for j in range(tid, H, nt):  # candidate from W_hn (r * h_{t-1})
                s = zero
                for q in range(H):
                    s += rh[q] * wn[q * H + j]
                c = math.tanh(xp[m, t, b, 2 * H + j] + s + bhh[m, 2 * H + j])
                z = gates[m, t, b, H + j]
                gates[m, t, b, 2 * H + j] = c
                h[j] = c + z * (h[j] - c)
                hs[m, t + 1, b, j] = h[j]
        cuda.syncthreads()


@cuda.jit
def _backward(
    hs,
    gates,
    aux,
    whh,
    whn,
    dout,
    dhT,
    lens,
    reset_after,
    want_norms,
    w_shared,
    dxp,
    dgh,
    dh0,
    norms,
):
    """BPTT, one block per (sequence b, member m).

    Shared: dh (H), dg (C, the gradient w.r.t. h_{t-1} @ whh_t), dn (H), dhz (H),
    [scratch], [whh (C*H), whn (H*H) when reset before]. ``dgh`` (K, T, B, C) keeps every
    step's dg for the weight gradient.
    """
    _, T, B, G = gates.shape
    H = G // 3
    C = 3 * H if reset_after else 2 * H
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    sm = cuda.shared.array(0, dtype=hs.dtype)
    dh = sm[0:H]
    dg = sm[H : H + C]
    dn = sm[H + C : 2 * H + C]  # reset before: gradient of n's pre-activation
    dhz = sm[2 * H + C : 3 * H + C]  # the direct path h_{t-1} -> h_t through z * h
    red = sm[3 * H + C : 3 * H + C + nt]
    off = 3 * H + C + 2 * nt
    nn = 0 if reset_after else H * H
    cm.stage(sm, off, whh[m], C * H, w_shared)
    cm.stage(sm, off + C * H, whn[m], nn, w_shared)
    w = sm[off : off + C * H] if w_shared else whh[m]
    wn = sm[off + C * H : off + C * H + nn] if w_shared else whn[m]
    for j in range(tid, H, nt):
        dh[j] = dhT[m, b, j]
    cuda.syncthreads()
    L = lens[b]
    for t in range(L - 1, -1, -1):
        ss = zero
        for j in range(tid, H, nt):
            r = gates[m, t, b, j]
            z = gates[m, t, b, H + j]
            c = gates[m, t, b, 2 * H + j]
            g = dh[j] + dout[m, t, b, j]  # total dL/dh_t
            ss += g * g
            dc = g * (one - z) * (one - c * c)
            dz = g * (hs[m, t, b, j] - c) * z * (one - z)
            dhz[j] = g * z
            dxp[m, t, b, H + j] = dz
            dg[H + j] = dz
            dxp[m, t, b, 2 * H + j] = dc
            if reset_after:
                dr = dc * aux[m, t, b, j] * r * (one - r)
                dxp[m, t, b, j] = dr
                dg[j] = dr
                dg[2 * H + j] = dc * r
            else:
                dn[j] = dc
        if want_norms:
            s = cm.block_sum(red, tid, nt, ss)
            if tid == 0:
                norms[m, t, b] = math.sqrt(s)
        cuda.syncthreads()
        if not reset_after:
            for j in range(tid, H, nt):  # through n = tanh(W_hn (r * h) + ...)
                drh = zero
                for q in range(H):
                    drh += dn[q] * wn[q * H + j]
                r = gates[m, t, b, j]
                dr = drh * hs[m, t, b, j] * r * (one - r)
                dxp[m, t, b, j] = dr
                dg[j] = dr
                dhz[j] += drh * r
            cuda.syncthreads()
        for k in range(tid, C, nt):
            dgh[m, t, b, k] = dg[k]
        for k in range(tid, H, nt):  # dL/dh_{t-1} = whh^T dg + direct path
            s = zero
            for q in range(C):
                s += dg[q] * w[q * H + k]
            dh[k] = s + dhz[k]
        cuda.syncthreads()
    for j in range(tid, H, nt):
        dh0[m, b, j] = dh[j]


def _whn(whn, K, reset_after):
    """The W_hn operand as (K, n) rows; a (K, 1) dummy when unused (reset after), so that
    every member's row exists."""
    if reset_after or whn.size == 0:
        return np.zeros((K, 1), whn.dtype)
    return cm.per_member(whn)


def gru_forward(xp, whh_t, whn_t, bhh, h0, batch_sizes, reset_after):
    """Run the GRU recurrence over all steps on the GPU.

    Parameters
    ----------
    xp : (K, T, B, 3H) input projection.
    whh_t : (K, H, 3H) if ``reset_after`` else (K, H, 2H), as in ``numrnn.kernels.gru``.
    whn_t : (K, H, H) ``W_hn.T`` when not ``reset_after``; unused (may be (0, 0, 0))
        otherwise.
    bhh : (K, 3H)
    h0 : (K, B, H)
    batch_sizes : (T,) int64
    reset_after : bool

    Returns
    -------
    hs : (K, T+1, B, H) states.
    gates : (K, T, B, 3H) activations r, z, n.
    aux : (K, T, B, H) ``W_hn h + b_hn`` (reset after) or ``r * h_{t-1}`` (reset before).
    """
    K, T, B, G = xp.shape
    H = G // 3
    dt = xp.dtype
    reset_after = bool(reset_after)
    d_xp, d_w, d_wn, d_b, d_h0, d_lens = cm.to_device(
        xp,
        cm.per_member(whh_t),
        _whn(whn_t, K, reset_after),
        bhh,
        h0,
        cm.lengths(batch_sizes, B),
    )
    d_hs = cm.zeros((K, T + 1, B, H), dt)
    d_gates = cm.zeros((K, T, B, G), dt)
    d_aux = cm.zeros((K, T, B, H), dt)
    nt = cm.threads_for(G)
    w_shared, nbytes = cm.shared_plan(3 * H * H, 5 * H, nt, dt)
    if B and K:
        _forward[(B, K), nt, 0, nbytes](
            d_xp, d_w, d_wn, d_b, d_h0, d_lens, reset_after, w_shared, d_hs, d_gates, d_aux
        )
    return tuple(d.copy_to_host() for d in (d_hs, d_gates, d_aux))


def gru_backward(hs, gates, aux, whh, whn, dout, dhT, batch_sizes, reset_after, norms):
    """BPTT through :func:`gru_forward` on the GPU.

    Parameters
    ----------
    hs, gates, aux : saved by the forward pass.
    whh : (K, C, H) ``W_hh`` (C = 3H, reset after) or ``W_hh[:2H]`` (C = 2H, reset before).
    whn : (K, H, H) ``W_hn`` for reset before; unused otherwise.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT : (K, B, H) gradient w.r.t. each sequence's final state.
    batch_sizes : (T,) int64
    reset_after : bool
    norms : (K, T, B) or (0, 0, 0) optional output, filled in place with ||dL/dh_t||_2.

    Returns
    -------
    dxp : (K, T, B, 3H)
    dwhh : (K, 3H, H)
    dbhh : (K, 3H)
    dh0 : (K, B, H)
    """
    K, T, B, G = gates.shape
    H = G // 3
    C = whh.shape[1]
    dt = hs.dtype
    reset_after = bool(reset_after)
    want = norms.shape[1] == T
    d_hs, d_gates, d_aux, d_w, d_wn, d_dout, d_dhT, d_lens = cm.to_device(
        hs,
        gates,
        aux,
        cm.per_member(whh),
        _whn(whn, K, reset_after),
        dout,
        dhT,
        cm.lengths(batch_sizes, B),
    )
    d_dxp = cm.zeros((K, T, B, G), dt)
    d_dgh = cm.zeros((K, T, B, C), dt)
    d_dh0 = cuda.device_array((K, B, H), dt)
    d_norms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    nt = cm.threads_for(H)
    w_shared, nbytes = cm.shared_plan(3 * H * H, 6 * H, nt, dt)
    if B and K:
        _backward[(B, K), nt, 0, nbytes](
            d_hs,
            d_gates,
            d_aux,
            d_w,
            d_wn,
            d_dout,
            d_dhT,
            d_lens,
            reset_after,
            want,
            w_shared,
            d_dxp,
            d_dgh,
            d_dh0,
            d_norms,
        )
    d_dw = cuda.device_array((K, G, H), dt)
    d_db = cuda.device_array((K, G), dt)
    N = T * B
    d_hflat = d_hs.reshape(K, (T + 1) * B, H)
    cm.weight_grads(d_dgh.reshape(K, N, C), d_hflat, d_dw[:, :C], d_db[:, :C])
    if not reset_after:  # W_hn multiplies r * h_{t-1} (aux); its gate gradient is dxp's n part
        cm.weight_grads(
            d_dxp.reshape(K, N, G)[:, :, C:], d_aux.reshape(K, N, H), d_dw[:, C:], d_db[:, C:]
        )
    if want:
        norms[...] = d_norms.copy_to_host()
    return tuple(d.copy_to_host() for d in (d_dxp, d_dw, d_db, d_dh0))
