"""The adding problem of Le, Jaitly & Hinton (2015), Sec. 4.1 / Fig. 2, at the paper's scale.

Three models of 100 units on ``Adding(T)``, batch 16, read out at the last step:

- ``tanh``: a tanh RNN with N(0, 0.001) weights ("RNN + tanh" in the paper);
- ``irnn``: a ReLU RNN with identity W_hh, zero biases and N(0, 0.001) input and output
  weights (IRNN);
- ``lstm``: an LSTM with forget-gate bias 1, PyTorch's default initialisation otherwise.

Each model trains with plain SGD and gradient-norm clipping, as in the paper; the
learning-rate grid is one :class:`numrnn.Ensemble` per model (one rate per member,
``--lr``), so the whole grid costs one compiled call per layer and step. The paper needed up
to about 10^6 iterations; a run here stops at ``--steps`` iterations or when ``--hours`` of
wall time are spent, whichever is first, and says how far it got.

A run is resumable: training goes in chunks of ``--chunk`` iterations, each saved as
``<out>/<model>/chunk_<first iteration>.nc`` with the weights it ended with; run the same
command again and it continues from the last chunk (plain SGD keeps no state, so a resumed
run is exactly the uninterrupted one; chunk ``c`` draws its batches with seed
``seed * 10^6 + c``). When it stops it joins the chunks into ``<out>/adding_T<T>.nc`` (over
``model``, ``lr`` and ``step``) and ``<out>/adding_T<T>_<model>.nc`` (one model's curves
with its weights as initialised and as trained, for ``nr.models_from``), draws
``<out>/adding_T<T>.png`` and prints a table: per model and rate, the test MSE (1000 fixed
sequences) at the end, the best, and the first iteration where it fell below 0.01
("solved"; the baseline of always answering 1 is 1/6).

Run: ``python experiments/adding_le2015.py --T 150 --hours 1.6`` (and ``--T 300``);
``--quick`` is a seconds-long smoke test.
"""

import argparse
import glob
import json
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402

import numrnn as nr  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _models  # noqa: E402

SOLVED = 0.01  # test MSE: the two marked numbers found (the baseline is 1/6)

#: the --quick sizes (a smoke test; the README's numbers are from the full runs), in float64:
#: kernels the test suite compiles anyway (a first float32 use compiles three cells' anew)
QUICK = {"T": 10, "hidden": 8, "steps": 60, "chunk": 20, "lr": [1e-2, 1e-3], "dtype": "float64"}


def build(name, hidden, lrs, seed, dtype):
    """The ensemble of model ``name``: one member per learning rate, all with the same
    initial weights (the paper compares rates from one initialisation scheme)."""
    return nr.ensemble([_models.build(name, 2, hidden, 1, "last", seed, dtype)] * len(lrs))


def chunks(out, name):
    return sorted(glob.glob(os.path.join(out, name, "chunk_*.nc")))


def train(args, task, names):
    """Train every model chunk by chunk until ``--steps`` or ``--hours``; return the wall
    seconds spent in this call."""
    start = time.perf_counter()
    spent = []  # seconds per round (one chunk of every model), to stop before the budget
    while True:
        done = {n: len(chunks(args.out, n)) * args.chunk for n in names}
        todo = [n for n in names if done[n] < args.steps]
        if not todo:
            break
        elapsed = time.perf_counter() - start
        if spent and elapsed + max(spent[-3:]) > args.hours * 3600:
            print(f"stopping: the next round would pass --hours {args.hours}")
            break
        t0 = time.perf_counter()
        for name in todo:
            first = done[name]
            files = chunks(args.out, name)
            if files:  # continue from the weights the last chunk ended with
                with xr.open_dataset(files[-1]) as last:
                    model = nr.models_from(last.load())
            else:
                model = build(name, args.hidden, args.lr, args.seed, args.dtype)
            steps = min(args.chunk, args.steps - first)
            ds = nr.train(model, task, steps, args.batch, ("sgd", {"lr": list(args.lr)}),
                          clip=args.clip, seed=args.seed * 10**6 + first // args.chunk,
                          record_every=args.record_every, eval_every=args.eval_every,
                          progress=False)  # fmt: skip
            ds.attrs["first_iteration"] = first
            os.makedirs(os.path.join(args.out, name), exist_ok=True)
            nr.save(ds, os.path.join(args.out, name, f"chunk_{first:07d}.nc"))
            test = ds.test_loss.isel(step=-1).values
            print(f"{name:5} iterations {first + steps:>8}  test MSE "
                  + " ".join(f"{v:.4f}" for v in test), flush=True)  # fmt: skip
        spent.append(time.perf_counter() - t0)
    return time.perf_counter() - start


def join(out, names):
    """All chunks of all models as one Dataset over (model, lr, step), step = iteration;
    and per model a Dataset that :func:`numrnn.models_from` reopens: the same curves, the
    weights as initialised (first chunk) and as trained (last chunk), and the model, task
    and training settings of the last chunk in its attrs."""
    runs, models = [], {}
    for name in names:
        parts, files = [], chunks(out, name)
        for f in files:
            with xr.open_dataset(f) as ds:
                ds = ds.load()
            first = ds.attrs["first_iteration"]
            keep = ["loss", "test_loss", "grad_norm_total", "status"]
            part = ds[keep].assign_coords(step=ds.step + first)
            parts.append(part if not parts else part.isel(step=slice(1, None)))
        if not parts:
            continue
        train = json.loads(ds.attrs["train"])
        run = xr.concat([p.drop_vars("status") for p in parts], "step")
        run["status"] = parts[-1].status
        with xr.open_dataset(files[0]) as start:
            weights = [v for v in start.data_vars if "when" in start[v].dims]
            initial = start[weights].sel(when=["initial"]).load()
        model = xr.merge([run, xr.concat([initial, ds[weights].sel(when=["final"])], "when")])
        attrs = {k: v for k, v in ds.attrs.items() if k != "first_iteration"}
        models[name] = model.assign_attrs(attrs, iterations=int(run.step[-1]))
        run = run.rename(member="lr").assign_coords(lr=train["optimizer"]["lr"])
        runs.append(run.expand_dims(model=[name]))
    return xr.concat(runs, "model", join="outer"), models


def summary(ds):
    """Rows (model, lr, iterations, final test, best test, first iteration < SOLVED)."""
    rows = []
    for name in ds.model.values:
        for lr in ds.lr.values:
            run = ds.sel(model=name, lr=lr)
            test = run.test_loss.dropna("step")
            if not test.size:
                continue
            below = test.step[test < SOLVED]
            rows.append({
                "model": str(name), "lr": float(lr), "iterations": int(test.step[-1]),
                "final": float(test[-1]), "best": float(test.min()),
                "solved_at": int(below[0]) if below.size else None,
                "status": str(run.status.values),
            })  # fmt: skip
    return rows


def plot(ds, baseline, path, title):
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles = ("-", "--", ":", "-.")
    for color, name in zip(("C0", "C1", "C2"), ds.model.values, strict=False):
        for style, lr in zip(styles, ds.lr.values, strict=False):
            test = ds.test_loss.sel(model=name, lr=lr).dropna("step")
            if test.size:
                ax.plot(test.step, test, style, color=color, lw=1.2, label=f"{name}, lr {lr:g}")
    ax.axhline(baseline, color="k", ls="--", lw=1, label="baseline 1/6")
    ax.axhline(SOLVED, color="0.5", ls=":", lw=1, label=f"solved ({SOLVED})")
    ax.set(yscale="log", xlabel="iteration (batch of 16)", ylabel="test MSE", title=title)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="folder (default experiments/out/adding_T<T>)")
    p.add_argument("--T", type=int, default=150, help="sequence length")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--steps", type=int, default=10**6, help="iterations at most")
    p.add_argument("--hours", type=float, default=1.9, help="wall-time budget of this call")
    p.add_argument("--chunk", type=int, default=1000, help="iterations per saved chunk")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, nargs="+", default=[1e-1, 1e-2, 1e-3],
                   help="SGD learning rates, one ensemble member each")  # fmt: skip
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--models", nargs="+", default=list(_models.NAMES), choices=_models.NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help=f"small sizes, a smoke test in seconds: {QUICK}"
    )
    args = p.parse_args(argv)
    if args.quick:  # smaller defaults; sizes given explicitly still win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    args.out = args.out or os.path.join("experiments", "out", f"adding_T{args.T}")
    args.record_every = max(1, args.chunk // 40)
    args.eval_every = max(1, args.chunk // 2)
    task = nr.tasks.Adding(args.T)

    wall = train(args, task, args.models)
    ds, models = join(args.out, args.models)
    ds.attrs.update(T=args.T, hidden=args.hidden, batch=args.batch, clip=args.clip,
                    dtype=args.dtype, optimizer="sgd", baseline=task.baseline)  # fmt: skip
    base = os.path.join(args.out, f"adding_T{args.T}")
    nr.save(ds, base + ".nc")
    for name, run in models.items():  # the networks, for nr.models_from(path, member=k)
        nr.save(run, f"{base}_{name}.nc")
    plot(
        ds,
        task.baseline,
        base + ".png",
        f"Adding problem, T = {args.T}, {args.hidden} units, SGD + clip {args.clip:g}",
    )

    print(
        f"\nAdding(T={args.T}), H={args.hidden}, batch {args.batch}, SGD, clip {args.clip}, "
        f"{args.dtype}; baseline MSE {task.baseline:.4f}; this call: {wall / 60:.1f} min"
    )
    print(f"{'model':6} {'lr':>7} {'iterations':>10} {'test MSE':>9} {'best':>8} "
          f"{'first < ' + str(SOLVED):>12} status")  # fmt: skip
    for r in summary(ds):
        solved = "-" if r["solved_at"] is None else r["solved_at"]
        print(f"{r['model']:6} {r['lr']:7.0e} {r['iterations']:10d} {r['final']:9.4f} "
              f"{r['best']:8.4f} {solved!s:>12} {r['status']}")  # fmt: skip
    print(f"wrote {base}.nc and {base}.png")
    return ds


if __name__ == "__main__":
    main()
