"""Vanishing and exploding gradients at initialisation (Pascanu et al. 2013; Le et al. 2015).

For a tanh and a ReLU RNN with W_hh drawn from N(0, 1), Glorot (normal), orthogonal or the
identity (other weights PyTorch's default, biases zero), on a batch of the adding problem:

- ``grad_norm``: ||dL/dh_t|| of the MSE at the last step, from BPTT, against time t;
- ``jacobian_norm``: ||dh_T/dh_t||_2 against the lag T - t.

Both are the median over the batch. N(0, 1) has spectral radius about sqrt(H): ReLU
explodes (until it overflows), tanh saturates; Glorot and orthogonal keep the radius near 1
but tanh's slope below 1 makes the gradient vanish; the identity with ReLU preserves it.

Writes ``vanishing_exploding.nc`` and ``.png`` to ``--out`` and prints a summary table.
Run: ``python experiments/vanishing_exploding.py [--T 100 --hidden 64]``.
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import numrnn as nr  # noqa: E402

INITS = {
    "N(0,1)": ("normal", {"std": 1.0}),
    "glorot": "glorot_normal",
    "orthogonal": "orthogonal",
    "identity": "identity",
}
NONLINEARITIES = ("tanh", "relu")

#: the --quick sizes (a smoke test; the figures in docs/ are from the defaults)
QUICK = {"T": 30, "hidden": 16, "batch": 8}


def measure(nonlinearity, init, x, y, hidden, seed):
    """Median over the batch of ||dL/dh_t|| (time) and ||dh_T/dh_t|| (lag), and rho(W_hh)."""
    model = nr.RNN(
        2,
        hidden,
        nonlinearity=nonlinearity,
        seed=seed,
        output_size=1,
        readout="last",
        init={"weight_hh": init, "bias": "zeros"},
    )
    with np.errstate(all="ignore"):
        out = model.forward(x).output
        d_out = nr.losses.mse(out, y)[1]
        grad = nr.diagnostics.gradient_norms(model, x, d_out).grad_norm
        jac = nr.diagnostics.jacobian_norms(model, x).jacobian_norm
    rho = float(nr.diagnostics.weight_powers(model, 1).spectral_radius.squeeze())
    grad = grad.isel(layer=0, direction=0).median("batch")
    jac = jac.isel(layer=0, direction=0).median("batch")
    T = x.shape[0]
    jac = jac.assign_coords(lag=("time", T - 1 - jac.time.values)).swap_dims(time="lag")
    grad = grad.drop_vars(["layer", "direction"])
    return grad, jac.drop_vars(["layer", "direction", "time"]), rho


def plot(ds, path):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for row, nl in enumerate(NONLINEARITIES):
        for name in ds.init.values:
            sel = ds.sel(nonlinearity=nl, init=name)
            label = f"{name} (rho = {float(sel.spectral_radius):.2f})"
            axes[row, 0].plot(sel.time, sel.grad_norm, label=label)
            axes[row, 1].plot(sel.lag, sel.jacobian_norm, label=label)
        axes[row, 0].set(yscale="log", ylabel=f"{nl}: ||dL/dh_t||")
        axes[row, 1].set(yscale="log", ylabel=f"{nl}: ||dh_T/dh_t||")
        axes[row, 0].legend(fontsize=8)
    axes[1, 0].set_xlabel("time t (loss at the last step)")
    axes[1, 1].set_xlabel("lag T - t")
    fig.suptitle("Gradients at initialisation, median over the batch (inf/NaN not drawn)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/")
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help=f"small sizes, a smoke test in seconds: {QUICK}"
    )
    args = p.parse_args(argv)
    if args.quick:  # smaller defaults; sizes given explicitly still win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    x, y = nr.tasks.Adding(args.T).sample(args.batch, args.seed)
    grads, jacs, rhos = [], [], []
    for nl in NONLINEARITIES:
        row = [measure(nl, init, x, y, args.hidden, args.seed) for init in INITS.values()]
        grads.append(xr.concat([r[0] for r in row], "init"))
        jacs.append(xr.concat([r[1] for r in row], "init"))
        rhos.append([r[2] for r in row])
    coords = {"nonlinearity": list(NONLINEARITIES), "init": list(INITS)}
    ds = xr.Dataset(
        {
            "grad_norm": xr.concat(grads, "nonlinearity").assign_attrs(
                units="1", description="median over the batch of ||dL/dh_t||"
            ),
            "jacobian_norm": xr.concat(jacs, "nonlinearity").assign_attrs(
                units="1", description="median over the batch of ||dh_T/dh_t||_2"
            ),
            "spectral_radius": (
                ("nonlinearity", "init"),
                np.array(rhos),
                {"units": "1", "description": "largest |eigenvalue| of W_hh"},
            ),
        },
        coords=coords,
        attrs={
            "config": json.dumps({**vars(args), "inits": INITS}),
            "task": json.dumps(nr.tasks.Adding(args.T).config),
        },
    )
    ds["lag"].attrs.update(units="steps", description="T - 1 - t")
    nc = nr.save(ds, os.path.join(args.out, "vanishing_exploding.nc"))
    png = os.path.join(args.out, "vanishing_exploding.png")
    plot(ds, png)

    T = args.T
    print(
        f"\ntanh/ReLU RNN, H={args.hidden}, Adding(T={T}) batch of {args.batch}; "
        "medians over the batch"
    )
    print(
        f"{'nonlin':6} {'W_hh init':10} {'rho(W_hh)':>9} {'||dL/dh_0||':>12} "
        f"{'||dL/dh_T-1||':>13} {'ratio 0/T-1':>12} {'||dh_T/dh_0||':>13}"
    )
    for nl in NONLINEARITIES:
        for name in INITS:
            sel = ds.sel(nonlinearity=nl, init=name)
            g0, gT = float(sel.grad_norm[0]), float(sel.grad_norm[-1])
            with np.errstate(all="ignore"):
                ratio = g0 / gT
            print(
                f"{nl:6} {name:10} {float(sel.spectral_radius):9.2f} {g0:12.3g} {gT:13.3g} "
                f"{ratio:12.3g} {float(sel.jacobian_norm.sel(lag=T - 1)):13.3g}"
            )
    print(f"wrote {png} and {nc}")


if __name__ == "__main__":
    main()
