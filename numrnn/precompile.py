"""Compile numrnn's kernels ahead of first use: ``numrnn warmup`` for machines, images and CI.

Numba compiles a kernel the first time a cell and dtype are used, which takes seconds to a
minute per cell, and caches it on disk (beside the package, or in ``NUMBA_CACHE_DIR``). A
warm-up runs a tiny workload of every cell and dtype asked for (forward and BPTT with
variable lengths and a head, the gradient norms, the Jacobian-norm and Lyapunov drivers,
one training step): everything the models, diagnostics and training compile, so that the
first real call loads the kernels from the cache. Each (cell, dtype) compiles in a process
of its own, ``jobs`` at a time: Numba compiles on one core, so two jobs on two cores take
about half the wall time of one.

The same holds within one program: :func:`jacobian_norms_in_background` compiles the
Jacobian-norm kernel (the largest, and the same for every cell) in a second process while
this one compiles the forward kernels; ``numrnn demo`` does that on a machine's first run.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from . import _checks

__all__ = ["CELLS", "jacobian_norms_in_background", "warmup"]

#: the cells a warm-up compiles: one kernel set each (rnn_relu and the reset-before GRU
#: share their kernels with rnn_tanh and the reset-after GRU)
CELLS = ("rnn_tanh", "lstm", "gru")


def _child_env():
    """The compiling processes' environment: this one's, with the Numba cache directory
    this process uses (read when Numba was imported) and no warnings (noise there)."""
    from numba.core.config import CACHE_DIR

    return {**os.environ, "PYTHONWARNINGS": "ignore", **({"NUMBA_CACHE_DIR": CACHE_DIR}
                                                         if CACHE_DIR else {})}  # fmt: skip


def exercise(cell, dtype):
    """Run the tiny workload of one cell and dtype in this process (compiling as needed).

    Parameters
    ----------
    cell : str
        A config name of :func:`numrnn.nn.from_config` ("rnn_tanh", "lstm", "gru", ...).
    dtype : {"float64", "float32"}
    """
    import numpy as np

    from . import diagnostics
    from .nn.models import from_config
    from .tasks import Adding
    from .training.loop import train

    model = from_config(cell, input_size=2, hidden_size=3, dtype=dtype, seed=0, output_size=1,
                        readout="all")  # fmt: skip
    x = np.zeros((4, 2, 2), dtype)
    res = model.forward(x, lengths=[4, 3])
    model.backward(res, np.ones_like(res.output), norms=True)
    diagnostics.gradient_norms(model, x, np.ones_like(res.output))
    diagnostics.jacobian_norms(model, x)
    diagnostics.lyapunov_spectrum(model, x, n_exponents=2)
    last = from_config(cell, input_size=2, hidden_size=3, dtype=dtype, seed=0, output_size=1,
                       readout="last")  # fmt: skip
    train(last, Adding(T=4), 1, 2, ("adam", {"lr": 1e-3}), progress=False)


def warmup(dtypes=("float64",), cells=CELLS, jobs=None, progress=True):
    """Compile the kernels of ``cells`` for ``dtypes`` into Numba's on-disk cache.

    Parameters
    ----------
    dtypes : sequence of {"float64", "float32"}, default ("float64",)
    cells : sequence of str, default :data:`CELLS`
        Config names of cells (see :func:`numrnn.nn.from_config`).
    jobs : int or None
        Processes compiling at once (None: the number of cores, at most the number of
        cases).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    dict of (cell, dtype) to float
        Each case's wall time in seconds (about 0 for kernels already in the cache).

    Raises
    ------
    RuntimeError
        When a case fails, with its output.

    Examples
    --------
    >>> import numrnn as nr
    >>> times = nr.warmup(cells=["rnn_tanh"], progress=False)   # cached already: quick
    >>> sorted(times)
    [('rnn_tanh', 'float64')]
    """
    from tqdm import tqdm

    from .nn.cells import variants

    dtypes = [_checks.check_dtype(d, "dtypes").name for d in dtypes]
    for cell in cells:
        _checks.check_choice("cells", cell, tuple(variants()))
    cases = [(c, d) for d in dtypes for c in cells]
    if not cases:
        raise ValueError("warmup needs at least one cell and one dtype")
    jobs = min(len(cases), os.cpu_count() or 1) if jobs is None else jobs
    jobs = _checks.check_positive_int("jobs", jobs)

    def one(case):
        start = time.perf_counter()
        code = f"from numrnn.precompile import exercise; exercise{case!r}"
        proc = subprocess.run([sys.executable, "-c", code], env=_child_env(), capture_output=True,
                              text=True)  # fmt: skip
        if proc.returncode:
            raise RuntimeError(f"warming up {case} failed:\n{proc.stderr[-3000:]}")
        return case, time.perf_counter() - start

    times = {}
    bar = tqdm(total=len(cases), disable=not progress, desc="numrnn warmup", unit="kernel set")
    with bar, ThreadPoolExecutor(jobs) as pool:  # threads wait on the processes
        for done in as_completed([pool.submit(one, c) for c in cases]):
            case, seconds = done.result()
            times[case] = seconds
            bar.set_postfix_str(f"{case[0]} {case[1]}: {seconds:.0f} s")
            bar.update(1)
    return times


def jacobian_example(dtype, gru=False):
    """The trajectory arguments of :func:`numrnn.kernels.jacobian.jacobian_norms` (``kind``
    to ``batch_sizes``) of the types a model of ``dtype`` passes, for a GRU or for an RNN or
    LSTM (the cell is the run-time ``kind``; every cache array is a C-contiguous 4-D array):
    a one-step, one-sequence trajectory of zeros. ``tests/unit/test_precompile.py`` checks
    the types against real calls."""
    from .kernels.jacobian import KINDS

    states, gates = np.zeros((1, 2, 1, 1), dtype), np.zeros((1, 1, 1, 4), dtype)
    aux = np.zeros((1, 1, 1, 1), dtype)
    whh = np.zeros((1, 4, 1), dtype)  # (K, G * H, H), room for every cell's gates
    kind = KINDS["gru_after" if gru else "rnn_tanh"]
    return kind, states, states, gates, aux, whh, np.ones(1, np.int64)


def _cached_signatures(dispatcher):
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
    (``proc`` None: they are cached already). Leaving the ``with`` block (or :meth:`wait`)
    waits for them, so that the first call here loads them from the cache instead of
    compiling them again; leaving it by an exception (Ctrl-C) stops them. A failure there
    is ignored: this process then compiles them and reports any error."""

    def __init__(self, proc=None):
        self.proc = proc

    def wait(self):
        if self.proc is not None:
            self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None and self.proc is not None:
            self.proc.kill()
        self.wait()


def jacobian_norms_in_background(dtype, gru=False):
    """Compile the Jacobian-norm kernel for ``dtype`` in a second process, unless it is
    in the cache already or the machine has one core.

    That kernel (of :func:`numrnn.diagnostics.jacobian_norms` without ``n_sv``) takes
    10-20 s to compile on one core, about as long as the forward kernels of two cells: run
    those meanwhile inside the ``with`` block.

    Parameters
    ----------
    dtype : {"float64", "float32"}
    gru : bool, default False
        The GRUs' kernel instead of the one for the RNNs and the LSTM.

    Returns
    -------
    Background

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> from numrnn.precompile import jacobian_norms_in_background
    >>> model = nr.RNN(2, 4, seed=0)
    >>> x = np.zeros((5, 1, 2))
    >>> with jacobian_norms_in_background(model.dtype):
    ...     _ = model.forward(x)                       # the forward kernels compile here
    >>> float(nr.diagnostics.jacobian_norms(model, x).jacobian_norm[0, 0, 0, -1])
    1.0
    """
    from numba import typeof

    from ._options import get_option
    from .kernels import _compiling, jacobian

    dtype = _checks.check_dtype(dtype, "dtype").name
    gru = _checks.check_bool("gru", gru)
    hs = typeof(jacobian_example(dtype)[1])  # the kernel's second argument
    if (os.cpu_count() or 1) < 2 or any(
        sig[1] == hs for sig in _cached_signatures(jacobian.KERNELS[gru][0])
    ):
        return Background()
    code = f"from numrnn.precompile import _jacobian_norms; _jacobian_norms({dtype!r}, {gru})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=_child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    if get_option("compile_notice"):
        _compiling.tell("jacobian", dtype, " in a second process")
    return Background(proc)


def _jacobian_norms(dtype, gru):
    """Compile (or load) the Jacobian-norm kernel for ``dtype`` in this process."""
    from .kernels import jacobian

    jacobian.jacobian_norms(*jacobian_example(dtype, gru), False, 0)
