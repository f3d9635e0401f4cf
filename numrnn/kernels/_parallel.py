"""How kernels split work between threads: independent (member, block of sequences) items.

A sequence's recurrence depends only on its own state (the weights are shared and read
only), so every (ensemble member, block of batch rows) pair can run the WHOLE time loop on
its own thread, with no synchronisation between steps. Every member's B rows are split
into as many blocks as there are threads, whatever K: a member's arithmetic (the shapes of
its matrix products, the order of its sums) is then the same alone as in any ensemble, so
its results are too, bit for bit.
"""

import contextlib
import functools
import os

from numba import config, njit

# A compile-time constant: calling numba.get_num_threads() inside a kernel would make it
# uncacheable (a dynamic global). Results depend on the split only in the last bits (BLAS
# may round a product of M rows differently for another M).
THREADS = config.NUMBA_NUM_THREADS


@njit(cache=True, nogil=True)
def blocks(K, B):
    """(number of work items, blocks per member, rows per block) for K members of B rows;
    the split of each member's rows does not depend on K."""
    per_member = min(B, THREADS)
    rows = -(-B // per_member)
    per_member = -(-B // rows)
    return K * per_member, per_member, rows


@njit(cache=True, nogil=True)
def span(item, per_member, rows, B):
    """(member, first row, end row) of a work item."""
    m = item // per_member
    lo = (item % per_member) * rows
    return m, lo, min(B, lo + rows)


@njit(cache=True, nogil=True)
def active_end(batch_sizes, t, lo, hi):
    """End of the active rows of block [lo, hi) at step t (the batch is sorted by length,
    so the active rows are a prefix); ``lo`` when none is active."""
    return max(lo, min(hi, batch_sizes[t]))


_controller = None


def _start_threads():
    """Start Numba's thread pool with a short OpenMP spin, unless told otherwise.

    Numba's OpenMP threads spin for a long time after each parallel region by default;
    with another busy process on the machine every kernel call then waits for spinning
    threads to be descheduled. Measured per training step of a small RNN, two processes
    on 2 cores: 180 ms with the default spin, 3.9 ms with ``GOMP_SPINCOUNT=3000``, which
    costs nothing when the process is alone (0.23 ms either way; a passive policy would
    cost 1.4 ms there). The variable is set only while Numba loads its threading layer,
    so other OpenMP libraries (torch's) keep their own settings, and it is left alone
    when the user set ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``.
    """
    from numba.np.ufunc import parallel

    if parallel._is_initialized:
        return
    ours = "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ
    if ours:
        os.environ["GOMP_SPINCOUNT"] = "3000"
    try:
        parallel._launch_threads()
    finally:
        if ours:
            os.environ.pop("GOMP_SPINCOUNT", None)


@contextlib.contextmanager
def serial_blas():
    """Run BLAS single-threaded inside: the kernels call it from their own parallel loops.

    The OpenBLAS behind Numba's ``np.dot`` and ``np.linalg`` starts its own threads; nested
    in the kernels' OpenMP threads they oversubscribe the cores (measured 25-40x slower on
    2 cores) and OpenBLAS warns that the program may hang. The previous limits are
    restored on exit.
    """
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401 - load the BLAS Numba calls, then find it
        from threadpoolctl import ThreadpoolController

        _start_threads()
        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield


def serial(fn):
    """``fn`` wrapped to run under :func:`serial_blas` (a decorator for passes that call
    kernels: nested uses cost about 10 us each)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with serial_blas():
            return fn(*args, **kwargs)

    return call
