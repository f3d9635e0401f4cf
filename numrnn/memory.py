"""Keep freed memory in the process, so that large arrays are reused, not page-faulted in.

A forward and backward pass allocates trajectories of many megabytes (an ensemble of 64
small LSTMs: about 0.5 GB per step). glibc's ``malloc`` serves blocks above 32 MiB with a
fresh ``mmap`` and unmaps them when freed, so every pass touches new pages and the kernel
zeroes and maps each one on first write; on the virtual machines this project is measured
on that runs at about 1 GB/s and dominates: 239 ms against 119 ms per forward+backward of
the 64 LSTMs in float64 (``benchmarks/bench_models.py``).

:func:`reuse_freed_memory` tells glibc to serve every block from its heap and to keep
freed memory for the next allocation. It changes the whole process's allocator, so numrnn
calls it only in processes it owns: the ``numrnn`` command, its sweep workers and the
benchmarks. In your own scripts call it yourself, or set ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2000000000`` in the environment. The cost: memory freed by the
process is not returned to the system until it exits.
"""

import ctypes
import ctypes.util

__all__ = ["reuse_freed_memory"]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


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
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl without mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    return ok and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
