"""The main demo: vanishing and exploding Jacobian products, the lecture example made real.

A tanh RNN (H = 64, T = 100) whose W_hh has spectral radius 0.5, 1.0 and 2.0, beside an
LSTM with forget-gate bias 1. For each, the spectral norm of ds_T/ds_t (s = h for the RNN,
s = (h, c) for the LSTM), geometric mean over 16 random input sequences, at lags
T - t = 1, 10, 50, 99. In the linear picture the norms scale like radius^lag; tanh's
derivative (at most 1) bends that down, and the LSTM's additive cell path keeps it
from vanishing as fast.
"""

import json
import time

import numpy as np

from . import diagnostics
from .nn import ahead
from .nn.models import LSTM, RNN
from .precompile import jacobian_norms_in_background
from .results import save

LAGS = (1, 10, 50, 99)


def cases(hidden_size=64, input_size=8, seed=0):
    """The demo's models, by label.

    Parameters
    ----------
    hidden_size : int, default 64
    input_size : int, default 8
    seed : int, default 0
        Seed of every model's weights.

    Returns
    -------
    dict of str to RNN or LSTM
        Three tanh RNNs whose W_hh has spectral radius 0.5, 1 and 2 (zero biases) and an
        LSTM with forget-gate bias 1.

    Examples
    --------
    >>> from numrnn import demo
    >>> list(demo.cases())
    ['tanh RNN, radius 0.5', 'tanh RNN, radius 1.0', 'tanh RNN, radius 2.0', 'LSTM, forget bias 1']
    """
    out = {}
    for radius in (0.5, 1.0, 2.0):
        init = {"weight_hh": ("spectral", {"radius": radius}), "bias": "zeros"}
        out[f"tanh RNN, radius {radius}"] = RNN(input_size, hidden_size, seed=seed, init=init)
    out["LSTM, forget bias 1"] = LSTM(input_size, hidden_size, seed=seed, forget_bias=1.0)
    return out


def run(out_prefix="numrnn-demo", T=100, batch=16, seed=0, verbose=True):
    """Compute the demo's dataset, print its table, write ``PREFIX.nc`` and ``PREFIX.png``.

    Parameters
    ----------
    out_prefix : str, default "numrnn-demo"
        Where ``PREFIX.nc`` and ``PREFIX.png`` go.
    T : int, default 100
        Sequence length; at least 100, the largest lag of the table.
    batch : int, default 16
        Random N(0, 1) input sequences.
    seed : int, default 0
        Seed of the models' weights and of the inputs.
    verbose : bool, default True
        Print the table.

    Returns
    -------
    xarray.Dataset
        ``jacobian_norm`` (case, batch, time) and ``spectral_radius`` (case).

    Examples
    --------
    >>> import os, tempfile
    >>> from numrnn import demo
    >>> ds = demo.run(os.path.join(tempfile.mkdtemp(), "demo"), batch=2, verbose=False)
    >>> ds.jacobian_norm.dims, ds.spectral_radius.round(2).values.tolist()
    (('case', 'batch', 'time'), [0.5, 1.0, 2.0, 0.61])
    """
    t0 = time.perf_counter()
    # a machine's first run compiles kernels for about half a minute on one core: the
    # Jacobian-norm kernel compiles in a second process while the forward kernels compile
    # here (warm, these forwards take a few milliseconds), and the modules that saving and
    # plotting need load here too (2-3 s) rather than after the wait. No backward pass
    # follows: no second process compiles the backward kernels (``nn.ahead.paused``).
    with ahead.paused(), jacobian_norms_in_background(np.float64):
        models = cases(seed=seed)
        x = np.random.default_rng(seed).standard_normal((T, batch, 8))
        for model in models.values():
            model.forward(x)
        _load_modules()
    import xarray as xr

    parts, radii = [], []
    for model in models.values():
        jac = diagnostics.jacobian_norms(model, x)
        parts.append(jac["jacobian_norm"].isel(layer=0, direction=0, drop=True))
        radii.append(float(diagnostics.weight_powers(model, 1)["spectral_radius"].max()))
    labels = list(models)
    ds = xr.Dataset(
        {
            "jacobian_norm": xr.concat(parts, dim="case").assign_attrs(parts[0].attrs),
            "spectral_radius": (
                "case",
                np.array(radii),
                {
                    "units": "1",
                    "description": "largest |eigenvalue| of W_hh (largest over gate blocks)",
                },
            ),
        },  # fmt: skip
        coords={"case": np.array(labels)},
        attrs={
            "title": "numrnn demo: norms of Jacobian products ds_T/ds_t",
            "configs": json.dumps({k: m.config for k, m in models.items()}),
            "config": json.dumps({"T": T, "batch": batch, "seed": seed, "input": "N(0, 1)"}),
        },
    )
    geo = np.exp(np.log(ds["jacobian_norm"]).mean("batch"))
    save(ds, f"{out_prefix}.nc")
    _figure(ds, f"{out_prefix}.png")
    if verbose:
        print(table(geo))
        print(f"\nwrote {out_prefix}.nc and {out_prefix}.png in {time.perf_counter() - t0:.1f} s")
    return ds


def table(geo):
    """Text table of ||ds_T/ds_t|| at the demo's lags, one row per case.

    Parameters
    ----------
    geo : xarray.DataArray
        Norms over (case, time), e.g. the geometric mean over the batch of
        :func:`run`'s ``jacobian_norm``; at least 100 steps.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from numrnn.demo import table
    >>> geo = xr.DataArray([0.5 ** (99 - np.arange(100))], dims=("case", "time"),
    ...                    coords={"case": ["halving"]})
    >>> print(table(geo))
    ||ds_T/ds_t||_2 at lag              1         10         50         99
    ----------------------------------------------------------------------
    halving                           0.5   0.000977   8.88e-16   1.58e-30
    """
    T = geo.sizes["time"]
    head = f"{'||ds_T/ds_t||_2 at lag':<26}" + "".join(f"{lag:>11}" for lag in LAGS)
    rows = [head, "-" * len(head)]
    for case in geo["case"].values:
        vals = [float(geo.sel(case=case).isel(time=T - 1 - lag)) for lag in LAGS]
        rows.append(f"{case:<26}" + "".join(f"{v:>11.3g}" for v in vals))
    return "\n".join(rows)


def _load_modules():
    """Import what :func:`run` builds, saves and plots with: xarray, whose first Dataset
    looks for the array libraries installed (importing dask, when it is, takes about a
    second), netCDF4 and matplotlib."""
    import netCDF4  # noqa: F401 - the engine of results.save
    import xarray as xr

    from . import plots

    xr.Dataset({"x": ("t", np.zeros(1))})
    plots.pyplot()


def _figure(ds, path):
    from . import plots

    ax = plots.norms(ds, hue="case")  # geometric mean over the input sequences, against lag
    ax.set_title(f"Vanishing and exploding Jacobian products\n{ax.get_title()}",
                 fontsize="medium")  # fmt: skip
    ax.get_legend().set_title(None)
    plots.save(ax, path)
