"""Learning-rate schedules: the factor that multiplies an optimizer's rate at each update.

A schedule is a callable ``schedule(step) -> factor``. ``step`` counts the updates already
made (0-based), so update ``step + 1`` uses the rate ``base_lr * schedule(step)``, where
``base_lr`` is the rate the optimizer was built with; with one rate per ensemble member
(:class:`numrnn.optim.Optimizer`), the factor multiplies every member's rate. The factors
are those of ``torch.optim.lr_scheduler``: a torch optimizer whose scheduler is stepped once
after every update uses the same rates, to rounding (numrnn computes each factor in closed
form, where torch updates most rates recursively).

=============  ==========================  ===========================================
name           class                       torch
=============  ==========================  ===========================================
"step"         :class:`StepDecay`          ``StepLR(step_size, gamma)``
"exponential"  :class:`ExponentialDecay`   ``ExponentialLR(gamma)``
"cosine"       :class:`CosineAnnealing`    ``CosineAnnealingLR(T_max, eta_min)``
"warmup"       :class:`LinearWarmup`       ``LinearLR(start_factor, end_factor, total_iters)``
"sequential"   :class:`Sequential`         ``SequentialLR(schedulers, milestones)``
=============  ==========================  ===========================================

Schedules hold no state (a factor depends on ``step`` alone), so one may be shared by runs.
:func:`get` builds one from a name or a ``(name, kwargs)`` pair, the form
:func:`numrnn.train` takes, and :meth:`Schedule.spec` gives that pair back for a run's
attrs.
"""

from __future__ import annotations

import abc
import bisect
import inspect
import math

from ._checks import check_int, check_number
from ._registry import Registry

__all__ = [
    "SCHEDULES",
    "CosineAnnealing",
    "ExponentialDecay",
    "LinearWarmup",
    "Schedule",
    "Sequential",
    "StepDecay",
    "get",
]


class Schedule(abc.ABC):
    """Base class: ``schedule(step)`` is the factor of the rate of update ``step + 1``.

    Subclasses implement ``_factor(step)`` for a checked ``step`` (an int >= 0); their
    constructor's arguments, stored under the same names, are what :meth:`spec` records.

    Examples
    --------
    >>> from numrnn import schedules
    >>> sched = schedules.get(("step", {"step_size": 2, "gamma": 0.5}))
    >>> isinstance(sched, schedules.Schedule), [sched(s) for s in range(5)]
    (True, [1.0, 1.0, 0.5, 0.5, 0.25])
    """

    def __call__(self, step: int) -> float:
        """The factor of the rate of update ``step + 1``.

        Parameters
        ----------
        step : int
            Updates already made, >= 0.

        Returns
        -------
        float
        """
        return float(self._factor(check_int("step", step, 0)))

    @abc.abstractmethod
    def _factor(self, step: int) -> float:
        """The factor at ``step`` (an int >= 0, checked)."""

    def _arguments(self):
        return {n: getattr(self, n) for n in inspect.signature(type(self)).parameters}

    def spec(self):
        """``[name, kwargs]``: what :func:`get` builds this schedule from, JSON-serialisable.

        Returns
        -------
        list
            The registered name and the arguments, e.g. ``["cosine", {"T_max": 100,
            "min_factor": 0.0}]``.
        """
        names = {cls: name for name, cls in SCHEDULES.items()}
        return [names.get(type(self), type(self).__name__), self._arguments()]

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={v!r}" for n, v in self._arguments().items())
        return f"{type(self).__name__}({args})"


def _check_factor(name, value, open_lo=False):
    return check_number(name, value, 0.0, 1.0, open_lo=open_lo)


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` updates (``StepLR``).

    ``factor(step) = gamma ** (step // step_size)``.

    Parameters
    ----------
    step_size : int
        Updates between decays, >= 1.
    gamma : float, optional
        Factor of each decay, in (0, 1].

    Examples
    --------
    >>> from numrnn.schedules import StepDecay
    >>> [StepDecay(step_size=3, gamma=0.1)(s) for s in (0, 2, 3, 6)]
    [1.0, 1.0, 0.1, 0.010000000000000002]
    """

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = _check_factor("gamma", gamma, open_lo=True)

    def _factor(self, step):
        return self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """Multiply the rate by ``gamma`` at every update (``ExponentialLR``).

    ``factor(step) = gamma ** step``.

    Parameters
    ----------
    gamma : float
        Factor per update, in (0, 1].

    Examples
    --------
    >>> from numrnn.schedules import ExponentialDecay
    >>> [ExponentialDecay(gamma=0.5)(s) for s in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, gamma: float):
        self.gamma = _check_factor("gamma", gamma, open_lo=True)

    def _factor(self, step):
        return self.gamma**step


class CosineAnnealing(Schedule):
    """Anneal the rate along a half cosine over ``T_max`` updates (``CosineAnnealingLR``,
    Loshchilov & Hutter 2017 without restarts).

    ``factor(step) = min_factor + (1 - min_factor) (1 + cos(pi step / T_max)) / 2``: from 1
    at step 0 to ``min_factor`` at ``T_max``. As in torch the cosine goes on past
    ``T_max``, so the factor rises again to 1 at ``2 T_max`` (periodic in ``2 T_max``):
    choose ``T_max`` >= the run's updates for a plain annealing.

    Parameters
    ----------
    T_max : int
        Updates from the largest rate to the smallest, >= 1.
    min_factor : float, optional
        The smallest factor, in [0, 1]: torch's ``eta_min`` as a fraction of the base rate
        (``eta_min = min_factor * base_lr``), so that it scales each member's rate alike.

    Examples
    --------
    >>> from numrnn.schedules import CosineAnnealing
    >>> [CosineAnnealing(T_max=4, min_factor=0.2)(s) for s in (0, 2, 4, 8)]
    [1.0, 0.6000000000000001, 0.2, 1.0]
    """

    def __init__(self, T_max: int, min_factor: float = 0.0):
        self.T_max = check_int("T_max", T_max, 1)
        self.min_factor = _check_factor("min_factor", min_factor)

    def _factor(self, step):
        cos = math.cos(math.pi * step / self.T_max)
        return self.min_factor + (1 - self.min_factor) * (1 + cos) / 2


class LinearWarmup(Schedule):
    """Change the factor linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` updates, then hold it (``LinearLR``): a linear warm-up by default.

    ``factor(step) = start_factor + (end_factor - start_factor) min(step, total_iters) /
    total_iters``. Follow it by another schedule with :class:`Sequential`.

    Parameters
    ----------
    start_factor : float, optional
        The factor of the first update, in (0, 1]; torch's default 1/3.
    end_factor : float, optional
        The factor from update ``total_iters + 1`` on, in [0, 1].
    total_iters : int, optional
        Updates over which the factor changes, >= 1.

    Examples
    --------
    >>> from numrnn.schedules import LinearWarmup
    >>> [LinearWarmup(start_factor=0.25, total_iters=3)(s) for s in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):  # fmt: skip
        self.start_factor = _check_factor("start_factor", start_factor, open_lo=True)
        self.end_factor = _check_factor("end_factor", end_factor)
        self.total_iters = check_int("total_iters", total_iters, 1)

    def _factor(self, step):
        change = (self.end_factor - self.start_factor) * min(step, self.total_iters)
        return self.start_factor + change / self.total_iters


class Sequential(Schedule):
    """Schedules one after another, each from its own step 0 (``SequentialLR``).

    Schedule ``i`` runs from update ``milestones[i - 1]`` on (0 for the first): at ``step``
    the factor is ``schedules[i](step - milestones[i - 1])``. A warm-up, then cosine
    annealing: ``("sequential", {"schedules": [("warmup", {"total_iters": 10}), ("cosine",
    {"T_max": 90})], "milestones": [10]})``.

    Parameters
    ----------
    schedules : list of Schedule, names or (name, kwargs) pairs
        One or more, anything :func:`get` takes.
    milestones : list of int
        ``len(schedules) - 1`` increasing steps >= 1 at which the next schedule starts.

    Examples
    --------
    >>> from numrnn import schedules
    >>> sched = schedules.get(("sequential", {
    ...     "schedules": [("warmup", {"start_factor": 0.5, "total_iters": 2}),
    ...                   ("exponential", {"gamma": 0.5})],
    ...     "milestones": [2]}))
    >>> [sched(s) for s in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, schedules, milestones=()):
        if not isinstance(schedules, (list, tuple)) or not schedules:
            raise ValueError(f"schedules must be a non-empty list of schedules, got "
                             f"{schedules!r}")  # fmt: skip
        self.schedules = tuple(get(s) for s in schedules)
        if not isinstance(milestones, (list, tuple)):
            raise TypeError(f"milestones must be a list of steps, got {milestones!r}")
        self.milestones = tuple(check_int("milestones", m, 1) for m in milestones)
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(
                f"milestones must have one step fewer than schedules "
                f"({len(self.schedules) - 1}), got {len(self.milestones)}"
            )
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones must increase, got {list(self.milestones)}")

    def _factor(self, step):
        i = bisect.bisect_right(self.milestones, step)
        return self.schedules[i](step - (self.milestones[i - 1] if i else 0))

    def spec(self):
        """What :func:`get` builds this schedule from, JSON-serialisable.

        Returns
        -------
        list
            ``["sequential", {"schedules": [each one's spec], "milestones": [...]}]``.
        """
        return ["sequential", {"schedules": [s.spec() for s in self.schedules],
                               "milestones": list(self.milestones)}]  # fmt: skip


SCHEDULES = Registry(
    "schedule",
    {
        "step": StepDecay,
        "exponential": ExponentialDecay,
        "cosine": CosineAnnealing,
        "warmup": LinearWarmup,
        "sequential": Sequential,
    },
)


def get(spec) -> Schedule:
    """A schedule from a :class:`Schedule` (returned as it is), a name, or a
    ``(name, kwargs)`` pair (a 2-element list too: TOML has no tuples).

    Parameters
    ----------
    spec : Schedule, str or (str, dict)
        E.g. ``("cosine", {"T_max": 100})``; the names are those of :data:`SCHEDULES`.

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or a bad argument value
        (naming the argument).
    TypeError
        For a ``spec`` of another form, or an argument the schedule does not take or
        needs (naming it and listing the accepted ones).

    Examples
    --------
    >>> from numrnn import schedules
    >>> schedules.get(["cosine", {"T_max": 100}])
    CosineAnnealing(T_max=100, min_factor=0.0)
    >>> schedules.get("cosine")
    Traceback (most recent call last):
    ...
    TypeError: schedule 'cosine' takes (T_max, min_factor): missing a required argument: 'T_max'
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        return SCHEDULES.create(spec)
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], dict):
        return SCHEDULES.create(spec[0], **spec[1])
    raise TypeError(
        "schedule must be a numrnn.schedules.Schedule, a name or a (name, kwargs) pair such "
        f"as ('cosine', {{'T_max': 100}}), got {spec!r}"
    )
