"""Compile-time settings of the Numba kernels in :mod:`numrnn.kernels`, in one place.

Numba freezes a kernel's globals when it compiles it (and caches the result), so these
are constants, not options: change one here and the kernels recompile. The one setting
that depends on the machine and the options, :func:`product_plan`, is passed to the
kernels as an argument instead (its type, not only its value, tells the panels from BLAS:
see :func:`product_plan`). Run-time options are in :mod:`numrnn._options`.
"""

import functools

from .._options import OPTIONS

# LLVM fast-math flags for ``@njit(fastmath=FASTMATH)``.  Deliberately *without*
# ``nnan`` and ``ninf``: with those LLVM may assume no NaN/inf ever occurs and fold
# away ``isnan``/``isinf`` checks, which would hide exploding gradients from the
# diagnostics.  ``contract`` lets LLVM fuse ``a*b + c`` into FMA instructions;
# ``reassoc`` permits re-ordering sums (vectorised reductions).  Compensated
# tricks must not rely on evaluation order under these flags: the helpers in
# ``_math.py`` use explicit LLVM intrinsics for the order-sensitive steps.
# A plain ``set``: Numba rejects ``frozenset`` here.  Treat it as read-only.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# FASTMATH without ``reassoc``, for ``linalg.add_dot_loops``: its scalar column tails must
# sum over k in order, as its vector lanes do (``llvm.fmuladd``, which no flag reorders), so
# that every element is the same sum however rows are grouped. (Reassociated, the earlier
# scalar loops were also vectorised over k with gathers, 2.2x slower: 242 -> 108 ns.)
FASTMATH_IN_ORDER = FASTMATH - {"reassoc"}


# -- How work is split across threads (_parallel.py) ---------------------------------

# A product of fewer multiply-adds than this runs as one block per member: splitting it
# costs more (the fork and join of a second thread: on a 2-vCPU VM 25 us at best and 80 us
# in the median, for an empty kernel; and for matmul_tn a sum of the partial products)
# than it saves. (100, 8) @ (8, 128) takes about 1 us on one core. At 2**18 a tanh RNN's
# weight gradients (T=50, B=16, D=2, H=32: 870k) were split, and its forward + backward ran
# about 1.2x slower in the median than with this limit (both with MIN_LOOP_WORK).
MIN_BLOCK_WORK = 2**20

# A time loop splits a member's rows between threads only into blocks whose share of a
# step's recurrent product has at least MIN_STEP_WORK multiply-adds (so steps of at least
# twice as many), and whose share of the whole loop, over its T steps, at least
# MIN_LOOP_WORK. Below the first, each block pays every step's fixed costs (loop set-up, a
# product's call) for little arithmetic: a tanh RNN (T=100, B=8, D=2, H=8) ran forward +
# backward in 0.16-0.23 ms as one block and 0.29-0.74 ms as two, and up to 8 x 32 x 32 the
# split gained nothing on a 2-vCPU machine (benchmarks/bench_blocks.py). Below the second,
# running half the loop on a second thread saves less than its fork and join cost in the
# median: a tanh RNN with T=50, B=16, H=32 (410k a block) ran 1.4-1.7x faster as one
# block, in the median of interleaved runs, and its training steps 1.6x faster; splits of
# 1.2M and more (an LSTM or GRU of that size) ran as fast as one block or faster.
MIN_STEP_WORK = 2**13
MIN_LOOP_WORK = 2**20


# -- Products (linalg.py) ------------------------------------------------------------

#: :func:`product_plan` where products run as numrnn's packed panels (``panels.py``)
PANELS = -1


@functools.cache
def wide_vectors():
    """Whether the CPU Numba compiles the kernels for has 64-byte vectors (AVX-512F): this
    one, or the target named by ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` (a portable
    cache's, e.g. ``generic``, where a 64-byte vector would be four SSE registers)."""
    import llvmlite.binding as llvm
    from numba.core import config

    if config.CPU_NAME and config.CPU_NAME != "host":
        return "+avx512f" in (config.CPU_FEATURES or "")
    return bool(llvm.get_host_cpu_features().get("avx512f", False))


def product_plan():
    """How the kernels multiply matrices, passed to them as an argument (``plan``):
    :data:`PANELS` where the option ``products`` says so (by default where the CPU has
    64-byte vectors: a tile of sixteen of them needs 32 registers' worth), else None (one
    BLAS call per product). Either way the smallest products run as compiled loops
    (``linalg.use_loops``).

    None is a type of its own to Numba, so a kernel compiles once for each plan, and the
    code tests ``plan is None`` (never its value), which Numba decides for a None
    argument before it types the branches: a kernel compiled for BLAS contains no panels
    (one compiled for the panels keeps its BLAS calls: Numba prunes no branch on an
    integer's value). Where the CPU has no 64-byte vectors the panels never run, and their
    code cost every first forward + backward about 1 s
    (emulating an AVX2 host on an AVX-512 one, with ``products="blas"``: a GRU with a head,
    float64, 6.0-6.2 against 6.7-7.1 s; an LSTM, float32, 4.8 against 6.0-6.2 s).

    OpenBLAS's small-matrix kernels, which an earlier version cut each step's product
    into pieces for, exist only on its AVX-512 cores, where the panels now run instead:
    the pieces' code cost 1.3-2.4 s of every first forward pass (a tanh RNN's forward
    kernel compiled in 4.6-6.5 s without it, 6.7-8.8 s with it)."""
    choice = OPTIONS["products"]
    if choice == "panels" or (choice == "auto" and wide_vectors()):
        return PANELS
    return None


# Up to this many multiply-adds a step's product runs as compiled loops over vectors
# (``linalg.add_dot_loops``), not as a BLAS call (``linalg.use_loops``): the call costs
# 100-300 ns before any arithmetic, and up to about 2^18 multiply-adds OpenBLAS's general
# kernels (Haswell, Zen) are slower than the loops, unless b's rows lie a multiple of 2 KB
# apart (``LOOP_PRODUCT_ALIASED``): a column block of b then falls into few L1 sets, and the
# loops, which read it again for every four rows, lose it to conflict misses (BLAS packs b
# first). The forward kernels pad such weights (``linalg.loop_weights``) where the loops
# then take every step's product.
# Measured on a Zen 5 host (Haswell kernels), loops against one BLAS call, float64:
# (8, 8) @ (8, 8) 24-38 against 142-196 ns, (16, 64) @ (64, 64) 2.1 against 4.2 us,
# (16, 64) @ (64, 192) 6.4 against 10.9 us, (16, 128) @ (128, 128) 10.9 against 14.6 us,
# (32, 128) @ (128, 128) 21.7 against 15.5 us; rows 2 KB apart: (16, 32) @ (32, 256) 7.0
# against 7.9 us, (32, 32) @ (32, 256) 15.8 against 12.6 us; float32 (16, 64) @ (64, 192)
# 5.4 against 7.6 us, (32, 64) @ (64, 192) 12.0 against 11.5 us
# (``python benchmarks/bench_step_dot.py``); compiled for AVX2 only, the ratios are within
# 30% of these.
LOOP_PRODUCT = 2**18
LOOP_PRODUCT_ALIASED = 2**16
# With the panels (``product_plan()`` is ``PANELS``), up to this many, for fewer rows than a
# tile's four, or where the product is narrower than half a panel (whose other columns
# would be zeros multiplied). On the Zen 5 host, loops against panels inside a compiled
# loop (``benchmarks/bench_step_dot.py``), float64: (8, 8) @ (8, 8) 25 against 54 ns,
# (1, 32) @ (32, 128) 157 against 275 ns, (4, 32) @ (32, 32) 100 against 80 ns, (8, 16) @
# (16, 64) 230 against 151 ns, (16, 64) @ (64, 64) 1.76 against 1.12 us, (16, 64) @ (64,
# 256) 14.6 against 4.6 us; float32 alike.
LOOP_PRODUCT_PANELS = 2**12
# The weight gradients' products (``linalg.matmul_tn``: a block's rows summed, ``a`` read
# through a transposed view) take the loops up to this many multiply-adds.
LOOP_PRODUCT_TN = 2**16

# -- Jacobian norms (jacobian.py) ----------------------------------------------------

# Lanczos steps per run, and how often the Ritz pair is checked (each check costs about
# one step). 48 steps: fewer runs end unconverged and fall back to the dense solver.
LANCZOS_STEPS = 48
CHECK_EVERY = 4

# Below this relative gap between the two largest Ritz values (from the second check on),
# Lanczos would need about 0.6 / sqrt(gap) steps per decade of the residual, over a
# hundred here: the dense solver (about 90 steps' cost at S = 128) is cheaper.
CLUSTERED = 0.01
