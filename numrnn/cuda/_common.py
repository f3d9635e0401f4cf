"""Launch geometry, device math, the weight-gradient matmul and transfer helpers.

Shared by ``rnn.py``, ``lstm.py`` and ``gru.py``. Importing this module imports
``numba.cuda``; :func:`numrnn.cuda.kernels` imports it only after checking that a GPU or
the simulator is there.
"""

import math

import numpy as np
from numba import cuda

# Threads per block of the persistent kernels: one thread per gate row (capped), rounded
# up to whole warps. 256 keeps a launch valid whatever the register count (256 x 255
# registers fit an SM's 64K); larger layers loop. The tests patch MAX_THREADS and WARP
# small so that, on the simulator, threads loop over several units and every stride
# path runs.
MAX_THREADS = 256
WARP = 32
# Dynamic shared memory a block may use without the opt-in attribute (48 KiB on every
# GPU since Kepler). Recurrent weights are staged there when they fit, else read from
# global memory (L2/L1-cached) by the same kernel.
SHARED_BYTES = 48 * 1024
# Edge of the square tiles of :func:`matmul_tn` (TILE x TILE threads per block). A
# compile-time constant of the kernel: change it only before the first launch.
TILE = 16


def threads_for(n):
    """Threads per block for a loop over ``n`` items: ``min(n, MAX_THREADS)`` in whole warps."""
    nt = min(max(n, 1), MAX_THREADS)
    return -(-nt // WARP) * WARP


def shared_plan(n_weights, n_buffers, nt, dtype):
    """Whether the weights go to shared memory, and the dynamic shared memory to ask for.

    Parameters
    ----------
    n_weights : int, number of recurrent weight elements (e.g. 4H*H for an LSTM).
    n_buffers : int, elements of the per-step vectors (h, gate pre-activations, ...).
    nt : int, threads per block (the norm reductions use ``2 * nt`` more elements).
    dtype : numpy dtype of the arrays.

    Returns
    -------
    w_shared : bool
    nbytes : int, for the launch configuration ``[grid, block, stream, nbytes]``.
    """
    item = np.dtype(dtype).itemsize
    base = (n_buffers + 2 * nt) * item
    if base + n_weights * item <= SHARED_BYTES:
        return True, base + n_weights * item
    return False, base


def lengths(batch_sizes, B):
    """Per-row sequence lengths (B,) int64 from the sorted batch's ``batch_sizes`` (T,)."""
    bs = np.asarray(batch_sizes, np.int64)
    return (bs[:, None] > np.arange(B)[None, :]).sum(axis=0).astype(np.int64)


def to_device(*arrays):
    """Copy NumPy arrays to the device as C-contiguous arrays (one transfer per array).

    Empty arrays become a 1-element dummy of the same number of dimensions, since some
    drivers refuse zero-size allocations.
    """
    out = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        out.append(cuda.to_device(a if a.size else np.zeros((1,) * a.ndim, a.dtype)))
    return tuple(out)


def zeros(shape, dtype):
    """A device array of zeros. Kernels write only the steps inside each sequence, so what
    lies past a sequence's end keeps this fill, as the CPU kernels leave it."""
    return full(shape, 0, dtype)


def full(shape, value, dtype):
    """A device array filled with ``value`` (one transfer)."""
    return cuda.to_device(np.full(shape, value, dtype))


def per_member(w):
    """(K, ...) weights as a C-contiguous (K, n) array: one flat row per member."""
    w = np.ascontiguousarray(w)
    return w.reshape(w.shape[0], int(np.prod(w.shape[1:], dtype=np.int64)))


@cuda.jit(device=True)
def sigmoid(x, one):
    """Logistic function, ``e/(1+e)`` with ``e = exp(-|x|)`` for ``x < 0`` (no overflow).

    ``one`` is 1 in the arrays' dtype, so float32 kernels never promote to float64.
    """
    e = math.exp(-abs(x))
    s = one / (one + e)
    return s if x >= 0 else e * s


@cuda.jit(device=True)
def stage(sm, off, w, n, w_shared):
    """Copy the weights ``w[:n]`` to ``sm[off:off+n]`` when ``w_shared``.

    All threads of the block take part; the caller syncs before reading and then reads
    from ``sm[off:off+n] if w_shared else w`` (a device function may not return a view
    of shared memory).
    """
    if w_shared:
        for i in range(cuda.threadIdx.x, n, cuda.blockDim.x):
            sm[off + i] = w[i]


@cuda.jit(device=True)
def block_sum(red, tid, nt, value):
    """Sum of ``value`` over the block's threads, valid in thread 0 only.

    Thread 0 adds the ``nt`` partial sums serially: cheap beside the O(G H / nt)
    matrix-vector work per thread per step, and free of a second sync. The caller
    syncs between writing ``red`` (here) and the next write.
    """
    red[tid] = value
    cuda.syncthreads()
    s = red.dtype.type(0)
    if tid == 0:
        for i in range(nt):
            s += red[i]
    return s


@cuda.jit
def matmul_tn(a, b, c):
    """``c[m] = a[m].T @ b[m]`` over the first ``a.shape[1]`` rows of ``b[m]``, for every
    member m, in TILE x TILE tiles.

    a : (K, N, M), b : (K, >= N, P), c : (K, M, P). Grid ``(ceil(M/TILE), ceil(P/TILE),
    K)``, block ``(TILE, TILE)``: one launch for all members. Tiles are loaded with the
    thread's x index along the contiguous axis (coalesced) and reduced from shared memory.
    """
    sa = cuda.shared.array((TILE, TILE), dtype=a.dtype)
    sb = cuda.shared.array((TILE, TILE), dtype=a.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    m0 = cuda.blockIdx.x * TILE
    p0 = cuda.blockIdx.y * TILE
    mem = cuda.blockIdx.z
    _, N, M = a.shape
    P = c.shape[2]
    zero = a.dtype.type(0)
    acc = zero
    for n0 in range(0, N, TILE):
        n = n0 + ty
        sa[ty, tx] = a[mem, n, m0 + tx] if n < N and m0 + tx < M else zero
        sb[ty, tx] = b[mem, n, p0 + tx] if n < N and p0 + tx < P else zero
        cuda.syncthreads()
        for i in range(TILE):
            acc += sa[i, ty] * sb[i, tx]
        cuda.syncthreads()
    if m0 + ty < M and p0 + tx < P:
        c[mem, m0 + ty, p0 + tx] = acc


@cuda.jit
def colsum(a, c):
    """``c[m] = a[m].sum(axis=0)``: a (K, N, M), c (K, M).

    Grid ``(ceil(M/nt), K)``, one thread per column; consecutive threads read
    consecutive elements of a row (coalesced).
    """
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    mem = cuda.blockIdx.y
    _, N, M = a.shape
    if i < M:
        s = a.dtype.type(0)
        for n in range(N):
            s += a[mem, n, i]
        c[mem, i] = s


def weight_grads(d_g, d_h, d_dw, d_db):
    """``dw[m] = g[m].T @ h[m]`` and ``db[m] = g[m].sum(0)`` on the device, one launch each
    for all members.

    Parameters
    ----------
    d_g : (K, N, M) device array, gate-gradient rows (N = T*B).
    d_h : (K, >= N, P) device array, the matching states (only the first N rows are used).
    d_dw : (K, M, P) device output; d_db : (K, M) device output.
    """
    K, N, M = d_g.shape
    P = d_dw.shape[2]
    if K == 0 or M == 0:
        return
    matmul_tn[(-(-M // TILE), max(1, -(-P // TILE)), K), (TILE, TILE)](d_g, d_h, d_dw)
    nt = threads_for(M)
    colsum[(-(-M // nt), K), nt](d_g, d_db)
