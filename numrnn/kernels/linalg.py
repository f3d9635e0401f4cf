"""The matrix products of the time loops and around them.

Inside the loops: each step's recurrent product (:func:`step_dot`) and input projection
(:func:`project`) of a block's rows, and in BPTT the step's gradient with respect to
the input (:func:`loop_input_weights`). Around them: the weight gradients, the output head
and, for a single sequence, the input's gradient are single products per member, much
larger than a step's.
Numba's ``np.dot`` calls a single-threaded BLAS here (see ``_parallel.serial_blas``), so
these split the rows (or the summed-over dimension) across threads themselves. One BLAS, one
thread pool.

How a product runs is decided at run time from ``plan`` (``_config.product_plan()``, passed
down to every product, not read as a global, which Numba would freeze into each cached
kernel: a caller and a callee compiled at different times could then disagree): the
smallest as :func:`add_dot_loops`' compiled loops (:func:`use_loops`); above them, where
``plan`` is ``PANELS``, as numrnn's register tiles over packed panels
(``panels.add_dot_panels``, which gives the loops' bits), else (``plan`` None) as one BLAS
call. The kernels test ``plan is None``, which Numba decides for a None argument before
typing the branches: the BLAS plan's kernels contain no panels.

Member axes: an operand with a leading size 1 is shared by every member (e.g. the same input
x for all networks of an ensemble).
"""

import numpy as np
from numba import njit

from ._compiling import callee
from ._config import (
    FASTMATH_IN_ORDER,
    LOOP_PRODUCT,
    LOOP_PRODUCT_ALIASED,
    LOOP_PRODUCT_PANELS,
    LOOP_PRODUCT_TN,
    product_plan,
)
from ._parallel import blocks, run_items, span
from ._simd import WIDTH, vfma, vload, vstore
from ._views import strided
from .panels import (
    TILE_ROWS,
    add_dot_panels,
    empty_panels,
    fills_better,
    pack,
    pack_weights,
    packed,
    wide,
)

# Kernels copy and sum arrays element by element with these, never with whole-array
# assignment (``a[m] = b``, ``a += b``) or ``sum(axis=...)``: those make Numba compile a
# shape-mismatch message and reduction machinery, about 4 s per cold process, which the
# time to first result (``numrnn demo``, 30 s budget) cannot spare.


@callee()
def copy2d(dst, src, add):
    """``dst[...] = src`` (``add``: ``dst += src``) for 2-d arrays of the same shape."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = dst[i, j] + src[i, j] if add else src[i, j]


@callee()
def clear2d(a):
    """``a[...] = 0`` for a 2-d array."""
    zero = a.dtype.type(0)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] = zero


def step_weights(w, rows, plan):
    """What :func:`step_dot` and :func:`project` need besides w (K, F, N) for blocks of up
    to ``rows`` rows: with ``plan`` = ``PANELS``, every member's panels (K, P F, NP)
    (``panels.pack_weights``) unless the loops take every such product; else an empty
    (K, 0, 0). Plain NumPy, called before a kernel."""
    K, F, N = w.shape
    if plan is not None and not use_loops(rows, F, N, N * w.itemsize, w.itemsize, plan):
        return pack_weights(w)
    return np.empty((K, 0, 0), w.dtype)


@callee()
def blas_dot(a, b, out):
    """``out = a @ b`` as one BLAS call (Numba's ``np.dot``): NumPy's product in a function
    of its own, compiled once per dtype and layout of ``a`` (C-contiguous, or transposed
    for the weight gradients) and cached, where inlined into each product and kernel it
    compiled once for each (0.15-0.2 s each time, two to three times in every first
    forward + backward). Not typed as of any layout (``strided``): Numba then warns that
    the product is faster on contiguous arrays."""
    np.dot(a, b, out)


@callee()
def dot_rows(a, b, out, plan, bp):
    """``out = a @ b`` (a and out C-contiguous): with ``plan`` = ``PANELS`` as the panels,
    b packed first into ``bp`` (``b`` changes from call to call here: a step's Jacobian),
    unless the loops would take the product; otherwise (and then) one BLAS call. b may be
    a transposed view. bp : room for b's panels (``panels.empty_panels(K, N, b)``, made
    once by a caller that multiplies at every step), or an array without rows (then made
    here where needed)."""
    M, K = a.shape
    N = b.shape[1]
    if plan is not None and not use_loops(M, K, N, N * b.itemsize, b.itemsize, plan):
        if bp.shape[0] == 0:
            bp = empty_panels(K, N, b)
        pack(b, bp)
        clear2d(out)
        add_dot_panels(strided(a), bp, out)
        return
    blas_dot(a, b, out)


@callee(fastmath=FASTMATH_IN_ORDER)
def add_dot_loops(a, b, out):
    """``out += a @ b`` as loops over vectors of eight columns, for products of at most
    ``LOOP_PRODUCT`` multiply-adds (a small network's step), where a BLAS call's fixed cost
    exceeds the arithmetic. ``b`` and ``out`` C-contiguous; ``a`` is read element by
    element, so it may be a transposed view (``a.T @ b`` for the weight gradients).

    ``out[i, j:j+8] += a[i, k] * b[k, j:j+8]`` over k is one vector multiply-add per k
    (``_simd``). Four such sums run side by side, so that each waits less on the one
    before: four rows sharing each load of b's row, and for the rows left over, four
    blocks of columns. Columns past the last full vector are scalar sums, again four rows
    at once. Each path is one loop nest (a group short of four repeats a row or block:
    each loop nest costs about 0.2-0.4 s of every first compile). Every element
    is the same sum over k in order, fused multiply-adds, however the rows and columns
    are grouped, so a row's result does not depend on the other rows (compiled without
    ``reassoc``, see ``FASTMATH_IN_ORDER``).
    """
    M, K = a.shape
    N = out.shape[1]  # b may have more columns (:func:`loop_weights`' padding)
    W = WIDTH
    N8, M4 = N - N % W, M - M % 4
    for i in range(0, M4, 4):
        a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        for j in range(0, N8, W):
            c0, c1 = vload(out, i, j), vload(out, i + 1, j)
            c2, c3 = vload(out, i + 2, j), vload(out, i + 3, j)
            for k in range(K):
                bk = vload(b, k, j)
                c0, c1 = vfma(a0[k], bk, c0), vfma(a1[k], bk, c1)
                c2, c3 = vfma(a2[k], bk, c2), vfma(a3[k], bk, c3)
            vstore(out, i, j, c0)
            vstore(out, i + 1, j, c1)
            vstore(out, i + 2, j, c2)
            vstore(out, i + 3, j, c3)
    for i in range(M4, M):
        ai = a[i]
        for j0 in range(0, N8, 4 * W):
            # the last group repeats its last block where fewer than four are left (the
            # copies compute and store the same numbers)
            j1, j2, j3 = min(j0 + W, N8 - W), min(j0 + 2 * W, N8 - W), min(j0 + 3 * W, N8 - W)
            c0, c1 = vload(out, i, j0), vload(out, i, j1)
            c2, c3 = vload(out, i, j2), vload(out, i, j3)
            for k in range(K):
                x = ai[k]
                c0, c1 = vfma(x, vload(b, k, j0), c0), vfma(x, vload(b, k, j1), c1)
                c2, c3 = vfma(x, vload(b, k, j2), c2), vfma(x, vload(b, k, j3), c3)
            vstore(out, i, j3, c3)
            vstore(out, i, j2, c2)
            vstore(out, i, j1, c1)
            vstore(out, i, j0, c0)
    for j in range(N8, N):  # the columns past the last vector, four rows at once likewise
        for i in range(0, M, 4):
            i1, i2, i3 = min(i + 1, M - 1), min(i + 2, M - 1), min(i + 3, M - 1)
            a0, a1, a2, a3 = a[i], a[i1], a[i2], a[i3]
            s0, s1, s2, s3 = out[i, j], out[i1, j], out[i2, j], out[i3, j]
            for k in range(K):
                bk = b[k, j]
                s0, s1, s2, s3 = s0 + a0[k] * bk, s1 + a1[k] * bk, s2 + a2[k] * bk, s3 + a3[k] * bk
            out[i3, j], out[i2, j], out[i1, j], out[i, j] = s3, s2, s1, s0


@njit(cache=True, nogil=True)
def use_loops(M, K, N, row_bytes, itemsize, plan):
    """Whether :func:`add_dot_loops` beats the other path at (M, K) @ (K, N) of numbers of
    ``itemsize`` bytes, b's rows ``row_bytes`` apart. Against the panels (``plan`` =
    ``PANELS``): up to ``_config.LOOP_PRODUCT_PANELS`` multiply-adds, for fewer rows than a
    tile's, or where N is under half a panel. Against BLAS: up to ``LOOP_PRODUCT``
    multiply-adds, ``LOOP_PRODUCT_ALIASED`` where b's rows lie a multiple of 2 KB apart.
    Monotone in M: blocks of fewer rows take the loops too where the largest does."""
    work = M * K * N
    if plan is not None:
        return work <= LOOP_PRODUCT_PANELS or M < TILE_ROWS or not wide(N, itemsize)
    if row_bytes % 2048 == 0:
        return work <= LOOP_PRODUCT_ALIASED
    return work <= LOOP_PRODUCT


def loop_weights(w, rows, plan):
    """``w`` (K, F, N), or where that lets blocks of up to ``rows`` rows take the loops
    (:func:`use_loops`), a zero-padded copy (K, F, N') whose rows lie an odd number of
    64-byte lines apart: rows a multiple of 2 KB apart share a few L1 sets, and the loops,
    which read a column block again for every four rows, lose it to conflict misses. An
    LSTM of 64 units in float64 (W_hh^T is 64 x 256): (16, 64) @ (64, 256) 8.8 us padded,
    13.9 us unpadded and 13.9 us as one BLAS call. :func:`step_dot` and :func:`project`
    take the product's width from ``out``; the padding is only ever read by the loops.
    Plain NumPy, called before a kernel, like :func:`step_weights`."""
    K, F, N = w.shape
    if plan is not None or (N * w.itemsize) % 2048:
        return w
    padded = (-(-N * w.itemsize // 64) | 1) * 64 // w.itemsize
    if not use_loops(rows, F, N, padded * w.itemsize, w.itemsize, plan):
        return w
    out = np.zeros((K, F, padded), w.dtype)
    out[:, :, :N] = w
    return out


@callee()
def step_dot(a, b, bp, out, plan):
    """``out = a @ b`` for a time step's few rows: as :func:`add_dot_loops`' loops where
    :func:`use_loops`, else as the panels or as one BLAS call.

    a : (M, K); b : (K, N) or wider (:func:`loop_weights`: then the loops run); bp : b's
    panels from :func:`step_weights` (read by the panels only); out : (M, N). All
    C-contiguous. ``plan``: ``_config.product_plan()``.
    """
    M, K = a.shape
    N = out.shape[1]
    if use_loops(M, K, N, b.shape[1] * b.itemsize, b.itemsize, plan):
        clear2d(out)
        add_dot_loops(strided(a), b, out)
    elif plan is not None:
        clear2d(out)
        add_dot_panels(strided(a), bp, out)
    else:
        blas_dot(a, b, out)


@callee()
def project(x, w, wp, bias, out, add, scratch, plan):
    """``out = x @ w + bias`` (``add``: ``out += x @ w + bias``): a time step's input
    projection of a block's rows, added to its recurrent product where the cell allows.

    x : (M, D); w : (D, G) ``W_ih.T``, or wider (:func:`loop_weights`); wp : w's panels
    from :func:`step_weights`; bias : (G,); out : (M, G); scratch : at least M G numbers
    (a BLAS call's result). All C-contiguous. The product is :func:`add_dot_loops` or the
    panels, both of which add to ``out`` (after the bias), or one BLAS call, as in
    :func:`step_dot`.
    """
    M, D = x.shape
    G = out.shape[1]
    loops = use_loops(M, D, G, w.shape[1] * w.itemsize, w.itemsize, plan)
    if loops or plan is not None:  # products that add to out: the bias first
        for i in range(M):
            o = out[i]
            for k in range(G):
                o[k] = o[k] + bias[k] if add else bias[k]
        if loops:
            add_dot_loops(strided(x), w, out)
        elif plan is not None:  # a branch of its own: pruned from BLAS's plan
            add_dot_panels(strided(x), wp, out)
        return
    # one BLAS call into the scratch, reshaped only here: a view of an array the kernel
    # allocated is reference-counted, and with the reshape's C call that cost a tiny
    # network's forward kernel 5-10% of its time at every step
    xw = scratch[: M * G].reshape((M, G))
    blas_dot(x, w, xw)
    for i in range(M):
        o, p = out[i], xw[i]
        for k in range(G):
            o[k] = (o[k] + bias[k] if add else bias[k]) + p[k]


def matmul(a, b, bias):
    """``a[k] @ b[k] + bias[k]`` for every member: a (Ka, M, F), b (K, F, O), bias (K, O)
    or (0, 0) for none -> (K, M, O), Ka in {1, K}.

    Rows of ``a`` are split across threads; both arrays C-contiguous. The bias is added
    to each block while it is still in cache (not in a second pass over the result). With
    ``_config.product_plan()`` = ``PANELS``, a product at least half a panel wide runs as
    the panels, b packed once for all blocks.
    """
    K, M, O = b.shape[0], a.shape[1], b.shape[2]
    out = np.empty((K, M, O), a.dtype)
    items, per_member, rows = blocks(K, M, a.shape[2] * O)
    plan = product_plan()
    if plan is None:  # BLAS's plan: the kernel compiled without the panels
        bp = None
    elif wide(O, b.itemsize):
        bp = pack_weights(b)
    else:  # narrower than half a panel: BLAS calls
        bp = np.empty((K, 0, 0), b.dtype)
    run_items(_matmul_items, items, a, b, bp, bias, out, per_member, rows)
    return out


@njit(cache=True, nogil=True)
def _matmul_items(a, b, bp, bias, out, per_member, rows, first, step):
    """The blocks of rows ``range(first, K * per_member, step)`` of :func:`matmul`; ``bp``
    b's panels, or (K, 0, 0) or None for BLAS calls."""
    K, M, O = out.shape
    for item in range(first, K * per_member, step):
        k, lo, hi = span(item, per_member, rows, M)
        block = out[k][lo:hi]
        ak = a[k if a.shape[0] == K else 0][lo:hi]
        if bp is not None and bp.shape[1]:
            clear2d(block)
            add_dot_panels(strided(ak), bp[k], block)
        else:
            blas_dot(ak, b[k], block)
        if bias.shape[1] != O:
            continue
        c = bias[k]
        for i in range(hi - lo):
            r = block[i]
            for j in range(O):
                r[j] += c[j]


def loop_input_weights(wih, per_member):
    """What a BPTT kernel's time loop multiplies its gate gradients by, step by step, for
    dL/dx: ``wih`` (K, G, D) where the loop splits each member's rows into several blocks
    (``per_member`` > 1), whose threads then make dL/dx too (a product after the loop would
    fork and join them once more, 25-80 us on a 2-vCPU VM: a tanh RNN's backward pass at
    (100, 32, 32, 64) took 1.09x as long in the median of seven rounds in one process,
    0.83-1.14x); for one block per member none, (K, G, 0), and :func:`input_grad` makes it
    after the loop: one sequence's steps make products of one row, whose sums over G wait
    on each other (an LSTM of 32 units with 8 inputs: 125 against 113 us).

    Decided by the split of a member's rows, never by the number of members K: the two
    ways sum dL/dx in different orders where BLAS makes the product after the loop (its
    AVX-512 kernels, OpenBLAS's SkylakeX, do not sum over G in order), and a member's
    results must be the same bits alone as in an ensemble."""
    return wih if per_member > 1 else wih[:, :, :0]


def input_grad(dxp, wih, dx=None):
    """dL/dx (K, T, B, D): ``dx`` where the time loop made it (given W_ih by
    :func:`loop_input_weights`), else ``dxp @ wih`` per member, one product: dxp (K, T, B,
    G) the gate gradients, wih (K, G, D)."""
    if dx is not None and dx.shape[3] == wih.shape[2]:
        return dx
    K, T, B, G = dxp.shape
    if wih.shape[2] == 0:  # no input gradient wanted (an empty W_ih)
        return np.empty((K, T, B, 0), dxp.dtype)
    none = np.empty((0, 0), dxp.dtype)
    return matmul(dxp.reshape(K, T * B, G), wih, none).reshape(K, T, B, wih.shape[2])


def matmul_tn(a, b, c):
    """The products of a gradient with the inputs of the product it flowed back through,
    and its sum, in one pass over the gradient: for every member k,

        ab[k] = sum_t a[k, t].T @ b[k, t],  ac[k] = sum_t a[k, t].T @ c[k, t],
        s[k] = sum_(t, i) a[k, t, i]

    (weight gradients: ``a`` the gate gradients, ``b`` the states h_(t-1) and ``c`` the
    layer's input x_t; ``s`` the bias gradient).

    Parameters
    ----------
    a : (K, T, B, G)
    b : (Kb, T or more, B, D), Kb in {1, K}; only its first T steps are used.
    c : (Kc, T or more, B, E), Kc in {1, K}, or (0, 0, 0, 0) for no ``ac``.

    Returns
    -------
    ab : (K, G, D); ac : (K, G, E); s : (K, G)

    The T*B rows are split into blocks whose partial products are added. A block's
    products run as the panels where ``_config.product_plan()`` is ``PANELS`` (b or c
    packed per block), else, or where narrower than half a panel, as one BLAS call each. A
    block of a small network (``_config.LOOP_PRODUCT_TN``) is :func:`add_dot_loops`' sums
    over its rows instead (one BLAS call per member and product cost more: for 1024 tanh
    RNNs, T=50, B=8, D=2, H=8, float64, 4.3 against 7.4 ms a call under cProfile). ``ac``
    and ``s`` are taken from each block while it is still in cache: for 64 LSTMs (T=100,
    B=16, D=4, H=32) that is 12 ms for all three instead of 19 ms in three passes over
    ``a`` (105 MB in float64).
    """
    K, T, B, G = a.shape
    D, E = b.shape[3], c.shape[3]
    items, per_member, rows = blocks(K, T * B, G * (D + E))
    plan = product_plan()
    pab = np.empty((K, per_member, G, D), a.dtype)
    pac = np.empty((K, per_member, G, E), a.dtype)
    ps = np.zeros((K, per_member, G), a.dtype)
    run_items(_matmul_tn_items, items, a, b, c, pab, pac, ps, rows, plan)
    if per_member == 1:  # one block per member: its products are the results
        return pab[:, 0], pac[:, 0], ps[:, 0]
    # the blocks' partial results, added in a fixed order (a member's sums do not depend
    # on the threads that computed them)
    ab, ac, s = pab[:, 0].copy(), pac[:, 0].copy(), ps[:, 0].copy()
    for j in range(1, per_member):
        ab += pab[:, j]
        ac += pac[:, j]
        s += ps[:, j]
    return ab, ac, s


@njit(cache=True, nogil=True)
def _matmul_tn_items(a, b, c, pab, pac, ps, rows, plan, first, step):
    """The blocks of rows ``range(first, K * per_member, step)`` of :func:`matmul_tn`, each
    writing its partial products ``pab[k, j]``, ``pac[k, j]`` and sum ``ps[k, j]``."""
    K, T, B, G = a.shape
    per_member = ps.shape[1]
    M, D, E = T * B, b.shape[3], c.shape[3]
    loops = rows * G * (D + E) <= LOOP_PRODUCT_TN
    for item in range(first, K * per_member, step):
        k, lo, hi = span(item, per_member, rows, M)
        ab, ac, s = pab[k, item % per_member], pac[k, item % per_member], ps[k, item % per_member]
        ak = a[k].reshape(M, G)
        at = ak[lo:hi].T
        ap = empty_panels(0, G, ak)  # the block's panels, packed once where first needed
        for p in range(2 if c.shape[0] else 1):  # one call site: LLVM inlines each once
            src = b if p == 0 else c
            src = src[k if src.shape[0] == K else 0, :T].reshape(M, src.shape[3])[lo:hi]
            dst = ab if p == 0 else ac
            # the panels' branch first: Numba compiles the helpers in this order, and the
            # second process (``nn.ahead``) thus compiles the panels while the first
            # compiles the loops for the forward kernel, each loading the other's
            if not loops and plan is not None and wide(dst.shape[1], dst.itemsize):
                if fills_better(G, dst.shape[1], dst.itemsize):
                    # src's few columns would leave their panels partly zeros (32 floats
                    # fill half of one): the product transposed, (src.T @ a)^T, a's G
                    # columns in the panels; each element is the same sum over the rows
                    # in order, the same bits (an LSTM's input-weight gradient, 32 inputs,
                    # G = 512, float32, a block of 3200 rows: 1.6-1.9 against 2.8-2.9 ms)
                    if ap.shape[0] == 0:
                        ap = packed(ak[lo:hi])
                    dt = np.empty((dst.shape[1], G), dst.dtype)
                    clear2d(dt)
                    add_dot_panels(strided(src.T), ap, dt)
                    for i in range(G):
                        for j in range(dst.shape[1]):
                            dst[i, j] = dt[j, i]
                else:
                    clear2d(dst)
                    add_dot_panels(strided(at), packed(src), dst)
            elif loops:
                clear2d(dst)
                add_dot_loops(strided(at), src, dst)
            else:
                blas_dot(at, src, dst)
        for r in range(lo, hi):
            row = ak[r]
            for j in range(G):
                s[j] += row[j]
