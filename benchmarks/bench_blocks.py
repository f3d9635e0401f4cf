"""A time loop's member rows as one block or split between threads, for small networks.

Usage::

    python benchmarks/bench_blocks.py [--repeat N]

``_parallel.loop_blocks`` keeps a member's B rows in one block unless its share of a
step's recurrent product reaches ``_config.MIN_STEP_WORK`` multiply-adds; below that each
block pays every step's fixed costs. This times a tanh RNN's forward + backward kernels
(``kernels.rnn``) both ways on small shapes, best of ``--repeat``, and prints which one
numrnn chooses.
"""

import argparse

import numpy as np
from bench_models import best_of  # the script's folder is on sys.path

from numrnn.kernels import _parallel, rnn

SHAPES = [(1, 100, 8, 2, 8), (1, 100, 8, 8, 16), (1, 100, 4, 8, 32), (1, 100, 16, 8, 16),
          (1, 100, 8, 8, 32), (1, 100, 32, 8, 32), (1, 100, 32, 32, 64), (1, 100, 64, 32, 64),
          (1024, 50, 8, 2, 8)]  # fmt: skip


def fwd_bwd(K, T, B, D, H, rng):
    x = rng.standard_normal((1, T, B, D))
    wih_t, whh_t = 0.3 * rng.standard_normal((K, D, H)), 0.3 * rng.standard_normal((K, H, H))
    bias, h0 = np.zeros((K, H)), np.zeros((K, B, H))
    lengths, dy = np.full(T, B, np.int64), rng.standard_normal((K, T, B, H))
    whh, none = np.ascontiguousarray(whh_t.transpose(0, 2, 1)), np.zeros((0, 0, 0))

    def run():
        hs = rnn.rnn_forward(x, wih_t, bias, whh_t, bias, h0, lengths, False)
        rnn.rnn_backward(hs, whh, x, dy, h0, lengths, False, none)

    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{_parallel.THREADS} threads")
    print(f"{'K, T, B, D, H':<22}{'one block ms':>13}{'split ms':>10}  numrnn")
    whole = lambda K, B, G, H: (K, 1, B)  # noqa: E731 - every member in one block
    split = lambda K, B, G, H: _parallel.blocks(K, B)  # noqa: E731 - the old rule: always
    chosen = _parallel.loop_blocks
    try:
        for K, T, B, D, H in SHAPES:
            times = []
            for rule in (whole, split):
                rnn.loop_blocks = rule
                times.append(best_of(fwd_bwd(K, T, B, D, H, rng), args.repeat) * 1e3)
            rnn.loop_blocks = chosen
            per_member = chosen(K, B, 1, H)[1]
            print(f"{f'{K}, {T}, {B}, {D}, {H}':<22}{times[0]:>13.3f}{times[1]:>10.3f}  "
                  f"{'one block' if per_member == 1 else f'{per_member} blocks'}")  # fmt: skip
    finally:
        rnn.loop_blocks = chosen


if __name__ == "__main__":
    main()
