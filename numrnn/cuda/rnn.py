"""Elman RNN on the GPU: persistent forward and BPTT kernels, twins of ``numrnn.kernels.rnn``.

Same names, signatures, array contract (leading member axis K) and return values as the
CPU kernels (NumPy in, NumPy out); see ``numrnn/cuda/__init__.py`` for the block/thread
mapping.
"""

import math

import numpy as np
from numba import cuda

from . import _common as cm


@cuda.jit
def _forward(xp, whh_t, bhh, h0, lens, hs, relu, w_shared):
    """One block per (sequence b, member m), the whole time loop inside.

    Dynamic shared memory: h (H), a (H), [reduction scratch], [W_hh.T (H*H)].
    """
    _, T, B, H = xp.shape
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = xp.dtype.type(0)
    sm = cuda.shared.array(0, dtype=xp.dtype)
    h = sm[0:H]
    a = sm[H : 2 * H]
    off = 2 * H + 2 * nt
    cm.stage(sm, off, whh_t[m], H * H, w_shared)
    w = sm[off : off + H * H] if w_shared else whh_t[m]
    for j in range(tid, H, nt):
        h[j] = h0[m, b, j]
        hs[m, 0, b, j] = h0[m, b, j]
    cuda.syncthreads()
    L = lens[b]
    for t in range(L):
        for j in range(tid, H, nt):
            s = zero
            for k in range(H):
                s += h[k] * w[k * H + j]  # W_hh.T rows: consecutive j, coalesced
            a[j] = s + xp[m, t, b, j] + bhh[m, j]
        cuda.syncthreads()  # every h[k] read before any is overwritten
        for j in range(tid, H, nt):
            v = a[j]
            # `v < 0` is False for NaN, so NaN propagates through ReLU as on the CPU
            v = (zero if v < zero else v) if relu else math.tanh(v)
            h[j] = v
            hs[m, t + 1, b, j] = v
        cuda.syncthreads()


@cuda.jit
def _backward(hs, whh, dout, dhT, lens, relu, want_norms, w_shared, dxp, dh0, norms):
    """BPTT, one block per (sequence b, member m).

    Shared: dh (H), dg (H), scratch (nt), [W_hh (H*H)].
    """
    _, T1, B, H = hs.shape
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    sm = cuda.shared.array(0, dtype=hs.dtype)
    dh = sm[0:H]
    dg = sm[H : 2 * H]
    red = sm[2 * H : 2 * H + nt]
    off = 2 * H + 2 * nt
    cm.stage(sm, off, whh[m], H * H, w_shared)
    w = sm[off : off + H * H] if w_shared else whh[m]
    for j in range(tid, H, nt):
        dh[j] = dhT[m, b, j]
    cuda.syncthreads()
    L = lens[b]
    for t in range(L - 1, -1, -1):
        ss = zero
        for j in range(tid, H, nt):
            g = dh[j] + dout[m, t, b, j]  # total derivative dL/dh_t
            ss += g * g
            hj = hs[m, t + 1, b, j]
            d = g * (one if hj > zero else zero) if relu else g * (one - hj * hj)
            dg[j] = d
            dxp[m, t, b, j] = d
        if want_norms:
            s = cm.block_sum(red, tid, nt, ss)
            if tid == 0:
                norms[m, t, b] = math.sqrt(s)
        cuda.syncthreads()
        for k in range(tid, H, nt):  # dL/dh_{t-1} = W_hh^T dg
            s = zero
            for i in range(H):
                s += dg[i] * w[i * H + k]
            dh[k] = s
        cuda.syncthreads()
    for j in range(tid, H, nt):
        dh0[m, b, j] = dh[j]


def rnn_forward(xp, whh_t, bhh, h0, batch_sizes, relu):
    """Run the Elman recurrence over all steps on the GPU.

    Parameters
    ----------
    xp : (K, T, B, H) input projection.
    whh_t : (K, H, H) ``W_hh.T``.
    bhh : (K, H)
    h0 : (K, B, H)
    batch_sizes : (T,) int64
    relu : bool, ReLU instead of tanh.

    Returns
    -------
    hs : (K, T+1, B, H) all states (NumPy).
    """
    K, T, B, H = xp.shape
    d_xp, d_w, d_b, d_h0, d_lens = cm.to_device(
        xp, cm.per_member(whh_t), bhh, h0, cm.lengths(batch_sizes, B)
    )
    d_hs = cm.zeros((K, T + 1, B, H), xp.dtype)
    nt = cm.threads_for(H)
    w_shared, nbytes = cm.shared_plan(H * H, 2 * H, nt, xp.dtype)
    if B and K:
        _forward[(B, K), nt, 0, nbytes](d_xp, d_w, d_b, d_h0, d_lens, d_hs, bool(relu), w_shared)
    return d_hs.copy_to_host()


def rnn_backward(hs, whh, dout, dhT, batch_sizes, relu, norms):
    """BPTT through :func:`rnn_forward` on the GPU.

    Parameters
    ----------
    hs : (K, T+1, B, H) states saved by the forward pass.
    whh : (K, H, H) ``W_hh`` (not transposed).
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT : (K, B, H) gradient w.r.t. the final state of each sequence.
    batch_sizes : (T,) int64
    relu : bool
    norms : (K, T, B) or (0, 0, 0) optional output, filled in place with ||dL/dh_t||_2.

    Returns
    -------
    dxp : (K, T, B, H)
    dwhh : (K, H, H)
    dbhh : (K, H)
    dh0 : (K, B, H)
    """
    K, T1, B, H = hs.shape
    T = T1 - 1
    dt = hs.dtype
    want = norms.shape[1] == T
    d_hs, d_w, d_dout, d_dhT, d_lens = cm.to_device(
        hs, cm.per_member(whh), dout, dhT, cm.lengths(batch_sizes, B)
    )
    d_dxp = cm.zeros((K, T, B, H), dt)
    d_dh0 = cuda.device_array((K, B, H), dt)
    d_norms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    nt = cm.threads_for(H)
    w_shared, nbytes = cm.shared_plan(H * H, 2 * H, nt, dt)
    if B and K:
        _backward[(B, K), nt, 0, nbytes](
            d_hs, d_w, d_dout, d_dhT, d_lens, bool(relu), want, w_shared, d_dxp, d_dh0, d_norms
        )
    d_dw = cuda.device_array((K, H, H), dt)
    d_db = cuda.device_array((K, H), dt)
    cm.weight_grads(d_dxp.reshape(K, T * B, H), d_hs.reshape(K, T1 * B, H), d_dw, d_db)
    if want:
        norms[...] = d_norms.copy_to_host()
    return tuple(d.copy_to_host() for d in (d_dxp, d_dw, d_db, d_dh0))
