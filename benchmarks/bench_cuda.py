"""Time numrnn's CUDA backend (forward + BPTT) against torch's cuDNN LSTM, on a real GPU.

    python benchmarks/bench_cuda.py [--repeat 5] [--dtype float32] [--path auto]

Prints one table: median seconds per forward+backward for numrnn (CPU and CUDA backends)
and torch (cuDNN), the ratio, and which CUDA path ran: ``persistent`` (whole time loop in
one launch, recurrent weights in shared memory) or ``stepwise`` (a batched matrix product
and a cell kernel per step, for weights too large for shared memory); ``a/b`` when the
forward and backward passes differ. ``--path persistent|stepwise`` forces one path
(the option ``cuda_path``, ``nr.set_options``) to compare them. numrnn's time is end to end
as a user sees it: each layer's call copies its inputs to the GPU and its results back
(once per call, never per step), while torch keeps its tensors on the GPU. Exits cleanly,
with a message, when no GPU is present (the simulator is refused: its timings mean nothing).

The last row is an ensemble: 256 *independent* LSTMs of H = 32 (256 weight sets), each
over the same batch of 8 sequences, as one ``nr.ensemble`` (each layer's kernels run all
256 members in one launch). torch has no batched form of 256 different cuDNN LSTMs, so
its column is a Python loop over 256 ``nn.LSTM`` modules.
"""

import argparse
import contextlib
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


def torch_ensemble_step(torch, models, x, dout):
    def run():
        for model, d in zip(models, dout, strict=True):
            out, _ = model(x)
            out.backward(d)
        torch.cuda.synchronize()

    return run


@contextlib.contextmanager
def recorded_paths():
    """Record the path of every CUDA kernel call made inside the block (a list of
    "persistent"/"stepwise", in call order), by wrapping ``numrnn.cuda._common.plan``."""
    from numrnn.cuda import _common as cm

    seen, plan = [], cm.plan

    def spy(*args):
        out = plan(*args)
        seen.append("stepwise" if out[0] else "persistent")
        return out

    cm.plan = spy
    try:
        yield seen
    finally:
        cm.plan = plan


def time_cuda(model, x, dout, repeat):
    """(median seconds, path label) of forward+backward on the CUDA backend."""
    with recorded_paths() as seen:
        t = median_time(numrnn_step(model, x, dout, "cuda"), repeat)
    return t, "/".join(dict.fromkeys(seen))  # "forward/backward" when they differ


def time_ensemble(args, has_torch, torch):
    """Median times (cpu, cuda, torch) and the CUDA path of the ENSEMBLE case."""
    import numrnn as nr

    _, K, T, B, D, H = ENSEMBLE
    models = [nr.LSTM(D, H, dtype=args.dtype, seed=m) for m in range(K)]
    ens = nr.ensemble(models)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, D)).astype(args.dtype)
    dout = rng.standard_normal((K, T, B, H)).astype(args.dtype)
    t_gpu, path = time_cuda(ens, x, dout, args.repeat)
    t_cpu = (
        float("nan")
        if args.skip_cpu
        else median_time(numrnn_step(ens, x, dout, "cpu"), args.repeat)
    )
    t_torch = float("nan")
    if has_torch:
        dev = torch.device("cuda")
        tms = [m.to_torch().to(dev) for m in models]
        xt = torch.from_numpy(x).to(dev).requires_grad_(True)
        dt = torch.from_numpy(dout).to(dev)
        t_torch = median_time(torch_ensemble_step(torch, tms, xt, dt), args.repeat)
    return t_cpu, t_gpu, t_torch, path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--skip-cpu", action="store_true", help="do not time the CPU backend")
    p.add_argument(
        "--path",
        default="auto",
        choices=["auto", "persistent", "stepwise"],
        help="CUDA path: auto (persistent when the weights fit in shared memory), or forced",
    )
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
    nr.set_options(cuda_path=args.path)

    rows = []
    for label, T, B, D, H in SIZES:
        rng = np.random.default_rng(0)
        model = nr.LSTM(D, H, dtype=args.dtype, seed=0)
        x = rng.standard_normal((T, B, D)).astype(args.dtype)
        dout = rng.standard_normal((T, B, H)).astype(args.dtype)
        t_gpu, path = time_cuda(model, x, dout, args.repeat)
        t_cpu = (
            float("nan")
            if args.skip_cpu
            else median_time(numrnn_step(model, x, dout, "cpu"), args.repeat)
        )
        t_torch = float("nan")
        if has_torch:
            dev = torch.device("cuda")
            tm = model.to_torch().to(dev)
            xt = torch.from_numpy(x).to(dev).requires_grad_(True)
            dt = torch.from_numpy(dout).to(dev)
            t_torch = median_time(torch_step(torch, tm, xt, dt), args.repeat)
        rows.append((label, T, B, D, H, t_cpu, t_gpu, t_torch, path))
    label, K, T, B, D, H = ENSEMBLE
    rows.append((label, T, B, D, H, *time_ensemble(args, has_torch, torch)))

    head = (
        f"{'case':32} {'T':>4} {'B':>4} {'D':>4} {'H':>4} {'numrnn cpu':>11} "
        f"{'numrnn cuda':>12} {'torch cudnn':>12} {'cuda/cudnn':>11}  cuda path"
    )
    print(f"LSTM forward+backward, {args.dtype}, median of {args.repeat} (seconds)")
    print(head)
    print("-" * len(head))
    for label, T, B, D, H, tc, tg, tt, path in rows:
        print(
            f"{label:32} {T:4d} {B:4d} {D:4d} {H:4d} {tc:11.4g} {tg:12.4g} {tt:12.4g} "
            f"{tg / tt:11.3g}  {path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
