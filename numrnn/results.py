"""The xarray schema of numrnn's results, and saving to / opening from Zarr and netCDF.

Every result is an ``xarray.Dataset`` with named dimensions (``time``, ``layer``,
``direction``, ``batch``, ``k``, ``exponent``, ``step``, ``init``, ``seed``, ...), a
``units`` and ``description`` attribute on each variable, and the configuration that
produced it in ``attrs["config"]`` as a JSON string, so that a saved file explains itself.
Attributes are kept to strings and numbers, which both stores hold without loss.

Zarr (``*.zarr``, format 2, whose string types are stable) is the store for sweeps;
netCDF (``*.nc``, netCDF-4 through the ``netCDF4`` library) for single results.
"""

import builtins
import json
import os
import warnings

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
        "w" overwrites a netCDF file or a Zarr store (never a sweep's store, nor a
        directory that is not a Zarr store: ``FileExistsError``), "w-" refuses any
        existing path.

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
    check_writable(path)
    if kind == "zarr":
        ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    else:
        ds.to_netcdf(path, mode="w", engine="netcdf4")
    return path


#: The file inside a sweep's store that says numrnn made it (:mod:`numrnn.sweep.store`).
SWEEP_MARKER = ".numrnn-sweep"


def check_writable(path):
    """Raise FileExistsError unless :func:`save` may write ``path``: nothing there, a netCDF
    file, or a Zarr store that is not a sweep's (``to_zarr(mode="w")`` would delete a
    sweep's hours of runs, or whatever directory is there).

    Parameters
    ----------
    path : str or PathLike ending in ``.zarr`` or ``.nc``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from numrnn.results import check_writable
    >>> mine = pathlib.Path(tempfile.mkdtemp()) / "mine.zarr"
    >>> check_writable(mine)                 # free: nothing raised
    >>> mine.mkdir()
    >>> _ = (mine / "notes.txt").write_text("keep me")
    >>> check_writable(mine)
    Traceback (most recent call last):
    ...
    FileExistsError: path '...mine.zarr' exists and is not a Zarr store; ...
    """
    kind = _kind(path)
    if not os.path.exists(path):
        return
    p = os.fspath(path)
    if kind == "netcdf":
        if os.path.isdir(p):
            raise FileExistsError(f"path {p!r} is a directory, not a netCDF file")
        return
    attrs = {}
    try:
        with builtins.open(os.path.join(p, ".zattrs")) as f:
            attrs = json.load(f)
    except (OSError, ValueError):
        pass
    if os.path.exists(os.path.join(p, SWEEP_MARKER)) or "grid" in attrs:
        raise FileExistsError(f"path {p!r} is a sweep's store; save elsewhere, or remove it "
                              "first if it is to go")  # fmt: skip
    zarr_store = any(os.path.exists(os.path.join(p, n)) for n in (".zgroup", ".zmetadata"))
    if not os.path.isdir(p) or not (zarr_store or not os.listdir(p)):
        raise FileExistsError(f"path {p!r} exists and is not a Zarr store; remove it first, "
                              "or save elsewhere")  # fmt: skip


def open(path):  # noqa: A001 - the natural name: nr.open(path)
    """Open a result saved by :func:`save`, fully loaded into memory.

    A Zarr store that is partly damaged (a chunk or the consolidated metadata unreadable,
    say after a disk fault) still opens: what cannot be read is filled with missing values
    (NaN, ``""``, -1) and a :class:`DamagedStoreWarning` names it. In a sweep's store the
    grid points concerned get status ``"damaged"`` (also those whose status itself is
    missing), so that they stand out from the points that ran.

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
    if kind == "netcdf":
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    unreadable, error = {}, None
    try:
        with xr.open_zarr(path, zarr_format=2, consolidated=True) as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001 - read what can be read, or raise this error
        try:
            ds, unreadable = read_zarr(path)
        except Exception:  # noqa: BLE001 - not a damaged store: report the first error
            raise err from None
        error = f"{type(err).__name__}: {err}"
    ds, damaged = _mark_damaged_points(ds, unreadable)
    if damaged or unreadable:
        what = "; ".join(f"{where}: {', '.join(names)}" for where, names in damaged.items())
        if not damaged:
            what = ", ".join(f"{name} (chunks {blocks})" for name, blocks in unreadable.items())
        warnings.warn(
            f"{os.fspath(path)!r} is damaged, read what could be read; missing values "
            f"in place of {what}",
            DamagedStoreWarning,
            stacklevel=2,
        )
    elif error is not None:
        warnings.warn(
            f"{os.fspath(path)!r}: read without its consolidated metadata (.zmetadata), "
            f"which cannot be used ({error}); the data are whole",
            DamagedStoreWarning,
            stacklevel=2,
        )
    return ds


class DamagedStoreWarning(UserWarning):
    """Part of a store could not be read (or had to be repaired, or run again).

    Examples
    --------
    >>> import warnings, numrnn as nr
    >>> with warnings.catch_warnings():  # treat damage as an error
    ...     warnings.simplefilter("error", nr.results.DamagedStoreWarning)
    """


#: The status of a sweep's grid point in its store (``numrnn.sweep``); :func:`open` adds
#: ``"damaged"`` for a point whose chunks cannot be read.
SWEEP_STATUS = ("pending", "ok", "diverged", "failed")


def read_zarr(path, names=None, keep=True):
    """Read a (possibly damaged) Zarr store variable by variable, and a variable whose whole
    read fails chunk by chunk.

    Parameters
    ----------
    path : the store; its consolidated metadata is used if it can be read.
    names : variables to read (default: all).
    keep : False reads only to check, and returns the Dataset unloaded.

    Returns
    -------
    (Dataset, {variable name: [chunk index, ...]}) with the chunks that could not be read,
    each a tuple of chunk numbers along the variable's dims, filled with missing values
    (NaN for floats, ``""`` for strings, -1 for integers, False for booleans).

    Raises
    ------
    Whatever xarray raises when even the metadata cannot be read.

    Examples
    --------
    >>> import os, tempfile, numpy as np, xarray as xr
    >>> from numrnn.results import read_zarr
    >>> path = os.path.join(tempfile.mkdtemp(), "a.zarr")
    >>> xr.Dataset({"a": ("x", np.arange(4.0))}).to_zarr(path, zarr_format=2,
    ...                                                  encoding={"a": {"chunks": (2,)}})
    <xarray.backends.zarr.ZarrStore object at ...>
    >>> os.remove(os.path.join(path, "a", "1"))  # a lost chunk: read as missing values
    >>> ds, unreadable = read_zarr(path)
    >>> ds.a.values.tolist(), unreadable
    ([0.0, 1.0, nan, nan], {})
    """
    import xarray as xr

    try:
        ds = xr.open_zarr(path, zarr_format=2, consolidated=True, chunks=None)
    except Exception:  # noqa: BLE001 - damaged consolidated metadata: list the arrays
        with warnings.catch_warnings():  # files that are not Zarr's (a sweep's marker)
            warnings.filterwarnings("ignore", message="Object at .* is not recognized")
            ds = xr.open_zarr(path, zarr_format=2, consolidated=False, chunks=None)
        ds = ds[sorted(ds.data_vars)]  # in the order of consolidated metadata, not listing's
    unreadable = {}
    for name in list(ds.variables) if names is None else names:
        var = ds[name].variable
        try:
            values = var.values
        except Exception:  # noqa: BLE001 - a damaged chunk: read the others
            values, bad = _read_blocks(var, keep)
            unreadable[name] = bad
        if keep:
            ds[name] = var.copy(data=values)
    return ds, unreadable


def _missing(dtype):
    if dtype.kind == "f" or dtype.kind == "c":
        return np.nan
    if dtype.kind in "OUS":
        return ""
    if dtype.kind == "b":
        return False
    return -1 if dtype.kind == "i" else 0


def _read_blocks(var, keep):
    """A variable's values read chunk by chunk, and the chunks that could not be read."""
    chunks = var.encoding.get("chunks") or var.shape
    values = np.full(var.shape, _missing(var.dtype), dtype=var.dtype) if keep else None
    bad = []
    counts = [-(-n // c) for n, c in zip(var.shape, chunks, strict=True)]
    for block in np.ndindex(*counts):
        region = tuple(slice(b * c, (b + 1) * c) for b, c in zip(block, chunks, strict=True))
        try:
            got = var[region].values
        except Exception:  # noqa: BLE001 - this chunk is damaged
            bad.append(tuple(int(b) for b in block))
            continue
        if keep:
            values[region] = got
    return values, bad


def _plain(value):
    """A numpy scalar as the Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _mark_damaged_points(ds, unreadable):
    """In a sweep's store, give the grid points with unreadable chunks or an unknown status
    the status "damaged"; returns (ds, {point description: [what is wrong]})."""
    if "grid" not in ds.attrs or "status" not in ds:
        return ds, {}
    grid = list(json.loads(ds.attrs["grid"]))
    problems = {}
    for name, blocks in unreadable.items():
        if tuple(ds[name].dims[: len(grid)]) != tuple(grid):
            continue
        for block in blocks:
            problems.setdefault(block[: len(grid)], []).append(f"{name} unreadable")
    status = ds["status"].values
    for index in zip(*np.nonzero(~np.isin(status, SWEEP_STATUS)), strict=True):
        index = tuple(int(i) for i in index)
        if not any(w == "status unreadable" for w in problems.get(index, ())):
            problems.setdefault(index, []).append(f"status {status[index]!r} unknown")
    if not problems:
        return ds, {}
    status = status.copy()
    message = ds["message"].values.copy() if "message" in ds else None
    described = {}
    for index, what in sorted(problems.items()):
        status[index] = "damaged"
        if message is not None:
            message[index] = "damaged in the store: " + ", ".join(what)
        coords = {d: _plain(ds[d].values[i]) for d, i in zip(grid, index, strict=True)}
        described[f"point {coords}"] = what
    ds["status"] = ds["status"].copy(data=status)
    if message is not None:
        ds["message"] = ds["message"].copy(data=message)
    return ds, described
