"""Speed of numrnn.kernels._math against NumPy ufuncs inside @njit kernels.

Run::

    python benchmarks/bench_math.py [--n 1000000] [--repeat 20]

Prints ns per element (best of ``--repeat`` runs) for an elementwise loop and
for a fused LSTM gate update, and whether each loop was vectorised (packed
floating-point instructions on ymm/zmm registers in ``inspect_asm``, no libm
``exp``/``tanh`` calls left in the loop).
"""

import argparse
import re
import time

import numpy as np
from numba import njit

from numrnn.kernels._config import FASTMATH
from numrnn.kernels._math import exp, sigmoid, tanh

PACKED = re.compile(r"\bv(?:fn?madd|fn?msub|mul|add|sub|div)\w*p[sd]\s+[^\n]*%([yz])mm")
LIBM_CALL = re.compile(r"call\w*\s+[^\n]*(?:exp|tanh)", re.IGNORECASE)


def _numpy_funcs(ft):
    """np.exp / np.tanh based baselines with constants of the array's dtype."""
    one = ft(1.0)

    @njit(inline="always")
    def np_sigmoid(x):
        return one / (one + np.exp(-x))

    return {"exp": njit(inline="always")(lambda x: np.exp(x)), "sigmoid": np_sigmoid,
            "tanh": njit(inline="always")(lambda x: np.tanh(x))}  # fmt: skip


OURS = {"exp": exp, "sigmoid": sigmoid, "tanh": tanh}


def _elementwise(f):
    @njit(fastmath=FASTMATH, nogil=True)
    def kernel(a, out):
        for j in range(a.size):
            out[j] = f(a[j])

    return kernel


def _lstm_gates(sig, th, row_views):
    """One LSTM step's pointwise part, PyTorch gate order i, f, g, o.

    ``gates`` (B, 4H) holds pre-activations and is overwritten with the
    activations (what BPTT needs); ``c`` (B, H) is updated in place; ``h``
    (B, H) receives the new hidden state.  With ``row_views`` the inner loop
    works on 1-D row slices; otherwise it indexes the 2-D arrays directly.
    """

    @njit(fastmath=FASTMATH, nogil=True)
    def rows(gates, c, h):
        B, H = c.shape
        for b in range(B):
            gi, gf, gg, go = (
                gates[b, :H],
                gates[b, H : 2 * H],
                gates[b, 2 * H : 3 * H],
                gates[b, 3 * H :],
            )
            cb, hb = c[b], h[b]
            for j in range(H):
                i, f, g, o = sig(gi[j]), sig(gf[j]), th(gg[j]), sig(go[j])
                cj = f * cb[j] + i * g
                gi[j], gf[j], gg[j], go[j] = i, f, g, o
                cb[j] = cj
                hb[j] = o * th(cj)

    @njit(fastmath=FASTMATH, nogil=True)
    def indexed(gates, c, h):
        B, H = c.shape
        for b in range(B):
            for j in range(H):
                i, f = sig(gates[b, j]), sig(gates[b, H + j])
                g, o = th(gates[b, 2 * H + j]), sig(gates[b, 3 * H + j])
                cj = f * c[b, j] + i * g
                gates[b, j], gates[b, H + j], gates[b, 2 * H + j], gates[b, 3 * H + j] = i, f, g, o
                c[b, j] = cj
                h[b, j] = o * th(cj)

    return rows if row_views else indexed


def _best(fn, args, repeat):
    fn(*args)  # compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def _vectorised(kernel):
    asm = kernel.inspect_asm(kernel.signatures[0])
    regs = set(PACKED.findall(asm))
    width = "zmm" if "z" in regs else "ymm" if "y" in regs else None
    calls = bool(LIBM_CALL.search(asm))
    return f"packed {width}" if width and not calls else "scalar libm calls" if calls else "scalar"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    print(f"elementwise loop over {args.n:.0e} elements, fastmath={sorted(FASTMATH)}")
    print(f"{'dtype':8} {'func':8} {'numpy ns/el':>12} {'ours ns/el':>11} {'speed-up':>9}  codegen")
    for ft in (np.float64, np.float32):
        a = (rng.standard_normal(args.n) * 4).astype(ft)
        out = np.empty_like(a)
        base = _numpy_funcs(ft)
        for name in OURS:
            k_np, k_ours = _elementwise(base[name]), _elementwise(OURS[name])
            t_np = _best(k_np, (a, out), args.repeat) / args.n * 1e9
            t_ours = _best(k_ours, (a, out), args.repeat) / args.n * 1e9
            print(
                f"{ft.__name__:8} {name:8} {t_np:12.2f} {t_ours:11.2f} {t_np / t_ours:8.1f}x"
                f"  numpy: {_vectorised(k_np)}; ours: {_vectorised(k_ours)}"
            )

    B, H = args.batch, args.hidden
    print(f"\nfused LSTM gate update, gates (B, 4H) = ({B}, {4 * H}), c and h (B, H)")
    print(f"{'dtype':8} {'inner loop':11} {'numpy us':>9} {'ours us':>8} {'speed-up':>9}  codegen")
    for ft in (np.float64, np.float32):
        gates0 = (rng.standard_normal((B, 4 * H)) * 2).astype(ft)
        c0 = rng.standard_normal((B, H)).astype(ft)
        base = _numpy_funcs(ft)
        for row_views in (True, False):
            kernels = [
                _lstm_gates(base["sigmoid"], base["tanh"], row_views),
                _lstm_gates(sigmoid, tanh, row_views),
            ]
            times, hs = [], []
            for kernel in kernels:
                # In-place updates keep values in range (activations lie in [-1, 1]).
                state = (gates0.copy(), c0.copy(), np.empty_like(c0))
                times.append(_best(kernel, state, args.repeat) * 1e6)
                state = (gates0.copy(), c0.copy(), np.empty_like(c0))
                kernel(*state)
                hs.append(state[2])
            layout = "row views" if row_views else "2-D index"
            print(
                f"{ft.__name__:8} {layout:11} {times[0]:9.1f} {times[1]:8.1f}"
                f" {times[0] / times[1]:8.1f}x  numpy: {_vectorised(kernels[0])};"
                f" ours: {_vectorised(kernels[1])}; max |dh| {np.max(np.abs(hs[0] - hs[1])):.1e}"
            )
    print(
        "\nNote: '2-D index' kernels contain packed code but LLVM hoists its runtime alias\n"
        "checks out of the batch loop, over the whole (B, 4H) block, where the four gate\n"
        "column ranges overlap, so the checks fail and the scalar loop runs.  Take 1-D row\n"
        "views (gates[b, :H], c[b], ...) before the inner loop."
    )


if __name__ == "__main__":
    main()
