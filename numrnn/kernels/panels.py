"""Matrix products as register tiles over packed panels: numrnn's own GEMM kernel.

``out += a @ b`` with ``b`` (K, N) copied beforehand into panels of ``NP`` columns
(:func:`pack`, :func:`pack_weights`): panel p holds ``b[:, p NP : (p + 1) NP]`` as K
consecutive rows of NP numbers, zero past b's last column. NP is four cache lines (32
doubles or 64 floats). The kernel takes the product four rows of ``a`` at a time: a tile
of 4 x 4 lines, sixteen vector accumulators (half of AVX-512's 32 registers), each step
over k one load of the panel's four lines, four broadcasts of ``a``'s elements and
sixteen fused multiply-adds. The panel is read from consecutive memory once per four rows,
in chunks of ``DEPTH`` rows that stay in cache while every tile of rows passes over them.

Why: on an AVX-512 host whose OpenBLAS runs its AVX2 (Haswell) kernels, as NumPy's and
scipy's wheels may choose (``OPENBLAS_CORETYPE``), this runs at about the core's peak: on
a Zen 5 core, (64, 512) @ (512, 2048) 0.57 ms in float32 against OpenBLAS's 1.29 ms (234
against 104 GFLOP/s), and 1.25 against 3.15 ms in float64; a step's (32, 64) @ (64, 256)
9.4 against 23.6 us, and 2-5x the vector loops of ``linalg.add_dot_loops`` above the
smallest products (``python benchmarks/bench_step_dot.py``). Packing a weight once per
call costs one pass over it; a product with it costs K passes over a's rows.

Every element of ``out`` is the same sum as in ``add_dot_loops``: over k in order, one
fused multiply-add per term, starting from ``out``'s value. The two give the same bits,
so which one a product takes (``linalg.use_loops``) never changes a result, nor do the
rows grouped in a tile (a short tile repeats its last row: the copies compute and store
the same numbers).
"""

import numpy as np
from numba import njit

from ._compiling import callee
from ._config import FASTMATH_IN_ORDER
from ._simd import LINE, line_lanes, line_load, line_load_n, line_store_n, vfma

#: rows of ``a`` in a tile, and cache lines of columns in a panel
TILE_ROWS = 4
TILE_LINES = 4
#: rows of a panel a tile takes in one pass (64 KB of a panel, in L2 for every tile)
DEPTH = 256


def panel_width(dtype):
    """Columns NP of a panel of ``dtype``: 32 for float64, 64 for float32."""
    return TILE_LINES * LINE // np.dtype(dtype).itemsize


def pack_weights(w):
    """The panels of every member's ``w[k]``: w (K, F, N) -> (K, P F, NP), P = ceil(N /
    NP), zero past column N. Plain NumPy, before a kernel (as ``linalg.step_weights``)."""
    K, F, N = w.shape
    NP = panel_width(w.dtype)
    P = -(-N // NP)
    out = np.zeros((K, P, F, NP), w.dtype)
    for p in range(P):
        cols = w[:, :, p * NP : (p + 1) * NP]
        out[:, p, :, : cols.shape[2]] = cols
    return out.reshape(K, P * F, NP)


@callee()
def pack(b, bp):
    """The panels of ``b`` (K, N), any layout, into ``bp`` (P K, NP), as :func:`pack_weights`."""
    K, N = b.shape
    NP = bp.shape[1]
    zero = bp.dtype.type(0)
    for p in range(bp.shape[0] // K if K else 0):
        for k in range(K):
            row = bp[p * K + k]
            for j in range(NP):
                c = p * NP + j
                row[j] = b[k, c] if c < N else zero


@callee()
def empty_panels(K, N, like):
    """An array (P K, NP) to :func:`pack` a (K, N) matrix of ``like``'s dtype into."""
    NP = TILE_LINES * LINE // like.itemsize
    return np.empty((-(-N // NP) * K, NP), like.dtype)


@callee()
def packed(b):
    """The panels of ``b`` (K, N) in a new array (P K, NP) (:func:`pack`)."""
    bp = empty_panels(b.shape[0], b.shape[1], b)
    pack(b, bp)
    return bp


@njit(cache=True, nogil=True)
def wide(N, itemsize):
    """Whether a product N columns wide fills at least half a panel (else the rest of the
    panel's columns would be zeros multiplied)."""
    return 2 * N * itemsize >= TILE_LINES * LINE


@njit(cache=True, nogil=True)
def fills_better(N1, N2, itemsize):
    """Whether N1 columns fill their panels better than N2 columns fill theirs (a smaller
    share of the panels' columns zeros past the last): then ``(b.T @ a.T).T``, b's N2
    columns as the rows, makes ``a @ b`` with fewer zeros multiplied."""
    NP = TILE_LINES * LINE // itemsize
    return N1 * -(-N2 // NP) > N2 * -(-N1 // NP)  # N1 / (P1 NP) > N2 / (P2 NP)


@callee(fastmath=FASTMATH_IN_ORDER)
def add_dot_panels(a, bp, out):
    """``out += a @ b`` with ``b`` (K, N) given as its panels ``bp`` (:func:`pack`).

    a : (M, K), read element by element (it may be a transposed view); bp : (P K, NP),
    C-contiguous; out : (M, N), C-contiguous, N <= P NP.
    """
    M, K = a.shape
    N = out.shape[1]
    if M == 0 or K == 0:
        return
    w = line_lanes(bp)
    P = bp.shape[0] // K
    for k0 in range(0, K, DEPTH):
        k1 = min(K, k0 + DEPTH)
        for p in range(P):
            j0 = p * TILE_LINES * w
            j1, j2, j3 = j0 + w, j0 + 2 * w, j0 + 3 * w
            # lanes of out each line holds (the last panel's may hold fewer, or none)
            n0, n1 = min(w, max(0, N - j0)), min(w, max(0, N - j1))
            n2, n3 = min(w, max(0, N - j2)), min(w, max(0, N - j3))
            r = p * K
            for i0 in range(0, M, TILE_ROWS):
                i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
                c00, c01 = line_load_n(out, i0, j0, n0), line_load_n(out, i0, j1, n1)
                c02, c03 = line_load_n(out, i0, j2, n2), line_load_n(out, i0, j3, n3)
                c10, c11 = line_load_n(out, i1, j0, n0), line_load_n(out, i1, j1, n1)
                c12, c13 = line_load_n(out, i1, j2, n2), line_load_n(out, i1, j3, n3)
                c20, c21 = line_load_n(out, i2, j0, n0), line_load_n(out, i2, j1, n1)
                c22, c23 = line_load_n(out, i2, j2, n2), line_load_n(out, i2, j3, n3)
                c30, c31 = line_load_n(out, i3, j0, n0), line_load_n(out, i3, j1, n1)
                c32, c33 = line_load_n(out, i3, j2, n2), line_load_n(out, i3, j3, n3)
                for k in range(k0, k1):
                    x0, x1, x2, x3 = a[i0, k], a[i1, k], a[i2, k], a[i3, k]
                    b = line_load(bp, r + k, 0)
                    c00, c10 = vfma(x0, b, c00), vfma(x1, b, c10)
                    c20, c30 = vfma(x2, b, c20), vfma(x3, b, c30)
                    b = line_load(bp, r + k, w)
                    c01, c11 = vfma(x0, b, c01), vfma(x1, b, c11)
                    c21, c31 = vfma(x2, b, c21), vfma(x3, b, c31)
                    b = line_load(bp, r + k, 2 * w)
                    c02, c12 = vfma(x0, b, c02), vfma(x1, b, c12)
                    c22, c32 = vfma(x2, b, c22), vfma(x3, b, c32)
                    b = line_load(bp, r + k, 3 * w)
                    c03, c13 = vfma(x0, b, c03), vfma(x1, b, c13)
                    c23, c33 = vfma(x2, b, c23), vfma(x3, b, c33)
                # the last row first: a short tile's copies of it hold the same numbers
                line_store_n(out, i3, j0, c30, n0)
                line_store_n(out, i3, j1, c31, n1)
                line_store_n(out, i3, j2, c32, n2)
                line_store_n(out, i3, j3, c33, n3)
                line_store_n(out, i2, j0, c20, n0)
                line_store_n(out, i2, j1, c21, n1)
                line_store_n(out, i2, j2, c22, n2)
                line_store_n(out, i2, j3, c23, n3)
                line_store_n(out, i1, j0, c10, n0)
                line_store_n(out, i1, j1, c11, n1)
                line_store_n(out, i1, j2, c12, n2)
                line_store_n(out, i1, j3, c13, n3)
                line_store_n(out, i0, j0, c00, n0)
                line_store_n(out, i0, j1, c01, n1)
                line_store_n(out, i0, j2, c02, n2)
                line_store_n(out, i0, j3, c03, n3)
