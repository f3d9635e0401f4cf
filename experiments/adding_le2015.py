"""The adding problem as in Le, Jaitly & Hinton (2015), Fig. 2, scaled down.

Three models of the same width on ``Adding(T)``:

- ``tanh``: a tanh RNN with N(0, 0.001) weights, as in the paper's "RNN + tanh";
- ``irnn``: a ReLU RNN with identity W_hh and N(0, 0.001) input and output weights (IRNN);
- ``lstm``: an LSTM with forget-gate bias 1 and PyTorch's default initialisation.

All are trained with Adam and gradient-norm clipping at 1 (the paper used SGD, clipping
and 10^6 steps; here a few thousand steps of Adam keep it to a few minutes on 2 cores).
The baseline, always predicting 1, has MSE 1/6; beating it means the model found the two
marked numbers.

Writes ``adding_le2015_<model>.nc`` and ``adding_le2015.png`` to ``--out`` and prints a
summary table. Run: ``python experiments/adding_le2015.py [--T 100 --steps 3000]``.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import numrnn as nr  # noqa: E402

SMALL = ("normal", {"std": 1e-3})

#: the --quick sizes (a smoke test; the figures in docs/ are from the defaults)
QUICK = {"T": 10, "hidden": 16, "steps": 300, "batch": 16, "lr": 0.01}


def models(hidden, seed):
    """The three models of Le et al. (2015), each with a linear head read at the last step."""
    head = dict(output_size=1, readout="last", seed=seed)
    return {
        "tanh": nr.RNN(
            2,
            hidden,
            nonlinearity="tanh",
            **head,
            init={"weight_hh": SMALL, "weight_ih": SMALL, "weight_out": SMALL, "bias": "zeros"},
        ),
        "irnn": nr.RNN(
            2,
            hidden,
            nonlinearity="relu",
            **head,
            init={
                "weight_hh": "identity",
                "weight_ih": SMALL,
                "weight_out": SMALL,
                "bias": "zeros",
            },
        ),
        "lstm": nr.LSTM(2, hidden, forget_bias=1.0, **head),
    }


def plot(runs, baseline, path, title):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name, ds), color in zip(runs.items(), ("C0", "C1", "C2"), strict=False):
        train = ds.loss.rolling(step=50, min_periods=1).mean()
        ax.plot(ds.step, train, color=color, alpha=0.5, lw=1, label=f"{name} (train, mean of 50)")
        test = ds.test_loss.dropna("step")
        ax.plot(test.step, test, "o-", color=color, ms=3, label=f"{name} (test)")
    ax.axhline(baseline, color="k", ls="--", lw=1, label="baseline 1/6")
    ax.set(yscale="log", xlabel="step", ylabel="MSE", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/")
    p.add_argument("--T", type=int, default=100, help="sequence length")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help=f"small sizes, a smoke test in seconds: {QUICK}"
    )
    args = p.parse_args(argv)
    if args.quick:  # smaller defaults; sizes given explicitly still win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    task = nr.tasks.Adding(args.T)
    runs = {}
    for name, model in models(args.hidden, args.seed).items():
        runs[name] = nr.train(
            model,
            task,
            args.steps,
            args.batch,
            ("adam", {"lr": args.lr}),
            clip=1.0,
            seed=args.seed,
            eval_every=max(1, args.steps // 30),
        )
        nr.save(runs[name], os.path.join(args.out, f"adding_le2015_{name}.nc"))
    png = os.path.join(args.out, "adding_le2015.png")
    plot(runs, task.baseline, png, f"Adding problem, T = {args.T}, {args.hidden} units")

    print(
        f"\nAdding(T={args.T}), H={args.hidden}, {args.steps} steps of batch {args.batch}, "
        f"Adam lr={args.lr}, clip 1; baseline MSE {task.baseline:.4f}"
    )
    print(
        f"{'model':6} {'status':8} {'train (last 100)':>17} {'test MSE':>9} {'best test':>9} "
        f"{'first step < baseline/10':>25}"
    )
    for name, ds in runs.items():
        test = ds.test_loss.dropna("step")
        good = test.step[test < task.baseline / 10]
        first = int(good[0]) if good.size else "-"
        print(
            f"{name:6} {ds.attrs['status']:8} {float(np.nanmean(ds.loss[-100:])):17.4f} "
            f"{float(test[-1]):9.4f} {float(test.min()):9.4f} {first!s:>25}"
        )
    print(f"wrote {png} and adding_le2015_*.nc")


if __name__ == "__main__":
    main()
