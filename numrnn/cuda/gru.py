"""GRU on the GPU, both forms, twins of ``numrnn.kernels.gru``: persistent kernels and
per-step launches, with the cell's pointwise math in one place (the ``_unit_*`` device
functions).

One kernel per direction and path serves both forms through the ``reset_after`` flag,
exactly as on the CPU; the weights come in the same layouts (see ``numrnn/kernels/gru.py``):
reset after, one product per step with ``whh_t`` (H, 3H); reset before, ``whh_t`` (H, 2H)
for r and z, then a second product with ``whn_t`` (H, H) once r is known. Same names,
signatures, array contract (leading member axis K) and return values as the CPU kernels
(NumPy in, NumPy out); see ``numrnn/cuda/__init__.py`` for the two paths.
"""

import math

import numpy as np
from numba import cuda

from . import _common as cm

# ----------------------------------------------------------------- the cell, per unit


@cuda.jit(device=True)
def _unit_forward(hh, xp, bhh, hs, reset_after, gates, aux, m, t, b, j):
    """Unit j of row b at step t, as far as one product takes it: r and z; then, reset
    after, n and h_t (returned); reset before, ``aux = r * h_{t-1}`` (returned: the
    operand of W_hn, finished by :func:`_unit_candidate`).

    hh : (C,) the row's ``h_{t-1} @ whh_t``.
    """
    H = aux.shape[3]
    one = xp.dtype.type(1)
    hp = hs[m, t, b, j]
    r = cm.sigmoid(xp[m, t, b, j] + hh[j] + bhh[m, j], one)
    z = cm.sigmoid(xp[m, t, b, H + j] + hh[H + j] + bhh[m, H + j], one)
    gates[m, t, b, j] = r
    gates[m, t, b, H + j] = z
    if not reset_after:
        aux[m, t, b, j] = r * hp
        return r * hp
    a = hh[2 * H + j] + bhh[m, 2 * H + j]
    aux[m, t, b, j] = a
    c = math.tanh(xp[m, t, b, 2 * H + j] + r * a)
    gates[m, t, b, 2 * H + j] = c
    hs[m, t + 1, b, j] = c + z * (hp - c)
    return c + z * (hp - c)


@cuda.jit(device=True)
def _unit_candidate(s, xp, bhh, hs, gates, m, t, b, j):
    """Reset before: n and h_t of unit j (returned) from ``s = (W_hn (r * h_{t-1}))[j]``."""
    H = hs.shape[3]
    c = math.tanh(xp[m, t, b, 2 * H + j] + s + bhh[m, 2 * H + j])
    z = gates[m, t, b, H + j]
    gates[m, t, b, 2 * H + j] = c
    hs[m, t + 1, b, j] = c + z * (hs[m, t, b, j] - c)
    return c + z * (hs[m, t, b, j] - c)


@cuda.jit(device=True)
def _unit_backward(dh, dout, hs, gates, aux, reset_after, dxp, dg, dhz, m, t, b, j):
    """Unit j of row b at step t of BPTT, from dL/dh_t = ``dh[j] + dout``, as far as one
    product takes it: dxp's z and n parts (and r, reset after); ``dg`` (C,) the gradient
    w.r.t. ``h_{t-1} @ whh_t`` (its r part, reset before, by :func:`_unit_reset`);
    ``dhz[j]`` the direct path h_{t-1} -> h_t through z * h. ``dhz`` may be ``dh`` itself
    (``dh[j]`` is read first).

    Returns ((dL/dh_t[j])^2, the gradient of n's pre-activation).
    """
    H = aux.shape[3]
    one = hs.dtype.type(1)
    r = gates[m, t, b, j]
    z = gates[m, t, b, H + j]
    c = gates[m, t, b, 2 * H + j]
    g = dh[j] + dout[m, t, b, j]  # total dL/dh_t
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
    return g * g, dc


@cuda.jit(device=True)
def _unit_reset(drh, hs, gates, dxp, dg, dhz, m, t, b, j):
    """Reset before: the r part of unit j from ``drh = (W_hn^T dn)[j]``, the gradient
    w.r.t. ``r * h_{t-1}``; adds its share of dL/dh_{t-1} to ``dhz[j]``."""
    one = hs.dtype.type(1)
    r = gates[m, t, b, j]
    dr = drh * hs[m, t, b, j] * r * (one - r)
    dxp[m, t, b, j] = dr
    dg[j] = dr
    dhz[j] += drh * r


# ------------------------------------------------------------------ persistent kernels


@cuda.jit
def _forward(xp, whh_t, whn_t, bhh, lens, reset_after, w_shared, hs, gates, aux):
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
    sm = cuda.shared.array(0, dtype=xp.dtype)
    h = sm[0:H]
    hh = sm[H : H + C]  # h_{t-1} @ whh_t
    rh = sm[H + C : 2 * H + C]  # r * h_{t-1}, reset before only
    off = 2 * H + C + 2 * nt
    nn = 0 if reset_after else H * H
    cm.stage(sm, off, whh_t[m], H * C, w_shared, tid, nt)
    cm.stage(sm, off + H * C, whn_t[m], nn, w_shared, tid, nt)
    w = sm[off : off + H * C] if w_shared else whh_t[m]
    wn = sm[off + H * C : off + H * C + nn] if w_shared else whn_t[m]
    for j in range(tid, H, nt):
        h[j] = hs[m, 0, b, j]
    cuda.syncthreads()
    for t in range(lens[b]):
        for k in range(tid, C, nt):
            s = zero
            for q in range(H):
                s += h[q] * w[q * C + k]
            hh[k] = s
        cuda.syncthreads()
        # a thread writes only its own units of h and rh below: no sync needed inside
        for j in range(tid, H, nt):
            v = _unit_forward(hh, xp, bhh, hs, reset_after, gates, aux, m, t, b, j)
            if reset_after:
                h[j] = v
            else:
                rh[j] = v
        if not reset_after:
            cuda.syncthreads()
            for j in range(tid, H, nt):  # candidate from W_hn (r * h_{t-1})
                s = zero
                for q in range(H):
                    s += rh[q] * wn[q * H + j]
                h[j] = _unit_candidate(s, xp, bhh, hs, gates, m, t, b, j)
        cuda.syncthreads()


@cuda.jit
def _backward(
    hs, gates, aux, whh, whn, dout, lens, reset_after, want_norms, w_shared, dxp, dgh, dh0, norms
):
    """BPTT, one block per (sequence b, member m). ``dh0`` holds dL/dh_T on entry.

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
    sm = cuda.shared.array(0, dtype=hs.dtype)
    dh = sm[0:H]
    dg = sm[H : H + C]
    dn = sm[H + C : 2 * H + C]  # reset before: gradient of n's pre-activation
    dhz = sm[2 * H + C : 3 * H + C]  # the direct path h_{t-1} -> h_t through z * h
    red = sm[3 * H + C : 3 * H + C + nt]
    off = 3 * H + C + 2 * nt
    nn = 0 if reset_after else H * H
    cm.stage(sm, off, whh[m], C * H, w_shared, tid, nt)
    cm.stage(sm, off + C * H, whn[m], nn, w_shared, tid, nt)
    w = sm[off : off + C * H] if w_shared else whh[m]
    wn = sm[off + C * H : off + C * H + nn] if w_shared else whn[m]
    for j in range(tid, H, nt):
        dh[j] = dh0[m, b, j]
    cuda.syncthreads()
    for t in range(lens[b] - 1, -1, -1):
        ss = zero
        for j in range(tid, H, nt):
            s2, d = _unit_backward(dh, dout, hs, gates, aux, reset_after, dxp, dg, dhz, m, t, b, j)
            ss += s2
            dn[j] = d
        if want_norms:
            cm.store_norm(norms, m, t, b, red, tid, nt, ss)
        cuda.syncthreads()
        if not reset_after:
            for j in range(tid, H, nt):  # through n = tanh(W_hn (r * h) + ...)
                drh = zero
                for q in range(H):
                    drh += dn[q] * wn[q * H + j]
                _unit_reset(drh, hs, gates, dxp, dg, dhz, m, t, b, j)
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


# ------------------------------------------------- per-step path: the pointwise kernels


@cuda.jit
def _step_forward(hh, xp, bhh, hs, reset_after, gates, aux, t):
    """Step t after ``hh[:, :n] = hs[:, t, :n] @ whh_t``: one block per (row b, member m).
    Reset before, the step continues with ``aux[:, t] @ whn_t`` and :func:`_step_candidate`."""
    H = aux.shape[3]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    for j in range(cuda.threadIdx.x, H, cuda.blockDim.x):
        _unit_forward(hh[m, b], xp, bhh, hs, reset_after, gates, aux, m, t, b, j)


@cuda.jit
def _step_candidate(hn, xp, bhh, hs, gates, t):
    """Reset before, the end of step t after ``hn[:, :n] = aux[:, t, :n] @ whn_t``."""
    H = hs.shape[3]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    for j in range(cuda.threadIdx.x, H, cuda.blockDim.x):
        _unit_candidate(hn[m, b, j], xp, bhh, hs, gates, m, t, b, j)


@cuda.jit
def _step_backward(dh, dout, hs, gates, aux, reset_after, want_norms, dxp, dgh, norms, t):
    """Step t of BPTT, one block per (row b, member m); ``dh`` is left holding the direct
    path only, to which ``dh[:, :n] += dgh[:, t, :n] @ whh`` adds the rest (reset before,
    after ``dn @ W_hn`` and :func:`_step_reset`). Shared: the norm's scratch (nt)."""
    H = hs.shape[3]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    ss = hs.dtype.type(0)
    for j in range(tid, H, nt):
        s2, _ = _unit_backward(
            dh[m, b], dout, hs, gates, aux, reset_after, dxp, dgh[m, t, b], dh[m, b], m, t, b, j
        )
        ss += s2
    if want_norms:
        cm.store_norm(norms, m, t, b, cuda.shared.array(0, dtype=hs.dtype), tid, nt, ss)


@cuda.jit
def _step_reset(drh, hs, gates, dxp, dgh, dh, t):
    """Reset before, step t of BPTT after ``drh[:, :n] = dxp[:, t, :n, 2H:] @ W_hn``."""
    H = hs.shape[3]
    b = cuda.blockIdx.x
    m = cuda.blockIdx.y
    for j in range(cuda.threadIdx.x, H, cuda.blockDim.x):
        _unit_reset(drh[m, b, j], hs, gates, dxp, dgh[m, t, b], dh[m, b], m, t, b, j)


# ----------------------------------------------------------------------- host drivers


def _whn(whn, K, reset_after):
    """The W_hn operand as (K, n) rows; a (K, 1) dummy when unused (reset after), so that
    every member's row exists."""
    if reset_after or whn.size == 0:
        return np.zeros((K, 1), whn.dtype)
    return cm.per_member(whn)


def gru_forward(x, wih_t, bih, whh_t, whn_t, bhh, h0, batch_sizes, reset_after):
    """Run the GRU recurrence over all steps on the GPU.

    Parameters
    ----------
    x : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    wih_t : (K, D, 3H) ``W_ih.T``.
    bih : (K, 3H)
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
    _, T, B, _ = x.shape
    K, H, C = whh_t.shape
    G = 3 * H
    dt = whh_t.dtype
    reset_after = bool(reset_after)
    d_xp = cm.project(x, wih_t, bih)
    (d_b,) = cm.to_device(bhh)
    d_hs = cm.states(h0, T)
    d_gates = cm.zeros((K, T, B, G), dt)
    d_aux = cm.zeros((K, T, B, H), dt)
    nt = cm.threads_for(G)
    stepwise, w_shared, nbytes = cm.plan(3 * H * H, 5 * H, nt, dt)
    if stepwise and B and K:
        d_w, d_wn = cm.to_device(whh_t, whn_t)  # whn_t: a dummy when unused (reset after)
        d_hh = cuda.device_array((K, B, C), dt)  # h_{t-1} @ whh_t
        d_hn = cuda.device_array((K, B, H), dt)  # reset before: (r * h_{t-1}) @ whn_t
        nt = cm.threads_for(H)  # the cell kernels loop over units, not gate rows
        for t in range(T):
            n = int(batch_sizes[t])  # active rows, a prefix; batch_sizes is a host array
            if n == 0:
                break
            cm.matmul(d_hs[:, t, :n], d_w, d_hh[:, :n])
            _step_forward[(n, K), nt](d_hh, d_xp, d_b, d_hs, reset_after, d_gates, d_aux, t)
            if not reset_after:
                cm.matmul(d_aux[:, t, :n], d_wn, d_hn[:, :n])
                _step_candidate[(n, K), nt](d_hn, d_xp, d_b, d_hs, d_gates, t)
    elif B and K:
        d_w, d_wn, d_lens = cm.to_device(
            cm.per_member(whh_t), _whn(whn_t, K, reset_after), cm.lengths(batch_sizes, B)
        )
        _forward[(B, K), nt, 0, nbytes](
            d_xp, d_w, d_wn, d_b, d_lens, reset_after, w_shared, d_hs, d_gates, d_aux
        )
    return tuple(d.copy_to_host() for d in (d_hs, d_gates, d_aux))


def gru_backward(hs, gates, aux, whh, whn, wih, xin, dout, dhT, batch_sizes, reset_after,
                 norms):  # fmt: skip
    """BPTT through :func:`gru_forward` on the GPU.

    Parameters
    ----------
    hs, gates, aux : saved by the forward pass.
    whh : (K, C, H) ``W_hh`` (C = 3H, reset after) or ``W_hh[:2H]`` (C = 2H, reset before).
    whn : (K, H, H) ``W_hn`` for reset before; unused otherwise.
    wih : (K, 3H, D) ``W_ih``, for the input's gradient; (K, 3H, 0) for none.
    xin : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT : (K, B, H) gradient w.r.t. each sequence's final state.
    batch_sizes : (T,) int64
    reset_after : bool
    norms : (K, T, B) or (0, 0, 0) optional output, filled in place with ||dL/dh_t||_2.

    Returns
    -------
    dx : (K, T, B, D) gradient w.r.t. the input x; (K, T, B, 0) for ``wih`` (K, 3H, 0).
    dwih : (K, 3H, D)
    dbih : (K, 3H)
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
    d_hs, d_gates, d_aux, d_dout = cm.to_device(hs, gates, aux, dout)
    d_dh = cm.running(dhT)  # the running dL/dh, then dh0
    d_dxp = cm.zeros((K, T, B, G), dt)
    d_dgh = cm.zeros((K, T, B, C), dt)  # gradient w.r.t. h_{t-1} @ whh_t, every step
    d_norms = cm.full((K, T, B) if want else (1, 1, 1), np.nan, dt)
    nt = cm.threads_for(H)
    stepwise, w_shared, nbytes = cm.plan(3 * H * H, 6 * H, nt, dt)
    if stepwise and B and K:
        d_w, d_wn = cm.to_device(whh, whn)
        d_drh = cuda.device_array((K, B, H), dt)  # reset before: dL/d(r * h_{t-1})
        for t in range(T - 1, -1, -1):
            n = int(batch_sizes[t])
            if n == 0:
                continue
            _step_backward[(n, K), nt, 0, cm.norm_bytes(nt, dt)](
                d_dh, d_dout, d_hs, d_gates, d_aux, reset_after, want, d_dxp, d_dgh, d_norms, t
            )
            if not reset_after:
                cm.matmul(d_dxp[:, t, :n, 2 * H :], d_wn, d_drh[:, :n])
                _step_reset[(n, K), nt](d_drh, d_hs, d_gates, d_dxp, d_dgh, d_dh, t)
            cm.matmul(d_dgh[:, t, :n], d_w, d_dh[:, :n], accumulate=True)
    elif B and K:
        d_w, d_wn, d_lens = cm.to_device(
            cm.per_member(whh), _whn(whn, K, reset_after), cm.lengths(batch_sizes, B)
        )
        _backward[(B, K), nt, 0, nbytes](
            d_hs,
            d_gates,
            d_aux,
            d_w,
            d_wn,
            d_dout,
            d_lens,
            reset_after,
            want,
            w_shared,
            d_dxp,
            d_dgh,
            d_dh,
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
    d_dbih = cuda.device_array((K, G), dt)
    d_dwih = cm.input_weight_grads(d_dxp.reshape(K, N, G), xin, d_dbih)
    if want:
        norms[...] = d_norms.copy_to_host()
    dx = cm.input_grad(d_dxp.reshape(K, N, G), wih, (K, T, B, wih.shape[2]))
    return (dx, *(d.copy_to_host() for d in (d_dwih, d_dbih, d_dw, d_db, d_dh)))
