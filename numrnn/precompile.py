"""Compile numrnn's kernels ahead of first use: ``numrnn warmup`` for machines, images and CI.

Numba compiles a kernel the first time a cell and dtype are used, which takes seconds to a
minute per cell, and caches it on disk (beside the package, or in ``NUMBA_CACHE_DIR``). A
warm-up runs a tiny workload of every cell and dtype asked for (forward and BPTT with
variable lengths and a head, the gradient norms, the Jacobian-norm and Lyapunov drivers,
one training step): everything the models, diagnostics and training compile, so that the
first real call loads the kernels from the cache. Each (cell, dtype) compiles in a process
of its own, ``jobs`` at a time: Numba compiles on one core, so two jobs on two cores take
about half the wall time of one.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from . import _checks

__all__ = ["CELLS", "warmup"]

#: the cells a warm-up compiles: one kernel set each (rnn_relu and the reset-before GRU
#: share their kernels with rnn_tanh and the reset-after GRU)
CELLS = ("rnn_tanh", "lstm", "gru")


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
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def one(case):
        start = time.perf_counter()
        code = f"from numrnn.precompile import exercise; exercise{case!r}"
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
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
