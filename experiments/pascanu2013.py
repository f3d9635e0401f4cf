"""The vanishing and exploding conditions of Pascanu, Mikolov & Bengio (2013), Sec. 2.1, measured.

For ``h_t = tanh(W h_{t-1} + U x_t + b)`` the step Jacobian is ``diag(tanh'(a_t)) W`` and
``|tanh'| <= gamma = 1`` (1/4 for the logistic sigmoid), so

- ``sigma_max(W) < 1 / gamma`` is *sufficient* for vanishing gradients:
  ``||ds_T/ds_t||_2 <= (gamma sigma_max)^(T - t)``;
- ``rho(W) > 1 / gamma`` (spectral radius) is *necessary* for exploding ones, but not
  sufficient, and ``sigma_max > 1`` does not mean they explode either.

Four tanh RNNs of ``--hidden`` units driven by the same Gaussian inputs, their spectral norms
``||ds_T/ds_t||_2`` measured over the lag (``nr.diagnostics.jacobian_norms``):

- ``contracting``: W = 0.9 Q (Q orthogonal): sigma_max = rho = 0.9, under the bound;
- ``chaotic``: W_ij ~ N(0, 2.5^2/N), weak input: rho ~ 2.5, the gradients explode (a
  positive Lyapunov exponent; a stronger input would suppress the chaos, see
  ``signal_propagation.py``);
- ``non-normal``: W = Q [[0.5 I, 3 I], [0, 0.5 I]] Q^T: rho = 0.5 but sigma_max ~ 3.1: a
  transient growth, then vanishing;
- ``saturated``: W = 2 Q, strong input (U_ij ~ N(0, 3^2)): sigma_max = rho = 2, but the
  units saturate, tanh' ~ 0, and the gradients vanish.

Writes ``pascanu2013.nc`` and ``pascanu2013.png`` to ``--out``, prints sigma_max, rho, what
the conditions allow and what was measured. Run: ``python experiments/pascanu2013.py``;
``--quick`` for a smoke test.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import numrnn as nr  # noqa: E402
from numrnn import meanfield  # noqa: E402

QUICK = {"hidden": 24, "steps": 40, "batch": 4}
FULL = {"hidden": 100, "steps": 120, "batch": 16}
INPUTS = 4


def recurrent_weights(n, rng):
    """The four W of the module docstring, with the input-weight std of each."""
    q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    m = n // 2  # [[0.5 I, 3 I], [0, 0.5 I]] in the basis Q: W^k = 0.5^k I + 3 k 0.5^(k-1) N
    jordan = 0.5 * np.eye(n) + 3.0 * np.eye(n, k=m)
    return {
        "contracting": (0.9 * q, 0.3),
        "chaotic": (rng.standard_normal((n, n)) * 2.5 / np.sqrt(n), 0.05),
        "non-normal": (q @ jordan @ q.T, 0.3),
        "saturated": (2.0 * q, 3.0),
    }


def measure(size, seed=0):
    n, steps, batch = size["hidden"], size["steps"], size["batch"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, batch, INPUTS))
    cases = recurrent_weights(n, rng)
    norms, info = [], []
    for w, u_std in cases.values():
        model = nr.RNN(INPUTS, n, seed=seed, init={"weight_ih": ("normal", {"std": u_std}),
                                                   "bias": "zeros"})  # fmt: skip
        model.params["weight_hh_l0"][...] = w
        jac = nr.diagnostics.jacobian_norms(model, x).jacobian_norm.isel(layer=0, direction=0)
        lag_norms = np.exp(np.log(jac.values[:, ::-1]).mean(axis=0))  # geometric mean, lag = T - t
        norms.append(lag_norms)
        sigma, rho = np.linalg.norm(w, 2), np.abs(np.linalg.eigvals(w)).max()
        info.append((sigma, rho))
    lag = np.arange(steps)
    sigma, rho = np.array(info).T
    return xr.Dataset(
        {
            "jacobian_norm": (
                ("case", "lag"),
                np.array(norms),
                {"units": "1", "description": "geometric batch mean of ||ds_T/ds_t||_2"},
            ),
            "sigma_max": ("case", sigma, {"description": "largest singular value of W_hh"}),
            "rho": ("case", rho, {"description": "spectral radius of W_hh"}),
            "bound": (
                ("case", "lag"),
                sigma[:, None] ** lag[None, :],
                {"description": "(gamma sigma_max)^lag, gamma = 1 for tanh"},
            ),
        },  # fmt: skip
        coords={"case": list(cases), "lag": lag},
        attrs={"hidden": n, "steps": steps, "batch": batch},
    )


def rate(curve, lo, hi):
    """Least-squares slope of the log norm over lags lo..hi, per step."""
    k = np.arange(lo, hi)
    return float(np.polyfit(k, np.log(curve[lo:hi]), 1)[0])


def plot(ds, path):
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for i, case in enumerate(ds.case.values):
        c = ds.sel(case=case)
        label = f"{case} (σ_max {float(c.sigma_max):.2f}, ρ {float(c.rho):.2f})"
        ax.semilogy(ds.lag, c.jacobian_norm, color=f"C{i}", lw=1.6, label=label)
        if float(c.sigma_max) < 1:
            ax.semilogy(ds.lag, c.bound, "--", color=f"C{i}", lw=1,
                        label=f"bound σ_max^lag = {float(c.sigma_max):.2f}^lag")  # fmt: skip
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set(xlabel="lag T - t (steps)", ylabel="||ds_T/ds_t||₂ (geometric mean over batch)",
           title="Pascanu et al. 2013: σ_max < 1 suffices to vanish; ρ > 1 is needed to explode",
           ylim=(1e-30, 1e30))  # fmt: skip
    ax.legend(fontsize=7.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/pascanu2013")
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = p.parse_args(argv)
    size = QUICK if args.quick else FULL
    os.makedirs(args.out, exist_ok=True)
    ds = measure(size)
    nr.save(ds, os.path.join(args.out, "pascanu2013.nc"))
    plot(ds, os.path.join(args.out, "pascanu2013.png"))
    steps = size["steps"]
    print(f"tanh RNN, H = {size['hidden']}, {steps} steps, {size['batch']} sequences")
    print(f"{'case':12} {'σ_max':>6} {'ρ':>6} {'the conditions say':30} {'rate/step':>9} "
          f"{'||ds_T/ds_0||':>13} {'within bound':>12}")  # fmt: skip
    for case in ds.case.values:
        c = ds.sel(case=case)
        sigma, rho = float(c.sigma_max), float(c.rho)
        says = ("vanishing (σ_max < 1)" if sigma < 1 else
                "cannot explode (ρ < 1)" if rho < 1 else "may explode (ρ > 1)")  # fmt: skip
        r = rate(c.jacobian_norm.values, steps // 2, steps)
        within = bool((c.jacobian_norm <= c.bound * (1 + 1e-12)).all()) if sigma < 1 else "-"
        print(f"{case:12} {sigma:6.2f} {rho:6.2f} {says:30} {r:9.3f} "
              f"{float(c.jacobian_norm[-1]):13.2e} {within!s:>12}")  # fmt: skip
    chaotic = rate(ds.jacobian_norm.sel(case="chaotic").values, steps // 2, steps)
    lam = meanfield.lyapunov_max(2.5, input_var=INPUTS * 0.05**2)
    print(
        f"chaotic: growth rate {chaotic:.3f}/step; mean-field largest Lyapunov exponent "
        f"0.5 ln chi_1 = {lam:.3f} (g = 2.5, input variance {INPUTS * 0.05**2:g})"
    )
    print(f"wrote {args.out}/pascanu2013.nc and .png")
    return ds


if __name__ == "__main__":
    main()
