"""Where a sweep's points run: in this process, a local process pool, or a Dask cluster.

Points that differ only in initializer, forget bias or seed train together as one
ensemble (:func:`~numrnn.sweep.point.run_group`), in as many groups as there are
workers; each worker writes its points into their own regions of the store.
"""

import os
import sys
import threading
import warnings

from .._checks import check_int
from ..memory import reuse_freed_memory
from ..results import DamagedStoreWarning
from .config import ConfigError, load_config
from .point import groups, run_group
from .store import STATUS, claim, create_store, lock, scan, write_point


def _run_and_write(path, cfg, group, threads=None, token=None):
    """Worker body: run a group of points and write each; returns [status] in order.

    ``threads``: Numba threads for this group (restored after); on a cluster the worker
    processes are the parallelism, so each group runs single-threaded. ``token``: the
    run's token (:func:`~numrnn.sweep.store.claim`), without which nothing is written.
    """
    import numba

    saved = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(min(threads, saved))
        results = run_group(group)
        return [write_point(path, cfg, p, ds, token)
                for p, ds in zip(group, results, strict=True)]  # fmt: skip
    finally:
        numba.set_num_threads(saved)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_init(parent):
    """Pool initializer: reuse freed memory, and die with the sweep process ``parent``.

    A pool worker whose sweep is killed (``kill -9``) would otherwise live on, run the
    groups already queued for it and write them into the store. On Linux the kernel
    kills it when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon
    thread checks every half second that the parent is still there.
    """
    reuse_freed_memory()
    _die_with_parent(parent)


def _die_with_parent(parent, interval=0.5):
    import signal

    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError, TypeError):  # no usable libc: the thread does it
            pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            threading.Event().wait(interval)
        os._exit(1)

    threading.Thread(target=watch, name="numrnn-parent-watch", daemon=True).start()


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
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> nr.sweep.run(cfg, path, workers=1, progress=False)
    {'ok': 4, 'diverged': 0, 'failed': 0}
    >>> nr.sweep.run(cfg, path, workers=1, progress=False)  # nothing left to do
    {'ok': 0, 'diverged': 0, 'failed': 0}
    >>> nr.open(path).loss.dims
    ('init', 'seed', 'step')
    """
    from tqdm import tqdm

    out = _check_out(out)
    workers = _check_count("workers", workers)
    batch = _check_count("batch", batch)
    if scheduler is not None and not isinstance(scheduler, str):
        raise ConfigError(f"scheduler must be an address string, got {scheduler!r}")
    cfg = load_config(source)
    with lock(out):  # one sweep at a time on a store; released however this process ends
        create_store(cfg, out, overwrite=overwrite)
        token = claim(out, cfg)  # writers of any earlier run are refused from now on
        todo, damaged = scan(out, cfg)  # the pending points, and the damaged ones
        if damaged:
            names = "; ".join(
                f"{_coords(cfg, index)}: {', '.join(what)}" for index, what in damaged.items()
            )
            warnings.warn(f"{os.fspath(out)!r}: {len(damaged)} damaged point(s) will run "
                          f"again ({names})", DamagedStoreWarning, stacklevel=2)  # fmt: skip
        return _run_points(cfg, out, todo, token, scheduler, workers, batch, progress, tqdm)


def _check_out(out):
    if not isinstance(out, (str, os.PathLike)):
        raise ConfigError(f"out must be a path ending in '.zarr', got {out!r}")
    path = os.fspath(out).rstrip("/")
    if not path.endswith(".zarr"):
        raise ConfigError(f"out must end in '.zarr', got {os.fspath(out)!r}")
    return path


def _check_count(name, value):
    try:
        return check_int(name, value, 1, none_ok=True)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


def _coords(cfg, index):
    """The grid coordinates of the point at ``index``, for messages."""
    keys = list(cfg["grid"])
    return "point " + str({k.rsplit(".", 1)[-1]: cfg["grid"][k][i]
                           for k, i in zip(keys, index, strict=True)})  # fmt: skip


def _run_points(cfg, out, todo, token, scheduler, workers, batch, progress, tqdm):
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
            futures = [client.submit(_run_and_write, os.path.abspath(out), cfg, g, 1, token,
                                     pure=False) for g in split(slots)]  # fmt: skip
            for fut in as_completed(futures):
                finished(fut.result())
    elif workers == 1 or len(todo) <= 1:
        done()
        for g in split(1):
            finished(_run_and_write(out, cfg, g, token=token))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        slots = workers
        done()
        with (
            _single_threaded_children(),
            ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                initargs=(os.getpid(),)) as pool,
        ):  # fmt: skip
            futures = [pool.submit(_run_and_write, out, cfg, g, None, token)
                       for g in split(workers)]  # fmt: skip
            for fut in as_completed(futures):
                finished(fut.result())
    bar.close()
    return counts
