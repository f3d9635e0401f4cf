"""Jacobian-product norms ||ds_T/ds_t||_2 for every step: numrnn against PyTorch autograd.

Usage::

    python benchmarks/bench_diagnostics.py [--repeat N] [--quick]

numrnn builds P_t = ds_T/ds_t backwards in compiled code (one S x S product per step) and
takes each spectral norm from the largest eigenvalue of P^T P. PyTorch has no such
primitive; the fastest autograd route we found is one reverse pass with S cotangents at
once: every basis vector of s_T is pushed back through the unrolled graph and the
gradients of all intermediate states s_t are collected in the same pass, which yields
every P_t (S x S per sequence and step). Two ways of batching the S cotangents are timed
and the faster one is reported against numrnn:

* ``vmap``: ``torch.autograd.grad(..., is_grads_batched=True)`` (vectorised backward);
* ``tiled``: the batch is tiled S times, each copy carrying one basis cotangent through a
  plain backward pass (no vmap).

The norms then come from ``torch.linalg.matrix_norm(P, ord=2)`` (batched SVD) or from
``eigvalsh(P^T P)`` like numrnn, whichever is faster. Forward passes are part of both
timings (numrnn's diagnostics include one), the layer's input projection is held fixed,
as in the definition. Numba compilation is timed separately, before any measurement.
O(T^2) per-step ``torch.autograd.functional.jacobian`` calls are not competitive (timed
once on a short prefix only, for orientation). The ratio is torch's time over numrnn's.
"""

import argparse
import time

import numpy as np
from bench_models import add_malloc_option, set_malloc  # the script's folder is on sys.path

import numrnn as nr

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: only for the "BLAS at 1 thread" row
    threadpool_limits = None


def best_of(f, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


# -- the same network, unrolled in torch ---------------------------------------------------------


def torch_weights(torch, model):
    return {k: torch.from_numpy(np.asarray(v)) for k, v in model.params.items()}


def unroll(torch, cell, w, x, tile=1):
    """Unrolled single-layer forward; returns (list of states per step, state size).

    A state is a tuple (h,) or (h, c); entry 0 is the initial state (zeros). With ``tile``
    the batch is repeated ``tile`` times (copy-major)."""
    T, B, _ = x.shape
    H = w["weight_hh_l0"].shape[1]
    xp = x.reshape(T * B, -1) @ w["weight_ih_l0"].T + w["bias_ih_l0"] + w["bias_hh_l0"]
    xp = xp.reshape(T, B, -1).detach()
    if tile > 1:
        xp = xp.repeat(1, tile, 1)
    w_hh_t = w["weight_hh_l0"].T.contiguous()
    n = xp.shape[1]
    zeros = torch.zeros(n, H, dtype=xp.dtype)
    if cell == "rnn":
        states = [(zeros.requires_grad_(),)]
        for t in range(T):
            states.append((torch.tanh(xp[t] + states[-1][0] @ w_hh_t),))
        return states, H
    states = [(zeros.requires_grad_(), zeros.clone().requires_grad_())]
    for t in range(T):
        h, c = states[-1]
        i, f, g, o = (xp[t] + h @ w_hh_t).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        # h depends on c within the step: the state passed on is a view of each, so that the
        # gradient w.r.t. it is the partial derivative of s_T w.r.t. (h_t, c_t) as independent
        # variables (what ds_T/ds_t means), not the total derivative through h_t's use of c_t
        states.append((h.view_as(h), c.view_as(c)))
    return states, 2 * H


def norms_of(torch, P, how):
    """Spectral norms of a batch of square matrices (..., S, S)."""
    if how == "svd":
        return torch.linalg.matrix_norm(P, ord=2)
    ev = torch.linalg.eigvalsh(P.transpose(-1, -2) @ P)
    return ev[..., -1].clamp_min(0).sqrt()


def torch_vmap(torch, cell, w, x, how):
    """All P_t by one vectorised backward pass with S batched basis cotangents."""
    T, B, _ = x.shape
    states, S = unroll(torch, cell, w, x)
    k = len(states[0])
    E = torch.eye(S, dtype=x.dtype)[:, None, :].expand(S, B, S)  # (S, B, S)
    outs = states[-1]
    cot = [E[..., j * (S // k) : (j + 1) * (S // k)] for j in range(k)]
    inputs = [s for st in states[1:] for s in st]
    grads = torch.autograd.grad(outs, inputs, cot, is_grads_batched=True, allow_unused=True)
    P = torch.stack([torch.cat(grads[t * k : (t + 1) * k], dim=-1) for t in range(T)])
    P = P.permute(2, 0, 1, 3)  # (B, T, S_out, S_in)
    return norms_of(torch, P, how)


def torch_tiled(torch, cell, w, x, how):
    """All P_t by one plain backward pass over the batch tiled S times."""
    T, B, _ = x.shape
    H = w["weight_hh_l0"].shape[1]
    S = H * (2 if cell == "lstm" else 1)
    states, _ = unroll(torch, cell, w, x, tile=S)
    k = len(states[0])
    E = torch.eye(S, dtype=x.dtype).repeat_interleave(B, dim=0)  # copy i: basis vector i
    cot = [E[:, j * H : (j + 1) * H] for j in range(k)]
    inputs = [s for st in states[1:] for s in st]
    grads = torch.autograd.grad(states[-1], inputs, cot, allow_unused=True)
    P = torch.stack([torch.cat(grads[t * k : (t + 1) * k], dim=-1) for t in range(T)])
    P = P.reshape(T, S, B, S).permute(2, 0, 1, 3)  # (B, T, S_out, S_in)
    return norms_of(torch, P, how)


def torch_per_step_jacobian(torch, cell, w, x, steps):
    """The literal O(T^2) route: jacobian of s_T w.r.t. s_t for the last ``steps`` t."""
    T, B, _ = x.shape
    states, S = unroll(torch, cell, w, x)
    H = w["weight_hh_l0"].shape[1]
    xp = x.reshape(T * B, -1) @ w["weight_ih_l0"].T + w["bias_ih_l0"] + w["bias_hh_l0"]
    xp = xp.reshape(T, B, -1).detach()
    w_hh_t = w["weight_hh_l0"].T.contiguous()

    def run(s, t0):
        for t in range(t0, T):
            if cell == "rnn":
                s = torch.tanh(xp[t] + s @ w_hh_t)
            else:
                h, c = s[:, :H], s[:, H:]
                i, f, g, o = (xp[t] + h @ w_hh_t).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                s = torch.cat([torch.sigmoid(o) * torch.tanh(c), c], dim=1)
        return s

    out = []
    for t in range(T - steps, T):
        s_t = torch.cat(states[t + 1], dim=1).detach()
        # rows of different sequences are independent: sum over the batch keeps them apart
        J = torch.autograd.functional.jacobian(lambda s, t=t: run(s, t + 1).sum(0), s_t,
                                               vectorize=True)  # fmt: skip
        out.append(torch.linalg.matrix_norm(J.permute(1, 0, 2), ord=2))
    return torch.stack(out, dim=1)  # (B, steps)


# -- the benchmark ---------------------------------------------------------------------------


def run(cell, T, B, H, repeat, torch):
    rng = np.random.default_rng(0)
    D = 16
    if cell == "rnn":
        model = nr.RNN(D, H, seed=0, init={"weight_hh": "orthogonal"})
    else:
        model = nr.LSTM(D, H, seed=0)
    x = rng.standard_normal((T, B, D))

    t_nr, ds = best_of(lambda: nr.diagnostics.jacobian_norms(model, x), repeat)
    ref = ds.jacobian_norm.values[0, 0]  # (B, T)
    t_nr1 = None
    if threadpool_limits is not None:
        # the kernel calls BLAS (np.dot, eigvalsh) from threads that each run sequences: a
        # multi-threaded BLAS nested in them oversubscribes the cores
        with threadpool_limits(1, user_api="blas"):
            t_nr1, ds1 = best_of(lambda: nr.diagnostics.jacobian_norms(model, x), repeat)
        np.testing.assert_array_equal(ds1.jacobian_norm.values[0, 0], ref)

    w = torch_weights(torch, model)
    xt = torch.from_numpy(x)
    results = {}
    for name, f in (("vmap", torch_vmap), ("tiled", torch_tiled)):
        for how in ("svd", "eigvalsh"):
            t, out = best_of(lambda f=f, how=how: f(torch, cell, w, xt, how), repeat)
            err = np.max(np.abs(out.numpy() - ref) / ref)
            assert err < 1e-8, f"{cell} {name}+{how} disagrees with numrnn: {err:.2e}"
            results[f"{name}+{how}"] = t
    steps = 5
    t_lit, out = best_of(lambda: torch_per_step_jacobian(torch, cell, w, xt, steps), 1)
    err = np.max(np.abs(out.numpy() - ref[:, T - steps :]) / ref[:, T - steps :])
    assert err < 1e-8, f"{cell} per-step jacobian disagrees with numrnn: {err:.2e}"
    # the per-step route costs about (T - t) steps per t: extrapolate from the last `steps`
    est = t_lit * (T * (T + 1) / 2) / sum(range(1, steps + 1))

    best = min(results, key=results.get)
    S = H * (2 if cell == "lstm" else 1)
    print(f"\n{cell} T={T} B={B} H={H} (state size {S})")
    print(f"  numrnn jacobian_norms        {t_nr * 1e3:9.1f} ms   (as shipped)")
    if t_nr1 is not None:
        print(f"  numrnn, BLAS at 1 thread     {t_nr1 * 1e3:9.1f} ms   (threadpoolctl)")
    for name, t in results.items():
        r1 = "" if t_nr1 is None else f"  ratio (BLAS 1 thread) {t / t_nr1:6.2f}"
        print(f"  torch autograd {name:14} {t * 1e3:9.1f} ms   ratio {t / t_nr:6.2f}{r1}")
    print(f"  torch per-step jacobian (O(T^2), extrapolated from {steps} steps) ~{est:8.1f} s")
    r1 = "" if t_nr1 is None else f", {results[best] / t_nr1:.2f} with BLAS at 1 thread"
    print(f"  -> fastest torch ({best}) / numrnn = {results[best] / t_nr:.2f}{r1}; agree to 1e-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    add_malloc_option(parser)
    args = parser.parse_args()
    set_malloc(args.malloc)
    import numba
    import torch

    print(f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}")
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()  # compile (or load from cache) the kernels once, not timed below
    for model in (nr.RNN(2, 3, seed=0), nr.LSTM(2, 3, seed=0)):
        nr.diagnostics.jacobian_norms(model, rng.standard_normal((3, 2, 2)))
    print(f"numba warm-up (compile or cache load): {time.perf_counter() - t0:.2f} s")
    cases = [("rnn", 20, 2, 16), ("lstm", 20, 2, 8)] if args.quick else [
        ("rnn", 200, 8, 128), ("lstm", 200, 8, 64)]  # fmt: skip
    for case in cases:
        run(*case, args.repeat, torch)


if __name__ == "__main__":
    main()
