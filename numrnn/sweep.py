"""Sweeps: grids of training runs (initializers, cells, sizes, seeds) into one Zarr store.

A sweep is a TOML config with ``[model]``, ``[task]``, ``[train]``, optional
``[diagnostics]`` and a ``[grid]`` table whose keys are dotted paths into the config
(``"model.init" = ["normal", "orthogonal"]``, ``"train.lr" = [1e-3, 1e-2]``) or ``seed``
(which seeds both the model's weights and the training batches). Every grid key becomes a
dimension of the result, named by its last part, with the values as coordinates.

The store is created once, before any run, with every variable over (grid dims..., step,
layer, direction, time) full of NaN, chunked one grid point per chunk. Each point writes
its own region as soon as it finishes (so parallel writers never share a chunk), its data
first and its ``status`` last: a sweep killed at any moment and run again finishes only
the points whose status is still "pending", and ends with the same store as an
uninterrupted run. A point that diverges or raises is recorded with its status and message
and the sweep goes on.

Points run in this process (``workers=1``), in a local process pool, or on a running
``dask.distributed`` cluster (``scheduler="tcp://host:port"``).
"""

import copy
import inspect
import itertools
import json
import os
import sys

import numpy as np

from .memory import reuse_freed_memory

SECTIONS = ("model", "task", "train", "diagnostics", "grid")
CELLS = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}
# train keys that are not nr.train's own arguments: the optimizer's name and settings
OPTIMIZER_KEYS = ("optimizer", "lr", "momentum", "nesterov", "betas", "eps", "alpha",
                  "weight_decay", "centered")  # fmt: skip
DIAGNOSTIC_KEYS = ("record", "every")
STATUS = ("pending", "ok", "diverged", "failed")


class ConfigError(ValueError):
    """A sweep configuration that cannot run; the message names the offending key."""


# -- configuration -------------------------------------------------------------------------


def load_config(source, require_grid=True):
    """Read and validate a sweep config from a TOML path, TOML text or a dict.

    ``require_grid=False`` accepts a config without ``[grid]`` (one run, ``numrnn train``).

    Returns
    -------
    dict with the five sections (``diagnostics`` may be empty).

    Raises
    ------
    ConfigError naming the key for unknown sections or keys, wrong types and empty grids.
    """
    if isinstance(source, dict):
        cfg = copy.deepcopy(source)
    else:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11
            import tomli as tomllib
        text = source
        if os.path.exists(str(source)):
            with open(source, "rb") as f:
                text = f.read().decode()
        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config is not valid TOML: {err}") from err
    unknown = sorted(set(cfg) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; known: {', '.join(SECTIONS)}")
    for name in SECTIONS:
        cfg.setdefault(name, {})
        if not isinstance(cfg[name], dict):
            raise ConfigError(f"[{name}] must be a table, got {type(cfg[name]).__name__}")
    grid = cfg["grid"]
    if not grid and require_grid:
        raise ConfigError("[grid] is empty: give at least one key with a list of values")
    dims = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {key!r} must be a non-empty list, got {values!r}")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ConfigError(f"grid key {key!r} has repeated values {values!r}")
        if key != "seed":
            section, _, name = key.partition(".")
            if section not in ("model", "task", "train", "diagnostics") or not name:
                raise ConfigError(
                    f"grid key {key!r} must be 'seed' or a dotted path such as 'model.init'"
                )
        dim = key.rsplit(".", 1)[-1]
        if dim in dims:
            raise ConfigError(f"grid keys {dims[dim]!r} and {key!r} both make dimension {dim!r}")
        dims[dim] = key
    # every point must build: this checks keys, types and values before anything runs
    for point in points(cfg):
        _build(point["config"], key_hint=point["coords"])
    return cfg


def dims(cfg):
    """{dimension name: grid key}, in grid order."""
    return {key.rsplit(".", 1)[-1]: key for key in cfg["grid"]}


def points(cfg):
    """Every grid point: ``{"index": (i, j, ...), "coords": {dim: value}, "config": ...}``."""
    keys = list(cfg["grid"])
    out = []
    for index in itertools.product(*(range(len(cfg["grid"][k])) for k in keys)):
        point = copy.deepcopy({k: v for k, v in cfg.items() if k != "grid"})
        coords = {}
        for key, i in zip(keys, index, strict=True):
            value = cfg["grid"][key][i]
            coords[key.rsplit(".", 1)[-1]] = value
            if key == "seed":
                point["model"]["seed"] = value
                point["train"]["seed"] = value
            else:
                section, name = key.split(".", 1)
                point[section][name] = value
        out.append({"index": index, "coords": coords, "config": point})
    return out


def _check_keys(section, given, allowed, hint=""):
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} in [{section}]{hint}; known: {', '.join(sorted(allowed))}"
        )


def _build(point, key_hint=None):
    """(model, task, train kwargs) of one point's config; ConfigError naming the key."""
    import numrnn as nr

    where = f" (grid point {key_hint})" if key_hint else ""
    m, t, tr, dg = (dict(point[s]) for s in ("model", "task", "train", "diagnostics"))
    # task
    if "name" not in t:
        raise ConfigError(f"[task] needs a 'name', one of {', '.join(nr.tasks.TASKS)}")
    name = t.pop("name")
    if name not in nr.tasks.TASKS:
        raise ConfigError(f"task.name must be one of {', '.join(nr.tasks.TASKS)}, got {name!r}")
    cls = nr.tasks.TASKS[name]
    _check_keys("task", t, inspect.signature(cls).parameters, f" for task {name!r}")
    task = _call(cls, t, "task", where)
    # model
    cell = m.pop("cell", None)
    if cell not in CELLS:
        raise ConfigError(f"model.cell must be one of {', '.join(CELLS)}, got {cell!r}")
    cls_name, fixed = CELLS[cell]
    mcls = getattr(nr, cls_name)
    allowed = set(inspect.signature(mcls).parameters) | set(
        inspect.signature(nr.models.Recurrent).parameters
    )
    allowed -= {"kwargs", "input_size", "output_size", "readout", *fixed}
    _check_keys("model", m, allowed, f" for cell {cell!r}")
    kwargs = {**fixed, **m, "output_size": task.output_size, "readout": task.readout}
    if isinstance(kwargs.get("init"), list):  # TOML has no tuples: ["spectral", {radius = 2}]
        kwargs["init"] = tuple(kwargs["init"])
    model = _call(mcls, {"input_size": task.input_size, **kwargs}, "model", where)
    # training
    opt_args = {k: tr.pop(k) for k in OPTIMIZER_KEYS if k in tr}
    opt_name = opt_args.pop("optimizer", "adam")
    if "betas" in opt_args:
        opt_args["betas"] = tuple(opt_args["betas"])
    if opt_name not in nr.optim.OPTIMIZERS:
        raise ConfigError(
            f"train.optimizer must be one of {', '.join(nr.optim.OPTIMIZERS)}, got {opt_name!r}"
        )
    _call(nr.optim.OPTIMIZERS[opt_name], opt_args, "train", where)
    allowed = set(inspect.signature(nr.train).parameters) - {
        "model",
        "task",
        "optimizer",
        "diagnostics",
        "diagnostics_every",
    }
    _check_keys("train", tr, allowed | set(OPTIMIZER_KEYS))
    for k in ("steps", "batch_size"):
        if k not in tr:
            raise ConfigError(f"[train] needs {k!r}")
    _check_keys("diagnostics", dg, DIAGNOSTIC_KEYS)
    train = {
        **tr,
        "optimizer": (opt_name, opt_args),
        "diagnostics": tuple(dg.get("record", ())),
        "diagnostics_every": dg.get("every"),
    }
    unknown = sorted(set(train["diagnostics"]) - set(nr.training.DIAGNOSTICS))
    if unknown:
        raise ConfigError(
            f"diagnostics.record has unknown {unknown}; known: {', '.join(nr.training.DIAGNOSTICS)}"
        )
    for k in ("steps", "batch_size", "record_every", "eval_every"):
        v = train.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"train.{k} must be a positive integer{where}, got {v!r}")
    for k in ("clip", "clip_value"):
        v = train.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise ConfigError(f"train.{k} must be a positive number{where}, got {v!r}")
    return model, task, train


def _call(fn, kwargs, section, where):
    try:
        return fn(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[{section}]{where}: {err}") from err


# -- one point ----------------------------------------------------------------------------


def run_point(point, progress=False):
    """Train one grid point; return its result Dataset (never raises on a failed run).

    Besides :func:`numrnn.train`'s record, the result holds the initial network's
    ``spectral_radius`` and largest Lyapunov exponent ``lyapunov_max`` per layer and
    direction. A run that raises is returned as a Dataset with ``attrs["status"] =
    "failed"`` and the error in ``attrs["message"]``; a diverged one keeps what it recorded.
    """
    import xarray as xr

    import numrnn as nr

    try:
        model, task, train = _build(point["config"])
        at_init = _init_diagnostics(model, task)
        ds = nr.train(model, task, progress=progress, **train)
        ds.update(at_init)
        ds.attrs["message"] = ""
        return ds
    except Exception as err:  # a failed point is data, not a crash of the sweep
        return xr.Dataset(attrs={"status": "failed", "message": f"{type(err).__name__}: {err}"})


def run_group(group, progress=False):
    """Train points that differ only in their weights and seeds (see :func:`groups`) as one
    :class:`~numrnn.models.Ensemble`; return their result Datasets in order.

    Each member trains exactly as its point would alone (:func:`numrnn.train` guarantees it
    bit for bit), so batching changes the speed of a sweep, never its store. If the
    ensemble run raises, the points run one by one, so that a failure is recorded against
    the point that caused it.
    """
    import numrnn as nr

    if len(group) == 1:
        return [run_point(group[0], progress)]
    try:
        built = [_build(p["config"]) for p in group]
        models = [b[0] for b in built]
        task, train = built[0][1], dict(built[0][2])
        at_init = [_init_diagnostics(m, task) for m in models]
        seeds = [b[2].get("seed") for b in built]
        train["seed"] = [int(np.random.SeedSequence().entropy % 2**63) if v is None else v
                         for v in seeds]  # fmt: skip
        runs = nr.training.train_members(nr.ensemble(models), task, progress=progress, **train)
        for ds, extra in zip(runs, at_init, strict=True):
            ds.update(extra)
            ds.attrs["message"] = ""
        return runs
    except Exception:  # find the point that fails, and run the others
        return [run_point(p, progress) for p in group]


def groups(cfg, todo, size=None):
    """Split the points ``todo`` into groups that can train as one ensemble.

    Points go together when their configs differ only in the model's ``init``, ``seed``
    and ``forget_bias`` and the training ``seed`` (what an ensemble's members may differ
    in); each group is cut into pieces of at most ``size`` points (None: no limit).

    Returns
    -------
    list of lists of points, in grid order.
    """
    from .models import _PER_MEMBER

    by_key = {}
    for p in todo:
        c = copy.deepcopy(p["config"])
        for k in _PER_MEMBER:
            c["model"].pop(k, None)
        c["train"].pop("seed", None)
        by_key.setdefault(json.dumps(c, sort_keys=True), []).append(p)
    return [g[i : i + (size or len(g))] for g in by_key.values()
            for i in range(0, len(g), size or len(g))]  # fmt: skip


def _init_diagnostics(model, task, batch=16):
    """Spectral radius of W_hh (largest over gate blocks) and the largest Lyapunov exponent
    along the test inputs, at initialisation: (layer, direction) each."""
    import numrnn as nr

    radius = nr.diagnostics.weight_powers(model, 1)["spectral_radius"]
    if "gate" in radius.dims:
        radius = radius.max("gate")
    x = task.test_set()[0][:, :batch].astype(model.dtype)
    warmup = x.shape[0] // 4
    lam = nr.diagnostics.lyapunov_spectrum(model, x, n_exponents=1, warmup=warmup)["lyapunov"]
    lam = lam.isel(exponent=0, drop=True).mean("batch")
    return {
        "spectral_radius": radius.assign_attrs(
            units="1", description="spectral radius of W_hh at initialisation (largest gate)"
        ),
        "lyapunov_max": lam.assign_attrs(
            units="nats per step",
            description=f"largest Lyapunov exponent at initialisation, mean over {batch} "
            f"test sequences, warmup {warmup}",
        ),
    }


# -- the store ----------------------------------------------------------------------------


def _template(cfg):
    """An in-memory Dataset shaped like the whole sweep, every value missing.

    Shapes come from a zero-step run of every point (cheap: one batch each), so the
    template has exactly the variables the runs produce; sizes that vary across the grid
    (time, layer, direction) take their largest value.
    """
    import xarray as xr

    import numrnn as nr

    probes, steps = [], None
    for point in points(cfg):
        model, task, train = _build(point["config"])
        probe = nr.train(model, task, **{**train, "steps": 0, "progress": False})
        probe.update(_init_diagnostics(model, task))
        probes.append(probe)
        plan = nr.training.schedule(
            **{k: train[k] for k in ("record_every", "eval_every", "diagnostics_every")
               if k in train},
            steps=train["steps"], diagnostics=bool(train["diagnostics"]),
        )  # fmt: skip
        steps = plan["recorded"] if steps is None else np.union1d(steps, plan["recorded"])
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
    shape_of = {**{d: len(c) for d, c in coords.items()}}
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
    attrs = {"config": json.dumps(cfg, sort_keys=True), "grid": json.dumps(grid),
             "numrnn": nr.__version__}  # fmt: skip
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

    Raises
    ------
    ConfigError if ``path`` holds a sweep of another config and ``overwrite`` is False.
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
    tmpl = _template(cfg)
    tmp = f"{os.fspath(path).rstrip('/')}.creating"
    shutil.rmtree(tmp, ignore_errors=True)
    tmpl.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True,
                 encoding=_encoding(tmpl, dims(cfg)))  # fmt: skip
    os.replace(tmp, path)  # atomic: a store either exists whole or not at all
    return True


def write_point(path, cfg, point, ds):
    """Write one point's result into its region; its status last."""
    import xarray as xr

    grid = dims(cfg)
    store = xr.open_zarr(path, zarr_format=2)
    region = {d: slice(i, i + 1) for d, i in zip(grid, point["index"], strict=True)}
    status = ds.attrs.get("status", "failed")
    if status != "failed":
        out = xr.Dataset()
        for name, var in store.data_vars.items():
            if name in ("status", "message", "diverged_at"):
                continue
            full = np.full([1] * len(grid) + [store.sizes[d] for d in var.dims[len(grid):]],
                           np.nan)  # fmt: skip
            if name in ds:
                got = ds[name]
                if "step" in got.dims:
                    got = got.sel(step=got["step"].isin(store["step"]))
                idx = tuple(
                    np.searchsorted(store[d].values, got[d].values) if d == "step"
                    else slice(0, got.sizes[d]) for d in got.dims
                )  # fmt: skip
                full[(0,) * len(grid)][idx] = got.values
            out[name] = (var.dims, full)
        out.drop_encoding().to_zarr(path, region=region, zarr_format=2, consolidated=True,
                                    mode="r+")  # fmt: skip
    one = [1] * len(grid)
    meta = xr.Dataset({
        "status": (tuple(grid), np.full(one, status, dtype=object)),
        "message": (tuple(grid), np.full(one, ds.attrs.get("message", ""), dtype=object)),
        "diverged_at": (tuple(grid), np.full(one, int(ds.attrs.get("diverged_at", -1)))),
    })  # fmt: skip
    meta.to_zarr(path, region=region, zarr_format=2, consolidated=True, mode="r+")
    return status


def pending(path, cfg):
    """The points whose status in the store is still "pending"."""
    import xarray as xr

    status = xr.open_zarr(path, zarr_format=2)["status"].values
    return [p for p in points(cfg) if status[p["index"]] == "pending"]


def _run_and_write(path, cfg, group, threads=None):
    """Worker body: run a group of points and write each; returns [status] in order.

    ``threads``: Numba threads for this group (restored after); on a cluster the worker
    processes are the parallelism, so each group runs single-threaded.
    """
    import numba

    saved = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(min(threads, saved))
        results = run_group(group)
        return [write_point(path, cfg, p, ds) for p, ds in zip(group, results, strict=True)]
    finally:
        numba.set_num_threads(saved)


class _single_threaded_children:
    """Environment for worker processes: one Numba/BLAS thread each (the processes are the
    parallelism). Spawned children read it when they import numba; restored on exit."""

    VARS = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.VARS}
        os.environ.update(self.VARS)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(source, out, scheduler=None, workers=None, overwrite=False, progress=True, batch=None):
    """Run every pending point of a sweep into the Zarr store ``out``.

    Points that differ only in initializer, forget bias or seed train together as one
    ensemble (one compiled call per layer and step for all of them; :func:`run_group`),
    in as many groups as there are workers; the results are those of separate runs, bit
    for bit.

    Parameters
    ----------
    source : path to a TOML config, TOML text or a dict.
    out : path of the store (``*.zarr``).
    scheduler : None (this machine) or the address of a ``dask.distributed`` scheduler.
    workers : number of local worker processes (default: the number of cores); 1 runs the
        points in this process.
    overwrite : replace a store made from another config.
    progress : show a progress bar (points done, running, failed).
    batch : int or None; at most this many points per ensemble (1: every point alone;
        None: the pending points of a kind shared evenly among the workers).

    Returns
    -------
    dict of counts by status of the points run now.
    """
    from tqdm import tqdm

    if not os.fspath(out).rstrip("/").endswith(".zarr"):
        raise ValueError(f"out must end in '.zarr', got {os.fspath(out)!r}")
    cfg = load_config(source)
    create_store(cfg, out, overwrite=overwrite)
    todo = pending(out, cfg)
    counts = dict.fromkeys(STATUS[1:], 0)
    bar = tqdm(total=len(todo), desc="sweep", unit="point", disable=not progress, file=sys.stderr)

    slots = 1

    def done(status=None):
        if status is not None:
            counts[status] += 1
            bar.update()
        left = len(todo) - sum(counts.values())
        bar.set_postfix(running=min(slots, left), failed=counts["failed"],
                        diverged=counts["diverged"])  # fmt: skip

    workers = workers or os.cpu_count() or 1
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive integer or None, got {batch!r}")

    def split(n_slots):  # groups, cut small enough that every slot gets work
        size = batch
        if size is None and len(groups(cfg, todo)) < n_slots:
            size = -(-len(todo) // n_slots)
        return groups(cfg, todo, size)

    def finished(statuses):
        for status in statuses:
            done(status)

    if scheduler is not None:
        from distributed import Client, as_completed

        with Client(scheduler) as client:
            slots = max(1, sum(client.nthreads().values()))
            done()
            futures = [client.submit(_run_and_write, os.path.abspath(out), cfg, g, 1, pure=False)
                       for g in split(slots)]  # fmt: skip
            for fut in as_completed(futures):
                finished(fut.result())
    elif workers == 1 or len(todo) <= 1:
        done()
        for g in split(1):
            finished(_run_and_write(out, cfg, g))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        slots = workers
        done()
        with (
            _single_threaded_children(),
            ProcessPoolExecutor(workers, mp_context=ctx, initializer=reuse_freed_memory) as pool,
        ):
            futures = [pool.submit(_run_and_write, out, cfg, g) for g in split(workers)]
            for fut in as_completed(futures):
                finished(fut.result())
    bar.close()
    return counts
