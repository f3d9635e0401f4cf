"""Losses and their gradients.

Each loss is ``loss(pred, target) -> (value, d_pred)``: the mean loss as a Python float and its
gradient with respect to the prediction, of the prediction's shape and dtype. The reduction is
the mean, as in PyTorch's defaults, so gradients scale as ``1 / (number of terms)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._registry import Registry

__all__ = ["LOSSES", "accuracy", "get", "mse", "xent"]


def _float_array(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    return a


def mse(pred, target) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements (``torch.nn.MSELoss()``).

    Parameters
    ----------
    pred : ndarray, shape (...)
        Predictions, floating point.
    target : array_like, shape (...)
        Targets, same shape as ``pred``; converted to ``pred``'s dtype.

    Returns
    -------
    loss : float
        ``mean((pred - target)**2)``.
    d_pred : ndarray, shape (...)
        ``2 (pred - target) / pred.size``, dtype of ``pred``.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import losses
    >>> losses.mse(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
    (2.5, array([[1.],
           [2.]]))
    """
    pred = _float_array(pred, "pred")
    target = np.asarray(target)
    if target.shape != pred.shape:
        raise ValueError(f"target must have shape {pred.shape} like pred, got {target.shape}")
    if target.dtype.kind not in "fiub":
        raise ValueError(f"target must be numeric, got dtype {target.dtype}")
    if pred.size == 0:
        raise ValueError("pred must not be empty")
    diff = pred - target.astype(pred.dtype, copy=False)
    loss = float(np.mean(diff * diff))
    return loss, (2.0 / pred.size) * diff


def _check_classes(logits, target) -> tuple[np.ndarray, np.ndarray]:
    logits = _float_array(logits, "logits")
    target = np.asarray(target)
    if logits.ndim < 1:
        raise ValueError("logits must have shape (..., C), got a scalar")
    if target.dtype.kind not in "iu":
        raise ValueError(f"target must be an integer array of class indices, got {target.dtype}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(
            f"target must have shape {logits.shape[:-1]} (logits' shape without C), "
            f"got {target.shape}"
        )
    if target.size == 0:
        raise ValueError("target must not be empty")
    n_classes = logits.shape[-1]
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"target must lie in [0, {n_classes - 1}], got values in [{lo}, {hi}]")
    return logits, target


def xent(logits, target) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy with integer targets (``torch.nn.CrossEntropyLoss()``).

    Parameters
    ----------
    logits : ndarray, shape (..., C)
        Unnormalised log-probabilities, floating point; e.g. ``(B, C)`` for a many-to-one
        readout or ``(T, B, C)`` for many-to-many.
    target : ndarray of int, shape (...)
        Class indices in ``[0, C)``.

    Returns
    -------
    loss : float
        Mean over all leading positions of ``logsumexp(logits) - logits[target]``.
    d_logits : ndarray, shape (..., C)
        ``(softmax(logits) - onehot(target)) / N`` with ``N = target.size``.

    Notes
    -----
    Computed with the max subtracted (log-sum-exp), so large logits neither overflow nor lose
    the loss to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import losses
    >>> loss, d = losses.xent(np.zeros((2, 4)), np.array([0, 3]))   # uniform over 4 classes
    >>> bool(np.isclose(loss, np.log(4))), d.shape
    (True, (2, 4))
    >>> round(losses.xent(np.array([[1000.0, 0.0]]), np.array([0]))[0], 6)  # no overflow
    0.0
    """
    logits, target = _check_classes(logits, target)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=-1, keepdims=True)
    idx = target[..., None]
    loss = float(np.mean(np.log(sum_exp) - np.take_along_axis(shifted, idx, axis=-1)))
    grad = exp / sum_exp
    np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=-1) - 1.0, axis=-1)
    grad /= target.size
    return loss, grad


def accuracy(logits, target) -> float:
    """Fraction of positions where ``argmax(logits, -1) == target``.

    Parameters
    ----------
    logits : ndarray, shape (..., C)
    target : ndarray of int, shape (...)

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import losses
    >>> losses.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    logits, target = _check_classes(logits, target)
    return float(np.mean(np.argmax(logits, axis=-1) == target))


LOSSES = Registry("loss", {"mse": mse, "xent": xent})


def get(name: str) -> Callable:
    """Look up a loss by name (a callable is returned as it is); ``ValueError`` listing the
    known names if it is unknown.

    Parameters
    ----------
    name : {"mse", "xent"} or callable

    Returns
    -------
    callable
        ``loss(pred, target) -> (value, d_pred)``.

    Examples
    --------
    >>> from numrnn import losses
    >>> losses.get("mse") is losses.mse
    True
    >>> losses.get("l1")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'l1'; known: mse, xent
    """
    return name if callable(name) else LOSSES.lookup(name)
