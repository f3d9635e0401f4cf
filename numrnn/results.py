"""The xarray schema of numrnn's results, and saving to / opening from Zarr and netCDF.

Every result is an ``xarray.Dataset`` with named dimensions (``time``, ``layer``,
``direction``, ``batch``, ``k``, ``exponent``, ``step``, ``init``, ``seed``, ...), a
``units`` and ``description`` attribute on each variable, and the configuration that
produced it in ``attrs["config"]`` as a JSON string, so that a saved file explains itself.
Attributes are kept to strings and numbers, which both stores hold without loss.

Zarr (``*.zarr``, format 2, whose string types are stable) is the store for sweeps;
netCDF (``*.nc``, netCDF-4 through the ``netCDF4`` library) for single results.
"""

import json
import os

import numpy as np

from . import _checks

DIRECTIONS = ("forward", "backward")


def model_attrs(model, **extra):
    """Dataset attrs describing ``model``: its config as JSON plus ``cell`` and extras.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
    **extra
        More attributes; dicts, lists, tuples, bools and None are stored as JSON strings,
        so that both stores hold them.

    Returns
    -------
    dict
        ``cell``, ``config`` (JSON), ``numrnn`` (the version) and the extras.

    Examples
    --------
    >>> import numrnn as nr
    >>> attrs = nr.results.model_attrs(nr.RNN(2, 3, seed=0), warmup=5, flags=[1, 2])
    >>> attrs["cell"], attrs["warmup"], attrs["flags"]
    ('rnn_tanh', 5, '[1, 2]')
    """
    from . import __version__

    attrs = {"cell": model.cell_name, "config": json.dumps(model.config), "numrnn": __version__}
    attrs.update({k: json.dumps(v) if isinstance(v, (dict, list, tuple, bool)) or v is None
                  else v for k, v in extra.items()})  # fmt: skip
    return attrs


def config(ds):
    """The configuration stored in ``ds.attrs["config"]``, as a dict.

    Parameters
    ----------
    ds : xarray.Dataset
        A result numrnn made (diagnostics, a training run, a sweep store).

    Returns
    -------
    dict

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.GRU(2, 3, seed=7)
    >>> ds = nr.diagnostics.jacobian_norms(model, np.zeros((4, 1, 2)))
    >>> cfg = nr.results.config(ds)
    >>> cfg["cell"], cfg["hidden_size"], cfg["seed"], cfg["reset_after"]
    ('gru', 3, 7, True)
    """
    return json.loads(ds.attrs["config"])


def layer_coords(model, batch=None, time=None):
    """Coordinates of the (layer, direction[, batch][, time]) dimensions for ``model``.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
    batch : int or None
        Add a ``batch`` coordinate 0..batch-1.
    time : int or None
        Add a ``time`` coordinate 0..time-1.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> import numrnn as nr
    >>> coords = nr.results.layer_coords(nr.LSTM(2, 3, bidirectional=True), time=4)
    >>> coords["direction"], coords["time"]
    (array(['forward', 'backward'], dtype='<U8'), array([0, 1, 2, 3]))
    """
    coords = {
        "layer": np.arange(model.num_layers),
        "direction": np.array(DIRECTIONS[: model.num_directions]),
    }
    if batch is not None:
        coords["batch"] = np.arange(batch)
    if time is not None:
        coords["time"] = np.arange(time)
    return coords


def _kind(path):
    p = os.fspath(path).rstrip("/")
    if p.endswith(".zarr"):
        return "zarr"
    if p.endswith(".nc"):
        return "netcdf"
    raise ValueError(f"path must end in '.zarr' or '.nc', got {os.fspath(path)!r}")


def save(ds, path, mode="w"):
    """Save a result to Zarr (``*.zarr``) or netCDF (``*.nc``), chosen by the suffix.

    Parameters
    ----------
    ds : xarray.Dataset
        Its attrs must be strings or numbers (structured values as JSON strings).
    path : str or PathLike
        Ending in ``.zarr`` (Zarr format 2, consolidated) or ``.nc`` (netCDF-4).
    mode : {"w", "w-"}, default "w"
        "w" overwrites, "w-" refuses an existing path (``FileExistsError``).

    Returns
    -------
    str or PathLike
        ``path``.

    Examples
    --------
    >>> import os, tempfile, numpy as np, numrnn as nr
    >>> jac = nr.diagnostics.jacobian_norms(nr.LSTM(2, 3, seed=0), np.ones((5, 2, 2)))
    >>> path = os.path.join(tempfile.mkdtemp(), "jac.nc")
    >>> nr.save(jac, path) == path
    True
    >>> nr.open(path).identical(jac)                         # lossless round trip
    True
    """
    import xarray as xr

    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    kind = _kind(path)
    _checks.check_choice("mode", mode, ("w", "w-"))
    for k, v in ds.attrs.items():
        if not isinstance(v, (str, int, float, np.integer, np.floating)) or isinstance(v, bool):
            raise TypeError(
                f"ds.attrs[{k!r}] must be a string or a number to be stored, got "
                f"{type(v).__name__}; store structured values as JSON strings"
            )
    if mode == "w-" and os.path.exists(path):
        raise FileExistsError(f"path {os.fspath(path)!r} exists (mode='w-')")
    if kind == "zarr":
        ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    else:
        ds.to_netcdf(path, mode="w", engine="netcdf4")
    return path


def open(path):  # noqa: A001 - the natural name: nr.open(path)
    """Open a result saved by :func:`save`, fully loaded into memory.

    Parameters
    ----------
    path : str or PathLike
        Ending in ``.zarr`` or ``.nc``.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    FileNotFoundError
        If nothing is at ``path``.
    ValueError
        For a suffix other than ``.zarr`` and ``.nc``.

    Examples
    --------
    >>> import os, tempfile, numpy as np, numrnn as nr
    >>> ds = nr.diagnostics.weight_powers(nr.RNN(2, 3, seed=0), kmax=3)
    >>> path = nr.save(ds, os.path.join(tempfile.mkdtemp(), "powers.zarr"))
    >>> nr.open(path).power_norm.dims
    ('layer', 'direction', 'k')
    """
    import xarray as xr

    kind = _kind(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no result at {os.fspath(path)!r}")
    if kind == "zarr":
        with xr.open_zarr(path, zarr_format=2, consolidated=True) as ds:
            return ds.load()
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()
