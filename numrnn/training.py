"""The training loop: minibatch gradient descent on a task, recorded into an xarray Dataset.

:func:`train` samples batches from a task, runs the model forward (dropout active) and
backward through time, clips the gradient, updates the parameters with an optimizer, and
records the run over a ``step`` dimension. A run whose loss or gradient becomes NaN or inf
stops cleanly and is marked ``attrs["status"] = "diverged"``; nothing is raised.

Row ``s`` of the result describes the model after ``s`` updates, ``s = 0 .. steps``: the loss
and pre-clip gradient norm of the batch drawn at that step (whose gradient makes update
``s + 1``; the last row's batch makes none), the test loss and metric of the same
parameters, and diagnostics snapshots taken on the same batch.
"""

import json
import math

import numpy as np

from . import losses as _losses
from . import optim as _optim
from .results import layer_coords, model_attrs

__all__ = ["DIAGNOSTICS", "schedule", "train"]

#: Diagnostics that :func:`train` can snapshot, with what each records.
DIAGNOSTICS = {
    "grad_norm": "||dL/dh_t|| of the training loss, from BPTT (LSTM: also ||dL/dc_t||)",
    "jacobian_norm": "spectral norm of ds_T/ds_t within each layer (numrnn.diagnostics)",
}


def _check_model_for_task(model, task):
    for attr, hint in (
        ("input_size", "input_size"),
        ("output_size", "output_size="),
        ("readout", "readout="),
    ):
        want, got = getattr(task, attr), getattr(model, attr)
        if want != got:
            raise ValueError(
                f"model.{attr} must equal task.{attr} = {want!r} for task {task.name!r}, got "
                f"{got!r}; build the model with {hint.rstrip('=')}={want!r}"
            )


def _make_optimizer(optimizer):
    """An Optimizer from an instance, a name, or a ``(name, kwargs)`` pair."""
    if isinstance(optimizer, _optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        return _optim.get(optimizer)
    if (
        isinstance(optimizer, (tuple, list))
        and len(optimizer) == 2
        and isinstance(optimizer[1], dict)
    ):
        return _optim.get(optimizer[0], **optimizer[1])
    raise TypeError(
        "optimizer must be a numrnn.optim.Optimizer, a name or a (name, kwargs) pair such as "
        f"('adam', {{'lr': 1e-3}}), got {optimizer!r}"
    )


def _optimizer_spec(opt):
    """``{"name": ..., **arguments}`` of an optimizer, for the run's attrs."""
    import inspect

    names = {cls: name for name, cls in _optim.OPTIMIZERS.items()}
    args = {p: getattr(opt, p) for p in inspect.signature(type(opt)).parameters}
    return {"name": names.get(type(opt), type(opt).__name__), **args}


def _every(name, value, steps, default_count):
    if value is None:
        return max(1, steps // default_count)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def schedule(steps, record_every=1, eval_every=None, diagnostics_every=None, diagnostics=False):
    """The steps :func:`train` records, evaluates and snapshots, for a run that does not
    diverge (a diverging run also records the step where it diverged, then stops).

    Returns
    -------
    dict of int arrays ``recorded``, ``eval`` and ``diagnostics`` (empty when off).
    """
    record_every = _every("record_every", record_every, steps, 1)
    eval_every = _every("eval_every", eval_every, steps, 20)
    diag_every = _every("diagnostics_every", diagnostics_every, steps, 10)
    s = np.arange(steps + 1)
    last = s == steps
    is_eval = (s % eval_every == 0) | last
    is_diag = ((s % diag_every == 0) | last) & bool(diagnostics)
    recorded = (s % record_every == 0) | is_eval | is_diag | last
    return {"recorded": s[recorded], "eval": s[is_eval], "diagnostics": s[is_diag]}


def _json_or_repr(value):
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _all_finite(params):
    return all(np.isfinite(p).all() for p in params.values())


def _evaluate(model, task, test, loss_fn, backend):
    """(test loss, test metric) of the model in eval mode on the task's test set."""
    x, y = test
    with np.errstate(all="ignore"):
        out = model.forward(x, backend=backend).output
        loss, _ = loss_fn(out, y)
        metric = _losses.accuracy(out, y) if task.loss == "xent" else loss
    return loss, metric


def train(
    model,
    task,
    steps,
    batch_size,
    optimizer,
    clip=None,
    clip_value=None,
    seed=None,
    record_every=1,
    eval_every=None,
    diagnostics=(),
    diagnostics_every=None,
    progress=True,
    backend="cpu",
):
    """Train ``model`` on ``task`` in place and record the run.

    Parameters
    ----------
    model : RNN, LSTM or GRU with a head matching the task: ``input_size``,
        ``output_size`` and ``readout`` equal to the task's (else ValueError).
    task : a :class:`numrnn.tasks.Task`; its ``loss`` ("mse" or "xent") is minimised.
    steps : int, the number of parameter updates.
    batch_size : int, sequences per batch, drawn with ``task.sample``.
    optimizer : a :class:`numrnn.optim.Optimizer`, or a ``(name, kwargs)`` pair such as
        ``("adam", {"lr": 1e-3})``. An instance keeps its state (it is not copied).
    clip : float or None; clip the gradient's global norm to this (Pascanu et al. 2013).
    clip_value : float or None; clamp each gradient entry to ``[-clip_value, clip_value]``
        (done before norm clipping, so the final norm is at most ``clip``).
    seed : int or None; seeds the batches and the dropout masks (two independent streams).
        None draws fresh entropy, stored in ``attrs["train"]`` so the run can be repeated.
        The model's initial weights are the model's own (its ``seed``).
    record_every : int; record the loss and gradient norm every this many steps. Evaluation,
        diagnostics and the last step are always recorded as well.
    eval_every : int or None; evaluate on ``task.test_set()`` every this many steps and at
        the last one (None: about 20 evaluations).
    diagnostics : iterable of names in :data:`DIAGNOSTICS` to snapshot.
    diagnostics_every : int or None; snapshot every this many steps and at the last one
        (None: about 10 snapshots).
    progress : bool; show a tqdm progress bar.
    backend : "cpu" or "cuda": where the forward and backward passes run.

    Returns
    -------
    xarray.Dataset over ``step`` (the number of updates made before the row, 0..steps):

    - ``loss`` (step): the training loss of the step's batch;
    - ``grad_norm_total`` (step): the global norm of its gradient *before* clipping;
    - ``test_loss``, ``test_metric`` (step): on the test set, NaN except at evaluation
      steps; the metric is the accuracy for "xent" tasks, the MSE for "mse" tasks;
    - ``grad_norm`` (step, layer, direction, time), and ``cell_grad_norm`` for the LSTM: the
      batch mean of ||dL/dh_t|| (||dL/dc_t||), NaN except at diagnostics steps;
    - ``jacobian_norm`` (step, layer, direction, time): the batch mean of ||ds_T/ds_t||_2
      on the step's batch (eval mode), NaN except at diagnostics steps.

    ``attrs``: ``config`` (model), ``task``, ``train`` and ``init`` as JSON strings,
    ``status`` ("ok" or "diverged"), ``diverged_at`` (the step whose loss or gradient was
    NaN/inf, or whose parameters were; -1 if none), ``loss``, ``metric`` and ``baseline``.
    A diverged run ends at its ``diverged_at`` row, which holds the non-finite values.
    """
    import xarray as xr
    from tqdm import tqdm

    from . import diagnostics as _diag

    _check_model_for_task(model, task)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    steps = int(steps)
    opt = _make_optimizer(optimizer)
    for name, value in (("clip", clip), ("clip_value", clip_value)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    diagnostics = tuple(diagnostics)
    unknown = sorted(set(diagnostics) - set(DIAGNOSTICS))
    if unknown:
        raise ValueError(f"unknown diagnostics {unknown}; known: {', '.join(DIAGNOSTICS)}")
    record_every = _every("record_every", record_every, steps, 1)
    eval_every = _every("eval_every", eval_every, steps, 20)
    diag_every = _every("diagnostics_every", diagnostics_every, steps, 10)
    plan = schedule(steps, record_every, eval_every, diag_every, bool(diagnostics))
    recorded, evals, diags = (set(plan[k].tolist()) for k in ("recorded", "eval", "diagnostics"))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    data_rng, drop_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    loss_fn = _losses.get(task.loss)
    test = task.test_set()
    test = (test[0].astype(model.dtype, copy=False), test[1])
    want_norms = "grad_norm" in diagnostics
    want_jac = "jacobian_norm" in diagnostics

    rows = {"step": [], "loss": [], "grad_norm_total": [], "test_loss": [], "test_metric": []}
    snaps = {}  # name -> list of (L, dirs, T) arrays, one per row (None where not taken)
    status, diverged_at = "ok", -1
    bar = tqdm(total=steps, disable=not progress, desc=f"{model.cell_name} on {task.name}")
    try:
        for s in range(steps + 1):
            is_eval = s in evals
            is_diag = s in diags
            x, y = task.sample(batch_size, data_rng)
            x = x.astype(model.dtype, copy=False)
            loss, norm, grads, norms = math.nan, math.nan, None, {}
            finite_params = _all_finite(model.params)
            if finite_params:
                with np.errstate(all="ignore"):
                    res = model.forward(x, train=True, rng=drop_rng, backend=backend)
                    loss, d_out = loss_fn(res.output, y)
                    g = model.backward(res, d_out, norms=is_diag and want_norms)
                    grads, norms = g.params, g.norms
                    norm = _optim.global_norm(grads)
            bad = not (math.isfinite(loss) and math.isfinite(norm))
            if bad or s in recorded:
                rows["step"].append(s)
                rows["loss"].append(loss)
                rows["grad_norm_total"].append(norm)
                test_loss, test_metric = (
                    _evaluate(model, task, test, loss_fn, backend)
                    if is_eval and not bad
                    else (math.nan, math.nan)
                )
                rows["test_loss"].append(test_loss)
                rows["test_metric"].append(test_metric)
                taken = {}
                if is_diag and not bad:
                    for name, a in norms.items():
                        taken[name] = np.nanmean(a, axis=2)
                    if want_jac:
                        with np.errstate(all="ignore"):
                            jac = _diag.jacobian_norms(model, x, backend=backend)
                            jac = jac.jacobian_norm.values
                        taken["jacobian_norm"] = np.nanmean(jac, axis=2)
                for name in [*snaps, *(n for n in taken if n not in snaps)]:
                    snaps.setdefault(name, [None] * (len(rows["step"]) - 1))
                    snaps[name].append(taken.get(name))
            if bad:
                status, diverged_at = "diverged", s
                break
            if s == steps:
                break
            with np.errstate(all="ignore"):
                if clip_value is not None:
                    _optim.clip_grad_value(grads, clip_value)
                if clip is not None:
                    _optim.clip_grad_norm(grads, clip)
                opt.step(model.params, grads)
            bar.update(1)
            if s % max(1, min(eval_every, 50)) == 0:
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    finally:
        bar.close()

    T = task.seq_len
    coords = {"step": np.asarray(rows["step"], np.int64)}
    data = {
        "loss": ("step", np.asarray(rows["loss"]), {
            "units": "1", "description": f"training loss ({task.loss}) of the step's batch"}),
        "grad_norm_total": ("step", np.asarray(rows["grad_norm_total"]), {
            "units": "1", "description": "global 2-norm of the gradient before clipping"}),
        "test_loss": ("step", np.asarray(rows["test_loss"]), {
            "units": "1", "description": f"{task.loss} on the task's test set (eval mode)"}),
        "test_metric": ("step", np.asarray(rows["test_metric"]), {
            "units": "1",
            "description": ("accuracy" if task.loss == "xent" else "MSE") + " on the test set"}),
    }  # fmt: skip
    if snaps:
        coords.update(layer_coords(model, time=T))
        shape = (model.num_layers, model.num_directions, T)
        desc = {
            "grad_norm": "batch mean of ||dL/dh_t|| of the training loss",
            "cell_grad_norm": "batch mean of ||dL/dc_t|| of the training loss",
            "jacobian_norm": "batch mean of ||ds_T/ds_t||_2 within each layer",
        }
        for name, items in snaps.items():
            arr = np.stack([np.full(shape, np.nan) if a is None else a for a in items])
            dims = ("step", "layer", "direction", "time")
            data[name] = (dims, arr, {"units": "1", "description": desc[name]})
    ds = xr.Dataset(data, coords=coords)
    ds["step"].attrs.update(units="updates", description="parameter updates made before")
    train_cfg = {
        "steps": steps,
        "batch_size": int(batch_size),
        "optimizer": _optimizer_spec(opt),
        "clip": clip,
        "clip_value": clip_value,
        "seed": int(seed),
        "record_every": record_every,
        "eval_every": eval_every,
        "diagnostics": list(diagnostics),
        "diagnostics_every": diag_every,
    }
    ds.attrs.update(
        model_attrs(
            model,
            task=task.config,
            train=train_cfg,
            status=status,
            diverged_at=diverged_at,
            loss=task.loss,
            metric="accuracy" if task.loss == "xent" else "mse",
            baseline=float(task.baseline),
        )
    )
    ds.attrs["init"] = _json_or_repr(model.init)
    return ds
