"""Lyapunov spectra: numrnn's QR iteration against a jitted JAX QR loop, same network.

    python benchmarks/bench_lyapunov.py [--N 200 1000] [--T 2000] [--repeat 3]

The autonomous tanh network ``h_t+1 = tanh(W h_t)``, ``W_ij ~ N(0, g^2/N)`` with g = 2
(chaotic), from one random ``h_0``, ``--T`` steps, the full spectrum (N exponents) without
warm-up. numrnn (``nr.diagnostics.lyapunov_spectrum``, float64, forward pass included) with
the QR every step (``reorthonormalize=1``) and with the adaptive interval (the default);
JAX (when installed): ``jax.jit`` of a ``lax.scan`` over the steps of ``J_t = diag(1 -
h_t^2) W``, ``Q, R = qr(J_t Q)``, summing ``log|diag R|``, float64, compiled before timing.
Prints the median of ``--repeat`` runs (and the spread), the ratio JAX time / numrnn time,
and the largest exponents of each, which must agree.
"""

import argparse
import time

import numpy as np

import numrnn as nr


def timed(fn, repeat):
    """(median seconds, (min, max), the last result)."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), (min(times), max(times)), out


def jax_spectrum(W, h0, T):
    """A jitted JAX QR loop; None when JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    @jax.jit
    def run(W, h0):
        def step(carry, _):
            h, Q, s = carry
            h = jnp.tanh(W @ h)
            Q, R = jnp.linalg.qr(((1 - h * h)[:, None] * W) @ Q)
            return (h, Q, s + jnp.log(jnp.abs(jnp.diag(R)))), None

        Q0 = jnp.eye(W.shape[0])
        (_, _, s), _ = jax.lax.scan(step, (h0, Q0, jnp.zeros(W.shape[0])), None, length=T)
        return jnp.sort(s / T)[::-1]

    Wj, hj = jnp.asarray(W), jnp.asarray(h0)
    run(Wj, hj).block_until_ready()  # compile
    return lambda: np.asarray(run(Wj, hj).block_until_ready())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--N", type=int, nargs="+", default=[200, 1000])
    p.add_argument("--T", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    print(f"tanh RNN, g = 2, T = {args.T}, full spectrum, float64; median of {args.repeat} "
          "(min-max) seconds")  # fmt: skip
    print(
        f"{'N':>5} {'every step':>18} {'adaptive':>18} {'JAX QR loop':>18} "
        f"{'JAX/adaptive':>12} {'JAX/every':>9}  largest exponents (every, adaptive, JAX)"
    )
    for N in args.N:
        init = {"weight_hh": ("glorot_normal", {"gain": 2.0}), "weight_ih": "zeros",
                "bias": "zeros"}  # fmt: skip
        model = nr.RNN(1, N, seed=0, init=init)
        h0 = np.random.default_rng(0).standard_normal(N)
        x = np.zeros((args.T, 1, 1))
        with nr.set_options(compile_notice=False):

            def ours(k):
                return lambda: nr.diagnostics.lyapunov_spectrum(
                    model, x, h0[None, None], reorthonormalize=k
                ).lyapunov.values[0, 0, 0]

            ours(1)()  # compile
            every = timed(ours(1), args.repeat)
            adaptive = timed(ours(None), args.repeat)
        jx = jax_spectrum(model.params["weight_hh_l0"], h0, args.T)
        jax_t = timed(jx, args.repeat) if jx else None

        def cell(t):
            return "-" if t is None else f"{t[0]:.2f} ({t[1][0]:.2f}-{t[1][1]:.2f})"

        ratio = "-" if jax_t is None else f"{jax_t[0] / adaptive[0]:.2f}"
        ratio1 = "-" if jax_t is None else f"{jax_t[0] / every[0]:.2f}"
        tops = [every[2][0], adaptive[2][0]] + ([jax_t[2][0]] if jax_t else [])
        print(f"{N:>5} {cell(every):>18} {cell(adaptive):>18} {cell(jax_t):>18} {ratio:>12} "
              f"{ratio1:>9}  " + ", ".join(f"{v:.6f}" for v in tops))  # fmt: skip


if __name__ == "__main__":
    main()
