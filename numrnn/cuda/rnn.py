"""Elman RNN on the GPU, twins of ``numrnn.kernels.rnn``: persistent kernels and per-step
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
def _unit_forward(a, xp, bhh, hs, relu, m, t, b, j):
    """Unit j of row b at step t: writes and returns ``h_t[j] = act(a[j] + xp + b_hh)``.

    a : (H,) the row's ``h_{t-1} @ W_hh.T``.
    """
    zero = xp.dtype.type(0)
    v = a[j] + xp[m, t, b, j] + bhh[m, j]
    # `v < 0` is False for NaN, so NaN propagates through ReLU as on the CPU
    v = (zero if v < zero else v) if relu else math.tanh(v)
    hs[m, t + 1, b, j] = v
    return v


@cuda.jit(device=True)
def _unit_backward(dh, dout, hs, relu, dg, m, t, b, j):
    """Unit j of row b at step t: ``dg[j]`` = gradient of the pre-activation, from
    dL/dh_t = ``dh[j] + dout``. Returns (dL/dh_t[j])^2 for the norm.

    dh : (H,) the row's gradient from step t+1; dg : (H,) output.
    """
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    g = dh[j] + dout[m, t, b, j]  # total derivative dL/dh_t
    hj = hs[m, t + 1, b, j]
    dg[j] = g * (one if hj > zero else zero) if relu else g * (one - hj * hj)
    return g * g


# ------------------------------------------------------------------ persistent kernels


@cuda.jit
def _forward(xp, whh_t, bhh, lens, hs, relu, w_shared):
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
    cm.stage(sm, off, whh_t[m], H * H, w_shared, tid, nt)
    w = sm[off : off + H * H] if w_shared else whh_t[m]
    for j in range(tid, H, nt):
        h[j] = hs[m, 0, b, j]
    cuda.syncthreads()
    for t in range(lens[b]):
        for j in range(tid, H, nt):
            s = zero
            for k in range(H):
                s += h[k] * w[k * H + j]  # W_hh.T rows: consecutive j, coalesced
            a[j] = s
        cuda.syncthreads()  # every h[k] read before any is overwritten
        for j in range(tid, H, nt):
            h[j] = _unit_forward(a, xp, bhh, hs, relu, m, t, b, j)
        cuda.syncthreads()


@cuda.jit
def _backward(hs, whh, dout, lens, relu, want_norms, w_shared, dxp, dh0, norms):
    """BPTT, one block per (sequence b, member m). ``dh0`` holds dL/dh_T on entry.

    Shared: dh (H), dg (H), scratch (nt), [W_hh (H*H)].
    """
    _, T1, B, H = hs.shape
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    zero = hs.dtype.type(0)
    sm = cuda.shared.array(0, dtype=hs.dtype)
    dh = sm[0:H]
    dg = sm[H : 2 * H]
    red = sm[2 * H : 2 * H + nt]
    off = 2 * H + 2 * nt
    cm.stage(sm, off, whh[m], H * H, w_shared, tid, nt)
    w = sm[off : off + H * H] if w_shared else whh[m]
    for j in range(tid, H, nt):
        dh[j] = dh0[m, b, j]
    cuda.syncthreads()
    for t in range(lens[b] - 1, -1, -1):
        ss = zero
        for j in range(tid, H, nt):
            ss += _unit_backward(dh, dout, hs, relu, dg, m, t, b, j)
            dxp[m, t, b, j] = dg[j]
        if want_norms:
            cm.store_norm(norms, m, t, b, red, tid, nt, ss)
        cuda.syncthreads()
        for k in range(tid, H, nt):  # dL/dh_{t-1} = W_hh^T dg
            s = zero
            for i in range(H):
                s += dg[i] * w[i * H + k]
            dh[k] = s
        cuda.syncthreads()
    for j in range(tid, H, nt):
        dh0[m, b, j] = dh[j]


# ------------------------------------------------- per-step path: the pointwise kernels


@cuda.jit
def _step_forward(a, xp, bhh, hs, relu, t):
    """Step t, after ``a[:, :n] = hs[:, t, :n] @ W_hh.T``: one block per (row b, member m)."""
    H = a.shape[2]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    for j in range(cuda.threadIdx.x, H, cuda.blockDim.x):
        _unit_forward(a[m, b], xp, bhh, hs, relu, m, t, b, j)


@cuda.jit
def _step_backward(dh, dout, hs, relu, want_norms, dxp, norms, t):
    """Step t of BPTT before ``dh[:, :n] = dxp[:, t, :n] @ W_hh``: one block per (row b,
    member m). Shared: the norm's reduction scratch (nt)."""
    H = dh.shape[2]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    ss = hs.dtype.type(0)
    for j in range(tid, H, nt):
        ss += _unit_backward(dh[m, b], dout, hs, relu, dxp[m, t, b], m, t, b, j)
    if want_norms:
        cm.store_norm(norms, m, t, b, cuda.shared.array(0, dtype=hs.dtype), tid, nt, ss)


# ----------------------------------------------------------------------- host drivers


def rnn_forward(x, wih_t, bih, whh_t, bhh, h0, batch_sizes, relu):
    """Run the Elman recurrence over all steps on the GPU.

    Parameters
    ----------
    x : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    wih_t : (K, D, H) ``W_ih.T``.
    bih : (K, H)
    whh_t : (K, H, H) ``W_hh.T``.
    bhh : (K, H)
    h0 : (K, B, H)
    batch_sizes : (T,) int64
    relu : bool, ReLU instead of tanh.

    Returns
    -------
    hs : (K, T+1, B, H) all states (NumPy).
    """
    _, T, B, _ = x.shape
    K, H = whh_t.shape[:2]
    dt = whh_t.dtype
    relu = bool(relu)
    d_xp = cm.project(x, wih_t, bih)
    (d_b,) = cm.to_device(bhh)
    d_hs = cm.states(h0, T)
    nt = cm.threads_for(H)
    stepwise, w_shared, nbytes = cm.plan(H * H, 2 * H, nt, dt)
    if stepwise and B and K:
        (d_w,) = cm.to_device(whh_t)
        d_a = cuda.device_array((K, B, H), dt)
        for t in range(T):
            n = int(batch_sizes[t])  # active rows, a prefix; batch_sizes is a host array
            if n == 0:
                break
            cm.matmul(d_hs[:, t, :n], d_w, d_a[:, :n])
            _step_forward[(n, K), nt](d_a, d_xp, d_b, d_hs, relu, t)
    elif B and K:
        d_w, d_lens = cm.to_device(cm.per_member(whh_t), cm.lengths(batch_sizes, B))
        _forward[(B, K), nt, 0, nbytes](d_xp, d_w, d_b, d_lens, d_hs, relu, w_shared)
    return d_hs.copy_to_host()


def rnn_backward(hs, whh, wih, xin, dout, dhT, batch_sizes, relu, norms):
    """BPTT through :func:`rnn_forward` on the GPU.

    Parameters
    ----------
    hs : (K, T+1, B, H) states saved by the forward pass.
    whh : (K, H, H) ``W_hh`` (not transposed).
    wih : (K, H, D) ``W_ih`` (not transposed), for the input's gradient; (K, H, 0) for none.
    xin : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT : (K, B, H) gradient w.r.t. the final state of each sequence.
    batch_sizes : (T,) int64
    relu : bool
    norms : (K, T, B) or (0, 0, 0) optional output, filled in place with ||dL/dh_t||_2.

    Returns
    -------
    dx : (K, T, B, D) gradient w.r.t. the input x; (K, T, B, 0) for ``wih`` (K, H, 0).
    dwih : (K, H, D)
    dbih : (K, H)
    dwhh : (K, H, H)
    dbhh : (K, H) (equal to dbih)
    dh0 : (K, B, H)
    """
    K, T1, B, H = hs.shape
    T = T1 - 1
    dt = hs.dtype
    relu = bool(relu)
    want = norms.shape[1] == T
    d_hs, d_dout = cm.to_device(hs, dout)
    d_dh = cm.running(dhT)  # the running dL/dh, then dh0
    d_dxp = cm.zeros((K, T, B, H), dt)
    d_norms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    nt = cm.threads_for(H)
    stepwise, w_shared, nbytes = cm.plan(H * H, 2 * H, nt, dt)
    if stepwise and B and K:
        (d_w,) = cm.to_device(whh)
        for t in range(T - 1, -1, -1):
            n = int(batch_sizes[t])
            if n:
                _step_backward[(n, K), nt, 0, cm.norm_bytes(nt, dt)](
                    d_dh, d_dout, d_hs, relu, want, d_dxp, d_norms, t
                )
                cm.matmul(d_dxp[:, t, :n], d_w, d_dh[:, :n])
    elif B and K:
        d_w, d_lens = cm.to_device(cm.per_member(whh), cm.lengths(batch_sizes, B))
        _backward[(B, K), nt, 0, nbytes](
            d_hs, d_w, d_dout, d_lens, relu, want, w_shared, d_dxp, d_dh, d_norms
        )
    d_dw = cuda.device_array((K, H, H), dt)
    d_db = cuda.device_array((K, H), dt)
    d_g = d_dxp.reshape(K, T * B, H)
    cm.weight_grads(d_g, d_hs.reshape(K, T1 * B, H), d_dw, d_db)
    d_dwih = cm.input_weight_grads(d_g, xin)
    if want:
        norms[...] = d_norms.copy_to_host()
    dx = cm.input_grad(d_g, wih, (K, T, B, wih.shape[2]))
    dwih, dw, db, dh = (d.copy_to_host() for d in (d_dwih, d_dw, d_db, d_dh))
    return dx, dwih, db, dw, db.copy(), dh
