"""Time to first result: each case in a fresh process with an empty Numba cache.

    python benchmarks/bench_first_use.py [--cases demo fwd_bwd warmup] [--repeat 1]

Every case runs in a new Python process whose ``NUMBA_CACHE_DIR`` is a new empty
directory, so nothing compiled before helps it (the wall time includes starting Python and
importing numrnn):

* ``demo``: ``numrnn demo`` as a new user first runs it;
* ``fwd_bwd``: the first forward + backward of a model (2 features, 32 units, a dense head on
  every step, T = 50, B = 8) for each cell and dtype, beside the second call's time;
* ``warmup``: ``numrnn warmup`` (float64, the three kernel sets) with one and with two
  compiling processes, then ``numrnn demo`` against the cache it filled.

Check that the machine is otherwise idle first (``uptime``): compilation runs on one core
per process. ``--cpu haswell`` compiles for an AVX2 CPU instead of this one (Numba's
``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``), as a machine without AVX-512 would: the
products then run as BLAS calls (``_config.product_plan()``), with none of numrnn's panels.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

#: Numba's target features of the CPUs ``--cpu`` can emulate
CPUS = {"haswell": "+avx,+avx2,+fma,+sse4.2,+sse4.1,+ssse3,+sse3,+sse2,+sse,+mmx,+popcnt,"
                   "+bmi,+bmi2,+f16c,+lzcnt,+movbe,+cx16,+xsave"}  # fmt: skip

FWD_BWD = """
import time, numpy as np
t0 = time.perf_counter()
from numrnn.nn import from_config
model = from_config({cell!r}, input_size=2, hidden_size=32, dtype={dtype!r}, seed=0,
                    output_size=1)
x = np.random.default_rng(0).standard_normal((50, 8, 2)).astype({dtype!r})
t1 = time.perf_counter()
res = model.forward(x); model.backward(res, np.ones_like(res.output))
t2 = time.perf_counter()
res = model.forward(x); model.backward(res, np.ones_like(res.output))
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def fresh(cmd, cache=None):
    """Run ``cmd`` with NUMBA_CACHE_DIR ``cache`` (a new empty one if None); (wall, stdout)."""
    cache = cache or tempfile.mkdtemp(prefix="numba-cache-")
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                         cwd=tempfile.mkdtemp())  # fmt: skip
    return time.perf_counter() - start, out.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["demo", "fwd_bwd", "warmup"],
                   choices=["demo", "fwd_bwd", "warmup"])  # fmt: skip
    p.add_argument("--repeat", type=int, default=1, help="runs of each case (fresh each time)")
    p.add_argument("--cpu", choices=sorted(CPUS), help="compile for this CPU, not the host's")
    args = p.parse_args(argv)
    if args.cpu:  # the processes started here inherit it
        os.environ.update(NUMBA_CPU_NAME=args.cpu, NUMBA_CPU_FEATURES=CPUS[args.cpu])
    numrnn = [sys.executable, "-m", "numrnn.cli"]
    print(
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start"
        + (f"; compiled for {args.cpu}" if args.cpu else "")
    )

    def runs(cmd, cache=None):
        return [fresh(cmd, cache)[0] for _ in range(args.repeat)]

    def fmt(ts):
        return " / ".join(f"{t:.1f}" for t in ts)

    if "demo" in args.cases:
        print(f"\nnumrnn demo, empty cache: {fmt(runs([*numrnn, 'demo', '--out', 'demo']))} s")
    if "fwd_bwd" in args.cases:
        print(f"\n{'cell':<10}{'dtype':<9}{'import + build s':>18}{'first fwd+bwd s':>17}"
              f"{'second s':>10}")  # fmt: skip
        for dtype in ("float64", "float32"):
            for cell in ("rnn_tanh", "lstm", "gru"):
                for _ in range(args.repeat):
                    code = FWD_BWD.format(cell=cell, dtype=dtype)
                    _, out = fresh([sys.executable, "-c", code])
                    imp, first, second = map(float, out.split())
                    print(f"{cell:<10}{dtype:<9}{imp:>18.1f}{first:>17.1f}{second:>10.4f}")
    if "warmup" in args.cases:
        print()
        for jobs in (1, 2):
            for _ in range(args.repeat):
                cache = tempfile.mkdtemp(prefix="numba-cache-")
                wall, _ = fresh([*numrnn, "warmup", "--jobs", str(jobs)], cache)
                demo, _ = fresh([*numrnn, "demo", "--out", "demo"], cache)
                print(f"numrnn warmup --jobs {jobs}, empty cache: {wall:.1f} s; numrnn demo "
                      f"after it: {demo:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
