"""Time numrnn's CUDA backend (forward + BPTT) against torch's cuDNN LSTM, on a real GPU.

    python benchmarks/bench_cuda.py [--repeat 5] [--dtype float32]

Prints one table: median seconds per forward+backward for numrnn (CPU and CUDA backends)
and torch (cuDNN), and the ratios. numrnn's time is end to end as a user sees it: each
layer's call copies its inputs to the GPU and its results back (once per call, never per
step), while torch keeps its tensors on the GPU. Exits cleanly, with a message, when no
GPU is present (the simulator is refused: its timings mean nothing).

The last row is an ensemble: 256 *independent* LSTMs of H = 32 (256 weight sets), each
over the same batch of 8 sequences, run through the kernels directly with a leading
member axis K = 256 (``numrnn.models`` has no ensemble API yet): one layer's input
projection, the recurrent forward and BPTT kernels (one launch each, 256 x 8 blocks), and
the input-side weight gradients, exactly what a one-layer model does per member. torch
has no batched form of 256 different cuDNN LSTMs, so its column is a Python loop over 256
``nn.LSTM`` modules. Neither side computes the gradient w.r.t. the input in that row.
"""

import argparse
import os
import sys
import time

import numpy as np

# (label, T, B, D, H)
SIZES = [
    ("small", 100, 1, 8, 32),
    ("medium", 100, 32, 32, 64),
    ("long", 200, 32, 32, 128),
    ("large", 100, 64, 128, 512),
]
# (label, K, T, B, D, H): K independent LSTMs, through the kernels' member axis
ENSEMBLE = ("256 LSTMs H=32 (K=256, B=8)", 256, 100, 8, 8, 32)


def median_time(fn, repeat):
    fn()  # warm-up: compiles the kernels, initialises cuDNN
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def numrnn_step(model, x, dout, backend):
    def run():
        res = model.forward(x, backend=backend)
        model.backward(res, dout)

    return run


def torch_step(torch, model, x, dout):
    def run():
        out, _ = model(x)
        out.backward(dout)
        torch.cuda.synchronize()

    return run


def ensemble_step(k, w, x, dout):
    """One LSTM layer for K members at once, forward and backward, through kernels ``k``.

    w : dict of (K, ...) weights; x : (T, B, D) shared by all members; dout : (K, T, B, H).
    """
    K, G, D = w["weight_ih"].shape
    T, B, _ = x.shape
    H = G // 4
    whh_t = np.ascontiguousarray(w["weight_hh"].transpose(0, 2, 1))
    zeros = np.zeros((K, B, H), x.dtype)
    bs = np.full(T, B, np.int64)
    none = np.zeros((0, 0, 0), x.dtype)
    xf = x.reshape(T * B, D)

    def run():
        xp = np.matmul(xf, w["weight_ih"].transpose(0, 2, 1)) + w["bias_ih"][:, None, :]
        hs, cs, gates, tcs = k.lstm_forward(
            xp.reshape(K, T, B, G), whh_t, w["bias_hh"], zeros, zeros, bs
        )
        dxp, dwhh, dbhh, _, _ = k.lstm_backward(
            hs, cs, gates, tcs, w["weight_hh"], dout, zeros, zeros, bs, none, none
        )
        flat = dxp.reshape(K, T * B, G)
        np.matmul(flat.transpose(0, 2, 1), xf)  # d weight_ih
        flat.sum(axis=1)  # d bias_ih

    return run


def torch_ensemble_step(torch, models, x, dout):
    def run():
        for model, d in zip(models, dout, strict=True):
            out, _ = model(x)
            out.backward(d)
        torch.cuda.synchronize()

    return run


def time_ensemble(args, has_torch, torch):
    """Median times (cpu, cuda, torch) of the ENSEMBLE case."""
    from numrnn.cells import kernels

    _, K, T, B, D, H = ENSEMBLE
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(H)
    w = {
        "weight_ih": rng.uniform(-s, s, (K, 4 * H, D)),
        "weight_hh": rng.uniform(-s, s, (K, 4 * H, H)),
        "bias_ih": rng.uniform(-s, s, (K, 4 * H)),
        "bias_hh": rng.uniform(-s, s, (K, 4 * H)),
    }
    w = {n: np.ascontiguousarray(a, args.dtype) for n, a in w.items()}
    x = rng.standard_normal((T, B, D)).astype(args.dtype)
    dout = rng.standard_normal((K, T, B, H)).astype(args.dtype)
    t_gpu = median_time(ensemble_step(kernels("cuda"), w, x, dout), args.repeat)
    t_cpu = (
        float("nan")
        if args.skip_cpu
        else median_time(ensemble_step(kernels("cpu"), w, x, dout), args.repeat)
    )
    t_torch = float("nan")
    if has_torch:
        dev = torch.device("cuda")
        dtype = getattr(torch, args.dtype)
        models = []
        for m in range(K):
            lstm = torch.nn.LSTM(D, H).to(dev, dtype)
            with torch.no_grad():
                for n in w:
                    getattr(lstm, f"{n}_l0").copy_(torch.from_numpy(w[n][m]))
            models.append(lstm)
        xt = torch.from_numpy(x).to(dev)
        dt = torch.from_numpy(dout).to(dev)
        t_torch = median_time(torch_ensemble_step(torch, models, xt, dt), args.repeat)
    return t_cpu, t_gpu, t_torch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--skip-cpu", action="store_true", help="do not time the CPU backend")
    args = p.parse_args(argv)

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("bench_cuda: NUMBA_ENABLE_CUDASIM=1 is set; simulator timings are meaningless.")
        return 0
    import numrnn as nr
    from numrnn import cuda as nc

    reason = nc.unavailable_reason()
    if reason is not None:
        print(f"bench_cuda: no GPU to benchmark on ({reason}). Nothing timed.")
        return 0
    try:
        import torch

        has_torch = torch.cuda.is_available()
    except ImportError:
        torch, has_torch = None, False
    if not has_torch:
        print("bench_cuda: torch with CUDA not available; timing numrnn only.")

    rows = []
    for label, T, B, D, H in SIZES:
        rng = np.random.default_rng(0)
        model = nr.LSTM(D, H, dtype=args.dtype, seed=0)
        x = rng.standard_normal((T, B, D)).astype(args.dtype)
        dout = rng.standard_normal((T, B, H)).astype(args.dtype)
        t_gpu = median_time(numrnn_step(model, x, dout, "cuda"), args.repeat)
        t_cpu = (
            float("nan") if args.skip_cpu
            else median_time(numrnn_step(model, x, dout, "cpu"), args.repeat)
        )
        t_torch = float("nan")
        if has_torch:
            dev = torch.device("cuda")
            tm = model.to_torch().to(dev)
            xt = torch.from_numpy(x).to(dev).requires_grad_(True)
            dt = torch.from_numpy(dout).to(dev)
            t_torch = median_time(torch_step(torch, tm, xt, dt), args.repeat)
        rows.append((label, T, B, D, H, t_cpu, t_gpu, t_torch))
    label, K, T, B, D, H = ENSEMBLE
    rows.append((label, T, B, D, H, *time_ensemble(args, has_torch, torch)))

    head = f"{'case':32} {'T':>4} {'B':>4} {'D':>4} {'H':>4} {'numrnn cpu':>11} " \
           f"{'numrnn cuda':>12} {'torch cudnn':>12} {'cuda/cudnn':>11}"
    print(f"LSTM forward+backward, {args.dtype}, median of {args.repeat} (seconds)")
    print(head)
    print("-" * len(head))
    for label, T, B, D, H, tc, tg, tt in rows:
        print(f"{label:32} {T:4d} {B:4d} {D:4d} {H:4d} {tc:11.4g} {tg:12.4g} {tt:12.4g} "
              f"{tg / tt:11.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
