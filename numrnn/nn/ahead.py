"""The backward kernels of a cell, compiled in a second process while its forward compiles.

On a machine's first use of a cell and dtype, Numba compiles the forward kernels and
then, at the first backward pass, the BPTT kernels, one after the other on one core
(seconds each). When a cell's forward time loop starts to compile in a process
(:func:`numrnn.kernels._compiling.on_forward_compile`), :func:`start` compiles that
cell's backward kernels in a second process meanwhile (:func:`exercise_backward`, on
made-up arrays of the types a model passes: no forward pass), into Numba's on-disk cache;
the backward pass calls :func:`wait` first (compiling the dense product of a backward
pass meanwhile), and then loads them from there.

Nothing starts where only one core is free (or Numba runs one thread, as in a sweep's
worker processes), with the option ``compile_ahead`` off (``nr.set_options``), or inside
:func:`paused`, which ``predict`` and the diagnostics run their forward passes in (no
backward pass follows them). A failure of the second process is ignored: this one then
compiles the kernels itself and reports any error.
"""

import contextlib
import threading

import numpy as np

from .._options import get_option
from ..kernels import _compiling, linalg
from .cells import CELLS, kernels

_PENDING = {}  # (cell kernel module, dtype) -> _compiling.Background
_LOCK = threading.Lock()
_PAUSED = [0]  # blocks of paused() open in this process, in any thread
_NAMES = {np.dtype(name): name for name in ("float64", "float32")}


@contextlib.contextmanager
def paused():
    """Start nothing while the block runs: its forward passes have no backward pass.

    A count over the whole process, not the option ``compile_ahead``: a forward kernel
    compiles on whichever worker thread calls it first, and overlapping blocks in several
    threads must not restore each other's setting.
    """
    with _LOCK:
        _PAUSED[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _PAUSED[0] -= 1


def exercise_backward(cell, dtype):
    """Compile (or load) the backward kernels of ``cell`` for ``dtype`` in this process
    (the BPTT time loop and the weight gradients' products) on zeros of the types a model
    passes: C-contiguous arrays of the dtype, as the models make them.

    The dense product of a backward pass (the input gradient's, the head's:
    :func:`exercise_products`) is left to the first process, which compiles it while it
    waits for this one (:func:`wait`), or in its forward pass for a head: this process
    starts later and has more to compile (the first forward + backward of a GRU with a
    head, 2 cores, three interleaved rounds: 6.3-6.4 s against 6.9-7.9 s when this one
    compiled the product first).

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
        A :data:`numrnn.nn.cells.CELLS` name: one kernel set serves all its variants.
    dtype : {"float64", "float32"}
    """
    spec = CELLS[cell]
    c = spec.make()
    K, T, B, D, H = 1, 2, 1, 1, 1
    G, n = spec.n_gates * H, len(spec.states)

    def z(*shape):
        return np.zeros(shape, dtype)

    # The two processes share the helpers of the products, each loading from the cache
    # what the other compiled first: this one starts with the weight gradients' products,
    # whose panels (``panels.add_dot_panels``) it reaches first, while the forward kernel
    # reaches the loops (``linalg.add_dot_loops``) first; the time loop last (its step
    # products cached by then). No input gradient (W_ih without columns): no dense product.
    linalg.matmul_tn(z(K, T, B, G), z(K, T + 1, B, H), z(K, T, B, D))
    c.backward(kernels("cpu"), c.cache_like(K, T, B, H, dtype), z(K, G, 0), z(K, G, H),
               z(K, T, B, D), z(K, T, B, H), tuple(z(K, B, H) for _ in range(n)),
               np.full(T, B, np.int64), tuple(z(0, 0, 0) for _ in range(n)))  # fmt: skip


def exercise_products(dtype):
    """Compile (or load) the dense product of a backward pass (``linalg.matmul``: the
    input gradient's, the head's) for ``dtype``, on zeros.

    Parameters
    ----------
    dtype : {"float64", "float32"}
    """
    z = np.zeros
    linalg.matmul(z((1, 1, 1), dtype), z((1, 1, 1), dtype), z((1, 1), dtype))


def start(cell, dtype):
    """Start compiling ``cell``'s backward kernels for ``dtype`` in a second process, once
    per process (see the module's docstring); called while the forward kernels compile.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    dtype : {"float64", "float32"}
    """
    if dtype not in ("float64", "float32"):  # not a model's kernel (no float arrays)
        return
    with _LOCK:
        if (cell, dtype) in _PENDING:
            return
        pending = _compiling.Background()
        if not _PAUSED[0] and get_option("compile_ahead") and _compiling.cores() >= 2:
            pending = _compiling.in_background(__name__, f"exercise_backward({cell!r}, {dtype!r})")
        _PENDING[cell, dtype] = pending


def wait(cell, dtype):
    """Wait for :func:`start`'s process of ``cell`` and ``dtype``, if one is running,
    compiling the dense product here meanwhile (:func:`exercise_products`)."""
    # a dtype's name costs 1.5 us to read, a tenth of a small model's backward pass
    pending = _PENDING.get((cell, _NAMES.get(dtype) or np.dtype(dtype).name))
    if pending is not None:
        if pending.running():
            exercise_products(dtype)
        pending.wait()


_compiling.on_forward_compile(start)
