"""Analysis of saved results with plain xarray: decay rates and summaries of sweeps."""

import numpy as np


def lag(da):
    """The lag T - 1 - t of each step (forward direction) or t (backward direction): how
    far back the gradient travelled to reach that step."""
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
    var : the variable's name when ``ds`` is a Dataset.

    Returns
    -------
    DataArray without the ``time`` dimension (units: nats per step).
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

    Returns
    -------
    Dataset with ``final_loss``, ``final_test_loss``, ``final_test_metric`` (the last
    finite value of each run) and, when ``over`` is a dimension, ``*_mean``/``*_std`` over it,
    plus ``n_ok`` (runs that neither diverged nor failed).
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
