"""A time loop's member rows as one block or split between threads, for small networks.

Usage::

    python benchmarks/bench_blocks.py [--rounds N]

``_parallel.loop_blocks`` keeps a member's B rows in one block unless its share of a
step's recurrent product reaches ``_config.MIN_STEP_WORK`` multiply-adds and its share of
the whole loop ``_config.MIN_LOOP_WORK``; below these each block pays every step's fixed
costs, or the loop is shorter than waking a thread. This times a tanh RNN's forward +
backward kernels (``kernels.rnn``) both ways on small shapes, alternating the two in
``--rounds`` rounds of 0.05 s each, and prints the medians and minima of the calls (a
thread's wake-up varies: the median is what a training loop sees) and which one numrnn
chooses.
"""

import argparse
import time

import numpy as np

from numrnn.kernels import _parallel, rnn

SHAPES = [(1, 100, 8, 2, 8), (1, 50, 16, 2, 32), (1, 100, 16, 8, 32), (1, 100, 8, 8, 16),
          (1, 100, 4, 8, 32), (1, 100, 16, 8, 16), (1, 100, 8, 8, 32), (1, 100, 32, 8, 32),
          (1, 100, 32, 32, 64), (1, 100, 64, 32, 64), (1024, 50, 8, 2, 8)]  # fmt: skip


def fwd_bwd(K, T, B, D, H, rng):
    x = rng.standard_normal((1, T, B, D))
    wih_t, whh_t = 0.3 * rng.standard_normal((K, D, H)), 0.3 * rng.standard_normal((K, H, H))
    bias, h0 = np.zeros((K, H)), np.zeros((K, B, H))
    lengths, dy = np.full(T, B, np.int64), rng.standard_normal((K, T, B, H))
    whh, none = np.ascontiguousarray(whh_t.transpose(0, 2, 1)), np.zeros((0, 0, 0))
    wih = np.ascontiguousarray(wih_t.transpose(0, 2, 1))

    @_parallel.serial  # as a model's passes run: BLAS single-threaded inside the kernels
    def run():
        hs = rnn.rnn_forward(x, wih_t, bias, whh_t, bias, h0, lengths, False)
        rnn.rnn_backward(hs, whh, wih, x, dy, h0, lengths, False, none)

    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{_parallel.THREADS} threads; medians (minima) of the calls, ms")
    print(f"{'K, T, B, D, H':<20}{'one block':>18}{'split':>18}  numrnn")
    whole = lambda K, B, G, H, T: (K, 1, B)  # noqa: E731 - every member in one block
    split = lambda K, B, G, H, T: _parallel.blocks(K, B)  # noqa: E731 - always split
    chosen = _parallel.loop_blocks
    try:
        for K, T, B, D, H in SHAPES:
            run = fwd_bwd(K, T, B, D, H, rng)
            times = ([], [])
            for _ in range(args.rounds):
                for rule, ts in zip((whole, split), times, strict=True):
                    rnn.loop_blocks = rule
                    run()
                    end = time.perf_counter() + 0.05
                    while (start := time.perf_counter()) < end:
                        run()
                        ts.append(time.perf_counter() - start)
            rnn.loop_blocks = chosen
            per_member = chosen(K, B, 1, H, T)[1]
            cols = "".join(f"{np.median(ts) * 1e3:>10.3f} ({min(ts) * 1e3:.3f})" for ts in times)
            print(f"{f'{K}, {T}, {B}, {D}, {H}':<20}{cols}  "
                  f"{'one block' if per_member == 1 else f'{per_member} blocks'}")  # fmt: skip
    finally:
        rnn.loop_blocks = chosen


if __name__ == "__main__":
    main()
