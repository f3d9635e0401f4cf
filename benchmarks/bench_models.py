"""Forward + backward of numrnn against torch.nn on identical weights, printed as ratios.

Usage::

    python benchmarks/bench_models.py [--dtype float64|float32|both] [--repeat N] [--quick]
                                      [--sizes N] [--malloc reuse|keep|glibc]

After the per-size table, two lines time ensembles (one nr.ensemble call): 64 small LSTMs
and 1024 tiny tanh RNNs (T=50, B=8, D=2, H=8), against a Python loop over as many torch
modules and, with JAX, a ``jax.vmap`` of the same forward + backward over the members.

When JAX is installed, a column times the same forward + backward as ``jax.jit`` of
``jax.grad`` (parameters and input) through a ``lax.scan`` over the steps, the input
projection taken for all steps before the scan, on the same weights and output gradient;
its gradients are checked against numrnn's before timing (compilation excluded).

Each row times one forward and one backward pass (BPTT, all parameter gradients) of a
single-layer model on the same inputs, weights and output gradient, taking the best of
three interleaved rounds (numrnn, torch, JAX, three times), each the best of at least
``--repeat`` runs and of as many as fit in 0.1 s, after a warm-up (so Numba compilation
is excluded; see README for the time to first result). The ratio is PyTorch's
time over numrnn's: above 1, numrnn is faster.
GFLOP/s counts the matrix products only (the gate nonlinearities are not counted) and is
compared with the measured rate of NumPy's 1024 x 1024 matrix product of the same dtype
(the BLAS NumPy loaded, on all cores; numrnn's own products, ``kernels/panels.py``, run
above it where that BLAS does not use the CPU's widest vectors).
"""

import argparse
import time

import numpy as np

import numrnn as nr
from numrnn.memory import reuse_freed_memory

SIZES = [(100, 1, 8, 32), (100, 32, 32, 64), (200, 32, 32, 128), (100, 64, 128, 512)]
CELLS = {"rnn": (nr.RNN, 1), "lstm": (nr.LSTM, 4), "gru": (nr.GRU, 3)}


def best_of(f, repeat, min_seconds=0.3):
    """The shortest of at least ``repeat`` timed calls of ``f``, and of as many more as fit
    in ``min_seconds`` (at most 10000): a call of 0.2 ms timed 5 times on shared cores
    reads 1.5x its time as often as not, for numrnn and the peers alike."""
    f()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_seconds and len(times) < 10000):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_of_each(fns, repeat, rounds=3, min_seconds=0.1):
    """:func:`best_of` of each of ``fns`` over ``rounds`` interleaved rounds (each round
    times every function in turn), the shortest per function: the host's slow spells (a
    shared VM's cores) then fall on all contenders alike instead of on whichever one was
    being timed, and a peer's threads still spinning after its own calls (OpenMP's, XLA's)
    affect each in turn."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, f in enumerate(fns):
            best[i] = min(best[i], best_of(f, repeat, min_seconds))
    return best


def matmul_peak(dtype, n=1024, repeat=5):
    """GFLOP/s of an n x n matrix product in ``dtype`` by NumPy's BLAS, all cores."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    return 2 * n**3 / best_of(lambda: a @ a, repeat) / 1e9


def flops(G, T, B, D, H):
    """Matrix-product FLOPs of forward + backward: x W_ih^T, h W_hh^T, and their gradients."""
    fwd = 2 * T * B * G * H * (D + H)
    return 3 * fwd  # backward: the input and the weight gradient products, each as large


def jax_loss(name):
    """``loss(params, x, dy) = sum(hs * dy)`` of one layer of ``name`` in JAX (PyTorch's
    layout and gate orders), through a ``lax.scan`` over the steps."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    sig = jax.nn.sigmoid

    def step(p, carry, xp):
        h = carry[0]
        gh = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        if name == "rnn":
            h = jnp.tanh(xp + gh)
            return (h,), h
        if name == "lstm":
            i, f, g, o = jnp.split(xp + gh, 4, axis=-1)
            c = sig(f) * carry[1] + sig(i) * jnp.tanh(g)
            h = sig(o) * jnp.tanh(c)
            return (h, c), h
        xr, xz, xn = jnp.split(xp, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = sig(xr + hr), sig(xz + hz)
        h = (1 - z) * jnp.tanh(xn + r * hn) + z * h
        return (h,), h

    def loss(p, x, dy):
        xp = x @ p["weight_ih_l0"].T + p["bias_ih_l0"]
        h0 = jnp.zeros((x.shape[1], p["weight_hh_l0"].shape[1]), x.dtype)
        carry = (h0, h0) if name == "lstm" else (h0,)
        _, hs = jax.lax.scan(lambda c, xt: step(p, c, xt), carry, xp)
        return jnp.sum(hs * dy)

    return loss


def jax_fwd_bwd(name, params, x, dy):
    """A jitted forward + backward of one layer in JAX with ``params`` (PyTorch layout), and
    the gradient it gives for ``weight_hh_l0``; None when JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    loss = jax_loss(name)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    pj, xj, dyj = {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x), jnp.asarray(dy)
    g = grad(pj, xj, dyj)
    jax.block_until_ready(g)

    def run():
        jax.block_until_ready(grad(pj, xj, dyj))

    return run, np.asarray(g[0]["weight_hh_l0"])


def run(dtype, repeat, sizes):
    import torch

    torch.set_num_threads(2)
    peak = matmul_peak(dtype)
    print(
        f"\n{dtype}: NumPy's matrix product {peak:.0f} GFLOP/s, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'cell':5} {'T,B,D,H':>18} {'numrnn ms':>10} {'torch ms':>9} {'ratio':>6} "
        f"{'GFLOP/s':>8} {'of BLAS':>8} {'JAX ms':>8} {'JAX ratio':>9}"
    )
    for name, (cls, G) in CELLS.items():
        for T, B, D, H in sizes:
            model = cls(D, H, dtype=dtype, seed=0)
            tmod = model.to_torch()
            rng = np.random.default_rng(1)
            x = rng.standard_normal((T, B, D)).astype(dtype)
            dy = rng.standard_normal((T, B, H)).astype(dtype)

            def ours():
                model.backward(model.forward(x), dy)

            xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)

            def theirs():
                tmod.zero_grad(set_to_none=True)
                out, _ = tmod(xt.requires_grad_(True))
                out.backward(dyt)

            jx, jax_cols = jax_fwd_bwd(name, model.params, x, dy), ""
            if jx is not None:
                want = model.backward(model.forward(x), dy).params["weight_hh_l0"]
                tol = 1e-8 if dtype == "float64" else 1e-3
                if not np.allclose(jx[1], want, rtol=tol, atol=tol * np.abs(want).max()):
                    raise RuntimeError(f"JAX's {name} gradient differs from numrnn's")
            t_ours, t_torch, *t_jax = best_of_each([ours, theirs] + ([jx[0]] if jx else []),
                                                   repeat)  # fmt: skip
            rate = flops(G, T, B, D, H) / t_ours / 1e9
            if t_jax:
                jax_cols = f" {t_jax[0] * 1e3:8.2f} {t_jax[0] / t_ours:9.2f}"
            print(
                f"{name:5} {f'{T},{B},{D},{H}':>18} {t_ours * 1e3:10.2f} {t_torch * 1e3:9.2f} "
                f"{t_torch / t_ours:6.2f} {rate:8.1f} {rate / peak:8.0%}{jax_cols}"
            )


def jax_ensemble(name, params, x, dy):
    """A jitted ``jax.vmap`` over the members of :func:`jax_fwd_bwd`'s forward + backward
    (parameters only, like the torch loop), with stacked ``params`` (K, ...) and ``dy``
    (K, T, B, H); None when JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    one = jax_loss(name)
    grad = jax.jit(jax.vmap(jax.grad(one), in_axes=(0, None, 0)))
    pj = {k: jnp.asarray(v) for k, v in params.items()}
    xj, dyj = jnp.asarray(x), jnp.asarray(dy)
    jax.block_until_ready(grad(pj, xj, dyj))
    return lambda: jax.block_until_ready(grad(pj, xj, dyj))


def run_ensemble(dtype, repeat, cell="lstm", K=64, T=100, B=16, D=4, H=32):
    """K independent networks in one nr.ensemble call against a Python loop over K torch
    modules and, when JAX is installed, a jax.vmap over the members."""
    import torch

    cls = CELLS[cell][0]
    models = [cls(D, H, dtype=dtype, seed=s) for s in range(K)]
    ens = nr.ensemble(models)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    dy = rng.standard_normal((K, T, B, H)).astype(dtype)
    mods = [m.to_torch() for m in models]
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)

    def theirs():
        for k, mod in enumerate(mods):
            mod.zero_grad(set_to_none=True)
            out, _ = mod(xt)
            out.backward(dyt[k])

    # like the torch loop, where x does not require grad: no gradient w.r.t. the input
    def ours():
        ens.backward(ens.forward(x), dy, input_grad=False)

    jx = jax_ensemble(cell, ens.params, x, dy)
    # the torch loop over 1024 modules takes 1.5 s a call: two calls a round
    t_ours, t_torch, *t_jax = best_of_each([ours, theirs] + ([jx] if jx else []),
                                           max(2, repeat // 2))  # fmt: skip
    vmap = ""
    if t_jax:
        vmap = f", jax.vmap {t_jax[0] * 1e3:.1f} ms, ratio {t_jax[0] / t_ours:.2f}"
    print(
        f"\n{dtype}: {K} {cell.upper()}s (T={T}, B={B}, D={D}, H={H}) forward+backward: numrnn "
        f"ensemble {t_ours * 1e3:.1f} ms, loop over torch.nn.{cls.__name__} "
        f"{t_torch * 1e3:.1f} ms, ratio {t_torch / t_ours:.2f}{vmap}"
    )


def add_malloc_option(parser):
    """The benchmarks' ``--malloc`` option; :func:`set_malloc` applies it."""
    parser.add_argument(
        "--malloc",
        default="reuse",
        choices=["reuse", "keep", "glibc"],
        help="glibc's allocator as the numrnn command sets it (reuse_freed_memory: every "
        "freed block kept), as a script has it (numrnn's bounded keep_heap option), or "
        "glibc's default (keep_heap off)",
    )


def set_malloc(choice):
    if choice == "reuse":  # as the numrnn command does; torch runs with it too
        print(f"freed memory reused (numrnn.memory): {reuse_freed_memory()}")
    nr.set_options(keep_heap=choice != "glibc")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="both", choices=["float64", "float32", "both"])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="only the three smaller sizes")
    p.add_argument("--sizes", type=int, default=None, help="only the first N sizes")
    add_malloc_option(p)
    args = p.parse_args()
    set_malloc(args.malloc)
    sizes = SIZES[: args.sizes or (3 if args.quick else len(SIZES))]
    for dtype in ["float64", "float32"] if args.dtype == "both" else [args.dtype]:
        run(dtype, args.repeat, sizes)
        run_ensemble(dtype, args.repeat)
        run_ensemble(dtype, args.repeat, "rnn", K=1024, T=50, B=8, D=2, H=8)


if __name__ == "__main__":
    main()
