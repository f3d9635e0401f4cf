"""What happens while numrnn's kernels compile: a notice, and compiling in a second process.

The first use of a cell and dtype on a machine takes seconds of Numba compilation (cached
on disk afterwards), which would otherwise look like a hang. Numba's event API reports
each compilation ("numba:compile", not fired for a kernel loaded from the cache); the
notice names the first numrnn kernel of each cell and dtype that compiles in a process,
once. The option ``compile_notice`` (``nr.set_options``) turns it off.

Every compiled function costs a fixed part of each first use besides its own code: a
kernel's helpers (:func:`callee`) are compiled without the wrappers that let Python call
them.

Numba compiles on one core. :func:`in_background` runs a workload that compiles other
kernels into the on-disk cache in a second process meanwhile (:class:`Background`), and
:func:`on_forward_compile` registers what to start when a cell's forward time loop
begins to compile (``numrnn.nn.ahead``: that cell's backward kernels).
"""

import os
import subprocess
import sys
import threading

import numpy as np
from numba import njit
from numba.core import config, event
from numba.core.registry import CPUDispatcher

from .._options import get_option

#: the kernel modules of the cells, whose ``_forward_items`` start the hooks
CELL_MODULES = ("rnn", "lstm", "gru")
_HOOKS = []

# kernel modules -> what the notice calls them
_WHAT = {"rnn": "Elman RNN", "lstm": "LSTM", "gru": "GRU", "jacobian": "Jacobian-product"}


class _Notice(event.Listener):
    def __init__(self):
        self.told = set()
        self.local = threading.local()  # compile depth: callees compile inside their caller

    def on_start(self, ev):
        depth = getattr(self.local, "depth", 0)
        self.local.depth = depth + 1
        if depth:
            return
        py_func = getattr(ev.data.get("dispatcher"), "py_func", None)
        module = getattr(py_func, "__module__", "") or ""
        name = module.rsplit(".", 1)[-1]
        if not module.startswith("numrnn.kernels.") or name not in _WHAT:
            return
        dtypes = {str(getattr(a, "dtype", "")) for a in ev.data.get("args", ())}
        dtype = next((d for d in ("float64", "float32") if d in dtypes), "")
        if name in CELL_MODULES and getattr(py_func, "__name__", "") == "_forward_items":
            for hook in _HOOKS:
                hook(name, dtype)
        if (name, dtype) in self.told or not get_option("compile_notice"):
            return
        self.told.add((name, dtype))
        tell(name, dtype)

    def on_end(self, ev):
        self.local.depth = max(0, getattr(self.local, "depth", 1) - 1)


def tell(name, dtype, where=""):
    """Write the notice for kernel module ``name`` (a key of ``_WHAT``) and ``dtype``
    ("" for none); ``where``: e.g. " in a second process"."""
    from tqdm import tqdm  # its write keeps an active progress bar whole

    tqdm.write(f"numrnn: compiling the {_WHAT[name]} kernels{' for ' + dtype if dtype else ''}"
               f"{where} (first use on this machine, cached afterwards; a few seconds to a "
               "minute)", file=sys.stderr)  # fmt: skip


NOTICE = _Notice()
event.register("numba:compile", NOTICE)


def on_forward_compile(hook):
    """Call ``hook(cell, dtype)`` whenever a cell's forward time loop is about to compile
    in this process (:func:`before_forward`), or starts to: ``cell`` is its kernel module
    ("rnn", "lstm", "gru"), ``dtype`` "float64" or "float32". The hook may run inside
    Numba's compilation: it must be quick, and may be called more than once."""
    _HOOKS.append(hook)


_CHECKED = set()  # (cell, dtype) that before_forward has looked at in this process


def before_forward(cell, kernel, dtype):
    """Called by a cell's forward pass before anything compiles: on its first call for
    ``dtype`` in this process, where ``kernel`` (the cell's ``_forward_items``) has been
    neither compiled here nor cached on disk for that dtype, call the hooks of
    :func:`on_forward_compile` now, not once Numba starts compiling the kernel: that is
    0.3-0.5 s later (Numba's start-up and the first helpers), which a second process
    compiling the backward kernels meanwhile can use."""
    if (cell, dtype) in _CHECKED:  # every forward pass asks: a set lookup, nothing more
        return
    _CHECKED.add((cell, dtype))
    name = np.dtype(dtype).name
    signatures = [*kernel.signatures, *cached_signatures(kernel)]
    if not any(str(getattr(t, "dtype", "")) == name for sig in signatures for t in sig):
        for hook in _HOOKS:
            hook(cell, name)


class _Callee(CPUDispatcher):
    """A function that only compiled code calls (:func:`callee`)."""

    def __call__(self, *args, **kwargs):
        # without its Python wrapper, Numba would call through a null pointer
        raise TypeError(f"{self.py_func.__module__}.{self.py_func.__qualname__} is a kernel's "
                        "helper: only compiled code can call it")  # fmt: skip


def callee(**options):
    """``@njit(cache=True, nogil=True, **options)`` for a kernel's helper: a function only
    other compiled functions call, compiled without the Python and C wrappers that let
    Python call it (called from Python, it raises ``TypeError``).

    A wrapper unboxes every argument from a Python object: Numba generates and LLVM
    compiles it with the function, although the kernels call the function directly. A
    cell's first forward pass compiles about fifteen helpers; without their wrappers the
    LSTM's (float32) compiled in 4.2-4.7 s against 4.9-5.4 s (interleaved, three rounds).
    """

    def wrap(func):
        disp = njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True,
                    **options)(func)  # fmt: skip
        if isinstance(disp, CPUDispatcher):  # not under NUMBA_DISABLE_JIT
            disp.__class__ = _Callee
        return disp

    return wrap


def cores():
    """The cores this process may compile on and run threads on: those the system gives it
    (else all, or 1), at most Numba's thread count (1 in a sweep's worker processes)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(n or 1, config.NUMBA_NUM_THREADS)


def child(module, call):
    """(argv, env) of a Python process that runs ``<module>.<call>`` (source text) with this
    numrnn: its parent directory goes first on that process's path when it would not be
    found there otherwise (a script that put it on ``sys.path``); the Numba cache directory
    is this process's (read when Numba was imported); warnings are off (noise)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; root = {root!r}; root in sys.path or sys.path.insert(0, root); "
            f"import {module} as m; m.{call}")  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if config.CACHE_DIR:
        env["NUMBA_CACHE_DIR"] = config.CACHE_DIR
    return [sys.executable, "-c", code], env


def cached_signatures(dispatcher):
    """The argument types of ``dispatcher``'s entries in Numba's on-disk cache for this
    machine and this source; empty where the cache cannot be read. Numba has no public
    call for this: the index is read through its private API, and any change there only
    makes this empty (a second process then compiles what was cached: time lost, nothing
    wrong)."""
    try:
        magic = dispatcher.targetctx.codegen().magic_tuple()
        return [key[0] for key in dispatcher._cache._cache_file._load_index() if key[1] == magic]
    except Exception:  # noqa: BLE001 - see the docstring
        return []


class Background:
    """Kernels compiling into Numba's cache in a second process (``proc``), or nothing
    (``proc`` None). Leaving the ``with`` block (or :meth:`wait`) waits for them, so that
    the first call here loads them from the cache instead of compiling them again; an
    exception there or while waiting (Ctrl-C) stops them. A failure of that process is
    ignored: this one then compiles them and reports any error.
    """

    def __init__(self, proc=None):
        self.proc = proc

    def running(self):
        """Whether the second process is still compiling."""
        return self.proc is not None and self.proc.poll() is None

    def wait(self):
        if self.proc is None:
            return
        try:
            self.proc.wait()
        except BaseException:
            self.stop()
            raise
        self.proc = None

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            self.stop()
        self.wait()


def in_background(module, call):
    """Run ``<module>.<call>`` in a second process (see :func:`child`), its output
    discarded: a :class:`Background`, empty where no Python can be started (a frozen app,
    an embedded interpreter)."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return Background()  # a frozen app's executable would start the app, not Python
    argv, env = child(module, call)
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    except OSError:
        return Background()
    return Background(proc)
