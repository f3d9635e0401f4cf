"""Training settings, validated once: :class:`TrainSpec` (shared by ``nr.train`` and sweeps).

Row ``s`` of a training record describes the model after ``s`` updates, ``s = 0 .. steps``;
:meth:`TrainSpec.plan` says which rows are recorded, evaluated and snapshotted.
"""

import inspect
from dataclasses import dataclass, fields

import numpy as np

from .. import _checks
from .. import optim as _optim
from .. import schedules as _schedules

#: Diagnostics that :func:`numrnn.train` can snapshot, with what each records.
DIAGNOSTICS = {
    "grad_norm": "||dL/dh_t|| of the training loss, from BPTT (LSTM: also ||dL/dc_t||)",
    "jacobian_norm": "spectral norm of ds_T/ds_t within each layer (numrnn.diagnostics)",
}


def make_optimizer(optimizer):
    """An Optimizer from an instance (returned as it is), a name, or a ``(name, kwargs)``
    pair."""
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


def optimizer_spec(opt, member=None):
    """``{"name": ..., **arguments}`` of an optimizer, for a run's attrs; with one learning
    rate per ensemble member, ``member``'s (what that member alone would record)."""
    names = {cls: name for name, cls in _optim.OPTIMIZERS.items()}
    args = {p: getattr(opt, p) for p in inspect.signature(type(opt)).parameters}
    if isinstance(args.get("lr"), tuple) and member is not None:
        args["lr"] = args["lr"][member]
    return {"name": names.get(type(opt), type(opt).__name__), **args}


def _every(name, value, steps, default_count):
    """A positive interval, or about ``steps / default_count`` for None."""
    value = _checks.check_int(name, value, 1, none_ok=True)
    return max(1, steps // default_count) if value is None else value


def _check_seed(seed):
    """An int >= 0, None (fresh entropy), or a list of those (one per ensemble member)."""
    for v in seed if isinstance(seed, (list, tuple, np.ndarray)) else [seed]:
        _checks.check_int("seed", v, 0, none_ok=True)


def _early_stopping(value):
    """``{"patience": int >= 1, "min_delta": float >= 0}`` from an int patience or a dict
    (``min_delta`` 0 unless given), or None."""
    if value is None:
        return None
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"patience", "min_delta"})
        if unknown or "patience" not in value:
            raise ValueError("early_stopping must be a patience (int) or a dict with "
                             f"'patience' and optionally 'min_delta', got {value!r}")  # fmt: skip
        patience, min_delta = value["patience"], value.get("min_delta", 0.0)
    else:
        patience, min_delta = value, 0.0
    return {
        "patience": _checks.check_int("early_stopping patience", patience, 1),
        "min_delta": _checks.check_number("early_stopping min_delta", min_delta, 0.0),
    }


@dataclass(frozen=True)
class TrainSpec:
    """The settings of a training run. Constructing one checks them all
    (ValueError/TypeError naming the argument); the rest of numrnn trusts it.

    Parameters
    ----------
    steps, batch_size, optimizer, clip, clip_value, seed, record_every, eval_every
        As in :func:`numrnn.train`. ``optimizer`` keeps what was given:
        :meth:`optimizer_instance` returns an instance given as such (its state goes on)
        or builds a new one from a ``(name, kwargs)`` pair.
    diagnostics, diagnostics_every, weights_at, progress, backend
        As in :func:`numrnn.train`.
    schedule : Schedule, name, (name, kwargs) pair or None
        As in :func:`numrnn.train`; stored as the :class:`~numrnn.schedules.Schedule`
        it names (a 2-element list, as TOML writes a pair, is a pair too).
    tbptt : int or None
        As in :func:`numrnn.train`.
    early_stopping : int, dict or None
        As in :func:`numrnn.train`; stored as ``{"patience": int, "min_delta": float}``.

    Examples
    --------
    >>> from numrnn.training import TrainSpec
    >>> spec = TrainSpec(100, 32, ("adam", {"lr": 1e-3}), clip=1.0)
    >>> spec.eval_every, spec.diagnostics_every            # about 20 and 10 per run
    (5, 10)
    >>> TrainSpec(100, 32, ("sgd", {"lr": 0.1}), clip=-1)
    Traceback (most recent call last):
    ...
    ValueError: clip must be finite and in (0.0, inf], got -1.0
    """

    steps: int
    batch_size: int
    optimizer: object
    clip: object = None
    clip_value: object = None
    seed: object = None
    record_every: object = 1
    eval_every: object = None
    diagnostics: tuple = ()
    diagnostics_every: object = None
    weights_at: tuple = ()
    progress: bool = True
    backend: str = "cpu"
    schedule: object = None
    tbptt: object = None
    early_stopping: object = None

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalised values are set once, here
        set_(self, "steps", _checks.check_int("steps", self.steps, 0))
        set_(self, "batch_size", _checks.check_positive_int("batch_size", self.batch_size))
        make_optimizer(self.optimizer)  # checks the name and arguments
        for name in ("clip", "clip_value"):  # checked, but stored as given (attrs: 1 vs 1.0)
            _checks.check_positive_number(name, getattr(self, name), none_ok=True)
        _check_seed(self.seed)
        set_(self, "diagnostics", tuple(self.diagnostics))
        unknown = sorted(set(self.diagnostics) - set(DIAGNOSTICS))
        if unknown:
            raise ValueError(f"unknown diagnostics {unknown}; known: {', '.join(DIAGNOSTICS)}")
        set_(self, "record_every", _every("record_every", self.record_every, self.steps, 1))
        set_(self, "eval_every", _every("eval_every", self.eval_every, self.steps, 20))
        set_(self, "diagnostics_every",
             _every("diagnostics_every", self.diagnostics_every, self.steps, 10))  # fmt: skip
        _checks.check_choice("backend", self.backend, ("cpu", "cuda"))
        at = self.weights_at
        if not isinstance(at, (list, tuple, np.ndarray)):
            raise TypeError(f"weights_at must be a list of steps, got {at!r}")
        at = sorted({_checks.check_int("weights_at", s, 0) for s in at})
        if at and at[-1] > self.steps:
            raise ValueError(f"weights_at must lie in 0..steps={self.steps}, got {at[-1]}")
        set_(self, "weights_at", tuple(at))
        if self.schedule is not None:  # checks the name and arguments
            set_(self, "schedule", _schedules.get(self.schedule))
        set_(self, "tbptt", _checks.check_int("tbptt", self.tbptt, 1, none_ok=True))
        set_(self, "early_stopping", _early_stopping(self.early_stopping))

    @classmethod
    def names(cls):
        """The settings' names (``nr.train``'s keyword arguments after model and task).

        Returns
        -------
        tuple of str
        """
        return tuple(f.name for f in fields(cls))

    def optimizer_instance(self):
        """The optimizer: the instance given, or a new one built from a name or pair.

        Returns
        -------
        numrnn.optim.Optimizer
        """
        return make_optimizer(self.optimizer)

    def plan(self):
        """The steps recorded, evaluated and snapshotted by a run that does not diverge
        (a diverging run also records the step where it diverged, then stops).

        Returns
        -------
        dict of int arrays ``recorded``, ``eval`` and ``diagnostics`` (empty when off).
        """
        s = np.arange(self.steps + 1)
        last = s == self.steps
        is_eval = (s % self.eval_every == 0) | last
        is_diag = ((s % self.diagnostics_every == 0) | last) & bool(self.diagnostics)
        recorded = (s % self.record_every == 0) | is_eval | is_diag | last
        return {"recorded": s[recorded], "eval": s[is_eval], "diagnostics": s[is_diag]}

    def record(self, opt, seed, member=None):
        """The settings as stored in a run's ``attrs["train"]``.

        Parameters
        ----------
        opt : numrnn.optim.Optimizer
            The optimizer the run used (stored by name and arguments).
        seed : int
            The seed the run used (drawn when ``seed`` was None).
        member : int or None
            The ensemble member the record is for (its learning rate, if each has one).

        Returns
        -------
        dict
            JSON-serialisable; ``tbptt`` and ``early_stopping`` only when set.
        """
        extra = {
            k: getattr(self, k) for k in ("tbptt", "early_stopping") if getattr(self, k) is not None
        }  # only when used: older records stay as they were
        return {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "optimizer": optimizer_spec(opt, member),
            "schedule": None if self.schedule is None else self.schedule.spec(),
            "clip": self.clip,
            "clip_value": self.clip_value,
            "record_every": self.record_every,
            "eval_every": self.eval_every,
            "diagnostics": list(self.diagnostics),
            "diagnostics_every": self.diagnostics_every,
            "weights_at": list(self.weights_at),
            "seed": seed,
            **extra,
        }


def schedule(steps, record_every=1, eval_every=None, diagnostics_every=None, diagnostics=False):
    """The steps :func:`numrnn.train` records, evaluates and snapshots (see
    :meth:`TrainSpec.plan`), for a run that does not diverge.

    Parameters
    ----------
    steps, record_every, eval_every, diagnostics_every
        As in :func:`numrnn.train`.
    diagnostics : bool, default False
        Whether any diagnostics are snapshotted.

    Returns
    -------
    dict of str to ndarray of int
        ``recorded``, ``eval`` and ``diagnostics`` (empty when off).

    Examples
    --------
    >>> from numrnn.training import schedule
    >>> plan = schedule(10, record_every=5, eval_every=4)
    >>> plan["recorded"], plan["eval"]
    (array([ 0,  4,  5,  8, 10]), array([ 0,  4,  8, 10]))
    """
    # a stand-in optimizer and diagnostic: the plan depends only on the counts
    snapshots = tuple(DIAGNOSTICS)[:1] if diagnostics else ()
    return TrainSpec(steps, 1, ("sgd", {"lr": 1.0}), record_every=record_every,
                     eval_every=eval_every, diagnostics=snapshots,
                     diagnostics_every=diagnostics_every).plan()  # fmt: skip
