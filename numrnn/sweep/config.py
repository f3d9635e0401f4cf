"""Sweep configs: reading and validating the TOML, the grid's points, building a point.

A config has ``[model]``, ``[task]``, ``[train]``, optional ``[diagnostics]`` and a
``[grid]`` table whose keys are dotted paths into the config (``"model.init" =
["normal", "orthogonal"]``, ``"train.lr" = [1e-3, 1e-2]``, or deeper into nested tables
and lists, ``"model.init.weight_hh.1.gain" = [0.5, 1.0, 2.0]``) or ``seed`` (which seeds
both the model's weights and the training batches). Every grid key becomes a dimension of the
result, named by its last part, with the values as coordinates.
"""

import copy
import inspect
import itertools
import json
import os

from .. import optim, tasks
from ..nn.cells import MODELS, variants
from ..nn.models import from_config
from ..nn.recurrent import Recurrent
from ..training.spec import DIAGNOSTICS, TrainSpec

SECTIONS = ("model", "task", "train", "diagnostics", "grid")
DIAGNOSTIC_KEYS = ("record", "every", "before_after")

#: A tiny sweep (a tanh RNN of 4 units on the adding problem, 3 steps; 2 initializers x 2
#: seeds), for examples and quick checks.
EXAMPLE = {
    "model": {"cell": "rnn_tanh", "hidden_size": 4},
    "task": {"name": "adding", "T": 6},
    "train": {"steps": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
    "grid": {"model.init": ["orthogonal", "identity"], "seed": [0, 1]},
}


class ConfigError(ValueError):
    """A sweep configuration that cannot run; the message names the offending key.

    A ``ValueError``.

    Examples
    --------
    >>> import numrnn as nr
    >>> nr.sweep.load_config({"model": {"cell": "rnn_tanh", "hidden_size": 4},
    ...                       "task": {"name": "adding", "T": 6},
    ...                       "train": {"steps": 3, "batch_size": 4, "lr": 0.01},
    ...                       "grid": {"model.width": [1, 2]}})
    Traceback (most recent call last):
    ...
    numrnn.sweep.config.ConfigError: unknown key(s) ['width'] in [model] for cell ...
    """


def optimizer_keys():
    """[train] keys that are not nr.train's own arguments: the optimizer's name and every
    optimizer's settings (``lr``, ``betas``, ...)."""
    return ("optimizer", *optim.settings())


def load_config(source, require_grid=True):
    """Read and validate a sweep config from a TOML path, TOML text or a dict.

    Every grid point is built (model, task, settings) once, so that a config that cannot
    run fails here, before anything trains.

    Parameters
    ----------
    source : str, PathLike or dict
        A path to a TOML file, TOML text, or the parsed dict.
    require_grid : bool, default True
        False accepts a config without ``[grid]`` (one run, ``numrnn train``).

    Returns
    -------
    dict
        The five sections ``model``, ``task``, ``train``, ``diagnostics`` (possibly
        empty) and ``grid``.

    Raises
    ------
    ConfigError
        Naming the key, for unknown sections or keys, wrong types and empty grids.

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config('''
    ... [model]
    ... cell = "lstm"
    ... hidden_size = 4
    ... [task]
    ... name = "adding"
    ... T = 6
    ... [train]
    ... steps = 3
    ... batch_size = 4
    ... lr = 0.01
    ... [grid]
    ... "model.forget_bias" = [0.0, 1.0]
    ... ''')
    >>> sorted(cfg), cfg["grid"]
    (['diagnostics', 'grid', 'model', 'task', 'train'], {'model.forget_bias': [0.0, 1.0]})
    """
    if isinstance(source, dict):
        cfg = copy.deepcopy(source)
    else:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11
            import tomli as tomllib
        text = _read_source(source)
        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config is not valid TOML: {err}") from err
        task = cfg.get("task")
        path = cfg["task"].get("path") if isinstance(task, dict) else None
        if isinstance(path, str) and not os.path.isabs(path) and _is_path(source):
            # a task's data file is found beside the config, wherever it is run from
            task["path"] = os.path.join(os.path.dirname(os.path.abspath(source)), path)
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
    seen = {}
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
        if dim in seen:
            raise ConfigError(f"grid keys {seen[dim]!r} and {key!r} both make dimension {dim!r}")
        seen[dim] = key
    # every point must build: this checks keys, types and values before anything runs
    for point in points(cfg):
        _, task, _ = build(point["config"], key_hint=point["coords"])
    if "sha1" in getattr(task, "config", {}) and not any(k.startswith("task.") for k in grid):
        # pin the data file: a store resumed on other data fails instead of mixing them
        cfg["task"].setdefault("sha1", task.config["sha1"])
    return cfg


def _is_path(source):
    """Whether ``source`` (a str or PathLike) names a file rather than being TOML text."""
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "\n" not in source and "=" not in source


def _read_source(source):
    """The TOML text of ``source``: a path (str or PathLike) to read, or TOML text itself.

    A str is TOML text when it has a line break or an ``=`` (every config has a grid key);
    otherwise it names a file, which must exist.
    """
    if isinstance(source, bytes):
        source = source.decode()
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(
            f"config must be a TOML path, TOML text or a dict, got {type(source).__name__}"
        )
    if not _is_path(source):
        return source
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {path!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path!r} is a directory, not a TOML file") from None
    except OSError as err:
        raise ConfigError(f"cannot read config {path!r}: {err.strerror or err}") from None
    try:
        return data.decode()
    except UnicodeDecodeError as err:
        raise ConfigError(f"config {path!r} is not UTF-8 text: {err}") from None


def dims(cfg):
    """{dimension name: grid key}, in grid order.

    Parameters
    ----------
    cfg : dict
        A config from :func:`load_config`.

    Returns
    -------
    dict of str to str
        The last part of each grid key, which names the result's dimension, and the key.

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> nr.sweep.dims(cfg)
    {'init': 'model.init', 'seed': 'seed'}
    """
    return {key.rsplit(".", 1)[-1]: key for key in cfg["grid"]}


def points(cfg):
    """Every grid point: ``{"index": (i, j, ...), "coords": {dim: value}, "config": ...}``.

    Parameters
    ----------
    cfg : dict
        A config from :func:`load_config`.

    Returns
    -------
    list of dict
        One per point of the grid's product, in grid order: its ``index`` along each
        dimension, its ``coords`` and its ``config`` (the sections without ``grid``, the
        point's values filled in; ``seed`` seeds both the model and the training).

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> pts = nr.sweep.points(cfg)
    >>> len(pts), pts[1]["index"], pts[1]["coords"]
    (4, (0, 1), {'init': 'orthogonal', 'seed': 1})
    >>> pts[1]["config"]["model"]["seed"], pts[1]["config"]["train"]["seed"]
    (1, 1)
    """
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
                _assign(point, key, value)
        out.append({"index": index, "coords": coords, "config": point})
    return out


def _assign(config, key, value):
    """Set the dotted path ``key`` of ``config`` to ``value``. Past the section and its key
    the path may go down nested tables and lists (a number indexes a list), e.g.
    ``model.init.weight_hh.1.gain`` for ``init = {weight_hh = ["glorot_normal", {gain = 1}]}``;
    everything but the last part must exist (ConfigError naming the key otherwise)."""
    parts = key.split(".")
    node = config[parts[0]]
    for i, part in enumerate(parts[1:-1], 1):
        node = _child(node, part, key, ".".join(parts[:i]))
    last = parts[-1]
    if isinstance(node, list):
        _child(node, last, key, ".".join(parts[:-1]))  # the index must exist
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"grid key {key!r}: {'.'.join(parts[:-1])} is {node!r}, not a table "
                          "or a list")  # fmt: skip


def _child(node, part, key, where):
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise ConfigError(f"grid key {key!r}: {where} has no {part!r} (the path must exist in the "
                      f"config below its first key), got {where} = {node!r}")  # fmt: skip


def _check_keys(section, given, allowed, hint=""):
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} in [{section}]{hint}; known: {', '.join(sorted(allowed))}"
        )


def _call(fn, kwargs, section, where):
    try:
        return fn(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[{section}]{where}: {err}") from err


def build(point, key_hint=None):
    """(model, task, train settings) of one point's config; ConfigError naming the key.

    The train settings are :func:`numrnn.train`'s keyword arguments, checked by building
    a :class:`~numrnn.training.TrainSpec` from them.
    """
    where = f" (grid point {key_hint})" if key_hint else ""
    m, t = dict(point["model"]), dict(point["task"])
    # task
    if "name" not in t:
        raise ConfigError(f"[task] needs a 'name', one of {', '.join(tasks.TASKS)}")
    name = t.pop("name")
    if not isinstance(name, str) or name not in tasks.TASKS:
        raise ConfigError(f"task.name must be one of {', '.join(tasks.TASKS)}, got {name!r}")
    cls = tasks.TASKS[name]
    _check_keys("task", t, inspect.signature(cls).parameters, f" for task {name!r}")
    task = _call(cls, t, "task", where)
    # model
    cells = variants()
    cell = m.pop("cell", None)
    if not isinstance(cell, str) or cell not in cells:
        raise ConfigError(f"model.cell must be one of {', '.join(cells)}, got {cell!r}")
    spec, fixed = cells[cell]
    allowed = set(inspect.signature(MODELS[spec.name]).parameters) | set(
        inspect.signature(Recurrent).parameters
    )
    # the task fixes the model's inputs and outputs; with token ids the vocabulary, while the
    # embedding's width (input_size) is the model's own
    tokens = getattr(task, "vocab_size", None)
    allowed -= {"kwargs", "output_size", "readout", "vocab_size", *fixed}
    if tokens is None:
        allowed.discard("input_size")
    elif "input_size" not in m:
        raise ConfigError(f"[model] needs input_size, the width of the embedding of the task's "
                          f"token ids (vocab_size={tokens}){where}")  # fmt: skip
    _check_keys("model", m, allowed, f" for cell {cell!r}")
    kwargs = {"input_size": task.input_size, **m, "output_size": task.output_size,
              "readout": task.readout}  # fmt: skip
    if tokens is not None:
        kwargs["vocab_size"] = tokens
    if isinstance(kwargs.get("init"), list):  # TOML has no tuples: ["spectral", {radius = 2}]
        kwargs["init"] = tuple(kwargs["init"])
    model = _call(from_config, {"cell": cell, **kwargs}, "model", where)
    train = train_settings(point)
    _call(TrainSpec, train, "train", where)
    return model, task, train


def train_settings(point):
    """The train settings of one point's config (:func:`numrnn.train`'s keyword arguments),
    without building its model or task; ConfigError for unknown or missing keys. Their
    values are checked by :func:`build` (through a TrainSpec).
    """
    tr, dg = dict(point["train"]), dict(point["diagnostics"])
    opt_keys = optimizer_keys()
    opt_args = {k: tr.pop(k) for k in opt_keys if k in tr}
    opt_name = opt_args.pop("optimizer", "adam")
    if "betas" in opt_args and isinstance(opt_args["betas"], list):
        opt_args["betas"] = tuple(opt_args["betas"])
    if not isinstance(opt_name, str) or opt_name not in optim.OPTIMIZERS:
        raise ConfigError(
            f"train.optimizer must be one of {', '.join(optim.OPTIMIZERS)}, got {opt_name!r}"
        )
    own = set(TrainSpec.names()) - {"optimizer", "diagnostics", "diagnostics_every"}
    _check_keys("train", tr, own | set(opt_keys))
    for k in ("steps", "batch_size"):
        if k not in tr:
            raise ConfigError(f"[train] needs {k!r}")
    _check_keys("diagnostics", dg, DIAGNOSTIC_KEYS)
    record = dg.get("record", ())
    if not isinstance(record, (list, tuple)) or not all(isinstance(r, str) for r in record):
        raise ConfigError(
            f"diagnostics.record must be a list of names from {', '.join(DIAGNOSTICS)}, "
            f"got {record!r}"
        )
    train = {
        **tr,
        "optimizer": (opt_name, opt_args),
        "diagnostics": tuple(record),
        "diagnostics_every": dg.get("every"),
    }
    if not isinstance(dg.get("before_after", False), bool):
        raise ConfigError(f"diagnostics.before_after must be true or false, "
                          f"got {dg['before_after']!r}")  # fmt: skip
    unknown = sorted(set(train["diagnostics"]) - set(DIAGNOSTICS))
    if unknown:
        raise ConfigError(
            f"diagnostics.record has unknown {unknown}; known: {', '.join(DIAGNOSTICS)}"
        )
    return train
