"""The ``numrnn`` command.

numrnn demo [--out PREFIX]       vanishing/exploding Jacobian products (the README's demo)
numrnn train CONFIG --out FILE   one training run from a TOML config without [grid]
numrnn sweep CONFIG --out STORE  every point of a config's [grid], resumable
numrnn report STORE --out DIR    summary table and figures of a sweep store
numrnn warmup [--dtype ...]      compile the kernels into Numba's cache ahead of first use
numrnn bench [ARGS...]           forward+backward against torch.nn (needs torch)

A command that cannot run as given (a bad config or argument, an ``--out`` that numrnn
will not use) exits with status 2 and one line on stderr, no traceback.
"""

import argparse
import os
import runpy
import sys
import time
import warnings
from pathlib import Path

from .precompile import CELLS

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2, as argparse's)."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _refuse(command, err):
    """A config or usage error: one line, exit status 2."""
    print(f"numrnn {command}: {err}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def _one_line_warnings():
    """numrnn's warnings about stores (repaired, damaged, rerun) as one line each."""
    from .results import DamagedStoreWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DamagedStoreWarning):
            print(f"numrnn: warning: {message}", file=sys.stderr if file is None else file)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _demo(args):
    from . import demo

    demo.run(out_prefix=args.out, T=args.T, batch=args.batch, seed=args.seed)


def _train(args):
    from . import results, sweep

    try:
        if not args.out.rstrip("/").endswith((".nc", ".zarr")):
            raise sweep.ConfigError(f"--out must end in '.nc' or '.zarr', got {args.out!r}")
        if os.path.isdir(args.out) and not args.out.rstrip("/").endswith(".zarr"):
            raise sweep.ConfigError(f"--out {args.out!r} is a directory")
        results.check_writable(args.out)  # before the run, not after it
        cfg = sweep.load_config(args.config, require_grid=False)
        runs = sweep.points(cfg)
        if len(runs) != 1:
            raise sweep.ConfigError(
                f"numrnn train runs one config, but its [grid] makes {len(runs)} points; "
                "run them with numrnn sweep"
            )
    except (sweep.ConfigError, FileExistsError) as err:
        _refuse("train", err)
    ds = sweep.run_point(runs[0], progress=True)
    if ds.attrs.get("status") == "failed":
        sys.exit(f"numrnn train: the run failed: {ds.attrs['message']}")
    results.save(ds, args.out)
    print(f"{ds.attrs['status']}: final loss {float(ds['loss'][-1]):.4g}; wrote {args.out}")


def _sweep(args):
    from . import sweep

    try:
        counts = sweep.run(args.config, args.out, scheduler=args.scheduler,
                           workers=args.workers, overwrite=args.overwrite,
                           batch=args.batch)  # fmt: skip
    except (sweep.ConfigError, sweep.StoreError) as err:
        _refuse("sweep", err)
    if not any(counts.values()):  # a finished store: nothing was pending
        import xarray as xr

        with xr.open_zarr(args.out, zarr_format=2) as store:
            n = store["status"].size
        print(f"{n} points already complete; store {args.out}")
        return
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + f"; store {args.out}")


def _report(args):
    from .report import report

    if not os.path.isdir(args.store):
        _refuse("report", f"no sweep store at {args.store!r}")
    for path in report(args.store, args.out):
        print("wrote", path)


def _warmup(args):
    from .precompile import warmup

    start = time.perf_counter()
    times = warmup(args.dtype, args.cells, args.jobs)
    for (name, dtype), seconds in times.items():
        print(f"{name:>20} {dtype}: {seconds:6.1f} s")
    print(f"compiled into Numba's cache in {time.perf_counter() - start:.1f} s")


def _bench(args):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_models.py"
    if not script.exists():
        sys.exit("numrnn bench needs a source checkout (benchmarks/bench_models.py)")
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")


def main(argv=None):
    """Run the ``numrnn`` command with ``argv`` (the process's arguments when None).

    Parameters
    ----------
    argv : list of str or None
        The arguments after ``numrnn``, e.g. ``["demo", "--out", "d"]``.

    Examples
    --------
    >>> import os, tempfile
    >>> from numrnn.cli import main
    >>> main(["demo", "--out", os.path.join(tempfile.mkdtemp(), "demo"), "--batch", "2"])
    ||ds_T/ds_t||_2 at lag              1         10         50         99
    ...
    wrote ... in ... s
    """
    parser = _Parser(prog="numrnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="norms of Jacobian products for 4 recurrent networks")
    p.add_argument("--out", default="numrnn-demo", help="prefix of the .nc and .png written")
    p.add_argument("--T", type=int, default=100, help="sequence length")
    p.add_argument("--batch", type=int, default=16, help="number of random input sequences")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    p = sub.add_parser("train", help="one training run from a TOML config (no [grid])")
    p.add_argument("config")
    p.add_argument("--out", required=True, help="result file (.nc or .zarr)")
    p.set_defaults(func=_train)

    p = sub.add_parser("sweep", help="every point of a config's [grid], resumable")
    p.add_argument("config")
    p.add_argument("--out", required=True, help="the Zarr store (.zarr)")
    p.add_argument("--scheduler", help="address of a dask.distributed scheduler")
    p.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    p.add_argument("--overwrite", action="store_true", help="replace a store of another config")
    p.add_argument("--batch", type=int, help="at most this many points per ensemble (1: none)")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("report", help="summary table and figures of a sweep store")
    p.add_argument("store")
    p.add_argument("--out", required=True, help="directory for summary.txt and PNGs")
    p.set_defaults(func=_report)

    p = sub.add_parser("warmup", help="compile the kernels ahead of first use (once per machine)")
    p.add_argument("--dtype", nargs="+", default=["float64"], choices=["float64", "float32"])
    p.add_argument("--cells", nargs="+", default=list(CELLS), help="cells (config names)")
    p.add_argument("--jobs", type=int, help="compiling processes (default: cores)")
    p.set_defaults(func=_warmup)

    p = sub.add_parser("bench", help="benchmark against torch.nn (source checkout)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of bench_models.py")
    p.set_defaults(func=_bench)

    args = parser.parse_args(argv)
    _one_line_warnings()
    from .memory import reuse_freed_memory

    reuse_freed_memory()  # this process is ours: reuse large arrays (see numrnn/memory.py)
    args.func(args)


if __name__ == "__main__":
    main()
