"""The Zarr store of a sweep: its template, one region per point, and what is pending.

The store is created once, before any run, with every variable over (grid dims..., step,
layer, direction, time) full of NaN, chunked one grid point per chunk. Each point writes
its own region as soon as it finishes (so parallel writers never share a chunk), its data
first and its ``status`` last: a sweep killed at any moment and run again finishes only
the points whose status is still "pending", and ends with the same store as an
uninterrupted run.
"""

import json
import os

import numpy as np

from .. import __version__
from ..training.loop import train
from ..training.spec import TrainSpec
from .config import ConfigError, build, dims, points
from .point import before_after, init_diagnostics, network_diagnostics

STATUS = ("pending", "ok", "diverged", "failed")


def template(cfg):
    """An in-memory Dataset shaped like the whole sweep, every value missing.

    Shapes come from a zero-step run of every point (cheap: one batch each), so the
    template has exactly the variables the runs produce; sizes that vary across the grid
    (time, layer, direction) take their largest value.

    Parameters
    ----------
    cfg : dict
        A config from :func:`load_config`.

    Returns
    -------
    xarray.Dataset
        Over (grid dims..., step[, layer, direction, time]), NaN everywhere, with
        ``status`` "pending", ``message`` "" and ``diverged_at`` -1 per point; attrs
        ``config`` and ``grid`` (JSON) and ``numrnn``.

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config({
    ...     "model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
    ...     "train": {"steps": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
    ...     "grid": {"model.init": ["orthogonal", "identity"], "seed": [0, 1]}})
    >>> tmpl = nr.sweep.template(cfg)
    >>> tmpl.loss.dims, tmpl.status.shape
    (('init', 'seed', 'step'), (2, 2))
    """
    import xarray as xr

    probes, steps, snapshots = [], None, set()
    for point in points(cfg):
        model, task, settings = build(point["config"])
        zero = {**settings, "steps": 0, "weights_at": (), "progress": False}
        probe = train(model, task, **zero)
        probe.update(init_diagnostics(model, task))
        if point["config"]["diagnostics"].get("before_after", False):
            probe.update(before_after(*[network_diagnostics(model, task)] * 2))
        probes.append(probe)
        spec = TrainSpec(**settings)
        plan = spec.plan()
        steps = plan["recorded"] if steps is None else np.union1d(steps, plan["recorded"])
        snapshots.update(s for s in spec.weights_at if s)
    sizes = {"layer": 0, "direction": 0}
    for p in probes:
        cfg_model = json.loads(p.attrs["config"])
        p_sizes = {**p.sizes, "layer": cfg_model["num_layers"],
                   "direction": 2 if cfg_model["bidirectional"] else 1}  # fmt: skip
        for d, n in p_sizes.items():
            sizes[d] = max(sizes.get(d, 0), n)
    grid = dims(cfg)
    coords = {d: _coord(cfg["grid"][k]) for d, k in grid.items()}
    coords["step"] = np.asarray(steps, np.int64)
    coords["layer"] = np.arange(sizes["layer"])
    coords["direction"] = np.array(["forward", "backward"][: sizes["direction"]])
    if "time" in sizes:
        coords["time"] = np.arange(sizes["time"])
    # the parameters taken: initially, at the snapshot steps of any point, and at the end
    coords["when"] = np.array(["initial", *(f"step {s}" for s in sorted(snapshots)), "final"],
                              dtype=object)  # fmt: skip
    shape_of = {**sizes, **{d: len(c) for d, c in coords.items()}}
    data = {}
    for p in probes:
        for name, var in p.data_vars.items():
            if name not in data:
                vdims = tuple(grid) + var.dims
                data[name] = (vdims, np.full([shape_of[d] for d in vdims], np.nan), var.attrs)
    gshape = [shape_of[d] for d in grid]
    data["status"] = (tuple(grid), np.full(gshape, "pending", dtype=object),
                      {"description": f"one of {', '.join(STATUS)}"})  # fmt: skip
    data["message"] = (tuple(grid), np.full(gshape, "", dtype=object),
                       {"description": "the error of a failed point"})  # fmt: skip
    data["diverged_at"] = (tuple(grid), np.full(gshape, -1, np.int64),
                           {"description": "step where it diverged, -1 if not"})  # fmt: skip
    data["model_config"] = (tuple(grid), np.full(gshape, "", dtype=object),
                            {"description": "the point's model config (JSON), for "
                             "numrnn.models_from; empty where the point failed"})  # fmt: skip
    attrs = {"config": json.dumps(cfg, sort_keys=True), "grid": json.dumps(grid),
             "numrnn": __version__}  # fmt: skip
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _coord(values):
    """A grid key's values as a coordinate (non-scalar values, e.g. init specs, as JSON)."""
    if all(isinstance(v, (bool, int, float, str)) for v in values):
        if len({type(v) for v in values}) == 1:
            return np.array(values, dtype=object if isinstance(values[0], str) else None)
    return np.array([json.dumps(v, sort_keys=True) for v in values], dtype=object)


def _encoding(ds, grid):
    """One grid point per chunk, so that parallel region writes never share a chunk."""
    enc = {}
    for name, var in ds.data_vars.items():
        enc[name] = {"chunks": tuple(1 if d in grid else ds.sizes[d] for d in var.dims)}
    return enc


def create_store(cfg, path, overwrite=False):
    """Create the store for ``cfg`` at ``path``, or check an existing one is for ``cfg``.

    The :func:`template` is written one grid point per chunk, to a temporary path that is
    then renamed, so a store exists whole or not at all.

    Parameters
    ----------
    cfg : dict
        A config from :func:`load_config`.
    path : str or PathLike
        The store (``*.zarr``).
    overwrite : bool, default False
        Replace a store of another config instead of raising.

    Returns
    -------
    bool
        True when a new store was written, False when one for ``cfg`` was there.

    Raises
    ------
    ConfigError
        If ``path`` holds a sweep of another config and ``overwrite`` is False.

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config({
    ...     "model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
    ...     "train": {"steps": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
    ...     "grid": {"model.init": ["orthogonal", "identity"], "seed": [0, 1]}})
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> nr.sweep.create_store(cfg, path), nr.sweep.create_store(cfg, path)
    (True, False)
    >>> len(nr.sweep.pending(path, cfg))
    4
    """
    import shutil

    import xarray as xr

    if os.path.exists(path):
        if not overwrite:
            try:
                stored = xr.open_zarr(path, zarr_format=2).attrs.get("config")
            except Exception:  # not a complete store: made by a sweep killed while creating it
                stored = None
            if stored == json.dumps(cfg, sort_keys=True):
                return False
            if stored is not None:
                raise ConfigError(
                    f"{os.fspath(path)!r} holds a sweep of a different config; use another "
                    "--out, or --overwrite to replace it"
                )
        shutil.rmtree(path)
    tmpl = template(cfg)
    tmp = f"{os.fspath(path).rstrip('/')}.creating"
    shutil.rmtree(tmp, ignore_errors=True)
    tmpl.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True,
                 encoding=_encoding(tmpl, dims(cfg)))  # fmt: skip
    os.replace(tmp, path)  # atomic: a store either exists whole or not at all
    return True


def write_point(path, cfg, point, ds):
    """Write one point's result into its region; its status last.

    Parameters
    ----------
    path : str or PathLike
        The store, made by :func:`create_store` for ``cfg``.
    cfg : dict
        The sweep's config.
    point : dict
        One of :func:`points`.
    ds : xarray.Dataset
        Its result (:func:`run_point`); a failed one writes only status and message.

    Returns
    -------
    str
        The point's status: "ok", "diverged" or "failed".

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config({
    ...     "model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
    ...     "train": {"steps": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
    ...     "grid": {"model.init": ["orthogonal", "identity"], "seed": [0, 1]}})
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> _ = nr.sweep.create_store(cfg, path)
    >>> point = nr.sweep.points(cfg)[2]
    >>> nr.sweep.write_point(path, cfg, point, nr.sweep.run_point(point))
    'ok'
    >>> nr.open(path).status.values.tolist()
    [['pending', 'pending'], ['ok', 'pending']]
    """
    import xarray as xr

    grid = dims(cfg)
    store = xr.open_zarr(path, zarr_format=2)
    region = {d: slice(i, i + 1) for d, i in zip(grid, point["index"], strict=True)}
    status = ds.attrs.get("status", "failed")
    if status != "failed":
        out = xr.Dataset()
        for name, var in store.data_vars.items():
            if name in _META:
                continue
            full = np.full([1] * len(grid) + [store.sizes[d] for d in var.dims[len(grid):]],
                           np.nan)  # fmt: skip
            if name in ds:
                got = ds[name]
                if "step" in got.dims:
                    got = got.sel(step=got["step"].isin(store["step"]))
                idx = tuple(_positions(store, got, d) for d in got.dims)
                full[(0,) * len(grid)][idx] = got.values
            out[name] = (var.dims, full)
        out.drop_encoding().to_zarr(path, region=region, zarr_format=2, consolidated=True,
                                    mode="r+")  # fmt: skip
    one = [1] * len(grid)
    meta = xr.Dataset({
        "status": (tuple(grid), np.full(one, status, dtype=object)),
        "message": (tuple(grid), np.full(one, ds.attrs.get("message", ""), dtype=object)),
        "diverged_at": (tuple(grid), np.full(one, int(ds.attrs.get("diverged_at", -1)))),
        "model_config": (tuple(grid), np.full(one, ds.attrs.get("config", "")
                                              if status != "failed" else "", dtype=object)),
    })  # fmt: skip
    meta.to_zarr(path, region=region, zarr_format=2, consolidated=True, mode="r+")
    return status


# a point's status and what describes it, written last (status last of all)
_META = ("status", "message", "diverged_at", "model_config")


def _positions(store, got, d):
    """Where ``got``'s entries along ``d`` go in the store: by label for the labelled dims
    (the recorded steps, the times weights were taken), the leading part for sizes."""
    if d in ("step", "when"):
        labels = list(store[d].values)
        return [labels.index(v) for v in got[d].values]
    return slice(0, got.sizes[d])


def pending(path, cfg):
    """The points whose status in the store is still "pending".

    Parameters
    ----------
    path : str or PathLike
        The store.
    cfg : dict
        The sweep's config.

    Returns
    -------
    list of dict
        Points of :func:`points`, in grid order.

    Examples
    --------
    See :func:`create_store`.
    """
    import xarray as xr

    status = xr.open_zarr(path, zarr_format=2)["status"].values
    return [p for p in points(cfg) if status[p["index"]] == "pending"]
