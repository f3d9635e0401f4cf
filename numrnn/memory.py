"""Keep freed memory in the process, so that large arrays are reused, not page-faulted in.

A forward and backward pass allocates trajectories of many megabytes (an ensemble of 64
small LSTMs: about 0.5 GB per step) and frees them when it ends. glibc's ``malloc`` hands
such memory back to the system: blocks above its mmap threshold (at most 32 MiB) are
unmapped when freed, and the free top of its heap is trimmed once it exceeds a threshold
(about twice the largest block freed so far). Every pass then touches new pages, which the
kernel zeroes and maps on first write; on the virtual machines this project is measured
on that costs about 3 us a page and can dominate: 239 ms against 119 ms per
forward+backward of the 64 LSTMs in float64 (``benchmarks/bench_models.py``), and the
backward pass of one GRU (T = 100, B = 32, D = 32, H = 64) faulted 1287 pages a call,
8.2 ms against 4.0 ms without them.

Two settings, both of the whole process's allocator (glibc only; elsewhere nothing):

* :func:`keep_freed_memory`, bounded, which numrnn applies at a process's first pass while
  the option ``keep_heap`` is on (the default): glibc's thresholds fixed at the largest
  values it would itself adjust them to, so that blocks up to 32 MiB come from the heap
  and up to 64 MiB may lie free at its top before any is handed back;
* :func:`reuse_freed_memory`, unbounded, which numrnn calls only in processes it owns
  (the ``numrnn`` command, its sweep workers and the benchmarks): every block from the
  heap, and freed memory never handed back until the process exits. In your own scripts
  call it yourself for the largest models, or set ``MALLOC_MMAP_MAX_=0
  MALLOC_TRIM_THRESHOLD_=2000000000`` in the environment.
"""

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory", "reuse_freed_memory"]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_GLIBC_INITIAL = 128 * 2**10  # both thresholds' initial values
_unbounded = False  # reuse_freed_memory() took effect: it keeps more than keep_freed_memory


def _mallopt():
    """glibc's ``mallopt``, or None where libc is not glibc (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt


def keep_freed_memory(keep=True):
    """Keep freed blocks of up to 32 MiB in the heap, and up to 64 MiB free at its top
    (``keep``), or put glibc's initial thresholds (128 KiB) back, which glibc then no
    longer adjusts (glibc only).

    numrnn calls it at a process's first pass while the option ``keep_heap`` is on (the
    default; turned off before the first pass, glibc is left alone, and after it, the next
    pass calls this with ``keep=False``). After :func:`reuse_freed_memory` it does
    nothing: that keeps more.

    Parameters
    ----------
    keep : bool, default True

    Returns
    -------
    bool
        Whether the allocator was changed.

    Examples
    --------
    >>> from numrnn.memory import keep_freed_memory
    >>> keep_freed_memory() in (True, False)           # True on glibc (Linux)
    True
    """
    mallopt = _mallopt()
    if mallopt is None or _unbounded:
        return False
    # these are glibc's own largest values for its thresholds, which it would otherwise
    # only reach step by step, handing memory back meanwhile
    trim, mmap = (64 * 2**20, 32 * 2**20) if keep else (_GLIBC_INITIAL, _GLIBC_INITIAL)
    return mallopt(_M_TRIM_THRESHOLD, trim) == 1 and mallopt(_M_MMAP_THRESHOLD, mmap) == 1


def reuse_freed_memory():
    """Serve large blocks from the heap and keep freed memory (glibc only).

    Call it at the start of a process you own (a script, a worker); it changes the
    allocator of the whole process.

    Returns
    -------
    bool
        Whether the allocator was changed (False where libc is not glibc).

    Examples
    --------
    >>> from numrnn.memory import reuse_freed_memory
    >>> reuse_freed_memory() in (True, False)          # True on glibc (Linux)
    True
    """
    global _unbounded
    mallopt = _mallopt()
    if mallopt is None:
        return False
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _unbounded = _unbounded or ok
    return ok
