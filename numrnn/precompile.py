"""Compile numrnn's kernels ahead of first use: ``numrnn warmup`` for machines, images and CI.

Numba compiles a kernel the first time a cell and dtype are used, which takes seconds to a
minute per cell, and caches it on disk (beside the package, or in ``NUMBA_CACHE_DIR``). A
warm-up runs tiny workloads that compile everything the models, diagnostics and training
use, so that the first real call loads the kernels from the cache: per cell and dtype,
forward and BPTT with variable lengths and a head, the gradient norms and one training step
(:func:`exercise`); per family of cells (the RNNs and the LSTM; the GRUs) and dtype, the
Jacobian-norm and Lyapunov kernels, on a made-up trajectory (:func:`exercise_diagnostics`).
Each workload compiles in a process of its own, ``jobs`` at a time: Numba compiles on one
core, so two jobs on two cores take about half the wall time of one.

The same holds within one program: :func:`jacobian_norms_in_background` compiles a family's
Jacobian-norm kernel in a second process while this one compiles the forward kernels;
``numrnn demo`` does that on a machine's first run.
"""

import contextlib
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from . import _checks
from .kernels import _compiling, jacobian
from .kernels._compiling import Background  # noqa: F401 - returned here, documented here

__all__ = ["CELLS", "jacobian_norms_in_background", "warmup"]

#: the cells a warm-up compiles: one kernel set each (rnn_relu and the reset-before GRU
#: share their kernels with rnn_tanh and the reset-after GRU)
CELLS = ("rnn_tanh", "lstm", "gru")

#: the warm-up's name of each family's diagnostics workload, by ``gru``
FAMILIES = {False: "rnn/lstm diagnostics", True: "gru diagnostics"}


def exercise(cell, dtype, ahead=False):
    """Run the tiny model workload of one cell and dtype in this process (compiling as
    needed): forward and BPTT with lengths and a head, the gradient norms, a training step.

    Parameters
    ----------
    cell : str
        A config name of :func:`numrnn.nn.from_config` ("rnn_tanh", "lstm", "gru", ...).
    dtype : {"float64", "float32"}
    ahead : bool, default False
        Let the forward kernels' compilation start a second process for the backward
        kernels (:mod:`numrnn.nn.ahead`): :func:`warmup` does where it runs fewer
        workloads at once than there are cores.
    """
    from .nn import ahead as compile_ahead

    with contextlib.nullcontext() if _checks.check_bool("ahead", ahead) else compile_ahead.paused():
        _exercise(cell, dtype)


def _exercise(cell, dtype):
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
    last = from_config(cell, input_size=2, hidden_size=3, dtype=dtype, seed=0, output_size=1,
                       readout="last")  # fmt: skip
    train(last, Adding(T=4), 1, 2, ("adam", {"lr": 1e-3}), progress=False)


def exercise_diagnostics(dtype, gru=False, lyapunov=True):
    """Compile (or load) one family's Jacobian-norm and Lyapunov kernels for ``dtype`` in
    this process, on made-up arrays of the types a model passes (no forward pass to
    compile; :func:`numrnn.kernels.jacobian.example`).

    Parameters
    ----------
    dtype : {"float64", "float32"}
    gru : bool, default False
        The GRUs' kernels instead of those of the RNNs and the LSTM.
    lyapunov : bool, default True
        Also the Lyapunov kernel (of :func:`numrnn.diagnostics.lyapunov_spectrum`).
    """
    jacobian.exercise(dtype, gru, norms=True, lyapunov=lyapunov)


def warmup(dtypes=("float64",), cells=CELLS, jobs=None, progress=True):
    """Compile the kernels of ``cells`` for ``dtypes`` into Numba's on-disk cache.

    Parameters
    ----------
    dtypes : sequence of {"float64", "float32"}, default ("float64",)
    cells : sequence of str, default :data:`CELLS`
        Config names of cells (see :func:`numrnn.nn.from_config`).
    jobs : int or None
        Processes compiling at once (None: the number of cores, at most the number of
        workloads).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    dict of (str, str) to float
        Each workload's wall time in seconds (about 0 for kernels already in the cache), by
        (cell, dtype) and, for the diagnostics kernels of each family the cells need,
        (:data:`FAMILIES` name, dtype).

    Raises
    ------
    RuntimeError
        When a workload fails, with its output.

    Examples
    --------
    >>> import numrnn as nr
    >>> times = nr.warmup(cells=["rnn_tanh"], progress=False)   # cached already: quick
    >>> sorted(times)
    [('rnn/lstm diagnostics', 'float64'), ('rnn_tanh', 'float64')]
    """
    from tqdm import tqdm

    from .nn.cells import variants

    dtypes = [_checks.check_dtype(d, "dtypes").name for d in dtypes]
    cells = list(cells)
    for cell in cells:
        _checks.check_choice("cells", cell, tuple(variants()))
    if not cells or not dtypes:
        raise ValueError("warmup needs at least one cell and one dtype")
    grus = sorted({variants()[c][0].name == "gru" for c in cells})
    # the diagnostics workloads first: the longest, so that two jobs end about together
    work = [(FAMILIES[g], d, f"exercise_diagnostics({d!r}, {g})") for d in dtypes for g in grus]
    jobs = min(len(work) + len(dtypes) * len(cells), _compiling.cores()) if jobs is None else jobs
    jobs = _checks.check_positive_int("jobs", jobs)
    # a workload compiles its backward kernels in a second process where cores are idle
    ahead = jobs < _compiling.cores()
    work += [(c, d, f"exercise({c!r}, {d!r}, {ahead})") for d in dtypes for c in cells]

    def one(name, dtype, call):
        start = time.perf_counter()
        argv, env = _compiling.child("numrnn.precompile", call)
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"warming up {name} {dtype} failed:\n{proc.stderr[-3000:]}")
        return (name, dtype), time.perf_counter() - start

    times = {}
    bar = tqdm(total=len(work), disable=not progress, desc="numrnn warmup", unit="workload")
    with bar, ThreadPoolExecutor(jobs) as pool:  # threads wait on the processes
        for done in as_completed([pool.submit(one, *w) for w in work]):
            case, seconds = done.result()
            times[case] = seconds
            bar.set_postfix_str(f"{case[0]} {case[1]}: {seconds:.0f} s")
            bar.update(1)
    return times


def jacobian_norms_in_background(dtype, gru=False):
    """Compile a family's Jacobian-norm kernel for ``dtype`` in a second process, unless it
    is in the cache already or only one core is free.

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
    dtype = _checks.check_dtype(dtype, "dtype").name
    return jacobian.in_background(dtype, _checks.check_bool("gru", gru))
