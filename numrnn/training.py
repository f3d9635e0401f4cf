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
from .models import Ensemble
from .results import layer_coords, model_attrs

__all__ = ["DIAGNOSTICS", "schedule", "train", "train_members"]

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


# Sequences per forward pass in evaluation: the test set runs in pieces whose trajectories
# stay in cache, instead of one pass allocating (and page-faulting in) all of them. The
# same pieces for any ensemble size, so that a member's test loss is its own bit for bit.
EVAL_CHUNK = 64


def _evaluate(model, task, test, loss_fn, backend):
    """[(test loss, test metric)] per member of the model in eval mode on the task's test set."""
    x, y = test
    with np.errstate(all="ignore"):
        pieces = [model.forward(x[:, i : i + EVAL_CHUNK], backend=backend).output
                  for i in range(0, x.shape[1], EVAL_CHUNK)]  # fmt: skip
        axis = 0 if model.readout == "last" and model.output_size else 1
        out = np.concatenate(pieces, axis=axis + isinstance(model, Ensemble))
        outs = out if isinstance(model, Ensemble) else [out]
        pairs = []
        for o in outs:
            loss, _ = loss_fn(o, y)
            pairs.append((loss, _losses.accuracy(o, y) if task.loss == "xent" else loss))
    return pairs


def _seeds(seed, members):
    """One int seed per member (``members`` None: a single model)."""
    n = 1 if members is None else members
    if members is not None and isinstance(seed, (list, tuple, np.ndarray)):
        if len(seed) != n:
            raise ValueError(f"seed must be an int or a list of {n} (one per member), got "
                             f"{len(seed)}")  # fmt: skip
        seeds = list(seed)
    else:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        seeds = [seed] * n
    for v in seeds:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"seed must be a non-negative int, None or one per member, got {v!r}")
    return [int(v) for v in seeds]


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
        ``output_size`` and ``readout`` equal to the task's (else ValueError); or an
        :class:`~numrnn.models.Ensemble` of such models, whose K members train together
        (one compiled call per layer and step) and each exactly as it would alone: the
        same batches, dropout masks, clipping, updates and divergence, bit for bit.
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
        The model's initial weights are the model's own (its ``seed``). An ensemble takes
        one seed for every member or a list of one per member.
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

    For an ensemble the variables gain a leading ``member`` dimension (NaN at the steps a
    member did not record, e.g. after it diverged), ``status`` and ``diverged_at`` are
    (member,) variables, and a diverged member's weights stay as they were when it
    diverged while the others train on.
    """
    runs = train_members(
        model, task, steps, batch_size, optimizer, clip=clip, clip_value=clip_value, seed=seed,
        record_every=record_every, eval_every=eval_every, diagnostics=diagnostics,
        diagnostics_every=diagnostics_every, progress=progress, backend=backend,
    )  # fmt: skip
    if not isinstance(model, Ensemble):
        return runs[0]
    import xarray as xr

    meta = {"status": [r.attrs["status"] for r in runs],
            "diverged_at": [r.attrs["diverged_at"] for r in runs]}  # fmt: skip
    ds = xr.concat(
        [r.drop_attrs(deep=False) for r in runs],
        dim="member",
        join="outer",
        coords="minimal",
        data_vars="all",
    )
    ds = ds.assign_coords(member=np.arange(len(runs)))
    ds["status"] = ("member", np.array(meta["status"], dtype=object),
                    {"description": "ok or diverged"})  # fmt: skip
    ds["diverged_at"] = ("member", np.array(meta["diverged_at"], np.int64),
                         {"description": "step where the member diverged, -1 if not"})  # fmt: skip
    attrs = {k: v for k, v in runs[0].attrs.items() if k not in ("status", "diverged_at")}
    attrs.update(model_attrs(model), init=_json_or_repr(model.config["init"]))
    ds.attrs.update(attrs, train=_json_or_repr(
        {**json.loads(runs[0].attrs["train"]), "seed": [json.loads(r.attrs["train"])["seed"]
                                                       for r in runs]}))  # fmt: skip
    return ds


def train_members(
    model, task, steps, batch_size, optimizer, clip=None, clip_value=None, seed=None,
    record_every=1, eval_every=None, diagnostics=(), diagnostics_every=None, progress=True,
    backend="cpu",
):  # fmt: skip
    """:func:`train`, returning one Dataset per member (a list of one for a single model),
    each exactly what :func:`train` returns for that member trained alone."""
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
    ensemble = isinstance(model, Ensemble)
    K = model.members
    seeds = _seeds(seed, K if ensemble else None)
    streams = [[np.random.default_rng(s) for s in np.random.SeedSequence(v).spawn(2)]
               for v in seeds]  # fmt: skip
    data_rngs = [d for d, _ in streams]
    drop_rngs = [r for _, r in streams] if ensemble else streams[0][1]
    shared_data = len(set(seeds)) == 1  # every member draws the same batches: draw them once

    def member(d, k):  # member k's part of a dict of (stacked) arrays, as views
        return {n: v[k] for n, v in d.items()} if ensemble else d

    loss_fn = _losses.get(task.loss)
    test = task.test_set()
    test = (test[0].astype(model.dtype, copy=False), test[1])
    want_norms = "grad_norm" in diagnostics
    want_jac = "jacobian_norm" in diagnostics

    rows = [{"step": [], "loss": [], "grad_norm_total": [], "test_loss": [], "test_metric": []}
            for _ in range(K)]  # fmt: skip
    snaps = [{} for _ in range(K)]  # name -> list of (L, dirs, T) arrays (None: not taken)
    status, diverged_at, frozen = ["ok"] * K, [-1] * K, {}
    alive = list(range(K))
    name = f"{K} x {model.cell_name}" if ensemble else model.cell_name
    bar = tqdm(total=steps, disable=not progress, desc=f"{name} on {task.name}")
    try:
        for s in range(steps + 1):
            if shared_data:
                x, y = task.sample(batch_size, data_rngs[0])
                ys = [y] * K
            else:
                batches = [task.sample(batch_size, r) for r in data_rngs]
                x, ys = np.stack([b[0] for b in batches]), [b[1] for b in batches]
            x = x.astype(model.dtype, copy=False)
            loss, norm, grads, norms = [math.nan] * K, [math.nan] * K, None, {}
            # a member whose last update made its weights non-finite has diverged; it
            # leaves the pass (zeroed, so the others' pass runs) and gets loss NaN
            lost = {k for k in alive if not _all_finite(member(model.params, k))}
            for k in lost:
                frozen[k] = _retire(member(model.params, k))
            if len(lost) < len(alive):
                with np.errstate(all="ignore"):
                    res = model.forward(x, train=True, rng=drop_rngs, backend=backend)
                    outs = res.output if ensemble else [res.output]
                    d_out = []
                    for k in range(K):
                        value, d = loss_fn(outs[k], ys[k])
                        loss[k] = value if k in alive and k not in lost else math.nan
                        d_out.append(d)
                    d_out = np.stack(d_out) if ensemble else d_out[0]
                    want = s in diags and want_norms
                    g = model.backward(res, d_out, norms=want, input_grad=False)
                    grads, norms = g.params, g.norms
                    for k in alive:
                        if k not in lost:
                            norm[k] = _optim.global_norm(member(grads, k))
            bad = {k for k in alive if not (math.isfinite(loss[k]) and math.isfinite(norm[k]))}
            writing = [k for k in alive if k in bad or s in recorded]
            good = [k for k in writing if k not in bad]
            tests = (_evaluate(model, task, test, loss_fn, backend)
                     if s in evals and good else None)  # fmt: skip
            jac = None
            if s in diags and want_jac and good:
                with np.errstate(all="ignore"):
                    jac = _diag.jacobian_norms(model, x, backend=backend).jacobian_norm.values
                jac = jac if ensemble else jac[None]
            for k in writing:
                r = rows[k]
                r["step"].append(s)
                r["loss"].append(loss[k])
                r["grad_norm_total"].append(norm[k])
                t_loss, t_metric = tests[k] if tests and k not in bad else (math.nan, math.nan)
                r["test_loss"].append(t_loss)
                r["test_metric"].append(t_metric)
                taken = {}
                if s in diags and k not in bad:
                    for n, a in norms.items():
                        taken[n] = np.nanmean(a[k] if ensemble else a, axis=2)
                    if jac is not None:
                        taken["jacobian_norm"] = np.nanmean(jac[k], axis=2)
                sk = snaps[k]
                for n in [*sk, *(n for n in taken if n not in sk)]:
                    sk.setdefault(n, [None] * (len(r["step"]) - 1))
                    sk[n].append(taken.get(n))
            for k in sorted(bad):  # stop the member; keep its weights as they are now
                status[k], diverged_at[k] = "diverged", s
                if k not in frozen:
                    frozen[k] = _retire(member(model.params, k))
                alive.remove(k)
            if s == steps or not alive:
                break
            with np.errstate(all="ignore"):
                for k in range(K):
                    g_k = member(grads, k)
                    if k not in alive:  # retired: zero gradient, zero weights
                        for v in g_k.values():
                            v[...] = 0
                        continue
                    if clip_value is not None:
                        _optim.clip_grad_value(g_k, clip_value)
                    if clip is not None:
                        _optim.clip_grad_norm(g_k, clip)
                opt.step(model.params, grads)
                for k in frozen:  # the optimizer's momentum would move them: re-zero
                    _retire(member(model.params, k))
            bar.update(1)
            if s % max(1, min(eval_every, 50)) == 0:
                bar.set_postfix(loss=f"{np.mean([loss[k] for k in alive]):.4g}", refresh=False)
    finally:
        bar.close()
        for k, params in frozen.items():  # undo the updates made after a member diverged
            for n, v in member(model.params, k).items():
                v[...] = params[n]

    train_cfg = {
        "steps": steps,
        "batch_size": int(batch_size),
        "optimizer": _optimizer_spec(opt),
        "clip": clip,
        "clip_value": clip_value,
        "record_every": record_every,
        "eval_every": eval_every,
        "diagnostics": list(diagnostics),
        "diagnostics_every": diag_every,
    }
    models = model.unstack() if ensemble else [model]
    return [
        _dataset(
            xr,
            models[k],
            task,
            rows[k],
            snaps[k],
            {**train_cfg, "seed": seeds[k]},
            status[k],
            diverged_at[k],
        )  # fmt: skip
        for k in range(K)
    ]


def _retire(params):
    """Zero a diverged member's weights (so that an ensemble's pass stays finite) and return
    a copy of what they were, to be put back when training ends."""
    saved = {n: v.copy() for n, v in params.items()}
    for v in params.values():
        v[...] = 0
    return saved


def _dataset(xr, model, task, rows, snaps, train_cfg, status, diverged_at):
    """One run's record as the Dataset :func:`train` returns."""
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
