"""Running grid points: one at a time, or several of one shape as an ensemble.

Points whose configs differ only in what an ensemble's members may differ in (the
model's ``init``, ``seed`` and ``forget_bias``, the training ``seed``) train together in
one :class:`~numrnn.Ensemble`; :func:`numrnn.train` guarantees that each member trains
exactly as its point would alone, so batching changes a sweep's speed, never its store.
A point that raises is returned as a ``failed`` result, never raised.
"""

import copy
import json

import numpy as np

from .. import diagnostics, tasks
from ..nn.models import PER_MEMBER, Ensemble
from ..training.loop import train_members
from .config import build


def run_point(point, progress=False):
    """Train one grid point; return its result Dataset (never raises on a failed run).

    Besides :func:`numrnn.train`'s record, the result holds the initial network's
    ``spectral_radius`` and largest Lyapunov exponent ``lyapunov_max`` per layer and
    direction. A run that raises is returned as a Dataset with ``attrs["status"] =
    "failed"`` and the error in ``attrs["message"]``; a diverged one keeps what it recorded.

    Parameters
    ----------
    point : dict
        One of :func:`points`.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        The run, with ``spectral_radius`` and ``lyapunov_max`` (layer, direction) added.

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> ds = nr.sweep.run_point(nr.sweep.points(cfg)[0])
    >>> ds.attrs["status"], ds.sizes["step"], ds.spectral_radius.dims
    ('ok', 4, ('layer', 'direction'))
    """
    import xarray as xr

    try:
        model, task, settings = build(point["config"])
        at_init = init_diagnostics(model, task)
        compare = point["config"]["diagnostics"].get("before_after", False)
        before = network_diagnostics(model, task) if compare else None
        (ds,) = train_members(model, task, **{**settings, "progress": progress})
        ds.update(at_init)
        if compare:
            ds.update(before_after(before, network_diagnostics(model, task)))
        ds.attrs["message"] = ""
        return ds
    except Exception as err:  # a failed point is data, not a crash of the sweep
        return xr.Dataset(attrs={"status": "failed", "message": f"{type(err).__name__}: {err}"})


def run_group(group, progress=False):
    """Train points that differ only in their weights and seeds (see :func:`groups`) as one
    :class:`~numrnn.Ensemble`; return their result Datasets in order.

    If the ensemble run raises, the points run one by one, so that a failure is recorded
    against the point that caused it.

    Parameters
    ----------
    group : list of dict
        Points of one group of :func:`groups`.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    list of xarray.Dataset
        One per point, in order, each as :func:`run_point` would return it.

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> (group,) = nr.sweep.groups(cfg, nr.sweep.points(cfg))
    >>> runs = nr.sweep.run_group(group)                   # four points, one ensemble
    >>> alone = nr.sweep.run_point(group[3])
    >>> bool((runs[3].loss == alone.loss).all())           # bit for bit as alone
    True
    """
    if len(group) == 1:
        return [run_point(group[0], progress)]
    try:
        built = [build(p["config"]) for p in group]
        models = [b[0] for b in built]
        task, settings = built[0][1], dict(built[0][2])
        at_init = [init_diagnostics(m, task) for m in models]
        compare = group[0]["config"]["diagnostics"].get("before_after", False)
        before = [network_diagnostics(m, task) for m in models] if compare else None
        seeds = [b[2].get("seed") for b in built]
        settings["seed"] = [int(np.random.SeedSequence().entropy % 2**63) if v is None else v
                            for v in seeds]  # fmt: skip
        settings["progress"] = progress
        ens = Ensemble(models)
        runs = train_members(ens, task, **settings)
        trained = ens.unstack()
        for k, (ds, extra) in enumerate(zip(runs, at_init, strict=True)):
            ds.update(extra)
            if compare:
                ds.update(before_after(before[k], network_diagnostics(trained[k], task)))
            ds.attrs["message"] = ""
        return runs
    except Exception:  # find the point that fails, and run the others
        return [run_point(p, progress) for p in group]


def groups(cfg, todo, size=None):
    """Split the points ``todo`` into groups that can train as one ensemble.

    Points go together when their configs differ only in the model's ``init``, ``seed``
    and ``forget_bias`` and the training ``seed`` (what an ensemble's members may differ
    in); each group is cut into pieces of at most ``size`` points (None: no limit).

    Parameters
    ----------
    cfg : dict
        The sweep's config.
    todo : list of dict
        Points of :func:`points`.
    size : int or None
        The most points in one group; None: no limit.

    Returns
    -------
    list of list of dict
        The groups, their points in grid order.

    Examples
    --------
    >>> import numrnn as nr
    >>> cfg = nr.sweep.load_config(nr.sweep.EXAMPLE)  # 2 inits x 2 seeds of a tiny RNN
    >>> [len(g) for g in nr.sweep.groups(cfg, nr.sweep.points(cfg), size=3)]
    [3, 1]
    """
    by_key = {}
    for p in todo:
        c = copy.deepcopy(p["config"])
        for k in PER_MEMBER:
            c["model"].pop(k, None)
        c["train"].pop("seed", None)
        by_key.setdefault(json.dumps(c, sort_keys=True), []).append(p)
    return [g[i : i + (size or len(g))] for g in by_key.values()
            for i in range(0, len(g), size or len(g))]  # fmt: skip


def _test_batch(model, task, batch):
    """The first ``batch`` sequences of the task's test set: (x, y, lengths), x in the
    model's dtype (token ids as they are)."""
    x, y, lengths = tasks.unpack(task.test_set())
    x = x[:, :batch]
    if getattr(model, "vocab_size", None) is None:
        x = x.astype(model.dtype)
    # the batch axis of the targets: (B, ...) many-to-one, (T, B) many-to-many
    y = y[:batch] if task.readout == "last" else y[:, :batch]
    return x, y, None if lengths is None else lengths[:batch]


def network_diagnostics(model, task, batch=16, n_exponents=3):
    """What a network does with the task's test inputs (the first ``batch`` sequences): the
    top Lyapunov exponents, the decay rate of the Jacobian norms with lag, and the batch
    mean of ||dL/dh_t|| of the test loss; (layer, direction[, exponent | time]) each.

    A sweep with ``[diagnostics] before_after = true`` records them for the network as
    initialised and as trained, over ``when`` ("initial", "final").
    """
    from .. import analysis, losses

    x, y, lengths = _test_batch(model, task, batch)
    warmup = x.shape[0] // 4
    S = model.cell.spec.state_size(model.hidden_size)
    per_step = lengths if task.readout == "all" else None
    with np.errstate(all="ignore"):
        lam = diagnostics.lyapunov_spectrum(model, x, lengths=lengths, n_exponents=min(
            n_exponents, S), warmup=warmup)["lyapunov"].mean("batch")  # fmt: skip
        jac = diagnostics.jacobian_norms(model, x, lengths=lengths)["jacobian_norm"]
        rate = analysis.decay_rate(np.exp(np.log(jac).mean("batch")).rename("jacobian_norm"))
        _, d_out = losses.get(task.loss)(model.forward(x, lengths=lengths).output, y, per_step)
        grad = diagnostics.gradient_norms(model, x, d_out, lengths=lengths)["grad_norm"]
        grad = grad.mean("batch")
    return {
        "lyapunov_top": lam.assign_attrs(
            units="nats per step", description=f"largest Lyapunov exponents, mean over {batch} "
            f"test sequences, warmup {warmup}"),
        "jacobian_decay": rate.assign_attrs(
            units="nats per step", description="least-squares slope of log ||ds_T/ds_t|| "
            f"(geometric mean over {batch} test sequences) against lag"),
        "test_grad_norm": grad.assign_attrs(
            units="1", description=f"||dL/dh_t|| of the test loss, mean over {batch} test "
            "sequences"),
    }  # fmt: skip


def before_after(before, after):
    """Two :func:`network_diagnostics` results as variables over ``when``."""
    import xarray as xr

    return {k: xr.concat([before[k], after[k]], dim="when", combine_attrs="override")
            .assign_coords(when=["initial", "final"]) for k in before}  # fmt: skip


def shape_key(config):
    """What decides the variables, sizes and attrs of a point's result: its config without
    what an ensemble's members may differ in (``init``, ``seed``, ``forget_bias``) and
    without ``[train]`` (the settings change a run's values and recorded steps, never its
    variables). Points with the same key give results of the same shape."""
    c = copy.deepcopy({k: v for k, v in config.items() if k != "train"})
    for k in PER_MEMBER:
        c["model"].pop(k, None)
    return json.dumps(c, sort_keys=True)


def init_diagnostics(model, task, batch=16):
    """Spectral radius of W_hh (largest over gate blocks) and the largest Lyapunov exponent
    along the test inputs, at initialisation: (layer, direction) each."""
    radius = diagnostics.weight_powers(model, 1)["spectral_radius"]
    if "gate" in radius.dims:
        radius = radius.max("gate")
    x, _, lengths = _test_batch(model, task, batch)
    warmup = x.shape[0] // 4
    lam = diagnostics.lyapunov_spectrum(model, x, lengths=lengths, n_exponents=1,
                                        warmup=warmup)["lyapunov"]  # fmt: skip
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
