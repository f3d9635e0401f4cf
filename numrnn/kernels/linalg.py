"""The large matrix products around the time loops, split across threads.

The input projection ``x @ W_ih.T`` of all steps, the input-side gradients and the weight
gradients are single products per member, much larger than a step's. Numba's ``np.dot``
calls a single-threaded BLAS here (see ``_parallel.serial_blas``), so these split the rows
(or the summed-over dimension) across threads themselves. One BLAS, one thread pool.

Member axes: an operand with a leading size 1 is shared by every member (e.g. the same
input x for all networks of an ensemble).
"""

import numpy as np
from numba import njit, prange

from ._parallel import blocks, span

# Kernels copy and sum arrays element by element with these, never with whole-array
# assignment (``a[m] = b``, ``a += b``) or ``sum(axis=...)``: those make Numba compile a
# shape-mismatch message and reduction machinery, about 4 s per cold process, which the
# time to first result (``numrnn demo``, 30 s budget) cannot spare.


@njit(cache=True, nogil=True)
def copy2d(dst, src, add):
    """``dst[...] = src`` (``add``: ``dst += src``) for 2-d arrays of the same shape."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = dst[i, j] + src[i, j] if add else src[i, j]


@njit(cache=True, nogil=True)
def sum_rows(a, out):
    """``out[:] = a.sum(axis=0)`` for a 2-d ``a``."""
    out[:] = 0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


# OpenBLAS multiplies products of at most 100^3 multiply-adds with "small-matrix" kernels
# that skip packing the operands into panels. A time step's product (a block's few rows
# times W_hh) is often just above that size, and packing W_hh at every step then costs as
# much as the arithmetic: (16, 128) @ (128, 512) takes 38 us in one call, 20 us as two
# calls of 8 rows (float32; float64 57 vs 40 us; this machine's OpenBLAS, SkylakeX kernels).
SMALL = 100**3


@njit(cache=True, nogil=True)
def _rows_per_call(M, K, N):
    """Rows of ``a`` per small-kernel call of ``a @ b`` (M, K) @ (K, N), balanced; 0 when
    fewer than 4 rows fit (a thin product runs slower than the packed one)."""
    per = SMALL // max(1, K * N)
    if per >= M:
        return M
    if per < 4:
        return 0
    calls = -(-M // per)
    return -(-M // calls)


@njit(cache=True, nogil=True)
def step_weights(w, rows):
    """Per-member transposes ``w[k].T`` (K, N, F) of w (K, F, N) when :func:`step_dot` needs
    them for blocks of ``rows`` rows (large weights), else an empty (K, 0, 0)."""
    K, F, N = w.shape
    if _rows_per_call(rows, F, N) != 0:
        return np.empty((K, 0, 0), w.dtype)
    wt = np.empty((K, N, F), w.dtype)
    for k in range(K):
        for i in range(F):
            for j in range(N):
                wt[k, j, i] = w[k, i, j]
    return wt


@njit(cache=True, nogil=True)
def dot_rows(a, b, out):
    """``out = a @ b`` (all C-contiguous) in pieces of rows OpenBLAS's small kernels take,
    or in one call where even 4 rows are too many for them."""
    M, K = a.shape
    rows = _rows_per_call(M, K, b.shape[1])
    if rows == 0:
        np.dot(a, b, out)
        return
    for i in range(0, M, rows):
        e = min(M, i + rows)
        np.dot(a[i:e], b, out[i:e])


@njit(cache=True, nogil=True)
def step_dot(a, b, bt, out, scratch):
    """``out = a @ b`` for a time step's few rows, as calls OpenBLAS's small kernels take.

    a : (M, K); b : (K, N); bt : ``b.T`` (N, K) from :func:`step_weights` (only read when
    even 4 rows times b are too large: then ``out.T = b.T @ a.T`` in slices of b.T's rows);
    out : (M, N); scratch : at least M (K + N) numbers. All C-contiguous.
    """
    M, K = a.shape
    N = b.shape[1]
    if _rows_per_call(M, K, N):
        dot_rows(a, b, out)
        return
    at = scratch[: K * M].reshape((K, M))
    ot = scratch[K * M : (K + N) * M].reshape((N, M))
    for i in range(M):
        for k in range(K):
            at[k, i] = a[i, k]
    per = max(8, SMALL // (K * M))
    for j in range(0, N, per):
        e = min(N, j + per)
        np.dot(bt[j:e], at, ot[j:e])
    for i in range(M):
        for j in range(N):
            out[i, j] = ot[j, i]


@njit(cache=True, nogil=True)
def recurrent_grads(dg, h, dw, db):
    """Weight and bias gradients of a recurrent product, written into ``dw`` and ``db``:
    ``dw[k] = sum_t dg[k, t].T @ h[k, t]`` and ``db[k] = sum_t,b dg[k, t, b]``.

    dg : (K, T, B, C) gradients w.r.t. the product's outputs; h : (K, T or more, B, H)
    its inputs (the first T steps are used); dw : (K, C, H); db : (K, C).
    """
    K, T, B, C = dg.shape
    H = h.shape[3]
    for m in range(K):
        flat = dg[m].reshape(1, T * B, C)
        copy2d(dw[m], matmul_tn(flat, h[m, :T].reshape(1, T * B, H))[0], False)
        sum_rows(flat[0], db[m])


@njit(cache=True, nogil=True, parallel=True)
def matmul(a, b, bias):
    """``a[k] @ b[k] + bias[k]`` for every member: a (Ka, M, F), b (K, F, O), bias (K, O)
    or (0, 0) for none -> (K, M, O), Ka in {1, K}.

    Rows of ``a`` are split across threads; both arrays C-contiguous. The bias is added
    to each block while it is still in cache (not in a second pass over the result).
    """
    K, M, O = b.shape[0], a.shape[1], b.shape[2]
    out = np.empty((K, M, O), a.dtype)
    items, per_member, rows = blocks(K, M, a.shape[2] * O)
    for item in prange(items):
        k, lo, hi = span(item, per_member, rows, M)
        ka = k if a.shape[0] == K else 0
        block = out[k][lo:hi]
        np.dot(a[ka][lo:hi], b[k], block)
        if bias.shape[1] != O:
            continue
        c = bias[k]
        for i in range(hi - lo):
            r = block[i]
            for j in range(O):
                r[j] += c[j]
    return out


@njit(cache=True, nogil=True, parallel=True)
def matmul_tn(a, b):
    """``a[k].T @ b[k]`` for every member: a (K, M, G), b (Kb, M, D) -> (K, G, D), Kb in {1, K}.

    The summed-over rows M are split into blocks whose partial products are added; within
    a block, into pieces of at least 64 rows that OpenBLAS's small kernels take (see
    SMALL) where G x D is small enough: (128, 800) @ (800, 32) runs 1.45x faster as seven
    products of ~115 rows (float64; float32 1.65x).
    """
    K, M, G, D = a.shape[0], a.shape[1], a.shape[2], b.shape[2]
    items, per_member, rows = blocks(K, M, G * D)
    partial = np.empty((items, G, D), a.dtype)
    for item in prange(items):
        k, lo, hi = span(item, per_member, rows, M)
        kb = k if b.shape[0] == K else 0
        step = SMALL // (G * D)
        if step < 64:
            step = hi - lo
        step = -(-(hi - lo) // -(-(hi - lo) // step))  # balanced pieces
        piece = np.empty((G, D), a.dtype)
        for i in range(lo, hi, step):
            e = min(hi, i + step)
            np.dot(a[k][i:e].T, b[kb][i:e], partial[item] if i == lo else piece)
            if i != lo:
                copy2d(partial[item], piece, True)
    out = np.zeros((K, G, D), a.dtype)
    for item in range(items):
        copy2d(out[item // per_member], partial[item], True)
    return out
