"""The record of a training run: rows written per member while training, then a Dataset.

A :class:`Recorder` keeps, for every member of the model, the recorded steps' scalars
(loss, gradient norm, test loss and metric, learning rate) and the diagnostics snapshots,
and turns them into the Dataset :func:`numrnn.train` returns; :func:`stack` puts the
members' runs of an ensemble side by side over a ``member`` dimension.
"""

import json

import numpy as np

from ..results import layer_coords, model_attrs
from ..weights import params_dataset

SCALARS = ("loss", "grad_norm_total", "test_loss", "test_metric", "learning_rate")

_SNAPSHOTS = {
    "grad_norm": "batch mean of ||dL/dh_t|| of the training loss",
    "cell_grad_norm": "batch mean of ||dL/dc_t|| of the training loss",
    "jacobian_norm": "batch mean of ||ds_T/ds_t||_2 within each layer",
}


def json_or_repr(value):
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


class Recorder:
    """Rows of K members' runs.

    Parameters
    ----------
    members : int
    time : int or None
        Steps of the diagnostics snapshots (the task's ``seq_len``; with truncated BPTT the
        chunk's length).
    """

    def __init__(self, members, time=None):
        self.time = time
        self.rows = [{"step": [], **{n: [] for n in SCALARS}} for _ in range(members)]
        # name -> list of (L, dirs, T) arrays, None where the row has no snapshot
        self.snaps = [{} for _ in range(members)]
        # label ("initial", "step <n>", "final") -> (updates made, params copy or None)
        self.weights = [{} for _ in range(members)]

    def take_weights(self, k, label, step, params):
        """Member ``k``'s parameters (copied) as they are after ``step`` updates; ``params``
        None records that the run never got there."""
        copy = None if params is None else {n: v.copy() for n, v in params.items()}
        self.weights[k][label] = (step, copy)

    def add(self, k, step, scalars, snapshots):
        """Member ``k``'s row for ``step``: ``scalars`` {name in SCALARS: float} and
        ``snapshots`` {name: (layers, dirs, T) array} (possibly empty)."""
        r = self.rows[k]
        r["step"].append(step)
        for n in SCALARS:
            r[n].append(scalars[n])
        sk = self.snaps[k]
        for n in [*sk, *(n for n in snapshots if n not in sk)]:
            sk.setdefault(n, [None] * (len(r["step"]) - 1))
            sk[n].append(snapshots.get(n))

    def dataset(self, k, model, task, train, status, diverged_at, extra=None):
        """Member ``k``'s run as the Dataset :func:`numrnn.train` returns for a single
        ``model`` (member ``k`` on its own); ``train`` is its ``attrs["train"]``, ``extra``
        more per-member attrs (early stopping's). The parameters taken are variables over
        ``when`` (:mod:`numrnn.weights`)."""
        import xarray as xr

        rows, snaps = self.rows[k], self.snaps[k]
        T = task.seq_len if self.time is None else self.time
        coords = {"step": np.asarray(rows["step"], np.int64)}
        metric = "accuracy" if task.loss == "xent" else "MSE"
        desc = {
            "loss": f"training loss ({task.loss}) of the step's batch",
            "grad_norm_total": "global 2-norm of the gradient before clipping",
            "test_loss": f"{task.loss} on the task's test set (eval mode)",
            "test_metric": f"{metric} on the test set",
            "learning_rate": "rate of the update made from the step's batch (NaN: none made)",
        }
        data = {n: ("step", np.asarray(rows[n]), {"units": "1", "description": desc[n]})
                for n in SCALARS}  # fmt: skip
        if snaps:
            coords.update(layer_coords(model, time=T))
            shape = (model.num_layers, model.num_directions, T)
            for name, items in snaps.items():
                arr = np.stack([np.full(shape, np.nan) if a is None else a for a in items])
                dims = ("step", "layer", "direction", "time")
                data[name] = (dims, arr, {"units": "1", "description": _SNAPSHOTS[name]})
        ds = xr.Dataset(data, coords=coords)
        ds["step"].attrs.update(units="updates", description="parameter updates made before")
        if self.weights[k]:
            ds = ds.merge(params_dataset(model, self.weights[k]))
        ds.attrs.update(
            model_attrs(
                model,
                task=task.config,
                train=train,
                status=status,
                diverged_at=diverged_at,
                loss=task.loss,
                metric="accuracy" if task.loss == "xent" else "mse",
                baseline=float(task.baseline),
                **(extra or {}),
            )
        )
        ds.attrs["init"] = json_or_repr(model.init)
        return ds


#: per-member attrs that an ensemble's record keeps as (member,) variables
_PER_MEMBER = {
    "diverged_at": "step where the member diverged, -1 if not",
    "best_step": "step of the lowest test loss, whose weights the member ends with",
    "stopped_at": "step where early stopping ended the member's training, -1 if not",
}


def stack(runs, model):
    """The members' runs of an ensemble ``model`` as one Dataset over ``member``: NaN where
    a member recorded nothing (after it diverged); ``status`` and ``diverged_at`` become
    (member,) variables, the attrs describe the ensemble."""
    import xarray as xr

    # members that stopped early end at different steps: when_step is then (member, when)
    steps = {tuple(r["when_step"].values) for r in runs if "when_step" in r.coords}
    ds = xr.concat(
        [r.drop_attrs(deep=False) for r in runs],
        dim="member",
        join="outer",
        coords=["when_step"] if len(steps) > 1 else "minimal",
        data_vars="all",
    )
    ds = ds.assign_coords(member=np.arange(len(runs)))
    ds["status"] = ("member", np.array([r.attrs["status"] for r in runs], dtype=object),
                    {"description": "ok or diverged"})  # fmt: skip
    for name, desc in _PER_MEMBER.items():
        if name in runs[0].attrs:
            ds[name] = ("member", np.array([r.attrs[name] for r in runs], np.int64),
                        {"description": desc})  # fmt: skip
    attrs = {k: v for k, v in runs[0].attrs.items() if k not in ("status", *_PER_MEMBER)}
    attrs.update(model_attrs(model), init=json_or_repr(model.config["init"]))
    train = json.loads(runs[0].attrs["train"])
    train["seed"] = [json.loads(r.attrs["train"])["seed"] for r in runs]
    rates = [json.loads(r.attrs["train"])["optimizer"]["lr"] for r in runs]
    if len(set(rates)) > 1:  # a learning-rate grid trained as one ensemble
        train["optimizer"]["lr"] = rates
    ds.attrs.update(attrs, train=json_or_repr(train))
    return ds
