"""How kernels split work between threads: independent (member, block of sequences) items.

A sequence's recurrence depends only on its own state (the weights are shared and read
only), so every (ensemble member, block of batch rows) pair can run the WHOLE time loop on
its own thread, with no synchronisation between steps. Every member's B rows are split
into as many blocks as there are threads, whatever K, unless its steps are too small to
gain from it (``MIN_STEP_WORK``, ``MIN_LOOP_WORK``): a member's arithmetic (the shapes of its matrix
products, the order of its sums) is then the same alone as in any ensemble, so its
results are too, bit for bit.
"""

import concurrent.futures
import contextlib
import functools
import os
import threading

import numba
from numba import config

from .._options import OPTIONS
from ..memory import keep_freed_memory
from ._compiling import callee
from ._config import MIN_BLOCK_WORK, MIN_LOOP_WORK, MIN_STEP_WORK

# A compile-time constant: calling numba.get_num_threads() inside a kernel would make it
# uncacheable (a dynamic global). Results depend on the split only in the last bits (BLAS
# may round a product of M rows differently for another M).
THREADS = config.NUMBA_NUM_THREADS


@functools.lru_cache(maxsize=4096)
def blocks(K, B, row_work=0, min_work=MIN_BLOCK_WORK):
    """(number of work items, blocks per member, rows per block) for K members of B rows;
    the split of each member's rows does not depend on K. ``row_work``: multiply-adds per
    row of a product, to keep blocks of at least ``min_work`` (0: always split).

    Plain Python, called before a kernel (compiled, it cost 0.4-0.8 s of every first
    use), and remembered: a pass asks it for the same few shapes every time (0.15 against
    0.8 us a call)."""
    per_member = min(B, THREADS)
    if row_work:
        per_member = max(1, min(per_member, B * row_work // min_work))
    rows = -(-B // per_member)
    per_member = -(-B // rows)
    return K * per_member, per_member, rows


@functools.lru_cache(maxsize=4096)
def loop_blocks(K, B, G, H, T):
    """:func:`blocks` for the time loop of T steps of a cell with G gates of H units: a
    member's rows are split only into blocks whose share of a step's recurrent product
    (B x H by H x G H) has at least ``MIN_STEP_WORK`` multiply-adds, and of the whole loop
    at least ``MIN_LOOP_WORK``."""
    return blocks(K, B, G * H * H, max(MIN_STEP_WORK, -(-MIN_LOOP_WORK // max(T, 1))))


@callee()
def span(item, per_member, rows, B):
    """(member, first row, end row) of a work item."""
    m = item // per_member
    lo = (item % per_member) * rows
    return m, lo, min(B, lo + rows)


@callee()
def active_end(batch_sizes, t, lo, hi):
    """End of the active rows of block [lo, hi) at step t (the batch is sorted by length,
    so the active rows are a prefix); ``lo`` when none is active."""
    return max(lo, min(hi, batch_sizes[t]))


_pool = None  # the worker threads of run_items, started on first use
_pool_lock = threading.Lock()


def _workers():
    """The persistent thread pool of :func:`run_items` (Numba's thread count of workers).

    Started once: a new pool per call would start and join its threads every time (about
    0.1 ms, a tenth of a small model's forward pass)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(THREADS, "numrnn-kernel")
        return _pool


def _forget_workers():
    # a forked child has none of the parent's threads: it starts a pool of its own
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_workers)


# Per thread: .threads, the thread count of the pass running on it (0: not read yet);
# .limited, None outside a pass, else whether the pass has limited BLAS (see serial)
_local = threading.local()


def _threads():
    """Threads for a kernel: the pass's count (see :func:`serial`), else Numba's; read once
    per pass (``numba.get_num_threads`` costs about 0.7 us), and only where a kernel asks."""
    threads = getattr(_local, "threads", 0)
    if not threads:
        threads = numba.get_num_threads()
        if getattr(_local, "limited", None) is not None:  # inside a pass: keep it for it
            _local.threads = threads
    return threads


def run_items(kernel, n, *args, poll=None):
    """``kernel(*args, first, step)`` on each of Numba's threads, a Python thread each.

    ``kernel`` is a ``nogil`` kernel that does the work items ``range(first, n, step)``;
    striding balances items whose cost falls with the index (sequences sorted by length).
    This is how every kernel here runs in parallel, rather than with ``prange``: Numba's
    parallel lowering of a time loop took 5-20 s per kernel to compile (then a second
    optimisation of all the code it calls), about half of the time to first result.
    Items run on the calling thread and on a persistent pool (waking a worker costs about
    10-20 us); a single item, or a single thread (:func:`one_thread`), runs on the calling
    thread alone.

    ``poll``: called about every 0.2 s while the kernels run, and once at the end (a
    progress bar reading a counter the kernels write); then even a single thread's work
    runs beside this one.

    Inside a :func:`serial` pass, the first call on several threads limits BLAS to one
    thread until the pass ends (kernels call it from each of their threads).
    """
    threads = max(1, min(n, _threads()))
    if threads > 1 and getattr(_local, "limited", None) is False:
        _enter_serial()  # the pass's first kernel on several threads: BLAS on one each
        _local.limited = True
    if poll is None:
        if threads == 1:
            kernel(*args, 0, 1)
            return
        pool = _workers()
        futures = [pool.submit(kernel, *args, r, threads) for r in range(1, threads)]
        try:
            kernel(*args, 0, threads)
        finally:
            for f in futures:
                f.result()
        return
    futures = [_workers().submit(kernel, *args, r, threads) for r in range(threads)]
    while concurrent.futures.wait(futures, timeout=0.2).not_done:
        poll()
    poll()
    for f in futures:
        f.result()


@callee()
def clear(a, m, t, t_end, lo, hi):
    """``a[m, t:t_end, lo:hi] = 0``: the rows of sequences past their end. Kernels allocate
    their outputs uninitialised and zero only these (a full np.zeros pass over an
    ensemble's trajectories costs as much as a kernel's arithmetic on them)."""
    for s in range(t, t_end):
        for b in range(lo, hi):
            for j in range(a.shape[3]):
                a[m, s, b, j] = 0


_blas = None  # (get, set) thread-count functions of each loaded BLAS library
_serial = 0  # how many threads are inside serial_blas
_serial_lock = threading.Lock()
_saved = []  # (set, count) of the libraries serial_blas limited, to restore


def _thread_functions(lib):
    """(get, set) of a threadpoolctl controller's thread count.

    For OpenBLAS, its C functions themselves, looked up once: threadpoolctl's methods look
    the symbol up on every call (about 1 us each; a pass makes four to eight). They also
    step around threadpoolctl's guard that lets only the first thread that set a pthreads
    OpenBLAS's limit set it again: from any other thread (a threaded Dask worker, a user's
    thread pool) the call would do nothing and the kernels' nested BLAS calls would
    oversubscribe the cores. The count of threads inside :func:`serial_blas` is what
    coordinates threads here.
    """
    if lib.internal_api == "openblas":
        omp = lib.threading_layer == "openmp"
        get = lib._get_symbol("omp_get_max_threads" if omp else "openblas_get_num_threads")
        put = lib._get_symbol("omp_set_num_threads" if omp else "openblas_set_num_threads")
        if get is not None and put is not None:
            return get, put
    return lib.get_num_threads, getattr(lib, "_real_set_num_threads", lib.set_num_threads)


def _blas_libraries():
    global _blas
    if _blas is None:
        import scipy.linalg.cython_blas  # noqa: F401 - load the BLAS Numba calls, then find it
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        _blas = [_thread_functions(lib) for lib in libs]
    return _blas


_kept = None  # the option keep_heap as last applied (None: not yet in this process)


def _keep_heap():
    """Apply the option ``keep_heap`` at a process's first pass, or where it changed."""
    global _kept
    if OPTIONS["keep_heap"] is _kept:
        return
    with _serial_lock:
        keep = OPTIONS["keep_heap"]
        if keep is not _kept:
            if keep or _kept is not None:  # off from the start: glibc left alone
                keep_freed_memory(keep)
            _kept = keep


def _enter_serial():
    global _serial
    _keep_heap()
    libs = _blas_libraries()
    with _serial_lock:
        if _serial == 0:
            # only the libraries not already at one thread (none, after a user's
            # OPENBLAS_NUM_THREADS=1): each call is a library call
            _saved[:] = [(put, n) for get, put in libs if (n := get()) not in (None, 1)]
            for put, _ in _saved:
                put(1)
        _serial += 1


def _leave_serial():
    global _serial
    with _serial_lock:
        _serial -= 1
        if _serial == 0:
            for put, n in _saved:
                put(n)


@contextlib.contextmanager
def serial_blas():
    """Run BLAS single-threaded inside: the kernels call it from their own parallel loops.

    The OpenBLAS behind Numba's ``np.dot`` and ``np.linalg`` starts its own threads; nested
    in the kernels' OpenMP threads they oversubscribe the cores (measured 25-40x slower on
    2 cores) and OpenBLAS warns that the program may hang. The limit is process-wide, so
    it is set when the first thread enters and the previous limits are restored when the
    last one leaves. Entering costs one library call per loaded BLAS to read its count and
    one more to set it where it is not 1 already (under 1 us each; threadpoolctl's own
    ``limit`` costs ~15 us, a tenth of a small model's forward pass).
    """
    _enter_serial()
    try:
        yield
    finally:
        _leave_serial()


def serial(fn):
    """``fn`` wrapped as a pass that calls kernels (a decorator): from its first kernel
    that runs on several threads (:func:`run_items`) to its end, BLAS runs single-threaded
    as under :func:`serial_blas`, and Numba's thread count (``numba.set_num_threads``) is
    read once for the whole pass, where a kernel first needs it. A pass of one work item,
    one sequence through one network, does neither (:func:`one_thread`): they cost about
    3 us of each pass, 3-8% of a small network's forward + backward (on the calling
    thread alone, its BLAS calls may keep their threads). A pass inside another keeps the
    outer one's count and limit.

    So a BLAS call in a pass before its first kernel may use BLAS's threads, which then
    spin for about 0.1 s waiting for more and take cores from the kernels: keep such calls
    short (``_checks.sum_of_squares``' dots of at most ``SERIAL_DOT`` numbers)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        outer, limited = getattr(_local, "threads", 0), getattr(_local, "limited", None)
        if limited is None:  # the outermost pass on this thread
            _keep_heap()
            _local.limited = False
        try:
            return fn(*args, **kwargs)
        finally:
            if limited is None:
                if _local.limited:
                    _leave_serial()
                _local.limited = None
            _local.threads = outer

    return call


def one_thread():
    """Run the rest of a :func:`serial` pass on the calling thread only.

    For passes of one work item (one sequence through one network): the products around
    the time loops (the head's, the input gradient's) would still hand blocks of rows to
    the pool's threads (waking one costs 10-20 us), a tenth of such a pass. Results do not
    change: the split into blocks does not depend on the number of threads.
    """
    _local.threads = 1
