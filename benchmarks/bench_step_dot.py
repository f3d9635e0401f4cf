"""A time step's product as one BLAS call and as numrnn's panels, and small ones as loops.

Usage::

    python benchmarks/bench_step_dot.py [--repeat N]

``linalg.step_dot`` multiplies a block's few rows by W_hh (or W_ih, or their transposes in
BPTT) at every step. This prints, on the shapes of ``bench_models.py``'s steps (the
forward's ``(rows, H) @ (H, G*H)``, BPTT's ``(rows, G*H) @ (G*H, H)``), best of
``--repeat``, one BLAS call beside numrnn's register tiles over packed panels
(``numrnn.kernels.panels``), which it runs where the CPU has AVX-512
(``_config.product_plan()``, the option ``products``), and the choice made here.

A second table times the products of small networks' steps as one BLAS call, as
``linalg.add_dot_loops``'s vector loops and as the panels, and the choice ``step_dot``
makes here (``linalg.use_loops``: against BLAS up to ``_config.LOOP_PRODUCT``
multiply-adds, fewer where b's rows lie a multiple of 2 KB apart; against the panels up
to ``LOOP_PRODUCT_PANELS``).
"""

import argparse
import time

import numpy as np
from bench_models import best_of  # the script's folder is on sys.path
from numba import njit

from numrnn.kernels._config import PANELS, product_plan
from numrnn.kernels.linalg import add_dot_loops, step_dot, step_weights, use_loops
from numrnn.kernels.panels import add_dot_panels, pack_weights

SHAPES = [(16, 64, 64), (16, 64, 256), (16, 128, 384), (16, 128, 512), (16, 512, 128),
          (32, 512, 512), (32, 512, 2048), (32, 2048, 512), (32, 512, 1536)]  # fmt: skip
# small networks' steps: the forward's (rows, H) @ (H, G*H) and BPTT's (rows, G*H) @ (G*H, H)
SMALL = [(1, 8, 8), (4, 2, 8), (8, 8, 8), (1, 32, 32), (1, 32, 128), (1, 128, 32),
        (8, 16, 16), (8, 16, 64), (4, 32, 32), (8, 32, 32), (16, 32, 32), (8, 32, 128),
        (8, 128, 32), (16, 32, 128), (16, 64, 64), (16, 64, 256), (16, 256, 64),
        (32, 64, 64), (16, 64, 192), (16, 192, 64), (16, 128, 128), (16, 32, 256),
        (32, 32, 256), (32, 128, 128)]  # fmt: skip


@njit(nogil=True)
def _repeat(a, b, bp, out, plan, n):
    for _ in range(n):
        step_dot(a, b, bp, out, plan)


@njit(nogil=True)
def _repeat_blas(a, b, out, n):
    for _ in range(n):
        np.dot(a, b, out)


@njit(nogil=True)
def _repeat_loops(a, b, out, n):
    for _ in range(n):
        add_dot_loops(a, b, out)


@njit(nogil=True)
def _repeat_panels(a, b, out, n):
    for _ in range(n):
        add_dot_panels(a, b, out)


def loops_table(repeat, rng):
    """Small products: one BLAS call, add_dot_loops' loops and the panels, in ns."""
    plan = product_plan()
    print(f"\n{'dtype':<9}{'product':<24}{'BLAS ns':>9}{'loops ns':>10}{'panels ns':>11}"
          f"{'BLAS/loops':>12}{'loops/panels':>14}  step_dot")  # fmt: skip
    for dtype in (np.float64, np.float32):
        for M, K, N in SMALL:
            a = rng.standard_normal((M, K)).astype(dtype)
            b = rng.standard_normal((K, N)).astype(dtype)
            out, n = np.empty((M, N), dtype), max(100, 4_000_000 // (M * K * N))
            times = [best_of(lambda f=f, b=b: f(a, b, out, n), repeat) / n * 1e9
                     for f, b in ((_repeat_blas, b), (_repeat_loops, b),
                                  (_repeat_panels, pack_weights(b[None])[0]))]  # fmt: skip
            product = f"({M},{K}) @ ({K},{N})"
            path = "panels" if plan == PANELS else "BLAS"
            if use_loops(M, K, N, N * out.itemsize, out.itemsize, plan):
                path = "loops"
            print(f"{np.dtype(dtype).name:<9}{product:<24}{times[0]:>9.0f}{times[1]:>10.0f}"
                  f"{times[2]:>11.0f}{times[0] / times[1]:>12.2f}{times[1] / times[2]:>14.2f}"
                  f"  {path}")  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_info

    cores = sorted({i.get("architecture") for i in threadpool_info() if i["user_api"] == "blas"})
    uses = "the panels" if product_plan() == PANELS else "one BLAS call"
    print(f"OpenBLAS kernels: {', '.join(map(str, cores))}; numrnn uses {uses} above the loops")
    print(f"{'dtype':<9}{'product':<24}{'one call us':>12}{'panels us':>11}{'one/panels':>12}")
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        for M, K, N in SHAPES:
            a = rng.standard_normal((M, K)).astype(dtype)
            b = rng.standard_normal((1, K, N)).astype(dtype)
            out = np.empty((M, N), dtype)
            n = max(20, int(3e7 // (M * K * N)))
            times = []
            for plan in (None, PANELS):
                bp = step_weights(b, M, plan)[0]
                _repeat(a, b[0], bp, out, plan, 2)
                best = np.inf
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    _repeat(a, b[0], bp, out, plan, n)
                    best = min(best, time.perf_counter() - t0)
                times.append(best / n * 1e6)
            product = f"({M},{K}) @ ({K},{N})"
            print(f"{np.dtype(dtype).name:<9}{product:<24}{times[0]:>12.1f}{times[1]:>11.1f}"
                  f"{times[0] / times[1]:>12.2f}")  # fmt: skip
    loops_table(args.repeat, rng)


if __name__ == "__main__":
    main()
