"""Order to chaos in random tanh RNNs: Lyapunov exponents against mean-field theory.

The autonomous network ``h_{t+1} = tanh(W h_t)``, ``W_ij ~ N(0, g^2/N)`` (a numrnn tanh
RNN with zero input weights and biases, ``weight_hh`` drawn by ``glorot_normal`` with gain
g), started from ``h_0 ~ N(0, I)``. Mean-field theory (``numrnn.meanfield``; Molgedey,
Schuster & Sompolinsky 1992, Poole et al. 2016) predicts the largest Lyapunov exponent
``ln g`` for g < 1 and ``0.5 ln chi_1`` for g > 1: chaos sets in at g = 1.

1. The largest exponent (QR method, ``nr.diagnostics.lyapunov_spectrum``) over g in
   [0.5, 3] for N = 200 and N = 2000 (``--seeds`` networks each, ``--steps`` steps after
   ``--warmup``), beside the mean-field curve: figure ``order_to_chaos.png``.
2. The full spectrum at N = 200 (and N = 100, to see that it is size-invariant as Engelken,
   Wolf & Abbott 2023 found), g = 1.5, 2, 3: the number of positive exponents, the entropy
   rate (their sum) and the Kaplan-Yorke dimension: ``lyapunov_spectra.png``.
3. The phase diagram over g and the bias standard deviation, run as the numrnn sweep
   ``experiments/sweeps/order_to_chaos.toml`` (``lyapunov_max`` at initialisation, which
   every sweep records), with the mean-field edge of chaos chi_1 = 1: ``phase_diagram.png``.

Writes ``order_to_chaos.nc``, ``lyapunov_spectra.nc``, ``phase_diagram.nc``, the sweep's
store and the PNGs to
``--out`` and prints the numbers beside the references. Run:
``python experiments/order_to_chaos.py`` (about 15 min on 2 cores); ``--quick`` for a smoke
test.
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

SWEEP = os.path.join(os.path.dirname(__file__), "sweeps", "order_to_chaos.toml")
FULL = {
    "sizes": [200, 2000],
    "seeds": 2,
    "steps": 2000,
    "warmup": 300,
    "spectrum_sizes": [100, 200],
}
QUICK = {"sizes": [20, 40], "seeds": 2, "steps": 200, "warmup": 50, "spectrum_sizes": [20, 40]}


def network(n, g, seed):
    """The autonomous tanh network of size n and gain g (input and biases zero)."""
    init = {"weight_hh": ("glorot_normal", {"gain": float(g)}), "weight_ih": "zeros",
            "bias": "zeros"}  # fmt: skip
    return nr.RNN(1, n, init=init, seed=seed)


def exponents(n, g, seed, steps, warmup, count=1, batch=1):
    """The ``count`` largest Lyapunov exponents (None: all), mean over ``batch`` starts."""
    model = network(n, g, seed)
    rng = np.random.default_rng(seed + 10**6)
    h0 = rng.standard_normal((1, batch, n))
    x = np.zeros((warmup + steps, batch, 1))
    lam = nr.diagnostics.lyapunov_spectrum(model, x, state=h0, n_exponents=count, warmup=warmup)
    return lam.lyapunov.isel(layer=0, direction=0).mean("batch").values


def largest(gains, sizes, seeds, steps, warmup):
    """(size, g, seed) largest exponents as a Dataset beside the mean-field values."""
    lam = np.full((len(sizes), len(gains), seeds), np.nan)
    for i, n in enumerate(sizes):
        for j, g in enumerate(gains):
            for s in range(seeds):
                lam[i, j, s] = exponents(n, g, s, steps, warmup)[0]
        print(f"  N = {n}: done", flush=True)
    return xr.Dataset(
        {
            "lyapunov_max": (("N", "g", "seed"), lam, {"units": "nats per step"}),
            "meanfield": (
                "g",
                [meanfield.lyapunov_max(g) for g in gains],
                {"units": "nats per step", "description": "0.5 ln chi_1"},
            ),
        },  # fmt: skip
        coords={"N": sizes, "g": gains, "seed": np.arange(seeds)},
        attrs={"steps": steps, "warmup": warmup, "model": "h_t+1 = tanh(W h_t)"},
    )


def kaplan_yorke(lam):
    """The Kaplan-Yorke dimension of a descending spectrum: k + S_k / |lam_{k+1}|, k the
    most exponents whose sum S_k is >= 0."""
    sums = np.cumsum(lam)
    k = int(np.sum(sums >= 0))
    if k == 0:
        return 0.0
    if k == len(lam):
        return float(k)
    return k + sums[k - 1] / abs(lam[k])


def spectra(gains, sizes, steps, warmup):
    """Full spectra over (N, g), exponents indexed by i / N in (0, 1]."""
    rows = {}
    for n in sizes:
        for g in gains:
            rows[n, g] = exponents(n, g, 0, steps, warmup, count=None)
    ds = xr.Dataset(coords={"g": gains})
    for n in sizes:
        ds[f"lyapunov_N{n}"] = (("g", f"i_N{n}"), np.stack([rows[n, g] for g in gains]),
                                {"units": "nats per step"})  # fmt: skip
        ds = ds.assign_coords({f"i_N{n}": (np.arange(n) + 1) / n})
    ds.attrs.update(steps=steps, warmup=warmup)
    return ds


def phase_diagram(out, quick):
    """Run the sweep (g x bias std) and return lyapunov_max with the mean-field values."""
    cfg = nr.sweep.load_config(SWEEP)
    if quick:  # a 3 x 2 corner of the grid, a small network, short sequences
        cfg["model"]["hidden_size"] = 16
        cfg["task"]["T"] = 60
        cfg["grid"] = {k: v[:: max(1, len(v) // 3)][:3] for k, v in cfg["grid"].items()}
    store = os.path.join(out, "order_to_chaos_sweep.zarr")
    nr.sweep.run(cfg, store, workers=1 if quick else None, progress=not quick)
    ds = nr.open(store)
    lam = ds.lyapunov_max.isel(layer=0, direction=0, drop=True)
    # PyTorch's two biases (b_ih + b_hh) both drawn with std s: bias variance 2 s^2
    mf = [[meanfield.lyapunov_max(g, bias_var=2 * s * s) for s in ds["std"].values]
          for g in ds["gain"].values]  # fmt: skip
    return lam, xr.DataArray(mf, dims=("gain", "std"), coords={"gain": ds.gain, "std": ds["std"]})


def plot_largest(ds, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    fine = np.linspace(float(ds.g[0]), float(ds.g[-1]), 200)
    ax.plot(fine, [meanfield.lyapunov_max(g) for g in fine], "k-", lw=1.5, label="mean field")
    for n, color in zip(ds.N.values, ("C0", "C3"), strict=False):
        lam = ds.lyapunov_max.sel(N=n)
        label = f"N = {n} ({ds.sizes['seed']} networks)"
        ax.errorbar(ds.g, lam.mean("seed"), yerr=lam.std("seed"), fmt="o", ms=3.5,
                    color=color, capsize=2, label=label)  # fmt: skip
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(1, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="gain g  (W_ij ~ N(0, g²/N))", ylabel="largest Lyapunov exponent (nats/step)",
           title="Order to chaos in h_{t+1} = tanh(W h_t)")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_spectra(ds, sizes, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for g, color in zip(ds.g.values, ("C0", "C1", "C2"), strict=False):
        for n, style in zip(sizes, ("--", "-"), strict=False):
            lam = ds[f"lyapunov_N{n}"].sel(g=g)
            ax.plot(lam[f"i_N{n}"], lam, style, color=color, lw=1.3, label=f"g = {g:g}, N = {n}")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="exponent index i / N", ylabel="Lyapunov exponent λ_i (nats/step)",
           title="Full Lyapunov spectra (size-invariant in i / N)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_phase(lam, mf, path):
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    g, s = lam.gain.values, lam["std"].values
    vmax = float(np.nanmax(np.abs(lam)))
    mesh = ax.pcolormesh(g, s, lam.transpose("std", "gain"), cmap="RdBu_r", vmin=-vmax,
                         vmax=vmax, shading="nearest")  # fmt: skip
    fig.colorbar(mesh, ax=ax, label="largest Lyapunov exponent (nats/step)")
    # chi_1 costs a root search each: a 48 x 24 grid draws a smooth enough contour
    gf, sf = np.linspace(g[0], g[-1], 48), np.linspace(s[0], s[-1], 24)
    chi = [[meanfield.chi1(a, bias_var=2 * b * b) for a in gf] for b in sf]
    ax.contour(gf, sf, chi, levels=[1.0], colors="k", linewidths=1.5)
    ax.plot([], [], "k-", label="mean field: chi_1 = 1")
    ax.set(xlabel="gain g", ylabel="bias std (b_ih and b_hh each)",
           title="Edge of chaos: measured λ_max and mean field")  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="experiments/out/order_to_chaos")
    p.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK}")
    args = p.parse_args(argv)
    size = QUICK if args.quick else FULL
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()

    gains = np.round(np.arange(0.5, 3.0001, 0.5 if args.quick else 0.1), 2)
    print(f"1. largest exponent, g in [{gains[0]}, {gains[-1]}], N = {size['sizes']}")
    big = largest(gains, size["sizes"], size["seeds"], size["steps"], size["warmup"])
    nr.save(big, os.path.join(args.out, "order_to_chaos.nc"))
    plot_largest(big, os.path.join(args.out, "order_to_chaos.png"))
    n_big = size["sizes"][-1]
    mean = big.lyapunov_max.sel(N=n_big).mean("seed")
    sizes = " ".join(f"{'N=' + str(n):>9}" for n in big.N.values)
    print(f"\n   {'g':>4} {'mean field':>10} {sizes} {'|N=' + str(n_big) + ' - mf|':>14}")
    for g in (0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 2.5, 3.0):
        if g not in gains:
            continue
        row = big.sel(g=g).lyapunov_max.mean("seed").values
        mf = float(big.meanfield.sel(g=g))
        print(f"   {g:4.1f} {mf:10.4f} " + " ".join(f"{v:9.4f}" for v in row)
              + f" {abs(row[-1] - mf):14.4f}")  # fmt: skip
    change = np.flatnonzero(np.diff(np.sign(mean.values)))
    pairs = ", ".join(f"{gains[i]:g} and {gains[i + 1]:g}" for i in change)
    print(f"   N = {n_big}: the mean exponent changes sign between g = {pairs}")

    print(f"\n2. full spectra, N = {size['spectrum_sizes']}, g = 1.5, 2, 3")
    spec = spectra([1.5, 2.0, 3.0], size["spectrum_sizes"], size["steps"], size["warmup"])
    nr.save(spec, os.path.join(args.out, "lyapunov_spectra.nc"))
    plot_spectra(spec, size["spectrum_sizes"], os.path.join(args.out, "lyapunov_spectra.png"))
    print(f"   {'N':>4} {'g':>4} {'positive':>8} {'fraction':>8} {'entropy rate':>12} "
          f"{'KY dim':>7} {'KY dim/N':>8} {'sum (= mean ln|det J|)':>22}")  # fmt: skip
    for n in size["spectrum_sizes"]:
        for g in spec.g.values:
            lam = spec[f"lyapunov_N{n}"].sel(g=g).values
            pos = lam[lam > 0]
            dim = kaplan_yorke(lam)
            print(f"   {n:4d} {g:4.1f} {pos.size:8d} {pos.size / n:8.3f} {pos.sum():12.4f} "
                  f"{dim:7.2f} {dim / n:8.3f} {lam.sum():22.3f}")  # fmt: skip

    print("\n3. phase diagram: the sweep", SWEEP)
    lam, mf = phase_diagram(args.out, args.quick)
    nr.save(xr.Dataset({"lyapunov_max": lam, "meanfield": mf.assign_attrs(
        units="nats per step", description="0.5 ln chi_1, bias variance 2 std^2")}),
        os.path.join(args.out, "phase_diagram.nc"))  # fmt: skip
    plot_phase(lam, mf, os.path.join(args.out, "phase_diagram.png"))
    chaotic, predicted = (lam > 0).values, (mf > 0).values
    agree = np.mean(chaotic == predicted)
    print(
        f"   measured and mean-field phase (sign of λ_max) agree at {agree:.0%} of "
        f"{chaotic.size} grid points"
    )
    print(
        f"\nwrote {args.out}/ (order_to_chaos, lyapunov_spectra, phase_diagram: .nc/.zarr "
        f"and .png) in {(time.perf_counter() - t0) / 60:.1f} min"
    )
    return big, spec, (lam, mf)


if __name__ == "__main__":
    main()
