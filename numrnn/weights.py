"""Networks as xarray: parameters with named dims, model files, and models rebuilt from results.

A model's parameters become data variables with PyTorch's names (``weight_hh_l0``, ...)
over named dimensions shared by all of them:

``gate_unit`` (G*H rows: gate blocks of H units in PyTorch's gate order), ``unit`` (H),
``input`` (D, the first layer's input), ``feature`` (dirs*H: the input of the layers above
and of the head), ``output`` (O, the head's outputs), ``token`` (V, the rows of a token
embedding ``weight_emb``).

Training records them at ``when`` = "initial", "step <n>" (snapshots asked for) and
"final", with the number of updates made in the coordinate ``when_step``; ensembles and
sweeps add their ``member`` or grid dimensions in front. :func:`models_from` rebuilds the
networks, bit for bit, from any of these; :func:`save` and :func:`load` keep a single
model or ensemble in a netCDF or Zarr file (no pickle).
"""

import json

import numpy as np

__all__ = ["MODEL_FILE", "load", "model_dataset", "models_from", "param_dims", "params_dataset",
           "save"]  # fmt: skip

from . import results
from .nn.models import PER_MEMBER, Ensemble, from_config
from .nn.recurrent import Recurrent

#: what a model file says it is (``attrs["numrnn_model"]``)
MODEL_FILE = "numrnn model, version 1"


def param_dims(name):
    """The named dimensions of a parameter.

    Parameters
    ----------
    name : str, PyTorch's name, e.g. "weight_ih_l1_reverse".

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> param_dims("weight_ih_l0"), param_dims("weight_ih_l1_reverse"), param_dims("bias_out")
    (('gate_unit', 'input'), ('gate_unit', 'feature'), ('output',))
    >>> param_dims("weight_emb")                        # a token embedding (V, D)
    ('token', 'input')
    """
    kind = name.split("_l")[0] if "_l" in name else name
    if kind == "weight_ih":
        return ("gate_unit", "input" if name.split("_l")[1].split("_")[0] == "0" else "feature")
    return {
        "weight_hh": ("gate_unit", "unit"),
        "bias_ih": ("gate_unit",),
        "bias_hh": ("gate_unit",),
        "weight_out": ("output", "feature"),
        "bias_out": ("output",),
        "weight_emb": ("token", "input"),
    }[kind]


_DESCRIPTION = "parameter {name} (PyTorch's name and layout), by when it was taken"


def params_dataset(model, taken):
    """The parameters ``taken`` of a single ``model`` as a Dataset over ``when``.

    Parameters
    ----------
    model : RNN, LSTM or GRU (a single network: its shapes and dtype).
    taken : dict {label: (updates made, params dict or None)}; None (e.g. a snapshot step
        a diverged run never reached) gives NaN.

    Returns
    -------
    xarray.Dataset with one variable per parameter, dims ``("when", *param_dims(name))``.

    Examples
    --------
    >>> import numrnn as nr
    >>> model = nr.GRU(3, 4, seed=0)
    >>> ds = params_dataset(model, {"initial": (0, model.params), "final": (10, None)})
    >>> ds["weight_hh_l0"].dims, ds["weight_hh_l0"].shape
    (('when', 'gate_unit', 'unit'), (2, 12, 4))
    """
    import xarray as xr

    labels = list(taken)
    data = {}
    for name, shape in model.param_shapes().items():
        arr = np.full((len(labels), *shape), np.nan, model.dtype)
        for i, label in enumerate(labels):
            params = taken[label][1]
            if params is not None:
                arr[i] = params[name]
        attrs = {"units": "1", "description": _DESCRIPTION.format(name=name)}
        data[name] = (("when", *param_dims(name)), arr, attrs)
    coords = {
        "when": np.array(labels, dtype=object),
        "when_step": ("when", np.array([taken[k][0] for k in labels], np.int64),
                      {"units": "updates", "description": "parameter updates made before"}),
    }  # fmt: skip
    return xr.Dataset(data, coords=coords)


def model_dataset(model):
    """A model (or an Ensemble) as a Dataset: its parameters and config, no pickle.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble.

    Returns
    -------
    xarray.Dataset with one variable per parameter (``member`` first for an ensemble) and
    the config in ``attrs``, what :func:`save` writes for a model.

    Examples
    --------
    >>> import numrnn as nr
    >>> ds = model_dataset(nr.ensemble([nr.RNN(2, 3, seed=s) for s in range(4)]))
    >>> ds["weight_hh_l0"].dims
    ('member', 'gate_unit', 'unit')
    """
    if model.stacked:
        import xarray as xr

        parts = [params_dataset(m, {"final": (0, m.params)}) for m in model.unstack()]
        ds = xr.concat(parts, dim="member").assign_coords(member=np.arange(model.members))
    else:
        ds = params_dataset(model, {"final": (0, model.params)})
    ds = ds.isel(when=0, drop=True)
    ds.attrs.update(results.model_attrs(model), numrnn_model=MODEL_FILE)
    return ds


def save(obj, path, mode="w"):
    """Save a result (an xarray.Dataset) or a model (RNN, LSTM, GRU or Ensemble) to Zarr
    (``*.zarr``) or netCDF (``*.nc``), chosen by the suffix.

    Parameters
    ----------
    obj : xarray.Dataset or a numrnn model.
    path : str or PathLike ending in ``.zarr`` or ``.nc``.
    mode : "w" overwrites, "w-" refuses an existing path.

    Returns
    -------
    path

    Examples
    --------
    >>> import numrnn as nr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "lstm.nc")
    >>> model = nr.LSTM(3, 4, seed=0)
    >>> _ = nr.save(model, path)
    >>> nr.load(path).config == model.config
    True
    """
    if isinstance(obj, Recurrent):
        obj = model_dataset(obj)
    return results.save(obj, path, mode)


def load(path):
    """The model saved by :func:`save` at ``path``, with the same config and weights.

    Parameters
    ----------
    path : str or PathLike ending in ``.nc`` or ``.zarr``.

    Returns
    -------
    RNN, LSTM, GRU or Ensemble

    Raises
    ------
    FileNotFoundError if nothing is at ``path``; ValueError for a suffix other than .nc or
    .zarr, or a file that is not a numrnn model (a result of training holds models: use
    :func:`models_from`).

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> path = os.path.join(tempfile.mkdtemp(), "gru.zarr")
    >>> _ = nr.save(nr.GRU(3, 4, reset_after=False, seed=0), path)
    >>> nr.load(path).reset_after
    False
    """
    ds = results.open(path)
    if ds.attrs.get("numrnn_model") != MODEL_FILE:
        raise ValueError(
            f"path {str(path)!r} is not a numrnn model file (saved by nr.save(model, path)); "
            "for the networks in a training result or sweep store use nr.models_from"
        )
    return _rebuild(ds, json.loads(ds.attrs["config"]))


def _build(config):
    """A model with ``config``'s shape and options; its weights are set by the caller."""
    shape = {k: v for k, v in config.items()
             if k not in ("cell", "init", "seed", "members", *PER_MEMBER)}  # fmt: skip
    model = from_config(config["cell"], **shape, seed=0)
    # the config as it was: how the weights were made (they are then overwritten)
    model.init, model.seed = config.get("init"), config.get("seed")
    if "forget_bias" in config:
        model.forget_bias = config["forget_bias"]
    return model


def _member_configs(config):
    """One single-network config per member of an ensemble config."""
    n = config["members"]
    base = {k: v for k, v in config.items() if k != "members"}
    return [{**base, **{k: config[k][i] for k in PER_MEMBER if k in config}} for i in range(n)]


def _rebuild(ds, config):
    """The model (or Ensemble, for an ensemble config) whose parameters ``ds`` holds,
    without a ``when`` dimension (member first for an ensemble)."""
    configs = _member_configs(config) if "members" in config else [config]
    models = []
    for i, cfg in enumerate(configs):
        model = _build(cfg)
        part = ds.isel(member=i) if "member" in ds.dims else ds
        model.params = _params_of(part, model)
        models.append(model)
    return Ensemble(models) if "members" in config else models[0]


def _params_of(ds, model):
    """The parameter dict of ``model``'s shape from ``ds`` (padded dims sliced off)."""
    params = {}
    for name, shape in model.param_shapes().items():
        if name not in ds:
            raise ValueError(f"the result has no parameter {name!r} for a model of config "
                             f"{model.config}")  # fmt: skip
        a = np.asarray(ds[name].values)[tuple(slice(0, n) for n in shape)]
        if a.shape != shape or not np.isfinite(a).all():
            raise ValueError(
                f"parameter {name!r} is missing or not finite in the result "
                "(a point that failed, or a snapshot a diverged run never reached)"
            )
        params[name] = np.ascontiguousarray(a, dtype=model.dtype)
    return params


def models_from(source, when="final", **sel):
    """Rebuild the trained networks of a result, bit for bit, to run any diagnostic on them.

    Parameters
    ----------
    source : xarray.Dataset returned by :func:`numrnn.train` (single model or ensemble),
        or opened from a sweep store, or the path of a saved result or store.
    when : "final" (default), "initial" (the weights before training), an int (the
        snapshot after that many updates, see ``weights_at`` of :func:`numrnn.train`), or
        a label of the ``when`` coordinate.
    **sel : coordinate values selecting among the runs, e.g. ``init="orthogonal"``,
        ``seed=0`` or ``member=2``.

    Returns
    -------
    RNN, LSTM or GRU for one selected run; an Ensemble of the selected runs when several
    are left and they share a shape.

    Raises
    ------
    ValueError naming what is missing: a result without weights (written before numrnn
    kept them), a ``when`` that was not taken, runs of different shapes, or a run that
    failed.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(2, 4, output_size=1, readout="last", seed=0)
    >>> run = nr.train(model, nr.tasks.Adding(6), 5, 4, ("sgd", {"lr": 0.1}), seed=0,
    ...                progress=False)
    >>> trained = nr.models_from(run)
    >>> all(np.array_equal(trained.params[k], model.params[k]) for k in model.params)
    True
    >>> nr.models_from(run, when="initial").config == model.config
    True
    """
    ds = results.open(source) if not hasattr(source, "data_vars") else source
    if "when" not in ds.dims:
        raise ValueError(
            "this result holds no network weights (written before numrnn recorded them, or "
            "not a training result): rerun the training or sweep to keep them"
        )
    labels = [str(v) for v in ds["when"].values]
    if isinstance(when, (int, np.integer)) and not isinstance(when, bool):
        label = "initial" if when == 0 else f"step {when}"
        if label not in labels:
            taken = [int(lab[5:]) for lab in labels if lab.startswith("step ")]
            raise ValueError(f"when={when}: no snapshot after {when} updates; taken: {taken}")
        when = label
    if when not in labels:
        raise ValueError(f"when must be one of {labels} or a snapshot's step, got {when!r}")
    ds = ds.isel(when=labels.index(when))
    for dim, value in sel.items():
        if dim not in ds.dims and dim not in ds.coords:
            raise ValueError(f"cannot select {dim}={value!r}: the result's dims are "
                             f"{list(ds.dims)}")  # fmt: skip
        values = [str(v) for v in np.atleast_1d(ds[dim].values)]
        if str(value) not in values:
            raise ValueError(f"{dim}={value!r} is not in the result; {dim} has {values}")
        ds = ds.isel({dim: values.index(str(value))})
    # the dims that index runs: a sweep's grid (its status's dims) or an ensemble's members
    run_dims = list(ds["status"].dims) if "status" in ds.data_vars else (
        ["member"] if "member" in ds.dims else [])  # fmt: skip
    configs = _configs(ds, run_dims)
    flat = ds.stack(_run=run_dims) if run_dims else ds.expand_dims(_run=[0])
    models = []
    for i, cfg in enumerate(configs):
        part = flat.isel(_run=i)
        model = _build(cfg)
        model.params = _params_of(part, model)
        models.append(model)
    if len(models) == 1:
        return models[0]
    try:
        return Ensemble(models)
    except ValueError as err:
        raise ValueError(
            f"the selected runs do not share a shape ({err}); select one of them with "
            f"{', '.join(run_dims)}=..."
        ) from None


def _configs(ds, run_dims):
    """The single-network config of each selected run, in the order of ``ds.stack(run_dims)``."""
    if "model_config" in ds:  # a sweep store: one config per point
        cfgs = ds["model_config"]
        flat = cfgs.stack(_run=run_dims).values if run_dims else [cfgs.item()]
        out = []
        for v in flat:
            if not v:
                raise ValueError("a selected point has no weights (it failed or never ran); "
                                 "select the points whose status is ok or diverged")  # fmt: skip
            out.append(json.loads(v))
        return out
    config = json.loads(ds.attrs["config"])
    members = _member_configs(config) if "members" in config else [config]
    if "member" in run_dims:
        return [members[int(m)] for m in ds["member"].values]
    if "members" in config:  # one member selected
        return [members[int(ds["member"].values)]]
    return members
