"""Analysis of saved results with plain xarray: decay rates and summaries of sweeps."""

import numpy as np


def lag(da):
    """The lag T - 1 - t of each step (forward direction) or t (backward direction): how
    far back the gradient travelled to reach that step.

    Parameters
    ----------
    da : xarray.DataArray
        With a ``time`` dimension and optionally ``direction``.

    Returns
    -------
    xarray.DataArray
        Over ``time`` (and ``direction``), in steps.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from numrnn.analysis import lag
    >>> da = xr.DataArray(np.ones((2, 4)), dims=("direction", "time"),
    ...                   coords={"direction": ["forward", "backward"], "time": np.arange(4)})
    >>> lag(da).transpose("direction", "time").values
    array([[3, 2, 1, 0],
           [0, 1, 2, 3]])
    """
    T = da.sizes["time"]
    t = da["time"]
    if "direction" in da.dims:
        return (T - 1 - t).where(da["direction"] == "forward", t)
    return T - 1 - t


def decay_rate(ds, var="jacobian_norm", min_lag=1):
    """Slope of log ``var`` against the lag (nats per step), by least squares.

    Negative: the norm vanishes like exp(rate * lag); positive: it explodes. Steps whose
    value is not finite and positive (NaN past a sequence's end, 0, inf) and lags below
    ``min_lag`` are left out.

    Parameters
    ----------
    ds : Dataset (or DataArray) with a ``time`` dimension, e.g. from ``jacobian_norms``,
        ``gradient_norms`` or a sweep store (the ``step`` dimension is kept).
    var : str, default "jacobian_norm"
        The variable's name when ``ds`` is a Dataset.
    min_lag : int, default 1
        Leave out the lags below this (lag 0 is the norm of the identity).

    Returns
    -------
    xarray.DataArray
        ``ds`` without the ``time`` dimension, in nats per step; NaN where fewer than two
        steps are usable.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 8, seed=0, init={"weight_hh": ("spectral", {"radius": 0.5})})
    >>> x = np.random.default_rng(0).standard_normal((20, 4, 3))
    >>> rate = nr.analysis.decay_rate(nr.diagnostics.jacobian_norms(model, x))
    >>> rate.dims, bool((rate < np.log(0.5)).all())        # faster than 0.5 ** lag
    (('layer', 'direction', 'batch'), True)
    """
    import xarray as xr

    da = ds[var] if isinstance(ds, xr.Dataset) else ds
    x = lag(da).broadcast_like(da)
    y = np.log(da.where(da > 0))
    ok = np.isfinite(y) & (x >= min_lag)
    x, y = x.where(ok), y.where(ok)
    n = ok.sum("time")
    xm, ym = x.sum("time") / n, y.sum("time") / n
    cov = ((x - xm) * (y - ym)).sum("time")
    var_x = ((x - xm) ** 2).sum("time")
    rate = (cov / var_x).where(n >= 2)
    return rate.rename(f"{da.name}_decay_rate").assign_attrs(
        units="nats per step", description=f"least-squares slope of log {da.name} against lag"
    )


def summarize(ds, over="seed"):
    """Final training loss, test loss and test metric per grid point, and their mean and
    standard deviation over ``over`` (when that dimension exists).

    Parameters
    ----------
    ds : xarray.Dataset
        A training record (:func:`numrnn.train`) or a sweep store, with a ``step``
        dimension.
    over : str, default "seed"
        The dimension to average over, when ``ds`` has it.

    Returns
    -------
    xarray.Dataset
        ``final_loss``, ``final_test_loss``, ``final_test_metric`` (the last finite value
        of each run, for the variables ``ds`` has), ``status``, and when ``over`` is a
        dimension ``*_mean``/``*_std`` over it and ``n_ok`` (runs that neither diverged
        nor failed).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from numrnn.analysis import summarize
    >>> ds = xr.Dataset({"loss": (("seed", "step"), [[1.0, 0.5], [1.0, np.nan]]),
    ...                  "status": ("seed", ["ok", "diverged"])},
    ...                 coords={"seed": [0, 1], "step": [0, 1]})
    >>> s = summarize(ds)
    >>> s.final_loss.values, float(s.final_loss_mean), int(s.n_ok)
    (array([0.5, 1. ]), 0.75, 1)
    """
    import xarray as xr

    out = xr.Dataset()
    for name in ("loss", "test_loss", "test_metric"):
        if name in ds:
            out[f"final_{name}"] = _last_finite(ds[name])
    if "status" in ds:
        out["status"] = ds["status"]
    if over in ds.dims:
        for name in list(out.data_vars):
            if name == "status":
                continue
            out[f"{name}_mean"] = out[name].mean(over)
            out[f"{name}_std"] = out[name].std(over)
        if "status" in ds:
            out["n_ok"] = (ds["status"] == "ok").sum(over)
    return out


def _last_finite(da, dim="step"):
    """The last finite value along ``dim`` (NaN where there is none)."""
    import xarray as xr

    valid = np.isfinite(da)
    position = xr.DataArray(np.arange(da.sizes[dim]), dims=dim)
    last = (valid * position).max(dim)
    out = da.isel({dim: last}).where(valid.any(dim))
    return out.drop_vars(dim)
