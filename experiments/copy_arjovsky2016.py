"""The copy task of Arjovsky, Shah & Bengio (2016), Sec. 4.1, against its memoryless baseline.

``Copy(T)``: ten symbols from 1..8, T - 1 blanks, a delimiter, then the ten symbols must be
reproduced (``T + 20`` steps, softmax cross-entropy at every step). A model that has learnt
nothing but the format predicts blanks and then guesses: cross-entropy
``10 ln 8 / (T + 20)`` (0.1733 at T = 100, 0.0945 at T = 200). As in the paper: a tanh RNN
and an IRNN of 80 units and an LSTM of 40 (initialised as in ``_models.py``), RMSProp with
learning rate 1e-3, gradient-norm clipping at 1, batch 20.

For each T of ``--T``, each model trains ``--steps`` iterations; the test cross-entropy is
measured on 1000 fixed sequences. Writes ``copy_T<T>.nc`` (over ``model`` and ``step``),
``copy_T<T>_<model>.nc`` (each model's record with its weights, for ``nr.models_from``) and
``copy.png`` to ``--out`` and prints, per T and model, the final and best test loss, the
baseline, the first iteration below it and the wall time. Run:
``python experiments/copy_arjovsky2016.py``; ``--quick`` for a smoke test.
"""

import argparse
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

HIDDEN = {"tanh": 80, "irnn": 80, "lstm": 40}
#: the --quick sizes (a smoke test; the README's numbers are from the defaults)
QUICK = {"T": [10], "steps": 40, "scale": 0.25}


def train(T, steps, scale=1.0, seed=0, out=None):
    """The three models on ``Copy(T)``: a Dataset over (model, step) with the wall time;
    with ``out``, each model's whole record (weights, config) as ``copy_T<T>_<model>.nc``."""
    task = nr.tasks.Copy(T)
    runs = []
    for name in _models.NAMES:
        hidden = max(2, round(HIDDEN[name] * scale))
        model = _models.build(name, task.input_size, hidden, task.output_size, "all", seed)
        t0 = time.perf_counter()
        every = {"record_every": max(1, steps // 400), "eval_every": max(1, steps // 40)}
        ds = nr.train(model, task, steps, 20, ("rmsprop", {"lr": 1e-3}), clip=1.0, seed=seed,
                      **every)  # fmt: skip
        if out is not None:  # the networks, for nr.models_from
            nr.save(ds, os.path.join(out, f"copy_T{T}_{name}.nc"))
        ds = ds[["loss", "test_loss", "test_metric"]].assign(
            wall=((), time.perf_counter() - t0, {"units": "s"}),
            hidden=((), hidden),
            status=((), ds.attrs["status"]),
        )
        runs.append(ds.drop_attrs().expand_dims(model=[name]))
    out = xr.concat(runs, "model", join="outer")
    out.attrs.update(T=T, steps=steps, baseline=task.baseline, optimizer="rmsprop lr 1e-3",
                     clip=1.0, batch=20)  # fmt: skip
    return out


def summary(ds):
    rows = []
    for name in ds.model.values:
        test = ds.test_loss.sel(model=name).dropna("step")
        below = test.step[test < ds.attrs["baseline"]]
        rows.append({
            "model": str(name), "hidden": int(ds.hidden.sel(model=name)),
            "final": float(test[-1]), "best": float(test.min()),
            "below_at": int(below[0]) if below.size else None,
            "wall": float(ds.wall.sel(model=name)),
        })  # fmt: skip
    return rows


def plot(results, path):
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False)
    for ax, ds in zip(axes[0], results, strict=True):
        for i, name in enumerate(ds.model.values):
            test = ds.test_loss.sel(model=name).dropna("step")
            label = f"{name} ({int(ds.hidden.sel(model=name))} units)"
            ax.plot(test.step, test, "-", color=f"C{i}", lw=1.4, label=label)
        ax.axhline(ds.attrs["baseline"], color="k", ls="--", lw=1,
                   label=f"baseline 10 ln 8 / (T + 20) = {ds.attrs['baseline']:.4f}")  # fmt: skip
        ax.set(yscale="log", xlabel="iteration (batch of 20)", ylabel="test cross-entropy (nats)",
               title=f"Copy task, T = {ds.attrs['T']}")  # fmt: skip
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/copy")
    p.add_argument("--T", type=int, nargs="+", default=[100, 200])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the hidden sizes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = p.parse_args(argv)
    if args.quick:
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    results = []
    for T in args.T:
        ds = train(T, args.steps, args.scale, args.seed, args.out)
        nr.save(ds, os.path.join(args.out, f"copy_T{T}.nc"))
        results.append(ds)
    plot(results, os.path.join(args.out, "copy.png"))
    print(f"\n{'T':>4} {'model':6} {'units':>5} {'baseline':>8} {'final':>8} {'best':>8} "
          f"{'first < baseline':>16} {'wall (s)':>8}")  # fmt: skip
    for ds in results:
        for r in summary(ds):
            below = "-" if r["below_at"] is None else r["below_at"]
            print(f"{ds.attrs['T']:4d} {r['model']:6} {r['hidden']:5d} {ds.attrs['baseline']:8.4f} "
                  f"{r['final']:8.4f} {r['best']:8.4f} {below!s:>16} {r['wall']:8.0f}")  # fmt: skip
    print(f"wrote {args.out}/copy_T*.nc and copy.png")
    return results


if __name__ == "__main__":
    main()
