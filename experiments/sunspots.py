"""One-step-ahead forecasts of the yearly sunspot numbers: a small GRU against persistence
and a linear AR(p) model on the same test years.

The series (:func:`numrnn.datasets.sunspots`, 1700-2008, 309 values) is split by time:
training 1700-1920 (221 years), validation 1921-1955 (35), test 1956-2008 (53). Values are
scaled by the training part's mean and standard deviation. Each forecast of year ``t`` reads
the ``--window`` (20) true values before it: the training windows are those whose target is
a training year (201), the validation and test windows those whose target is a validation
or test year (their inputs reach back into the earlier parts, as an AR(p) forecast's do).
The model is a GRU of 16 units with a linear readout of its last state (many-to-one): a few
hundred parameters for 201 windows, fewer than an LSTM of the same width, and no forget-gate
bias to choose. A grid of Adam learning rates times ``--seeds`` initial weights trains as one
ensemble (batch 32, gradient norm clipped at 1), each member early-stopped on the validation
MSE and kept at its best weights; the learning rate whose seed-averaged forecast has the
lowest validation MSE is chosen, and that average is the RNN forecast.

Baselines on exactly the same test years: persistence (:func:`~numrnn.datasets.persistence_mse`,
each year predicted by the one before) and AR(p) fitted by least squares on the training part
(:func:`~numrnn.datasets.ar_fit`), with p in 1..12 chosen on the validation part
(:func:`~numrnn.datasets.ar_predict`). Writes ``sunspots.nc`` (the training record with every
member's weights, the forecasts over ``year`` and the MSEs) and ``sunspots.png`` to ``--out``
and prints the test and validation MSEs in the original units. Run:
``python experiments/sunspots.py``; ``--quick`` for a smoke test.
"""

import argparse
import json
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

import numrnn as nr  # noqa: E402
from numrnn import datasets  # noqa: E402

#: the first year of the validation part and of the test part
VALIDATION_FROM, TEST_FROM = 1921, 1956
#: the --quick sizes (a smoke test; the README's numbers are from the defaults)
QUICK = {"hidden": 4, "lr": [1e-2, 3e-2], "seeds": 1, "steps": 60, "eval_every": 5,
         "patience": 100}  # fmt: skip


def split(years):
    """Indices ``(n_train, n_val)``: training ``[:n_train]``, validation
    ``[n_train:n_val]``, test ``[n_val:]`` of the series."""
    return int(np.searchsorted(years, VALIDATION_FROM)), int(np.searchsorted(years, TEST_FROM))


def windows(z, start, stop, window):
    """The windows forecasting ``z[t]`` for t in start..stop-1 from ``z[t-window:t]``:
    inputs (window, N, 1) and targets (N, 1)."""
    t = np.arange(start, stop)
    x = np.stack([z[i - window : i] for i in t], axis=1)[..., None]
    return x, z[t][:, None]


def baselines(values, n_train, n_val, max_p=12):
    """Persistence and AR(p) forecasts of the validation and test years (``values[n_train:]``),
    p in 1..max_p fitted on the training part, the order chosen by validation MSE."""
    truth = values[n_train:]
    persistence = values[n_train - 1 : -1]
    ar_val = {}
    for p in range(1, max_p + 1):
        pred = datasets.ar_predict(values, datasets.ar_fit(values[:n_train], p), n_train, n_val)
        ar_val[p] = float(np.mean((pred - values[n_train:n_val]) ** 2))
    p = min(ar_val, key=ar_val.get)
    coef = datasets.ar_fit(values[:n_train], p)
    ar = datasets.ar_predict(values, coef, n_train)
    return {"truth": truth, "persistence": persistence, "ar": ar, "p": p, "ar_val": ar_val,
            "coef": coef}  # fmt: skip


def train(values, years, window=20, hidden=16, lrs=(3e-3, 1e-2, 3e-2), seeds=5, steps=3000,
          eval_every=20, patience=25, batch=32):  # fmt: skip
    """The GRU ensemble (learning rates x seeds) on the training windows, early-stopped on
    the validation ones; returns the training record with the forecasts and MSEs added."""
    n_train, n_val = split(years)
    mean, std = values[:n_train].mean(), values[:n_train].std()
    z = (values - mean) / std
    x_tr, y_tr = windows(z, window, n_train, window)
    x_va, y_va = windows(z, n_train, n_val, window)
    task = nr.tasks.Sequences(x_tr, y_tr, validation=(x_va, y_va))
    grid = [(lr, s) for lr in lrs for s in range(seeds)]
    model = nr.ensemble([nr.GRU(1, hidden, output_size=1, readout="last", seed=s)
                         for _, s in grid])  # fmt: skip
    t0 = time.perf_counter()
    run = nr.train(model, task, steps, batch, ("adam", {"lr": [lr for lr, _ in grid]}), clip=1.0,
                   seed=[s for _, s in grid], record_every=eval_every, eval_every=eval_every,
                   early_stopping=patience, progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    # every member at its best validation weights: forecasts of the validation and test years
    x_all, _ = windows(z, n_train, len(z), window)
    member = model.predict(x_all)[..., 0] * std + mean  # (K, years)
    base = baselines(values, n_train, n_val)
    truth = base["truth"]
    n_v = n_val - n_train

    def mse(pred, part):
        sl = slice(None, n_v) if part == "validation" else slice(n_v, None)
        return float(np.mean((pred[..., sl] - truth[sl]) ** 2))

    by_lr = np.stack([member[[k for k, (r, _) in enumerate(grid) if r == lr]].mean(0)
                      for lr in lrs])  # fmt: skip
    val_by_lr = [mse(f, "validation") for f in by_lr]
    best = int(np.argmin(val_by_lr))
    year = years[n_train:]
    units = {"units": "sunspot number"}
    ds = run.assign_coords(member_lr=("member", [lr for lr, _ in grid]),
                           member_seed=("member", [s for _, s in grid]),
                           year=("year", year, {"units": "year"}),
                           part=("year", np.where(year < TEST_FROM, "validation", "test")),
                           lr=("lr", list(lrs)), p=("p", list(base["ar_val"])))  # fmt: skip
    ds = ds.assign(
        truth=("year", truth, {**units, "description": "the yearly sunspot number"}),
        rnn=("year", by_lr[best], {**units, "description":
             "the GRU forecast: mean of the seeds at the chosen learning rate"}),
        rnn_member=(("member", "year"), member, {**units, "description":
                    "each member's forecast, at its best validation weights"}),
        ar=("year", base["ar"], {**units, "description": f"AR({base['p']}) forecast"}),
        persistence=("year", base["persistence"], {**units, "description":
                     "persistence forecast: the year before"}),
        val_mse_by_lr=("lr", val_by_lr, {"units": "sunspot number^2", "description":
                       "validation MSE of the seed-averaged forecast"}),
        test_mse_by_lr=("lr", [mse(f, "test") for f in by_lr], {"units": "sunspot number^2"}),
        ar_val_mse=("p", list(base["ar_val"].values()), {"units": "sunspot number^2",
                    "description": "validation MSE of AR(p) fitted on the training part"}),
    )  # fmt: skip
    ds.attrs.update(
        experiment="sunspots", window=window, hidden=hidden, chosen_lr=lrs[best],
        ar_p=base["p"], ar_coef=json.dumps(base["coef"].tolist()), scale_mean=mean,
        scale_std=std, wall=wall,
        split=f"training {years[0]}-{VALIDATION_FROM - 1}, validation {VALIDATION_FROM}-"
              f"{TEST_FROM - 1}, test {TEST_FROM}-{years[-1]}",
        loss_units="MSE of the scaled values; times scale_std**2 for sunspot number^2",
    )  # fmt: skip
    for part in ("validation", "test"):
        for name in ("rnn", "ar", "persistence"):
            ds.attrs[f"{part}_mse_{name}"] = mse(ds[name].values, part)
    ds.attrs["test_persistence_mse"] = datasets.persistence_mse(values, n_val)
    return ds


def summary(ds):
    """The printed table: MSEs of the forecasts on the validation and test years."""
    p, lr = ds.attrs["ar_p"], ds.attrs["chosen_lr"]
    test = ds.isel(year=(ds.part == "test").values)
    members = ((test.rnn_member - test.truth) ** 2).mean("year")
    chosen = members.where(ds.member_lr == lr, drop=True)
    lines = [f"split: {ds.attrs['split']}", f"{'forecast':44} {'validation':>10} {'test':>8}"]
    seeds = f"{chosen.size} seeds" if chosen.size > 1 else "1 seed"
    rows = [
        (f"GRU, {ds.attrs['hidden']} units, mean of {seeds}, lr {lr:g}", "rnn"),
        (f"AR({p}), p chosen on validation", "ar"),
        ("persistence", "persistence"),
    ]
    for label, name in rows:
        lines.append(f"{label:44} {ds.attrs['validation_mse_' + name]:10.1f} "
                     f"{ds.attrs['test_mse_' + name]:8.1f}")  # fmt: skip
    lines.append(f"single GRUs at lr {lr:g}: test MSE {float(chosen.min()):.1f} to "
                 f"{float(chosen.max()):.1f} (mean {float(chosen.mean()):.1f})")  # fmt: skip
    beat = int((chosen < ds.attrs["test_mse_ar"]).sum())
    lines[-1] += f"; {beat} of {chosen.size} below AR({p})'s"
    for r in ds.lr.values:
        lines.append(f"  lr {r:g}: seed-averaged validation MSE "
                     f"{float(ds.val_mse_by_lr.sel(lr=r)):.1f}, test "
                     f"{float(ds.test_mse_by_lr.sel(lr=r)):.1f}")  # fmt: skip
    ar9 = float(ds.ar_val_mse.sel(p=9))
    by_p = zip(ds.p.values, ds.ar_val_mse.values, strict=True)
    lines.append("AR validation MSE by p: " + ", ".join(f"{q}: {v:.0f}" for q, v in by_p))
    lines.append(f"(AR(9), the classical order: validation {ar9:.1f})")
    rnn, ar, pers = (ds.attrs[f"test_mse_{n}"] for n in ("rnn", "ar", "persistence"))
    lines.append(f"test MSE: GRU / persistence = {rnn / pers:.2f}, GRU / AR({p}) = {rnn / ar:.2f}"
                 f"; the GRU {'beats' if rnn < pers else 'does NOT beat'} persistence and "
                 f"{'beats' if rnn < ar else 'does NOT beat'} AR({p})")  # fmt: skip
    lines.append(f"training wall time {ds.attrs['wall']:.0f} s ({ds.sizes['member']} members)")
    return lines


def plain_log_ticks(axis):
    """Ticks at 1, 2, 5 times powers of ten on a log axis, written as plain numbers."""
    axis.set_major_locator(LogLocator(subs=(1, 2, 5), numticks=15))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot(ds, path):
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 4.6), width_ratios=(1.7, 1))
    test = ds.isel(year=(ds.part == "test").values)
    p = ds.attrs["ar_p"]
    ax.plot(test.year, test.truth, "k-o", ms=3, lw=1.6, label="observed")
    for name, label, style in (
        ("rnn", f"GRU (test MSE {ds.attrs['test_mse_rnn']:.0f})", "C0-"),
        ("ar", f"AR({p}) (test MSE {ds.attrs['test_mse_ar']:.0f})", "C1-"),
        ("persistence", f"persistence (test MSE {ds.attrs['test_mse_persistence']:.0f})", "C2--"),
    ):
        ax.plot(test.year, test[name], style, lw=1.3, label=label)
    ax.set(xlabel="year", ylabel="yearly sunspot number",
           title="One-step-ahead forecasts of the test years")  # fmt: skip
    ax.legend(fontsize=8, loc="upper right")
    scale = ds.attrs["scale_std"] ** 2
    lr = ds.attrs["chosen_lr"]
    for i, k in enumerate(ds.member.values[ds.member_lr.values == lr]):
        m = ds.sel(member=k)
        val = m.test_loss.dropna("step") * scale
        kw = {"label": "validation (each seed)"} if i == 0 else {}
        bx.plot(val.step, val, "-", color="C0", lw=1.2, **kw)
        kw = {"label": "training batch (each seed)"} if i == 0 else {}
        tr = m.loss.dropna("step") * scale
        bx.plot(tr.step, tr, "-", color="C7", lw=0.6, alpha=0.6, **kw)
        bx.plot(int(m.best_step), float(val.sel(step=int(m.best_step))), "o", color="C3", ms=4,
                **({"label": "best validation (kept)"} if i == 0 else {}))  # fmt: skip
    bx.axhline(ds.attrs["validation_mse_ar"], color="C1", ls=":", lw=1.2,
               label=f"AR({p}), validation")  # fmt: skip
    bx.axhline(ds.attrs["validation_mse_persistence"], color="C2", ls="--", lw=1.2,
               label="persistence, validation")  # fmt: skip
    bx.set(yscale="log", xlabel="update (batch of 32 windows)",
           ylabel="MSE (sunspot number$^2$)", title=f"Training, learning rate {lr:g}")  # fmt: skip
    plain_log_ticks(bx.yaxis)
    bx.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/sunspots")
    p.add_argument("--window", type=int, default=20, help="past years each forecast reads")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--lr", type=float, nargs="+", default=[3e-3, 1e-2, 3e-2])
    p.add_argument("--seeds", type=int, default=5, help="initial weights per learning rate")
    p.add_argument("--steps", type=int, default=3000, help="at most this many updates")
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--patience", type=int, default=25, help="evaluations without improvement")
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = p.parse_args(argv)
    if args.quick:
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    values, years = datasets.sunspots()
    ds = train(values, years, args.window, args.hidden, args.lr, args.seeds, args.steps,
               args.eval_every, args.patience)  # fmt: skip
    nr.save(ds, os.path.join(args.out, "sunspots.nc"))
    plot(ds, os.path.join(args.out, "sunspots.png"))
    print("\n".join(summary(ds)))
    print(f"wrote {args.out}/sunspots.nc and sunspots.png")
    return ds


if __name__ == "__main__":
    main()
