"""Speaker identification on JapaneseVowels: an LSTM on variable-length sequences against the
published accuracy of Kudo, Toyama & Shimbo (1999) and chance.

The UEA/UCR archive's fixed split as :func:`numrnn.datasets.japanese_vowels` gives it: 270
training and 370 test utterances of 7 to 29 frames of 12 LPC cepstrum coefficients, nine
speakers. The 12 channels are standardised with the mean and standard deviation of all
frames of the training split. A seeded 20 % of the training split (54 utterances) is held
out for early stopping (:class:`numrnn.tasks.Sequences`, ``validation=0.2``); the test split
is used only for the final numbers. The model is a one-layer LSTM of 32 units (forget-gate
bias 1) with a linear readout of the state at each utterance's own last frame, trained with
cross-entropy, Adam, batches of 32 and gradient norm clipped at 1. A grid of learning rates
times ``--seeds`` initial weights trains as one ensemble (every member on the same batches:
variable-length batches are shared), each member early-stopped on the validation
cross-entropy and kept at its best weights; the learning rate whose seed-averaged class
probabilities have the lowest validation cross-entropy is chosen, and those averaged
probabilities are the classifier whose test accuracy is reported, beside each single
network's.

Writes ``japanese_vowels.nc`` (the training record with every member's weights, the test
predictions, the confusion matrix) and ``japanese_vowels.png`` to ``--out`` and prints the
test accuracies beside :data:`~numrnn.datasets.JAPANESE_VOWELS_REFERENCE` and chance. Run:
``python experiments/japanese_vowels.py``; ``--quick`` for a smoke test.
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

N_CLASSES = 9
#: the --quick sizes (a smoke test; the README's numbers are from the defaults)
QUICK = {"hidden": 4, "lr": [1e-2], "seeds": 2, "steps": 40, "eval_every": 10,
         "patience": 100}  # fmt: skip


def standardise(x_train, x_test):
    """Both splits scaled by the training split's per-channel mean and standard deviation
    (over all its frames); returns them with the mean and std (12,)."""
    frames = np.concatenate(x_train)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    return [(a - mean) / std for a in x_train], [(a - mean) / std for a in x_test], mean, std


def probabilities(logits):
    """Softmax over the last axis."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def xent(prob, y):
    """Mean cross-entropy (nats) of class probabilities (N, C) for labels (N,)."""
    return float(-np.mean(np.log(prob[np.arange(len(y)), y])))


def confusion(y_true, y_pred, n=N_CLASSES):
    """Counts (true, predicted)."""
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def train(hidden=32, lrs=(1e-3, 3e-3, 1e-2), seeds=5, steps=2000, eval_every=20, patience=15,
          batch=32, validation=0.2, seed=0):  # fmt: skip
    """The LSTM ensemble (learning rates x seeds); returns the training record with the test
    predictions, accuracies and confusion matrix added."""
    x_train, y_train, x_test, y_test = datasets.japanese_vowels()
    x_train, x_test, mean, std = standardise(x_train, x_test)
    task = nr.tasks.Sequences(x_train, y_train, validation=validation, seed=seed,
                              n_classes=N_CLASSES)  # fmt: skip
    grid = [(lr, s) for lr in lrs for s in range(seeds)]
    model = nr.ensemble([nr.LSTM(12, hidden, output_size=N_CLASSES, readout="last",
                                 forget_bias=1.0, seed=s) for _, s in grid])  # fmt: skip
    t0 = time.perf_counter()
    run = nr.train(model, task, steps, batch, ("adam", {"lr": [lr for lr, _ in grid]}),
                   clip=1.0, seed=seed, record_every=eval_every, eval_every=eval_every,
                   early_stopping=patience, progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    # every member at its best validation weights, on the validation and the test split
    x_val, y_val, l_val = task.test_set()
    x_te, _, l_te = nr.tasks.Sequences(x_test, y_test, validation=0).train_set()
    p_val = probabilities(model.predict(x_val, l_val))  # (K, N_val, C)
    p_test = probabilities(model.predict(x_te, l_te))
    rows = [[k for k, (r, _) in enumerate(grid) if r == lr] for lr in lrs]
    val_by_lr = [xent(p_val[r].mean(0), y_val) for r in rows]
    best = int(np.argmin(val_by_lr))
    pred = p_test[rows[best]].mean(0).argmax(-1)
    member_pred = p_test.argmax(-1)
    ds = run.assign_coords(member_lr=("member", [lr for lr, _ in grid]),
                           member_seed=("member", [s for _, s in grid]),
                           lr=("lr", list(lrs)), channel=np.arange(12),
                           true_class=np.arange(N_CLASSES),
                           predicted_class=np.arange(N_CLASSES))  # fmt: skip
    ds = ds.assign(
        y_test=("test_sample", y_test, {"description": "the test utterances' speakers (0-8)"}),
        test_lengths=("test_sample", l_te, {"units": "frames"}),
        prediction=("test_sample", pred, {"description":
                    "the seed-averaged classifier's speaker at the chosen learning rate"}),
        member_prediction=(("member", "test_sample"), member_pred, {"description":
                           "each member's speaker, at its best validation weights"}),
        member_test_accuracy=("member", (member_pred == y_test).mean(axis=1)),
        confusion=(("true_class", "predicted_class"), confusion(y_test, pred), {"description":
                   "test utterances by true and predicted speaker (seed-averaged classifier)"}),
        val_xent_by_lr=("lr", val_by_lr, {"units": "nats", "description":
                        "validation cross-entropy of the seed-averaged probabilities"}),
        test_accuracy_by_lr=("lr", [float(np.mean(p_test[r].mean(0).argmax(-1) == y_test))
                                    for r in rows]),
        channel_mean=("channel", mean, {"description": "standardisation: training-split mean"}),
        channel_std=("channel", std, {"description": "standardisation: training-split std"}),
    )  # fmt: skip
    ds.attrs.update(
        experiment="japanese_vowels", hidden=hidden, chosen_lr=lrs[best], wall=wall,
        test_accuracy=float(np.mean(pred == y_test)),
        chance=1 / N_CLASSES,
        majority=float(np.bincount(y_test).max() / len(y_test)),
        n_train=len(task.train_index), n_validation=len(task.val_index), n_test=len(y_test),
        references=json.dumps(datasets.JAPANESE_VOWELS_REFERENCE),
    )  # fmt: skip
    return ds


def summary(ds):
    """The printed table: test accuracies beside the references and chance."""
    lr = ds.attrs["chosen_lr"]
    acc = ds.member_test_accuracy.where(ds.member_lr == lr, drop=True)
    n = acc.size
    lines = [f"split: {ds.attrs['n_train']} training, {ds.attrs['n_validation']} validation "
             f"(of the archive's 270 training utterances), {ds.attrs['n_test']} test",
             f"{'classifier':58} {'test accuracy':>13}"]  # fmt: skip
    rows = [(f"LSTM, {ds.attrs['hidden']} units, mean of {n} seeds' probabilities, lr {lr:g}",
             ds.attrs["test_accuracy"]),
            (f"single LSTMs at lr {lr:g}: mean (min-max)", float(acc.mean()))]  # fmt: skip
    for label, value in rows:
        lines.append(f"{label:58} {value:13.3f}")
    lines[-1] += f" ({float(acc.min()):.3f}-{float(acc.max()):.3f})"
    for name, value in json.loads(ds.attrs["references"]).items():
        lines.append(f"{'reference: ' + name:58} {value:13.3f}")
    lines.append(f"{'chance (uniform guess, 1/9)':58} {ds.attrs['chance']:13.3f}")
    lines.append(f"{'most frequent test speaker (88/370)':58} {ds.attrs['majority']:13.3f}")
    for r in ds.lr.values:
        lines.append(f"  lr {r:g}: seed-averaged validation cross-entropy "
                     f"{float(ds.val_xent_by_lr.sel(lr=r)):.3f} nats, test accuracy "
                     f"{float(ds.test_accuracy_by_lr.sel(lr=r)):.3f}")  # fmt: skip
    lines.append(f"constant predictor's validation cross-entropy {ds.attrs['baseline']:.3f} "
                 "nats")  # fmt: skip
    lines.append(f"errors: {int(ds.confusion.sum() - np.trace(ds.confusion))} of "
                 f"{ds.attrs['n_test']} test utterances")  # fmt: skip
    lines.append(f"training wall time {ds.attrs['wall']:.0f} s ({ds.sizes['member']} members)")
    return lines


def plot(ds, path):
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(16, 4.8), width_ratios=(1, 1, 1.05))
    lr = ds.attrs["chosen_lr"]
    for i, k in enumerate(ds.member.values[ds.member_lr.values == lr]):
        m = ds.sel(member=k)
        val, tr = m.test_loss.dropna("step"), m.loss.dropna("step")
        first = i == 0
        ax.plot(tr.step, tr, "-", color="C7", lw=0.6, alpha=0.7,
                **({"label": "training batch (each seed)"} if first else {}))  # fmt: skip
        ax.plot(val.step, val, "-", color="C0", lw=1.2,
                **({"label": "validation (each seed)"} if first else {}))  # fmt: skip
        best = int(m.best_step)
        ax.plot(best, float(val.sel(step=best)), "o", color="C3", ms=4,
                **({"label": "best validation (kept)"} if first else {}))  # fmt: skip
        acc = m.test_metric.dropna("step")
        bx.plot(acc.step, acc, "-", color="C0", lw=1.2,
                **({"label": "validation (each seed)"} if first else {}))  # fmt: skip
    ax.axhline(ds.attrs["baseline"], color="k", ls="--", lw=1,
               label=f"constant predictor ({ds.attrs['baseline']:.2f})")  # fmt: skip
    ax.set(yscale="log", xlabel="update (batch of 32 utterances)",
           ylabel="cross-entropy (nats)", title=f"Training, learning rate {lr:g}")  # fmt: skip
    ax.yaxis.set_major_locator(LogLocator(numticks=15))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1, 0.86))
    for (name, value), style in zip(json.loads(ds.attrs["references"]).items(), (":", "-."),
                                    strict=True):  # fmt: skip
        bx.axhline(value, color="C1", ls=style, lw=1.2, label=f"{name}: {value:.3f}")
    bx.axhline(ds.attrs["test_accuracy"], color="C3", lw=1.2,
               label=f"ours on the test split: {ds.attrs['test_accuracy']:.3f}")  # fmt: skip
    bx.axhline(ds.attrs["chance"], color="k", ls="--", lw=1, label="chance, 1/9")
    bx.set(ylim=(0, 1.02), xlabel="update (batch of 32 utterances)", ylabel="accuracy",
           title="Validation accuracy")  # fmt: skip
    bx.legend(fontsize=7.5, loc="lower right")
    cm = ds.confusion.values
    im = cx.imshow(cm, cmap="Blues")
    for i in range(N_CLASSES):
        for j in range(N_CLASSES):
            if cm[i, j]:
                cx.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")  # fmt: skip
    ticks = np.arange(N_CLASSES)
    cx.set_xticks(ticks, [str(t + 1) for t in ticks])
    cx.set_yticks(ticks, [str(t + 1) for t in ticks])
    cx.set(xlabel="predicted speaker", ylabel="true speaker",
           title=f"Test confusion matrix (accuracy {ds.attrs['test_accuracy']:.3f})")  # fmt: skip
    fig.colorbar(im, ax=cx, label="test utterances", shrink=0.85)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/japanese_vowels")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--seeds", type=int, default=5, help="initial weights per learning rate")
    p.add_argument("--steps", type=int, default=2000, help="at most this many updates")
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--patience", type=int, default=15, help="evaluations without improvement")
    p.add_argument("--seed", type=int, default=0, help="the validation split and the batches")
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = p.parse_args(argv)
    if args.quick:
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    ds = train(args.hidden, args.lr, args.seeds, args.steps, args.eval_every, args.patience,
               seed=args.seed)  # fmt: skip
    nr.save(ds, os.path.join(args.out, "japanese_vowels.nc"))
    plot(ds, os.path.join(args.out, "japanese_vowels.png"))
    print("\n".join(summary(ds)))
    print(f"wrote {args.out}/japanese_vowels.nc and japanese_vowels.png")
    return ds


if __name__ == "__main__":
    main()
