"""Peak memory of training on one long sequence: truncated BPTT against full BPTT.

    python benchmarks/bench_tbptt_memory.py [--T 100000] [--hidden 128] [--chunk 100]

Each case runs in a fresh process (peak RSS is per process): an LSTM of ``--hidden`` units
(float64) learns one-step-ahead prediction of one noisy sine sequence of ``--T`` steps with
``nr.train(..., tbptt=--chunk)`` over the whole sequence (T / chunk updates, evaluations in
pieces of ``chunk`` steps), and, for contrast, full BPTT (one forward + backward over the
whole sequence) at T / 20 and T / 10, whose tape grows with T. Prints the peak resident set
size (``resource.getrusage``, which includes the interpreter, NumPy, Numba and the compiled
kernels) and the same process's RSS after importing numrnn and compiling the kernels on a
short warm-up run, and the wall time.
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def case(mode, T, hidden, chunk):
    """Run one case in this process; print a JSON line."""
    import numpy as np

    import numrnn as nr

    rng = np.random.default_rng(0)
    t = np.arange(T + 1)
    series = np.sin(2 * np.pi * t / 97.0) + 0.1 * rng.standard_normal(T + 1)
    x, y = series[:-1, None, None], series[1:, None, None]
    task = nr.tasks.Sequences(x, y, validation=0.0)
    model = nr.LSTM(1, hidden, seed=0, output_size=1)
    warm = nr.tasks.Sequences(x[: 2 * chunk], y[: 2 * chunk], validation=0.0)
    nr.train(
        nr.LSTM(1, hidden, seed=0, output_size=1),
        warm,
        2,
        1,
        ("adam", {"lr": 1e-3}),
        tbptt=chunk,
        progress=False,
    )  # fmt: skip  (compiles the kernels)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if mode == "tbptt":
        run = nr.train(model, task, T // chunk, 1, ("adam", {"lr": 1e-3}), clip=1.0,
                       tbptt=chunk, eval_every=T // chunk, progress=False)  # fmt: skip
        loss = float(run.test_loss.dropna("step")[-1])
    else:
        res = model.forward(x)
        loss, d = nr.losses.mse(res.output, y)
        model.backward(res, d, input_grad=False)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "T": T, "base_mb": base, "peak_mb": peak, "wall_s": wall,
                      "loss": loss}))  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=100_000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--chunk", type=int, default=100)
    p.add_argument("--case", nargs=2, help=argparse.SUPPRESS)  # internal: mode T
    args = p.parse_args(argv)
    if args.case:
        case(args.case[0], int(args.case[1]), args.hidden, args.chunk)
        return
    print(f"LSTM H={args.hidden}, float64, one sequence, batch 1; truncated BPTT chunk "
          f"{args.chunk}")  # fmt: skip
    print(f"{'mode':<10}{'T':>9}{'peak RSS MB':>13}{'after warm-up':>15}{'wall s':>9}"
          f"{'test MSE':>10}")  # fmt: skip
    for mode, T in [("full", args.T // 20), ("full", args.T // 10), ("tbptt", args.T)]:
        out = subprocess.run([sys.executable, __file__, "--hidden", str(args.hidden),
                              "--chunk", str(args.chunk), "--case", mode, str(T)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['mode']:<10}{r['T']:>9}{r['peak_mb']:>13.0f}{r['base_mb']:>15.0f}"
              f"{r['wall_s']:>9.1f}{r['loss']:>10.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
