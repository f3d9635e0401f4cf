"""Optimizers and gradient clipping on parameter dicts.

Optimizers follow ``torch.optim``'s update rules operation for operation, so a run here and a
run in PyTorch from the same parameters and gradients agree to rounding. ``step`` updates the
parameter arrays in place (they keep their identity, so views held elsewhere stay valid).
State is kept per parameter name.
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
from collections.abc import Mapping

import numpy as np

from ._checks import check_number, sum_of_squares
from ._registry import Registry
from .kernels import updates as _updates

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "clip_grad_norm",
    "clip_grad_norms",
    "clip_grad_value",
    "get",
    "global_norm",
    "global_norms",
    "settings",
]


class Optimizer(abc.ABC):
    """Base class: validates ``params``/``grads`` and keeps per-parameter state.

    Parameters
    ----------
    lr : float or sequence of float
        Learning rate, > 0. Stored as ``self.lr``; it may be changed between steps to any
        rate >= 0 (a schedule of :mod:`numrnn.schedules` may end at 0, as torch allows). For
        an :class:`~numrnn.Ensemble`'s stacked parameters, a sequence of K rates gives
        member k the rate ``lr[k]``: each member's update is then bit for bit the one it
        would get alone with that rate (a learning-rate grid trained as one ensemble).

    Examples
    --------
    >>> from numrnn import optim
    >>> opt = optim.get("sgd", lr=0.1)
    >>> isinstance(opt, optim.Optimizer), opt
    (True, SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0))
    """

    def __init__(self, lr):
        self._lr = _check_lr(lr)  # > 0; the setter also takes 0, where a schedule ends
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.steps = 0

    def _check(self, params: Mapping, grads: Mapping) -> None:
        if set(params) != set(grads):
            missing = sorted(set(params) - set(grads))
            extra = sorted(set(grads) - set(params))
            raise ValueError(
                f"grads must have the keys of params; missing {missing}, unexpected {extra}"
            )
        for k, p in params.items():
            g = grads[k]
            if not isinstance(p, np.ndarray) or not p.flags.writeable:
                raise ValueError(f"params[{k!r}] must be a writeable numpy array")
            if p.dtype not in _FLOATS:
                raise ValueError(f"params[{k!r}] must be float32 or float64, got {p.dtype}")
            if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(
                    f"grads[{k!r}] must be an array of shape {p.shape} and dtype {p.dtype}, got "
                    f"{getattr(g, 'shape', type(g))} {getattr(g, 'dtype', '')}".rstrip()
                )
            # state kept from earlier steps must still fit (checked before any update)
            for name, s in self.state.get(k, {}).items():
                if not isinstance(s, np.ndarray) or s.shape != p.shape or s.dtype != p.dtype:
                    raise ValueError(
                        f"the optimizer's state {name!r} of params[{k!r}] has shape "
                        f"{getattr(s, 'shape', type(s))} and dtype {getattr(s, 'dtype', '')}, the "
                        f"parameter {p.shape} and {p.dtype}: an optimizer keeps its state per "
                        "parameter name; use a new one for a model of another shape"
                    )

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update to every parameter, in place.

        Parameters
        ----------
        params : dict of str to ndarray
            Parameters, updated in place.
        grads : dict of str to ndarray
            Gradients of the loss, same keys, shapes and dtypes as ``params``.
        """
        self._check(params, grads)
        self.steps += 1
        for k in params:
            self._update(params[k], grads[k], self.state.setdefault(k, {}))

    @property
    def lr(self):
        """The learning rate: a float, or a tuple of one per ensemble member."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _check_lr(value, zero_ok=True)

    def _rate(self, p, divisor=1.0):
        """``lr / divisor`` for parameter ``p`` (see :meth:`_of_rate`)."""
        return self._of_rate(p, lambda lr: lr / divisor)

    def _of_rate(self, p, f):
        """``f(lr)`` for parameter ``p``: a float, or with one rate per member a
        (K, 1, ..., 1) array in ``p``'s dtype of ``f`` applied to the float64 array of
        rates, each entry rounded as the float would be (``f`` must be elementwise)."""
        if not isinstance(self.lr, tuple):
            return f(self.lr)
        if p.ndim == 0 or p.shape[0] != len(self.lr):
            raise ValueError(
                f"lr has {len(self.lr)} rates (one per ensemble member), but a parameter has "
                f"shape {p.shape}: its leading axis must be the {len(self.lr)} members"
            )
        value = f(np.array(self.lr))  # in float64, as Python computes f(lr)
        return value.astype(p.dtype).reshape((-1,) + (1,) * (p.ndim - 1))

    @abc.abstractmethod
    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        """Update one parameter array in place from its gradient and its own state dict."""

    def __repr__(self) -> str:
        args = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in inspect.signature(type(self)).parameters
        )
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    With ``d = g + weight_decay * p``; ``buf = d`` on the first step, then
    ``buf = momentum * buf + d``; the step is ``p -= lr * (d + momentum * buf)`` with Nesterov,
    else ``p -= lr * buf`` (``p -= lr * d`` without momentum).

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    momentum : float, optional
        In [0, 1).
    nesterov : bool, optional
        Nesterov momentum; needs ``momentum > 0``.
    weight_decay : float, optional
        L2 penalty coefficient, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> p, g = {"w": np.array([1.0, 2.0])}, {"w": np.array([1.0, 1.0])}
    >>> opt = optim.SGD(lr=0.1, momentum=0.9)
    >>> opt.step(p, g); opt.step(p, g)           # buffers 1, then 1.9
    >>> p["w"]
    array([0.71, 1.71])
    """

    def __init__(
        self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
    ):
        super().__init__(lr)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, open_hi=True)
        self.nesterov = bool(nesterov)
        self.weight_decay = check_number("weight_decay", weight_decay, 0.0)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _update(self, p, g, state):
        d = g + self.weight_decay * p if self.weight_decay else g
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= self.momentum
                buf += d
            d = d + self.momentum * buf if self.nesterov else buf
        p -= self._rate(p) * d


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), as ``torch.optim.RMSprop``.

    ``v = alpha v + (1 - alpha) g²``; the step is ``g / (sqrt(v) + eps)``, or with
    ``centered`` ``g / (sqrt(v - m²) + eps)`` where ``m`` is the running mean of ``g``;
    with momentum the step goes through a buffer ``buf = momentum buf + step``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    alpha : float, optional
        Smoothing constant, in [0, 1).
    eps : float, optional
        Added to the denominator, >= 0.
    momentum : float, optional
        In [0, 1).
    centered : bool, optional
        Normalise by the estimated variance instead of the second moment.
    weight_decay : float, optional
        L2 penalty coefficient, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> p, g = {"w": np.array([1.0])}, {"w": np.array([4.0])}
    >>> optim.RMSprop(lr=0.01, alpha=0.0, eps=0.0).step(p, g)   # the step is lr * sign(g)
    >>> p["w"]
    array([0.99])
    """

    def __init__(
        self,
        lr: float,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr)
        self.alpha = check_number("alpha", alpha, 0.0, 1.0, open_hi=True)
        self.eps = check_number("eps", eps, 0.0)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, open_hi=True)
        self.centered = bool(centered)
        self.weight_decay = check_number("weight_decay", weight_decay, 0.0)

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not state:
            state["square_avg"] = np.zeros_like(p)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p)
            if self.momentum:
                state["momentum_buffer"] = np.zeros_like(p)
        sq = state["square_avg"]
        sq *= self.alpha
        sq += (1 - self.alpha) * (g * g)
        if self.centered:
            ga = state["grad_avg"]
            ga += (1 - self.alpha) * (g - ga)  # torch's lerp_
            avg = np.sqrt(sq - ga * ga) + self.eps
        else:
            avg = np.sqrt(sq) + self.eps
        if self.momentum:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += g / avg
            p -= self._rate(p) * buf
        else:
            p -= self._rate(p) * (g / avg)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam`` (L2 weight decay, not AdamW).

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    betas : (float, float), optional
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, optional
        Added to the denominator, >= 0.
    weight_decay : float, optional
        L2 penalty coefficient added to the gradient, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> p, g = {"w": np.array([1.0, 1.0])}, {"w": np.array([1e-3, 1e3])}
    >>> optim.Adam(lr=0.1).step(p, g)             # the first step is about lr * sign(g)
    >>> p["w"].round(4)
    array([0.9, 0.9])
    """

    def __init__(
        self,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr)
        if not isinstance(betas, (tuple, list, np.ndarray)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(
            check_number(f"betas[{i}]", b, 0.0, 1.0, open_hi=True) for i, b in enumerate(betas)
        )
        self.eps = check_number("eps", eps, 0.0)
        self.weight_decay = check_number("weight_decay", weight_decay, 0.0)

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        self._adam(p, g, state)

    def _adam(self, p, g, state):
        """The moment estimates and the step, from the gradient ``g`` (decay applied): in
        torch's operations and order, element by element in one compiled pass
        (``kernels/updates.py``), so the two agree to rounding."""
        beta1, beta2 = self.betas
        if not state:
            state["exp_avg"] = np.zeros(p.shape, p.dtype)
            state["exp_avg_sq"] = np.zeros(p.shape, p.dtype)
        m, v = (_contiguous(state, name) for name in ("exp_avg", "exp_avg_sq"))
        step_size = np.asarray(self._rate(p, 1 - beta1**self.steps), p.dtype).reshape(-1)
        c = p if p.flags.c_contiguous else np.ascontiguousarray(p)
        _updates.adam(c.reshape(-1), np.ascontiguousarray(g).reshape(-1), m.reshape(-1),
                      v.reshape(-1), step_size, beta1, beta2,
                      math.sqrt(1 - beta2**self.steps), self.eps)  # fmt: skip
        if c is not p:  # updated in a copy: back into the caller's array
            p[...] = c


def _contiguous(state, name):
    """``state[name]``, replaced by a writeable C-contiguous copy where it is not one (a
    restored checkpoint's), so that the compiled pass updates the array the state holds."""
    a = state[name]
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = state[name] = np.array(a, order="C")
    return a


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019), as
    ``torch.optim.AdamW``.

    Each step first shrinks the parameters, ``p *= 1 - lr * weight_decay`` (with one rate
    per ensemble member, each member's own), then takes Adam's step from the gradient
    alone: the decay is not scaled by Adam's normalisation, unlike :class:`Adam`'s L2
    penalty.

    Parameters
    ----------
    lr : float or sequence of float
        Learning rate, > 0 (see :class:`Optimizer`).
    betas : (float, float), optional
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, optional
        Added to the denominator, >= 0.
    weight_decay : float, optional
        Decoupled weight decay coefficient, >= 0; 0.01 by default, like torch.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> p, g = {"w": np.array([1.0, -1.0])}, {"w": np.array([0.0, 0.0])}
    >>> optim.AdamW(lr=0.1, weight_decay=0.5).step(p, g)  # zero gradient: only the decay
    >>> p["w"]
    array([ 0.95, -0.95])
    """

    def __init__(
        self,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(lr, betas, eps, weight_decay)

    def _update(self, p, g, state):
        if self.weight_decay:
            wd = self.weight_decay
            p *= self._of_rate(p, lambda lr: 1 - lr * wd)  # torch's param.mul_(1 - lr * wd)
        self._adam(p, g, state)


def _check_lr(lr, zero_ok=False):
    """A learning rate > 0 (>= 0 with ``zero_ok``), or a non-empty sequence of them (one
    per member) as a tuple."""
    if isinstance(lr, (list, tuple, np.ndarray)):
        if np.ndim(lr) != 1 or len(lr) == 0:
            raise ValueError(f"lr must be a number or a flat, non-empty list of numbers (one "
                             f"per ensemble member), got {lr!r}")  # fmt: skip
        return tuple(check_number(f"lr[{i}]", v, 0.0, open_lo=not zero_ok)
                     for i, v in enumerate(lr))  # fmt: skip
    return check_number("lr", lr, 0.0, open_lo=not zero_ok)


OPTIMIZERS = Registry("optimizer", {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW})


def get(name: str, **kwargs) -> Optimizer:
    """Build an optimizer by name, e.g. ``get("adam", lr=1e-3)``.

    Parameters
    ----------
    name : {"sgd", "rmsprop", "adam", "adamw"}
    **kwargs
        The optimizer's arguments (``lr`` is required).

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    TypeError
        For an argument the optimizer does not take; the message names it and lists the
        accepted ones.

    Examples
    --------
    >>> from numrnn import optim
    >>> optim.get("adam", lr=1e-3)
    Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)
    """
    return OPTIMIZERS.create(name, **kwargs)


def settings():
    """Every optimizer setting a config may give (``lr``, ``betas``, ...), in the order the
    optimizers declare them.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> from numrnn import optim
    >>> optim.settings()
    ('lr', 'momentum', 'nesterov', 'weight_decay', 'alpha', 'eps', 'centered', 'betas')
    """
    return _settings(tuple(OPTIMIZERS.values()))


@functools.lru_cache(maxsize=16)
def _settings(classes):  # inspect.signature is slow, and a sweep asks once per grid point
    names = {}
    for cls in classes:
        names.update(dict.fromkeys(inspect.signature(cls).parameters))
    return tuple(names)


# --------------------------------------------------------------------------------------------
# Gradient clipping
# --------------------------------------------------------------------------------------------


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """Euclidean norm of all gradient arrays taken together.

    Computed with each array scaled by the largest magnitude, so exploding gradients with
    finite entries above ~1e154 give their finite norm rather than overflowing to inf. inf or
    NaN entries give inf or NaN.

    Parameters
    ----------
    grads : dict of str to ndarray

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> optim.global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])})
    5.0
    >>> float(f"{optim.global_norm({'a': np.array([3e200, 4e200])}):.6g}")   # no overflow
    5e+200
    """
    arrays = [np.asarray(g, dtype=np.float64).ravel() for g in grads.values()]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        sq = sum(sum_of_squares(a) for a in arrays)
    if 1e-200 < sq < math.inf:
        return math.sqrt(sq)
    # Overflowed, underflowed or non-finite: redo it carefully.
    if any(np.isnan(a).any() for a in arrays):
        return math.nan
    scale = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    if scale == 0.0 or math.isinf(scale):
        return scale
    return scale * math.sqrt(sum(sum_of_squares(a / scale) for a in arrays))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Rescale gradients in place so their global norm is at most ``max_norm``.

    Pascanu, Mikolov & Bengio (2013): if ``||g|| > max_norm``, ``g <- g * max_norm / ||g||``.
    Unlike ``torch.nn.utils.clip_grad_norm_`` no 1e-6 is added to the norm, so the clipped
    norm equals ``max_norm`` to rounding.

    Parameters
    ----------
    grads : dict of str to ndarray
        Gradients, scaled in place.
    max_norm : float
        Threshold, > 0.

    Returns
    -------
    float
        The global norm *before* clipping. If it is inf or NaN it is returned as is and the
        gradients are left untouched, so the caller can see the divergence.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    >>> optim.clip_grad_norm(grads, 1.0)
    5.0
    >>> grads["a"], grads["b"]
    (array([0.6]), array([0.8]))
    """
    # a single network is one member: the threshold and the factor in one place
    return float(clip_grad_norms({n: g[None] for n, g in grads.items()}, max_norm)[0])


def global_norms(grads: Mapping[str, np.ndarray]) -> np.ndarray:
    """The global norm of each member's gradient, for arrays stacked on a leading member
    axis (an :class:`~numrnn.Ensemble`'s): :func:`global_norm` of member k's arrays alone,
    bit for bit, from one pass over each array instead of one call per member (at K = 1024
    tiny RNNs, 1024 calls took about 10 ms).

    Parameters
    ----------
    grads : dict of str to ndarray, each of shape (K, ...)

    Returns
    -------
    ndarray of float64, shape (K,)

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> optim.global_norms({"a": np.array([[3.0], [1.0]]), "b": np.array([[4.0], [0.0]])})
    array([5., 1.])
    """
    if len(next(iter(grads.values()))) == 1:  # a single model: one dot per array is cheaper
        return np.array([global_norm({n: g[0] for n, g in grads.items()})])
    arrays = [np.asarray(g, dtype=np.float64) for g in grads.values()]
    K = arrays[0].shape[0]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        # added in the order global_norm adds them, member by member
        sq = sum(sum_of_squares(a.reshape(K, -1)) for a in arrays)
    norms = np.sqrt(sq)
    for k in np.flatnonzero(~((1e-200 < sq) & (sq < math.inf))):  # its careful path
        norms[k] = global_norm({n: a[k] for n, a in zip(grads, arrays, strict=True)})
    return norms


def clip_grad_norms(grads: Mapping[str, np.ndarray], max_norm: float,
                    norms: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """:func:`clip_grad_norm` of each member on its own (bit for bit), for arrays stacked on
    a leading member axis, in place.

    Parameters
    ----------
    grads : dict of str to ndarray, each of shape (K, ...)
        Gradients, scaled in place.
    max_norm : float
        Threshold, > 0.
    norms : ndarray, shape (K,), optional
        The members' norms if known (:func:`global_norms` of these gradients).

    Returns
    -------
    ndarray, shape (K,)
        Each member's norm before clipping; a member whose norm is inf or NaN is left as it
        is.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> grads = {"a": np.array([[3.0], [0.3]]), "b": np.array([[4.0], [0.4]])}
    >>> optim.clip_grad_norms(grads, 1.0)
    array([5. , 0.5])
    >>> grads["a"][:, 0], grads["b"][:, 0]      # the second member is below the threshold
    (array([0.6, 0.3]), array([0.8, 0.4]))
    """
    max_norm = check_number("max_norm", max_norm, 0.0, open_lo=True)
    K = len(next(iter(grads.values())))
    if norms is None:
        norms = global_norms(grads)
    elif np.shape(norms) != (K,):
        raise ValueError(f"norms must have shape ({K},), one per member, got {np.shape(norms)}")
    norms = np.asarray(norms, dtype=np.float64)
    # g <- g * max_norm / ||g||; a factor of 1 (exact) for the members left alone
    factors = [max_norm / n if math.isfinite(n) and n > max_norm else 1.0
               for n in norms.tolist()]  # fmt: skip
    if any(f != 1.0 for f in factors):
        factors = np.array(factors)
        for g in grads.values():
            # in the gradient's dtype, as NumPy multiplies an array by a Python float
            g *= factors.astype(g.dtype).reshape((-1,) + (1,) * (g.ndim - 1))
    return norms


def clip_grad_value(grads: dict[str, np.ndarray], value: float) -> float:
    """Clamp every gradient entry to ``[-value, value]`` in place.

    Parameters
    ----------
    grads : dict of str to ndarray
        Gradients, clamped in place (NaN entries stay NaN).
    value : float
        Threshold, > 0.

    Returns
    -------
    float
        The global norm *before* clipping (see :func:`global_norm`).

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import optim
    >>> grads = {"a": np.array([-3.0, 0.5])}
    >>> round(optim.clip_grad_value(grads, 1.0), 4)
    3.0414
    >>> grads["a"]
    array([-1. ,  0.5])
    """
    value = check_number("value", value, 0.0, open_lo=True)
    norm = global_norm(grads)
    for g in grads.values():
        np.clip(g, -value, value, out=g)
    return norm
