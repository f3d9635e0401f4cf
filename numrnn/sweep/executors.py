"""Where a sweep's points run: in this process, a local process pool, or a Dask cluster.

Points that differ only in initializer, forget bias or seed train together as one
ensemble (:func:`~numrnn.sweep.point.run_group`), in as many groups as there are
workers; each worker writes its points into their own regions of the store.
"""

import os
import sys

from .._checks import check_int
from ..memory import reuse_freed_memory
from .config import load_config
from .point import groups, run_group
from .store import STATUS, create_store, pending, write_point


def _run_and_write(path, cfg, group, threads=None):
    """Worker body: run a group of points and write each; returns [status] in order.

    ``threads``: Numba threads for this group (restored after); on a cluster the worker
    processes are the parallelism, so each group runs single-threaded.
    """
    import numba

    saved = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(min(threads, saved))
        results = run_group(group)
        return [write_point(path, cfg, p, ds) for p, ds in zip(group, results, strict=True)]
    finally:
        numba.set_num_threads(saved)


class _single_threaded_children:
    """Environment for worker processes: one Numba/BLAS thread each (the processes are the
    parallelism). Spawned children read it when they import numba; restored on exit."""

    VARS = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.VARS}
        os.environ.update(self.VARS)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(source, out, scheduler=None, workers=None, overwrite=False, progress=True, batch=None):
    """Run every pending point of a sweep into the Zarr store ``out``.

    Points that differ only in initializer, forget bias or seed train together as one
    ensemble (one compiled call per layer and step for all of them; :func:`run_group`),
    in as many groups as there are workers; the results are those of separate runs, bit
    for bit.

    Parameters
    ----------
    source : str, PathLike or dict
        A path to a TOML config, TOML text or a dict (see :func:`load_config`).
    out : str or PathLike
        The path of the store (``*.zarr``); an existing store of the same config resumes.
    scheduler : str or None
        None (this machine) or the address of a ``dask.distributed`` scheduler.
    workers : int or None
        Local worker processes (None: the number of cores); 1 runs the points in this
        process.
    overwrite : bool, default False
        Replace a store made from another config.
    progress : bool, default True
        Show a progress bar (points done, running, failed).
    batch : int or None
        At most this many points per ensemble (1: every point alone; None: the pending
        points of a kind shared evenly among the workers).

    Returns
    -------
    dict of str to int
        How many of the points run now ended "ok", "diverged" and "failed".

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config({
    ...     "model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
    ...     "train": {"steps": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
    ...     "grid": {"model.init": ["orthogonal", "identity"], "seed": [0, 1]}})
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> nr.sweep.run(cfg, path, workers=1, progress=False)
    {'ok': 4, 'diverged': 0, 'failed': 0}
    >>> nr.sweep.run(cfg, path, workers=1, progress=False)  # nothing left to do
    {'ok': 0, 'diverged': 0, 'failed': 0}
    >>> nr.open(path).loss.dims
    ('init', 'seed', 'step')
    """
    from tqdm import tqdm

    if not os.fspath(out).rstrip("/").endswith(".zarr"):
        raise ValueError(f"out must end in '.zarr', got {os.fspath(out)!r}")
    cfg = load_config(source)
    create_store(cfg, out, overwrite=overwrite)
    todo = pending(out, cfg)
    counts = dict.fromkeys(STATUS[1:], 0)
    bar = tqdm(total=len(todo), desc="sweep", unit="point", disable=not progress, file=sys.stderr)

    slots = 1

    def done(status=None):
        if status is not None:
            counts[status] += 1
            bar.update()
        left = len(todo) - sum(counts.values())
        bar.set_postfix(running=min(slots, left), failed=counts["failed"],
                        diverged=counts["diverged"])  # fmt: skip

    workers = workers or os.cpu_count() or 1
    batch = check_int("batch", batch, 1, none_ok=True)

    def split(n_slots):  # groups, cut small enough that every slot gets work
        size = batch
        if size is None and len(groups(cfg, todo)) < n_slots:
            size = -(-len(todo) // n_slots)
        return groups(cfg, todo, size)

    def finished(statuses):
        for status in statuses:
            done(status)

    if scheduler is not None:
        from distributed import Client, as_completed

        with Client(scheduler) as client:
            slots = max(1, sum(client.nthreads().values()))
            done()
            futures = [client.submit(_run_and_write, os.path.abspath(out), cfg, g, 1, pure=False)
                       for g in split(slots)]  # fmt: skip
            for fut in as_completed(futures):
                finished(fut.result())
    elif workers == 1 or len(todo) <= 1:
        done()
        for g in split(1):
            finished(_run_and_write(out, cfg, g))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        slots = workers
        done()
        with (
            _single_threaded_children(),
            ProcessPoolExecutor(workers, mp_context=ctx, initializer=reuse_freed_memory) as pool,
        ):
            futures = [pool.submit(_run_and_write, out, cfg, g) for g in split(workers)]
            for fut in as_completed(futures):
                finished(fut.result())
    bar.close()
    return counts
