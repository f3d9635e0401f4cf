"""Gradient-norm clipping on a setting that explodes (Pascanu, Mikolov & Bengio 2013).

A tanh RNN whose W_hh has spectral radius about 2 (N(0, 4/H) entries; the chaotic regime,
where ||dh_T/dh_t|| grows exponentially) is trained on ``Adding(T)`` with SGD and momentum,
once without clipping and once with the global gradient norm clipped to 1, for a few seeds.
Without clipping, the first gradient "cliff" throws the weights far away and the run
diverges or stalls; with clipping the same steps are bounded and training proceeds.

Writes ``clipping_<none|clip1>_seed<k>.nc`` and ``clipping.png`` (loss curves and pre-clip
gradient norms) to ``--out`` and prints a summary table.
Run: ``python experiments/clipping.py [--steps 1000 --seeds 3]``.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import numrnn as nr  # noqa: E402

CLIPS = {"none": None, "clip1": 1.0}

#: the --quick sizes (a smoke test; the figures in docs/ are from the defaults)
QUICK = {"T": 20, "hidden": 32, "steps": 300, "seeds": 1}


def plot(runs, baseline, path, title):
    fig, (ax_loss, ax_norm) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    colors = {"none": "C3", "clip1": "C0"}
    for (name, seed), ds in runs.items():
        label = f"{name}" if seed == 0 else None
        loss = ds.loss.where(np.isfinite(ds.loss)).rolling(step=25, min_periods=1).mean()
        ax_loss.plot(ds.step, loss, color=colors[name], alpha=0.7, lw=1, label=label)
        if ds.attrs["status"] == "diverged":
            ax_loss.axvline(ds.attrs["diverged_at"], color=colors[name], ls=":", lw=1)
        norm = ds.grad_norm_total.where(np.isfinite(ds.grad_norm_total))
        ax_norm.plot(ds.step, norm, color=colors[name], alpha=0.5, lw=0.7, label=label)
    ax_loss.axhline(baseline, color="k", ls="--", lw=1, label="baseline 1/6")
    ax_loss.set(yscale="log", ylim=(1e-3, 1e4), ylabel="training MSE (mean of 25)", title=title)
    ax_loss.legend(fontsize=8)
    ax_norm.axhline(1.0, color="k", ls="--", lw=1, label="clip threshold")
    ax_norm.set(yscale="log", xlabel="step", ylabel="pre-clip ||grad||")
    ax_norm.legend(fontsize=8)
    with np.errstate(over="ignore"):  # log axes of values near the float64 limit
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/")
    p.add_argument("--T", type=int, default=30)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--radius", type=float, default=2.0, help="std of W_hh times sqrt(H)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--quick", action="store_true", help=f"small sizes, a smoke test in seconds: {QUICK}"
    )
    args = p.parse_args(argv)
    if args.quick:  # smaller defaults; sizes given explicitly still win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    task = nr.tasks.Adding(args.T)
    init = {"weight_hh": ("normal", {"std": args.radius / np.sqrt(args.hidden)}), "bias": "zeros"}
    runs = {}
    for seed in range(args.seeds):
        for name, clip in CLIPS.items():
            model = nr.RNN(2, args.hidden, seed=seed, output_size=1, readout="last", init=init)
            ds = nr.train(
                model,
                task,
                args.steps,
                args.batch,
                ("sgd", {"lr": args.lr, "momentum": 0.9}),
                clip=clip,
                seed=seed,
                eval_every=max(1, args.steps // 20),
            )
            runs[name, seed] = ds
            nr.save(ds, os.path.join(args.out, f"clipping_{name}_seed{seed}.nc"))
    png = os.path.join(args.out, "clipping.png")
    title = f"tanh RNN (rho ~ {args.radius}), Adding T = {args.T}, SGD lr {args.lr} momentum 0.9"
    plot(runs, task.baseline, png, title)

    print(f"\n{title}; {args.steps} steps of batch {args.batch}; baseline {task.baseline:.4f}")
    print(
        f"{'clip':6} {'seed':>4} {'status':8} {'diverged at':>11} {'train (last 100)':>17} "
        f"{'test MSE':>9} {'max pre-clip norm':>17} {'steps clipped':>13}"
    )
    for (name, seed), ds in runs.items():
        loss = ds.loss.values[-100:]
        loss = loss[np.isfinite(loss)]
        test = ds.test_loss.dropna("step")
        norms = ds.grad_norm_total.values
        clipped = f"{np.mean(norms > 1):.0%}" if name != "none" else "-"
        at = ds.attrs["diverged_at"]
        print(
            f"{name:6} {seed:4d} {ds.attrs['status']:8} {at if at >= 0 else '-'!s:>11} "
            f"{np.mean(loss) if loss.size else np.nan:17.4g} "
            f"{float(test[-1]) if test.size else np.nan:9.4g} {np.nanmax(norms):17.3g} "
            f"{clipped:>13}"
        )
    print(f"wrote {png} and clipping_*.nc")


if __name__ == "__main__":
    main()
