"""Forward + backward as a script runs it, with numrnn's ``keep_heap`` option on and off.

Usage::

    python benchmarks/bench_heap.py [--rounds N]

A script does not call ``numrnn.memory.reuse_freed_memory()`` (the other benchmarks and the
``numrnn`` command do); glibc then hands a pass's freed arrays back to the system and the
next pass page-faults them in again, unless the option ``keep_heap`` (on by default) kept
them in the heap. Each setting runs in a fresh process (glibc's thresholds are per process)
and the two alternate for ``--rounds`` rounds; each process times 1 s of calls per size and
prints the median and the minor page faults per call (``resource.getrusage``).
"""

import argparse
import subprocess
import sys

SIZES = [("rnn_tanh", 100, 32, 32, 64), ("lstm", 100, 32, 32, 64), ("gru", 100, 32, 32, 64),
         ("rnn_tanh", 200, 32, 32, 128), ("gru", 200, 32, 32, 128)]  # fmt: skip

ONE = """
import resource, sys, time
import numpy as np
import numrnn as nr
from numrnn.nn import from_config
nr.set_options(keep_heap={keep}, compile_notice=False)
for cell, T, B, D, H in {sizes!r}:
    model = from_config(cell, input_size=D, hidden_size=H, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, D))
    dy = np.ones((T, B, H))
    model.backward(model.forward(x), dy)
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:
        start = time.perf_counter()
        model.backward(model.forward(x), dy)
        times.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / len(times)
    print(np.median(times) * 1e3, faults)
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    runs = {True: [], False: []}
    for _ in range(args.rounds):
        for keep in (True, False):
            out = subprocess.run([sys.executable, "-c", ONE.format(keep=keep, sizes=SIZES)],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            runs[keep].append([tuple(map(float, line.split())) for line in out.splitlines()])
    print("float64 forward + backward, median ms (page faults a call) in each round")
    print(f"{'cell':9}{'T, B, D, H':>18}  {'keep_heap on':>24}  {'off (glibc default)':>24}")
    for i, (cell, T, B, D, H) in enumerate(SIZES):
        cols = [" ".join(f"{r[i][0]:.2f}({r[i][1]:.0f})" for r in runs[k]) for k in (True, False)]
        print(f"{cell:9}{f'{T}, {B}, {D}, {H}':>18}  {cols[0]:>24}  {cols[1]:>24}")


if __name__ == "__main__":
    main()
