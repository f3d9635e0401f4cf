"""Signal propagation in random tanh RNNs: the decay of ||ds_T/ds_t||_F^2 against mean field.

``h_t = tanh(W h_{t-1} + sigma_u x_t)``, ``W_ij ~ N(0, g^2/N)``, ``x_t ~ N(0, I)`` (a numrnn
tanh RNN with input size N, ``weight_ih`` = sigma_u I, zero biases). Mean-field theory
(Chen, Pennington & Schoenholz 2018; ``numrnn.meanfield``) predicts that
``E ||ds_T/ds_t||_F^2 / N`` changes by the factor ``chi_1`` per step of lag, so that its log
falls (or grows) at the rate ``ln chi_1`` and gradients reach back ``xi = -1 / ln chi_1``
steps. Input noise (sigma_u > 0) moves the fixed point q* up, chi_1 down, and the edge of
chaos to larger g.

For each (g, sigma_u^2): ``--networks`` networks of N units, ``--batch`` sequences each of
``--steps`` steps (the last ``--lags`` steps after a transient), the batch-and-network mean of
``||ds_T/ds_t||_F^2 / N`` over the lag T - t (``nr.diagnostics.jacobian_norms(ord="fro")``),
and its least-squares log slope over lags ``--fit`` beside ``ln chi_1``.

Writes ``signal_propagation.nc`` and ``signal_propagation.png`` to ``--out`` and prints the
table. Run: ``python experiments/signal_propagation.py``; ``--quick`` for a smoke test.
"""

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import numrnn as nr  # noqa: E402
from numrnn import meanfield  # noqa: E402

FULL = {"N": 200, "networks": 3, "batch": 8, "steps": 300, "lags": 50, "fit": [5, 40]}
QUICK = {"N": 32, "networks": 2, "batch": 4, "steps": 80, "lags": 20, "fit": [3, 15]}
GAINS = [0.5, 0.8, 1.0, 1.2, 1.5, 2.0]
INPUT_VARS = [0.0, 0.25, 1.0]


def network(n, g, sigma_u, seed):
    init = {"weight_hh": ("glorot_normal", {"gain": g}),
            "weight_ih": ("identity", {"scale": sigma_u}) if sigma_u else "zeros",
            "bias": "zeros"}  # fmt: skip
    return nr.RNN(n, n, init=init, seed=seed)


def mean_square_norms(n, g, input_var, size):
    """E||ds_T/ds_t||_F^2 / N over lag 0..lags-1 (mean over networks and sequences)."""
    acc = np.zeros(size["lags"])
    for seed in range(size["networks"]):
        model = network(n, g, float(np.sqrt(input_var)), seed)
        rng = np.random.default_rng(seed + 1000)
        x = rng.standard_normal((size["steps"], size["batch"], n))
        h0 = rng.standard_normal((1, size["batch"], n))  # off the fixed point 0 when g > 1
        # the transient forward only; the Jacobian products (S^3 per step) over the last lags
        head, tail = x[: -size["lags"]], x[-size["lags"] :]
        state = model.forward(head, state=h0).state
        jac = nr.diagnostics.jacobian_norms(model, tail, state=state, ord="fro").jacobian_norm
        last = jac.isel(layer=0, direction=0).values  # (batch, time)
        acc += np.mean(last[:, ::-1] ** 2, axis=0) / n  # lag = T - t
    return acc / size["networks"]


def fit_rate(curve, lags):
    """Least-squares slope of ln(curve) over lags lo..hi (finite, positive values only)."""
    lo, hi = lags
    k = np.arange(lo, hi + 1)
    y = curve[lo : hi + 1]
    ok = np.isfinite(y) & (y > 0)
    return float(np.polyfit(k[ok], np.log(y[ok]), 1)[0]) if ok.sum() > 2 else np.nan


def run(size):
    n, lags = size["N"], size["lags"]
    curves = np.full((len(GAINS), len(INPUT_VARS), lags), np.nan)
    for i, g in enumerate(GAINS):
        for j, v in enumerate(INPUT_VARS):
            curves[i, j] = mean_square_norms(n, g, v, size)
    rate = np.array([[fit_rate(c, size["fit"]) for c in row] for row in curves])
    chi = np.array([[meanfield.chi1(g, input_var=v) for v in INPUT_VARS] for g in GAINS])
    dims = ("g", "input_var")
    return xr.Dataset(
        {
            "frobenius_sq": (
                dims + ("lag",),
                curves,
                {"units": "1", "description": "mean ||ds_T/ds_t||_F^2 / N"},
            ),
            "rate": (dims, rate, {"units": "1/step", "description": "fitted slope of ln"}),
            "ln_chi1": (dims, np.log(chi), {"units": "1/step", "description": "mean field"}),
        },  # fmt: skip
        coords={"g": GAINS, "input_var": INPUT_VARS, "lag": np.arange(lags)},
        attrs={k: str(v) for k, v in size.items()},
    )


def plot(ds, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    ax = axes[0]
    for i, g in enumerate(ds.g.values):
        c = ds.frobenius_sq.sel(g=g, input_var=0.25)
        line = ax.semilogy(ds.lag, c, "o", ms=2.5, color=f"C{i}", label=f"g = {g:g}")[0]
        chi = np.exp(float(ds.ln_chi1.sel(g=g, input_var=0.25)))
        ax.semilogy(ds.lag, chi**ds.lag.values, "-", lw=1, color=line.get_color())
    ax.set(xlabel="lag T - t (steps)", ylabel="E ||ds_T/ds_t||²_F / N",
           title="σ_u² = 0.25: measured (dots), χ₁^lag (lines)")  # fmt: skip
    ax.legend(fontsize=8)
    ax = axes[1]
    lim = [float(min(ds.ln_chi1.min(), ds.rate.min())) - 0.1,
           float(max(ds.ln_chi1.max(), ds.rate.max())) + 0.1]  # fmt: skip
    ax.plot(lim, lim, "k-", lw=0.8, label="equal")
    for j, v in enumerate(ds.input_var.values):
        ax.plot(ds.ln_chi1.sel(input_var=v), ds.rate.sel(input_var=v), "o", color=f"C{j}",
                label=f"σ_u² = {v:g}")  # fmt: skip
    ax.set(xlabel="mean field ln χ₁ (1/step)", ylabel="fitted decay rate (1/step)",
           title="Rate of ln E||ds_T/ds_t||²_F per step of lag")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/signal_propagation")
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = p.parse_args(argv)
    size = QUICK if args.quick else FULL
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    ds = run(size)
    nr.save(ds, os.path.join(args.out, "signal_propagation.nc"))
    plot(ds, os.path.join(args.out, "signal_propagation.png"))
    print(f"N = {size['N']}, {size['networks']} networks x {size['batch']} sequences, fit over "
          f"lags {size['fit']}")  # fmt: skip
    print(f"{'g':>4} {'σ_u²':>5} {'ln χ₁':>8} {'fitted':>8} {'ξ mean field':>12} {'ξ fitted':>9}")
    for g in ds.g.values:
        for v in ds.input_var.values:
            mf, fit = float(ds.ln_chi1.sel(g=g, input_var=v)), float(ds.rate.sel(g=g, input_var=v))
            xi = lambda r: f"{-1 / r:9.2f}" if r < 0 else f"{'(grows)':>9}"  # noqa: E731
            print(f"{g:4.1f} {v:5.2f} {mf:8.4f} {fit:8.4f} {xi(mf):>12} {xi(fit)}")
    print(f"wrote {args.out}/signal_propagation.nc and .png in "
          f"{(time.perf_counter() - t0) / 60:.1f} min")  # fmt: skip
    return ds


if __name__ == "__main__":
    main()
