"""The Zarr store of a sweep: its template, one region per point, and what is pending.

The store is created once, before any run, with every variable over (grid dims..., step,
layer, direction, time) full of NaN, chunked one grid point per chunk. Each point writes
its own region as soon as it finishes (so parallel writers never share a chunk), its data
first and its ``status`` last: a sweep killed at any moment and run again finishes only
the points whose status is still "pending", and ends with the same store as an
uninterrupted run.

What keeps a store whole, besides the Dataset (none of it is part of the Dataset):

- ``OUT.zarr/.numrnn-sweep``, a marker numrnn writes into every store it makes: the store
  is numrnn's (only such a store is resumed, repaired or removed by ``overwrite``), the
  hash of its config, and the token of the run that now writes into it. Every run takes a
  new token (:func:`claim`) and hands it to its workers; :func:`write_point` writes only
  under the current token, holding a shared lock on the marker, so a worker of an earlier
  run (orphaned by a killed sweep, say) can never write into the store again, nor into a
  store made in its place.
- ``OUT.zarr.lock`` beside the store, held by the sweep that uses the store (:func:`lock`):
  a second sweep on the same ``--out`` is refused with the first one's process id. The
  kernel drops the lock when its process dies, so a stale lock file never blocks.
- ``OUT.zarr.creating`` and ``OUT.zarr.removing``: a store is made under the first name
  and renamed into place, and moved to the second before it is deleted, so ``OUT.zarr``
  is always either a whole store or absent. Both carry the marker, so a leftover from a
  killed sweep is recognised and cleared, and nothing else of that name is touched.
"""

import contextlib
import hashlib
import json
import os
import socket
import time
import uuid
import warnings

import numpy as np

from .. import __version__
from ..results import SWEEP_MARKER, SWEEP_STATUS, DamagedStoreWarning, read_zarr
from ..training.loop import train
from ..training.spec import TrainSpec
from .config import ConfigError, build, dims, points, train_settings
from .point import before_after, init_diagnostics, network_diagnostics, shape_key

try:  # POSIX; elsewhere sweeps run without the locks
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

STATUS = SWEEP_STATUS
MARKER = SWEEP_MARKER
_META = (".zgroup", ".zattrs", ".zarray")


class StoreError(Exception):
    """An ``--out`` path that numrnn will not use or change as asked: not a store numrnn
    made, in use by another sweep, damaged beyond repair, or replaced under a writer.

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> mine = tempfile.mkdtemp()
    >>> open(os.path.join(mine, "notes.txt"), "w").close()
    >>> cfg = {"model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
    ...        "train": {"steps": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
    ...        "grid": {"seed": [0, 1]}}
    >>> try:
    ...     nr.sweep.create_store(nr.sweep.load_config(cfg), mine, overwrite=True)
    ... except nr.sweep.StoreError as err:
    ...     print("refused")
    refused
    >>> os.listdir(mine)
    ['notes.txt']
    """


def template(cfg):
    """An in-memory Dataset shaped like the whole sweep, every value missing.

    The variables and their sizes come from a zero-step run of one point per kind of point
    (points differing only in what cannot change what a run records: initializer, seeds,
    forget bias, the training settings; see :func:`~numrnn.sweep.point.shape_key`), so
    the template has exactly the variables the runs produce; sizes that vary across the
    grid (time, layer, direction) take their largest value. The recorded steps are the
    union of every point's training plan, the times weights are kept (``when``) the union
    of every point's ``weights_at``.

    Parameters
    ----------
    cfg : dict
        A config from :func:`load_config`.

    Returns
    -------
    xarray.Dataset
        Over (grid dims..., step[, layer, direction, time], ...), NaN everywhere, with
        ``status`` "pending", ``message`` "", ``diverged_at`` -1 and ``model_config`` ""
        per point; attrs ``config`` and ``grid`` (JSON) and ``numrnn``.

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> tmpl = nr.sweep.template(cfg)
    >>> tmpl.loss.dims, tmpl.status.shape
    (('init', 'seed', 'step'), (2, 2))
    """
    import xarray as xr

    grid_points = points(cfg)
    probes, seen = [], set()
    for point in grid_points:
        key = shape_key(point["config"])
        if key in seen:
            continue
        seen.add(key)
        model, task, settings = build(point["config"])
        zero = {**settings, "steps": 0, "weights_at": (), "progress": False}
        probe = train(model, task, **zero)
        probe.update(init_diagnostics(model, task))
        if point["config"]["diagnostics"].get("before_after", False):
            probe.update(before_after(*[network_diagnostics(model, task)] * 2))
        probes.append(probe)
    steps, plans, snapshots = None, set(), set()
    for point in grid_points:
        settings = train_settings(point["config"])
        plan_key = json.dumps([settings.get(k) for k in _PLAN_KEYS], default=str)
        if plan_key in plans:
            continue
        plans.add(plan_key)
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


# the settings that decide which steps a run records (TrainSpec.plan) and keeps weights at
_PLAN_KEYS = ("steps", "record_every", "eval_every", "diagnostics", "diagnostics_every",
              "weights_at")  # fmt: skip


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


# -- what is at a path ------------------------------------------------------------------------


def _config_hash(cfg):
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def _read_json(path):
    """The JSON object in file ``path``; None when missing, unreadable or not an object."""
    try:
        with open(path, "rb") as f:
            value = json.loads(f.read().decode())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_sweep_attrs(attrs):
    return attrs is not None and {"config", "grid", "numrnn"} <= set(attrs)


def _is_ours(path):
    """Whether the directory ``path`` is something numrnn made: it holds the marker, it is
    a sweep's Zarr group (made before markers), or it is empty."""
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    if os.path.lexists(os.path.join(path, MARKER)):
        return True
    return not os.listdir(path) or _is_sweep_attrs(_read_json(os.path.join(path, ".zattrs")))


def _describe(path):
    """One of "missing", "empty", "store" (numrnn's), "foreign"; and the marker (or None)."""
    if not os.path.lexists(path):
        return "missing", None
    if os.path.islink(path) and not os.path.isdir(path):
        return "foreign", None
    if not os.path.isdir(path):
        return "foreign", None
    if not os.listdir(path):
        return "empty", None
    marker = _read_json(os.path.join(path, MARKER))
    if marker is not None and marker.get("made_by") == "numrnn sweep":
        return "store", marker
    if os.path.lexists(os.path.join(path, MARKER)) or _is_sweep_attrs(
        _read_json(os.path.join(path, ".zattrs"))
    ):
        return "store", None  # numrnn's: a damaged marker, or made before markers
    return "foreign", None


def _not_ours(path, what):
    kind = "a file" if os.path.lexists(path) and not os.path.isdir(path) else "a directory"
    return StoreError(
        f"{what} {os.fspath(path)!r} is {kind} that numrnn did not make (not a sweep store); "
        "numrnn neither uses nor removes it: move it away or choose another --out"
    )


def _marker_text(cfg, token, every_chunk):
    """The marker: numrnn made the store, for the config of this hash; the current run's
    token; ``every_chunk``: every finished point has all its chunks on disk (stores made
    before markers may lack chunks that held only missing values)."""
    return json.dumps({
        "made_by": "numrnn sweep", "format": 1, "numrnn": __version__,
        "config_sha256": _config_hash(cfg), "token": token, "every_chunk": every_chunk,
        "pid": os.getpid(), "host": socket.gethostname(),
    }, sort_keys=True)  # fmt: skip


def _replace_file(path, text):
    """Write ``path`` whole: a temporary file beside it, renamed into place."""
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_marker(directory, cfg, token, every_chunk):
    _replace_file(os.path.join(directory, MARKER), _marker_text(cfg, token, every_chunk))


def _remove_ours(path):
    """Delete a directory numrnn made, its marker last (so that a removal cut short leaves a
    directory still recognised as numrnn's)."""
    if os.path.islink(path):
        raise StoreError(f"{os.fspath(path)!r} is a symbolic link; numrnn does not remove it")
    import shutil

    for entry in os.scandir(path):
        if entry.name == MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(path, MARKER))
    os.rmdir(path)


def _clear_leftover(path, what):
    """Remove a leftover ``OUT.zarr.creating`` / ``.removing`` of a killed sweep (only one
    numrnn made); StoreError for anything else of that name."""
    if not os.path.lexists(path):
        return
    if not _is_ours(path):
        raise _not_ours(path, what)
    _remove_ours(path)


@contextlib.contextmanager
def _marker_lock(path, shared, wait=60.0):
    """Hold the store's marker locked (shared: writing a point; exclusive: replacing the
    token or removing the store, after at most ``wait`` seconds for the writes in flight);
    yields its fd, or None when the store has no marker."""
    marker = os.path.join(path, MARKER)
    try:
        fd = os.open(marker, os.O_RDWR)
    except FileNotFoundError:
        yield None
        return
    try:
        if fcntl is not None and shared:
            fcntl.flock(fd, fcntl.LOCK_SH)
        elif fcntl is not None:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"{path!r}: a process is still writing into it after {wait:g} s "
                            "(a worker of an earlier sweep?); stop it and run this again"
                        ) from None
                    time.sleep(0.05)
        yield fd
    finally:
        os.close(fd)


def _read_fd(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    try:
        value = json.loads(b"".join(chunks).decode())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _rewrite_fd(fd, text):
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, text.encode())
    os.fsync(fd)


# -- the lock beside the store ----------------------------------------------------------------

_held = {}  # lock file -> [fd, depth]: the locks this process holds


@contextlib.contextmanager
def lock(path):
    """Hold ``PATH.lock``, beside the store: one sweep at a time uses a store.

    Re-entrant within a process. The lock is the kernel's (``flock``): it goes with the
    process that holds it, however that process ends, so a stale lock file never blocks.

    Raises
    ------
    StoreError naming the process that holds the lock.
    """
    name = f"{os.path.realpath(os.fspath(path)).rstrip(os.sep)}.lock"
    if name in _held:
        _held[name][1] += 1
        try:
            yield
        finally:
            _held[name][1] -= 1
        return
    if fcntl is None:  # pragma: no cover - no locks on this platform
        yield
        return
    parent = os.path.dirname(name)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise StoreError(f"cannot create the directory {parent!r} of --out: {err}") from None
    while True:
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StoreError(f"cannot create the lock file {name!r}: {err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_fd(fd)
            os.close(fd)
            who = (f"process {holder.get('pid')} on {holder.get('host')}" if holder
                   else "another process")  # fmt: skip
            raise StoreError(
                f"{os.fspath(path)!r} is in use by another numrnn sweep ({who}, lock file "
                f"{name!r}); wait for it to finish, or stop it and run this again"
            ) from None
        try:  # the last holder may have removed the file between our open and our lock
            current = os.stat(name).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    _rewrite_fd(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    _held[name] = [fd, 1]
    try:
        yield
    finally:
        del _held[name]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        os.close(fd)


# -- creating, resuming, repairing ------------------------------------------------------------


def create_store(cfg, path, overwrite=False):
    """Create the store for ``cfg`` at ``path``, or check that the store there is for ``cfg``
    (repairing its consolidated metadata if that is damaged).

    Only a store numrnn made is used, and with ``overwrite`` replaced; anything else at
    ``path`` (a file, another tool's directory or Zarr store) is refused and left alone.
    An empty directory counts as free.

    Parameters
    ----------
    cfg : dict
        A config from :func:`load_config`.
    path : str or PathLike
        The store (``*.zarr``).
    overwrite : bool, default False
        Replace a store numrnn made for another config (or damaged beyond repair).

    Returns
    -------
    True if the store was created, False if an existing one is resumed.

    Raises
    ------
    ConfigError if ``path`` holds a sweep of a different config and ``overwrite`` is False;
    StoreError if ``path`` is not numrnn's, is damaged beyond repair (without
    ``overwrite``), or is in use by another sweep.

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> nr.sweep.create_store(cfg, path), nr.sweep.create_store(cfg, path)
    (True, False)
    >>> len(nr.sweep.pending(path, cfg))
    4
    """
    path = os.fspath(path).rstrip(os.sep) or os.sep
    with lock(path):
        kind, marker = _describe(path)
        if kind == "foreign":
            raise _not_ours(path, "--out")
        if kind == "store":
            problem = _check_store(path, cfg, marker)
            if problem is None:
                return False
            if not overwrite:
                if problem == "config":
                    raise ConfigError(
                        f"{path!r} holds a sweep of a different config; use another --out, "
                        "or --overwrite to replace it"
                    )
                raise StoreError(
                    f"{path!r} is a numrnn store that cannot be resumed ({problem}); "
                    "--overwrite replaces it"
                )
            _remove_store(path)
        _create(cfg, path)
        return True


def _check_store(path, cfg, marker):
    """None if the numrnn store at ``path`` is ``cfg``'s and readable (its consolidated
    metadata repaired if need be), else "config" (another config's) or what is damaged."""
    attrs = _read_json(os.path.join(path, ".zattrs"))
    if _is_sweep_attrs(attrs):
        if attrs["config"] != json.dumps(cfg, sort_keys=True):
            return "config"
    elif marker is None:
        return "its attributes (.zattrs) are unreadable"
    elif marker.get("config_sha256") != _config_hash(cfg):
        return "config"
    else:  # the marker vouches for the config: the attributes are the template's
        attrs = {"config": json.dumps(cfg, sort_keys=True), "grid": json.dumps(dims(cfg)),
                 "numrnn": marker.get("numrnn", __version__)}  # fmt: skip
        _replace_file(os.path.join(path, ".zattrs"), json.dumps(attrs, indent=2))
        warnings.warn(f"{path!r}: its attributes (.zattrs) were damaged; rewrote them from "
                      "the config", DamagedStoreWarning, stacklevel=3)  # fmt: skip
    problem = _repair_metadata(path)
    if problem is not None:
        return problem
    if marker is None:  # made before markers, or its marker is damaged: mark it now
        _write_marker(path, cfg, token=None, every_chunk=False)
    return None


def _metadata(path):
    """{key: metadata} of the group's .zgroup/.zattrs and each array's .zarray/.zattrs (a
    sweep's store is one flat group), or a string saying which cannot be read."""
    meta = {}
    names = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    for key in [".zgroup", ".zattrs", *(f"{n}/{m}" for n in names for m in (".zarray", ".zattrs"))]:
        file = os.path.join(path, *key.split("/"))
        if not os.path.exists(file):
            continue
        value = _read_json(file)
        if value is None:
            return f"{key} is unreadable"
        meta[key] = value
    if ".zgroup" not in meta:
        return ".zgroup is missing"
    return meta


def _repair_metadata(path, quiet=False):
    """Rewrite ``.zmetadata`` (the consolidated metadata) when it does not match the
    metadata files (with a warning unless ``quiet``); None when the store's metadata is
    fine now, else what is damaged."""
    meta = _metadata(path)
    if isinstance(meta, str):
        return meta
    consolidated = _read_json(os.path.join(path, ".zmetadata"))
    if consolidated is not None and consolidated.get("metadata") == meta:
        return None
    text = json.dumps({"metadata": meta, "zarr_consolidated_format": 1}, indent=2)
    _replace_file(os.path.join(path, ".zmetadata"), text)
    if quiet:
        return None
    warnings.warn(
        f"{path!r}: its consolidated metadata (.zmetadata) was damaged; rewrote it from the "
        "arrays' metadata",
        DamagedStoreWarning,
        stacklevel=4,
    )
    return None


def _remove_store(path):
    """Remove numrnn's store at ``path`` for good: retire its token (waiting for a write in
    flight), move it aside, delete it."""
    if os.path.islink(path):
        raise StoreError(f"{path!r} is a symbolic link; numrnn does not replace it: give the "
                         "directory it points to, or remove the link")  # fmt: skip
    trash = f"{path}.removing"
    _clear_leftover(trash, "leftover")
    with _marker_lock(path, shared=False) as fd:
        if fd is not None:
            _rewrite_fd(fd, json.dumps({"made_by": "numrnn sweep", "token": "removed"}))
        os.rename(path, trash)
    if not os.path.lexists(os.path.join(trash, MARKER)):
        with open(os.path.join(trash, MARKER), "w") as f:
            f.write(json.dumps({"made_by": "numrnn sweep", "token": "removed"}))
    _remove_ours(trash)


def _create(cfg, path):
    """Write the template under ``PATH.creating`` (marker first) and rename it into place:
    a store either exists whole or not at all."""
    tmpl = template(cfg)
    tmp = f"{path}.creating"
    _clear_leftover(tmp, "leftover")
    os.makedirs(os.path.dirname(os.path.abspath(tmp)), exist_ok=True)
    os.mkdir(tmp)
    _write_marker(tmp, cfg, token=None, every_chunk=True)
    write_template(tmpl, tmp, list(dims(cfg)))
    try:
        os.replace(tmp, path)  # atomic; replaces an empty directory too
    except OSError as err:
        _remove_ours(tmp)
        raise StoreError(f"cannot create the store at {path!r}: {err}") from None


def write_template(tmpl, path, grid):
    """Write the template Dataset ``tmpl`` as a Zarr (format 2) store at ``path``, one grid
    point per chunk, with consolidated metadata.

    The same store as ``tmpl.to_zarr(path, ...)``, written quicker: Zarr takes a
    millisecond or two per chunk even for chunks it skips (missing values), minutes for
    the variables of 10,000 points. So xarray writes the coordinates and the template of
    one grid point, whose metadata (format 2: JSON files) gets the whole grid's shape, and
    the chunk of every variable that is not missing throughout (status "pending",
    diverged_at -1) is copied to every grid point.
    """
    import shutil

    import xarray as xr

    scratch = os.path.join(path, ".numrnn-one-point")
    one = tmpl.isel({d: slice(0, 1) for d in grid})
    with warnings.catch_warnings():  # zarr lists the directory: the marker is not Zarr's
        warnings.filterwarnings("ignore", message="Object at .* is not recognized")
        one.to_zarr(scratch, mode="w", zarr_format=2, consolidated=False,
                    encoding=_encoding(one, grid))  # fmt: skip
        xr.Dataset(coords=tmpl.coords, attrs=tmpl.attrs).to_zarr(
            path, mode="a", zarr_format=2, consolidated=False
        )
    counts = [tmpl.sizes[d] for d in grid]
    for name, var in tmpl.data_vars.items():
        meta = _read_json(os.path.join(scratch, name, ".zarray"))
        meta["shape"] = [*counts, *meta["shape"][len(grid) :]]
        os.makedirs(os.path.join(path, name))
        with open(os.path.join(path, name, ".zarray"), "w") as f:
            json.dump(meta, f, indent=2)
        shutil.copyfile(os.path.join(scratch, name, ".zattrs"),
                        os.path.join(path, name, ".zattrs"))  # fmt: skip
        sep = meta.get("dimension_separator") or "."
        extra = (0,) * (var.ndim - len(grid))
        first = os.path.join(scratch, name, *sep.join(map(str, (0,) * var.ndim)).split("/"))
        if not os.path.exists(first):  # all missing values: no chunk to write
            continue
        with open(first, "rb") as f:
            data = f.read()
        for index in np.ndindex(*counts):
            key = os.path.join(path, name, *sep.join(map(str, (*index, *extra))).split("/"))
            os.makedirs(os.path.dirname(key), exist_ok=True)
            with open(key, "wb") as f:
                f.write(data)
    shutil.rmtree(scratch)
    problem = _repair_metadata(path, quiet=True)
    if problem is not None:  # pragma: no cover - we just wrote it
        raise StoreError(f"cannot write the store at {path!r}: {problem}")


def claim(path, cfg):
    """Make the caller the store's only writer: a new token in its marker, waiting for a
    write in flight under the old one. Hand the token to :func:`write_point`; writers with
    any other token are refused from now on.

    Returns
    -------
    str, the token.
    """
    token = uuid.uuid4().hex
    with _marker_lock(path, shared=False) as fd:
        if fd is None:
            _write_marker(path, cfg, token, every_chunk=False)
        else:
            every_chunk = _read_fd(fd).get("every_chunk", False)
            _rewrite_fd(fd, _marker_text(cfg, token, every_chunk))
    return token


@contextlib.contextmanager
def _writing(path, token):
    """Hold the marker's shared lock while a point is written; StoreError if the store is
    no longer the one ``token`` was given for."""
    with _marker_lock(path, shared=True) as fd:
        if token is not None:
            marker = os.path.join(path, MARKER)
            try:
                same = fd is not None and os.stat(marker).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same or _read_fd(fd).get("token") != token:
                raise StoreError(
                    f"{path!r} is no longer this sweep's store (removed, replaced, or taken "
                    "over by a later run); not writing"
                )
        yield


# -- points -----------------------------------------------------------------------------------


def write_point(path, cfg, point, ds, token=None):
    """Write one point's result into its region; its status last.

    Every chunk of the point is written, NaN where the run recorded nothing, so that a
    finished point's chunks are all on disk (:func:`verify` checks them).

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
    token : from :func:`claim`; when given, the point is written only if the store is still
        the one the token was given for (else StoreError).

    Returns
    -------
    str
        The point's status: "ok", "diverged" or "failed".

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> _ = nr.sweep.create_store(cfg, path)
    >>> point = nr.sweep.points(cfg)[2]
    >>> nr.sweep.write_point(path, cfg, point, nr.sweep.run_point(point))
    'ok'
    >>> nr.open(path).status.values.tolist()
    [['pending', 'pending'], ['ok', 'pending']]
    """
    import xarray as xr
    import zarr

    grid = dims(cfg)
    # every chunk on disk, missing values too (older xarray drops its write_empty_chunks)
    with _writing(path, token), zarr.config.set({"array.write_empty_chunks": True}):
        store = xr.open_zarr(path, zarr_format=2)
        region = {d: slice(i, i + 1) for d, i in zip(grid, point["index"], strict=True)}
        status = ds.attrs.get("status", "failed")
        out = xr.Dataset()
        for name, var in store.data_vars.items():
            if name in _META:
                continue
            full = np.full([1] * len(grid) + [store.sizes[d] for d in var.dims[len(grid):]],
                           np.nan)  # fmt: skip
            if name in ds and status != "failed":
                got = ds[name]
                if "step" in got.dims:
                    got = got.sel(step=got["step"].isin(store["step"]))
                idx = tuple(_positions(store, got, d) for d in got.dims)
                full[(0,) * len(grid)][idx] = got.values
            out[name] = (var.dims, full)
        out.drop_encoding().to_zarr(path, region=region, zarr_format=2, consolidated=True,
                                    mode="r+", write_empty_chunks=True)  # fmt: skip
        one = [1] * len(grid)
        meta = xr.Dataset({
            "message": (tuple(grid), np.full(one, ds.attrs.get("message", ""), dtype=object)),
            "diverged_at": (tuple(grid), np.full(one, int(ds.attrs.get("diverged_at", -1)))),
            "model_config": (tuple(grid), np.full(one, ds.attrs.get("config", "")
                                                  if status != "failed" else "", dtype=object)),
        })  # fmt: skip
        # the status in a write of its own, after everything else: a point killed before it
        # stays "pending" (a status written beside the others could land first, and a kill
        # between them left a finished point whose model_config was missing: damaged)
        status_only = xr.Dataset({"status": (tuple(grid), np.full(one, status, dtype=object))})
        for part in (meta, status_only):
            part.to_zarr(path, region=region, zarr_format=2, consolidated=True, mode="r+",
                         write_empty_chunks=True)  # fmt: skip
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


def verify(path, cfg):
    """The points a resumed sweep cannot trust: {grid index: what is wrong}.

    A point is damaged when its status is unreadable or unknown (its chunk deleted, say),
    when any of its chunks cannot be read, or when it finished ("ok", "diverged") but a
    chunk of its data is missing (not checked in stores made before markers, which leave
    out chunks of missing values). Pending points are not checked: they run anyway.

    Raises
    ------
    StoreError if the store cannot be read at all.
    """
    return _scan(path, cfg)[1]


def pending(path, cfg):
    """The points still to run: those whose status in the store is "pending", and the
    damaged ones (see :func:`verify`).

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
    >>> import os, tempfile, numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.zarr")
    >>> _ = nr.sweep.create_store(cfg, path)
    >>> [p["coords"] for p in nr.sweep.pending(path, cfg)][:2]
    [{'init': 'orthogonal', 'seed': 0}, {'init': 'orthogonal', 'seed': 1}]
    """
    return scan(path, cfg)[0]


def scan(path, cfg):
    """(:func:`pending`, :func:`verify`) in one reading of the store."""
    status, damaged = _scan(path, cfg)
    todo = [p for p in points(cfg) if p["index"] in damaged or status[p["index"]] == "pending"]
    return todo, damaged


def _scan(path, cfg):
    """(status array, {grid index: what is wrong}) of the store (see :func:`verify`)."""
    grid = list(dims(cfg))
    try:
        ds, unreadable = read_zarr(path, names=["status"])
    except Exception as err:  # noqa: BLE001 - report it as the store's damage
        raise StoreError(f"{path!r} cannot be read ({type(err).__name__}: {err}); "
                         "--overwrite replaces it") from None  # fmt: skip
    status = ds["status"].values
    damaged = {}
    for block in unreadable.get("status", ()):
        damaged.setdefault(tuple(block), []).append("status unreadable")
    for index in _where(~np.isin(status, STATUS)):
        damaged.setdefault(index, []).append(f"status {status[index]!r} unknown")
    finished = set(_where(np.isin(status, STATUS[1:])))
    if not finished:
        return status, {index: damaged[index] for index in sorted(damaged)}
    names = [n for n in ds.data_vars if n != "status"]
    _, unreadable = read_zarr(path, names=names, keep=False)
    for name, blocks in unreadable.items():
        for block in blocks:
            index = tuple(block[: len(grid)])
            if index in finished:
                damaged.setdefault(index, []).append(f"{name} unreadable")
    marker = _read_json(os.path.join(path, MARKER)) or {}
    ran = _where(np.isin(status, ("ok", "diverged"))) if marker.get("every_chunk") else []
    for name in names:
        meta = _read_json(os.path.join(path, name, ".zarray")) or {}
        sep = meta.get("dimension_separator") or "."
        extra = (0,) * (len(ds[name].dims) - len(grid))
        for index in ran:
            key = sep.join(str(i) for i in (*index, *extra))
            if not os.path.exists(os.path.join(path, name, *key.split("/"))):
                damaged.setdefault(index, []).append(f"{name} missing")
    return status, {index: damaged[index] for index in sorted(damaged)}


def _where(mask):
    """The indices (tuples of ints) where ``mask`` is True."""
    return [tuple(int(i) for i in ix) for ix in zip(*np.nonzero(mask), strict=True)]
