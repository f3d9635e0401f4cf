"""Launch geometry, the choice of path, device math, the two batched matrix products and
transfer helpers.

Shared by ``rnn.py``, ``lstm.py`` and ``gru.py``. Importing this module imports
``numba.cuda``; :func:`numrnn.cuda.kernels` imports it only after checking that a GPU or
the simulator is there.
"""

import math

import numpy as np
from numba import cuda

from .._options import get_option

# Threads per block of the persistent kernels and of the per-step cell kernels: one thread
# per gate row or unit (capped), rounded up to whole warps. 256 keeps a launch valid
# whatever the register count (256 x 255 registers fit an SM's 64K); larger layers loop.
# The tests patch MAX_THREADS and WARP small so that, on the simulator, threads loop over
# several units and every stride path runs.
MAX_THREADS = 256
WARP = 32
# Dynamic shared memory a block may use without the opt-in attribute (48 KiB on every
# GPU since Kepler). Recurrent weights are staged there when they fit; otherwise a call
# takes the per-step path (the option ``cuda_path``, numrnn._options).
SHARED_BYTES = 48 * 1024
# Edge of the square tiles of :func:`matmul_tn` and :func:`matmul_nn` (TILE x TILE threads
# per block). A compile-time constant of the kernels: change it only before the first launch.
TILE = 16


def threads_for(n):
    """Threads per block for a loop over ``n`` items: ``min(n, MAX_THREADS)`` in whole warps."""
    nt = min(max(n, 1), MAX_THREADS)
    return -(-nt // WARP) * WARP


def shared_plan(n_weights, n_buffers, nt, dtype):
    """Whether the weights go to shared memory, and the dynamic shared memory to ask for,
    for a persistent kernel.

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


def plan(n_weights, n_buffers, nt, dtype):
    """The path a call takes and the persistent kernel's shared memory.

    The option ``cuda_path`` (``nr.set_options``) chooses: "auto" runs the persistent
    kernel when the block's recurrent weights fit in SHARED_BYTES and the per-step launches
    otherwise; "persistent" forces the persistent kernel (weights read from global memory
    when they do not fit); "stepwise" forces the per-step launches.

    Parameters as for :func:`shared_plan`.

    Returns
    -------
    stepwise : bool, True for the per-step launches.
    w_shared, nbytes : as :func:`shared_plan` returns them (used by the persistent path).
    """
    path = get_option("cuda_path")
    w_shared, nbytes = shared_plan(n_weights, n_buffers, nt, dtype)
    stepwise = path == "stepwise" or (path == "auto" and not w_shared)
    return stepwise, w_shared, nbytes


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


def running(a):
    """A device copy of ``a`` that kernels update in place and that comes back as a result
    (the running dL/dh, dL/dc, returned as dh0, dc0): copied as is, even when empty, so
    the result keeps its shape."""
    return cuda.to_device(np.ascontiguousarray(a))


def states(s0, T):
    """A (K, T+1, B, H) device array of states: ``s0`` (K, B, H) at step 0, zeros after
    (rows past a sequence's end keep them). Both paths then read h_{t-1} from it."""
    out = np.zeros((s0.shape[0], T + 1, *s0.shape[1:]), s0.dtype)
    out[:, 0] = s0
    return cuda.to_device(out)


def per_member(w):
    """(K, ...) weights as a C-contiguous (K, n) array: one flat row per member."""
    w = np.ascontiguousarray(w)
    return w.reshape(w.shape[0], int(np.prod(w.shape[1:], dtype=np.int64)))


# Device functions here take the thread index and count as arguments rather than reading
# cuda.threadIdx: Numba's simulator swaps the `cuda` global of each module for the
# duration of a call and restores it when the first thread leaves, so a device function
# of another module that reads `cuda.` after a barrier could see the real module.


@cuda.jit(device=True)
def sigmoid(x, one):
    """Logistic function, ``e/(1+e)`` with ``e = exp(-|x|)`` for ``x < 0`` (no overflow).

    ``one`` is 1 in the arrays' dtype, so float32 kernels never promote to float64.
    """
    e = math.exp(-abs(x))
    s = one / (one + e)
    return s if x >= 0 else e * s


@cuda.jit(device=True)
def stage(sm, off, w, n, w_shared, tid, nt):
    """Copy the weights ``w[:n]`` to ``sm[off:off+n]`` when ``w_shared``.

    All ``nt`` threads of the block take part; the caller syncs before reading and then
    reads from ``sm[off:off+n] if w_shared else w`` (a device function may not return a
    view of shared memory).
    """
    if w_shared:
        for i in range(tid, n, nt):
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


@cuda.jit(device=True)
def store_norm(norms, m, t, b, red, tid, nt, ss):
    """``norms[m, t, b] = sqrt(sum of ss over the block's nt threads)``; all threads call
    it. ``red`` : shared scratch of ``nt`` elements (see :func:`block_sum`)."""
    s = block_sum(red, tid, nt, ss)
    if tid == 0:
        norms[m, t, b] = math.sqrt(s)


@cuda.jit
def matmul_tn(a, b, c):
    """``c[m] = a[m].T @ b[m]`` over the first ``a.shape[1]`` rows of ``b[m]``, for every
    member m, in TILE x TILE tiles.

    a : (K, N, M), b : (K or 1, >= N, P) (one b for all members when 1), c : (K, M, P).
    Grid ``(ceil(M/TILE), ceil(P/TILE), K)``, block ``(TILE, TILE)``: one launch for all
    members. Tiles are loaded with the thread's x index along the contiguous axis
    (coalesced) and reduced from shared memory.
    """
    sa = cuda.shared.array((TILE, TILE), dtype=a.dtype)
    sb = cuda.shared.array((TILE, TILE), dtype=a.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    m0 = cuda.blockIdx.x * TILE
    p0 = cuda.blockIdx.y * TILE
    mem = cuda.blockIdx.z
    mb = mem if b.shape[0] > 1 else 0
    _, N, M = a.shape
    P = c.shape[2]
    zero = a.dtype.type(0)
    acc = zero
    for n0 in range(0, N, TILE):
        n = n0 + ty
        sa[ty, tx] = a[mem, n, m0 + tx] if n < N and m0 + tx < M else zero
        sb[ty, tx] = b[mb, n, p0 + tx] if n < N and p0 + tx < P else zero
        cuda.syncthreads()
        for i in range(TILE):
            acc += sa[i, ty] * sb[i, tx]
        cuda.syncthreads()
    if m0 + ty < M and p0 + tx < P:
        c[mem, m0 + ty, p0 + tx] = acc


@cuda.jit
def matmul_nn(a, b, c, accumulate):
    """``c[m] = a[m] @ b[m]``, or ``c[m] += a[m] @ b[m]`` when ``accumulate``, for every
    member m, in TILE x TILE tiles: the recurrent product of one step of the per-step path.

    a : (K or 1, N, Q) (one a for all members when 1), b : (K, Q, P), c : (K, N, P);
    views of any strides (a step's active rows). Grid ``(ceil(P/TILE), ceil(N/TILE),
    K)``, block ``(TILE, TILE)``: one launch for all members and rows. The thread's x
    index runs along the contiguous axis of every tile load and of the store (coalesced).
    """
    sa = cuda.shared.array((TILE, TILE), dtype=a.dtype)
    sb = cuda.shared.array((TILE, TILE), dtype=a.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    r = cuda.blockIdx.y * TILE + ty  # row of a and c
    p = cuda.blockIdx.x * TILE + tx  # column of b and c
    mem = cuda.blockIdx.z
    ma = mem if a.shape[0] > 1 else 0
    _, N, Q = a.shape
    P = c.shape[2]
    zero = a.dtype.type(0)
    acc = zero
    for q0 in range(0, Q, TILE):
        sa[ty, tx] = a[ma, r, q0 + tx] if r < N and q0 + tx < Q else zero
        sb[ty, tx] = b[mem, q0 + ty, p] if q0 + ty < Q and p < P else zero
        cuda.syncthreads()
        for i in range(TILE):
            acc += sa[ty, i] * sb[i, tx]
        cuda.syncthreads()
    if r < N and p < P:
        c[mem, r, p] = c[mem, r, p] + acc if accumulate else acc


def matmul(d_a, d_b, d_c, accumulate=False):
    """Launch :func:`matmul_nn` (asynchronous, default stream): ``c = a @ b`` per member,
    or ``c += a @ b``. Shapes as there; nothing is launched for an empty product."""
    K, N, P = d_c.shape
    if K and N and P:
        matmul_nn[(-(-P // TILE), -(-N // TILE), K), (TILE, TILE)](d_a, d_b, d_c, accumulate)


@cuda.jit
def fill_rows(c, v):
    """``c[m, n] = v[m]`` for every row n: c (K, N, P), v (K, P).

    Grid ``(ceil(P/nt), K)``, one thread per column looping over the rows; consecutive
    threads write consecutive elements of a row (coalesced).
    """
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    mem = cuda.blockIdx.y
    _, N, P = c.shape
    if i < P:
        for n in range(N):
            c[mem, n, i] = v[mem, i]


def project(x, wih_t, bih):
    """The input projection ``x @ W_ih.T + b_ih`` of all steps, on the device, for the
    recurrent kernels to read step by step: one bias fill and one product launch for all
    members (on the GPU one large product beats a small one per step, unlike on the CPU).

    x : (Kx, T, B, D) host array, Kx in {1, K}; wih_t : (K, D, G); bih : (K, G).
    Returns a (K, T, B, G) device array.
    """
    Kx, T, B, D = x.shape
    K, _, G = wih_t.shape
    d_x, d_w, d_b = to_device(x.reshape(Kx, T * B, D), wih_t, bih)
    d_xp = cuda.device_array((K, T * B, G), wih_t.dtype)
    if K and T * B and G:
        nt = threads_for(G)
        fill_rows[(-(-G // nt), K), nt](d_xp, d_b)
        # launched here, not through matmul(): the tests count matmul's per-step launches
        grid = (-(-G // TILE), -(-(T * B) // TILE), K)
        matmul_nn[grid, (TILE, TILE)](d_x, d_w, d_xp, True)
    return d_xp.reshape(K, T, B, G)


def norm_bytes(nt, dtype, n=1):
    """Dynamic shared memory of a per-step cell kernel: ``n`` norm reductions of ``nt``."""
    return n * nt * np.dtype(dtype).itemsize


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


def weight_grads(d_g, d_h, d_dw, d_db=None):
    """``dw[m] = g[m].T @ h[m]`` and ``db[m] = g[m].sum(0)`` on the device, one launch each
    for all members.

    Parameters
    ----------
    d_g : (K, N, M) device array, gate-gradient rows (N = T*B).
    d_h : (K or 1, >= N, P) device array, the matching inputs (only the first N rows are
        used; one for all members when its first axis is 1).
    d_dw : (K, M, P) device output; d_db : (K, M) device output or None (not wanted).
    """
    K, N, M = d_g.shape
    P = d_dw.shape[2]
    if K == 0 or M == 0:
        return
    matmul_tn[(-(-M // TILE), max(1, -(-P // TILE)), K), (TILE, TILE)](d_g, d_h, d_dw)
    if d_db is not None:
        nt = threads_for(M)
        colsum[(-(-M // nt), K), nt](d_g, d_db)


def input_grad(d_g, wih, shape):
    """The gradient with respect to the layer's input, ``dx[m] = g[m] @ W_ih[m]``, on the
    device: ``d_g`` (K, N, G) the gate gradients, ``wih`` (K, G, D) host array (D = 0:
    none, nothing launched). Returns ``dx`` on the host, reshaped to ``shape`` (K, T, B,
    D); rows past a sequence's end are zero, as its gate gradients are."""
    K, N, _ = d_g.shape
    D = wih.shape[2]
    d_dx = cuda.device_array((K, N, D), d_g.dtype)
    if K and N and D:
        (d_w,) = to_device(wih)
        # launched here, not through matmul(): the tests count matmul's per-step launches
        matmul_nn[(-(-D // TILE), -(-N // TILE), K), (TILE, TILE)](d_g, d_w, d_dx, False)
    return d_dx.copy_to_host().reshape(shape)


def input_weight_grads(d_g, xin, d_db=None):
    """The input weights' gradient ``dW_ih[m] = g[m].T @ x[m]`` (and ``db_ih`` into
    ``d_db`` when given) on the device, from the gate gradients ``d_g`` (K, N, G) and the
    layer's input ``xin`` (K or 1, T, B, D) host array, N = T*B. Returns the device array
    dW_ih (K, G, D)."""
    K, N, G = d_g.shape
    (d_x,) = to_device(xin.reshape(xin.shape[0], N, xin.shape[3]))
    d_dw = cuda.device_array((K, G, xin.shape[3]), d_g.dtype)
    weight_grads(d_g, d_x, d_dw, d_db)
    return d_dw
