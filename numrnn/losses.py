"""Losses and their gradients.

Each loss is ``loss(pred, target) -> (value, d_pred)``: the mean loss as a Python float and its
gradient with respect to the prediction, of the prediction's shape and dtype. The reduction is
the mean, as in PyTorch's defaults, so gradients scale as ``1 / (number of terms)``.

For a batch of variable-length sequences, many-to-many (time-major) predictions take an optional
``lengths`` ``(B,)``: the steps ``t >= lengths[b]`` of sequence ``b`` are padding, left out of
the mean (which is over the real terms only) and given zero gradient, like PyTorch's packed
sequences. Their targets may hold anything.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _checks
from ._registry import Registry

__all__ = ["LOSSES", "accuracy", "get", "mse", "xent"]


def _float_array(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    return a


def _mask(lengths, pred: np.ndarray, name: str, layout: str) -> np.ndarray | None:
    """The ``(T, B)`` boolean mask of real steps, ``t < lengths[b]``, or None without lengths.

    ``pred`` is the prediction named ``name``, of shape ``layout`` (``"(T, B, O)"``): at least
    3-d, its first two axes time and batch.
    """
    if lengths is None:
        return None
    if pred.ndim < 3:
        raise ValueError(
            f"lengths apply to many-to-many predictions of shape {layout}; "
            f"got {name} of shape {pred.shape} (a many-to-one prediction takes no lengths)"
        )
    T, B = pred.shape[:2]
    lengths = _checks.check_lengths(lengths, T, B)
    return np.arange(T)[:, None] < lengths[None, :]


def _zero_padded(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``a`` (same dtype and memory layout) with 0 where ``mask`` is False."""
    out = np.zeros_like(a)
    np.copyto(out, a, where=mask)
    return out


def mse(pred, target, lengths=None) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements (``torch.nn.MSELoss()``), or over the real steps
    of variable-length sequences.

    Parameters
    ----------
    pred : ndarray, shape (...)
        Predictions, floating point; ``(T, B, O)`` for a many-to-many readout.
    target : array_like, shape (...)
        Targets, same shape as ``pred``; converted to ``pred``'s dtype. With ``lengths``, the
        entries at padded steps are ignored and may hold anything (NaN included).
    lengths : ndarray of int, shape (B,), optional
        Real length of each sequence, in ``[1, T]``, for a ``(T, B, O)`` prediction; the steps
        ``t >= lengths[b]`` are padding. Only for predictions of at least 3 dimensions.

    Returns
    -------
    loss : float
        ``mean((pred - target)**2)``; with ``lengths``, the mean over the real entries only,
        ``sum over t < lengths[b] of (pred - target)**2 / (O * sum(lengths))``.
    d_pred : ndarray, shape (...)
        ``2 (pred - target) / N``, dtype of ``pred``, with ``N = pred.size`` (``O *
        sum(lengths)`` with ``lengths``, and exactly 0 at padded steps).

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import losses
    >>> losses.mse(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
    (2.5, array([[1.],
           [2.]]))

    Two sequences of ``T = 2`` steps, the second one step long; its padded step counts for
    nothing, whatever its target:

    >>> pred = np.array([[[1.0], [3.0]], [[2.0], [5.0]]])    # (T, B, O) = (2, 2, 1)
    >>> target = np.array([[[0.0], [1.0]], [[0.0], [np.nan]]])
    >>> loss, d = losses.mse(pred, target, lengths=np.array([2, 1]))
    >>> loss                                                # (1 + 4 + 4) / 3
    3.0
    >>> d[:, :, 0]
    array([[0.66666667, 1.33333333],
           [1.33333333, 0.        ]])
    """
    pred = _float_array(pred, "pred")
    target = np.asarray(target)
    if target.shape != pred.shape:
        raise ValueError(f"target must have shape {pred.shape} like pred, got {target.shape}")
    if target.dtype.kind not in "fiub":
        raise ValueError(f"target must be numeric, got dtype {target.dtype}")
    if pred.size == 0:
        raise ValueError("pred must not be empty")
    mask = _mask(lengths, pred, "pred", "(T, B, O)")
    if mask is None:
        diff = pred - target.astype(pred.dtype, copy=False)
        loss = float(np.mean(diff * diff))
        return loss, (2.0 / pred.size) * diff
    # Padded entries never enter the arithmetic (no NaN or overflow from them): both arrays are
    # zeroed there first. The copies keep the originals' memory layout, so the sums run in
    # the same order as without lengths, and full lengths give that value bit for bit.
    n = int(mask.sum()) * (pred.size // mask.size)
    mask = mask.reshape(mask.shape + (1,) * (pred.ndim - 2))
    pred, target = _zero_padded(pred, mask), _zero_padded(target, mask)
    diff = pred - target.astype(pred.dtype, copy=False)
    loss = float(np.sum(diff * diff) / n)
    return loss, (2.0 / n) * diff


def _check_classes(logits, target, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Checked ``logits``, ``target`` and the ``(T, B, 1, ...)`` mask of real positions (None
    without ``lengths``). With a mask, ``logits`` and ``target`` come back zeroed at padded
    positions, so that whatever they held there (NaN, inf, any class id) never enters the
    arithmetic; only the real positions' targets are range-checked."""
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
    mask = _mask(lengths, logits, "logits", "(T, B, C)")
    real = target
    if mask is not None:
        mask = mask.reshape(mask.shape + (1,) * (target.ndim - 2))
        real = target[np.broadcast_to(mask, target.shape)]
    n_classes = logits.shape[-1]
    lo, hi = int(real.min()), int(real.max())
    if lo < 0 or hi >= n_classes:
        where = " at the real (unpadded) steps" if mask is not None else ""
        raise ValueError(
            f"target must lie in [0, {n_classes - 1}]{where}, got values in [{lo}, {hi}]"
        )
    if mask is not None:
        target = _zero_padded(target, mask)
        logits = _zero_padded(logits, mask[..., None])
    return logits, target, mask


def xent(logits, target, lengths=None) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy with integer targets (``torch.nn.CrossEntropyLoss()``), or over
    the real steps of variable-length sequences.

    Parameters
    ----------
    logits : ndarray, shape (..., C)
        Unnormalised log-probabilities, floating point; e.g. ``(B, C)`` for a many-to-one
        readout or ``(T, B, C)`` for many-to-many.
    target : ndarray of int, shape (...)
        Class indices in ``[0, C)``. With ``lengths``, the entries at padded steps are ignored
        and may hold anything (out-of-range ids included), as may the logits there.
    lengths : ndarray of int, shape (B,), optional
        Real length of each sequence, in ``[1, T]``, for ``(T, B, C)`` logits; the steps
        ``t >= lengths[b]`` are padding. Not for many-to-one ``(B, C)`` logits.

    Returns
    -------
    loss : float
        Mean over the positions of ``logsumexp(logits) - logits[target]``: over all leading
        positions, or with ``lengths`` over the real ones (``sum(lengths)`` for ``(T, B, C)``).
    d_logits : ndarray, shape (..., C)
        ``(softmax(logits) - onehot(target)) / N`` with ``N = target.size`` (the number of real
        positions with ``lengths``, and exactly 0 at padded steps).

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

    Many-to-many, ``T = 3`` steps, two sequences of lengths 3 and 1: the mean is over the 4
    real positions, and the padded ones (here an invalid class id, -1) get no gradient:

    >>> logits = np.zeros((3, 2, 4))
    >>> target = np.array([[0, 1], [2, -1], [3, -1]])
    >>> loss, d = losses.xent(logits, target, lengths=np.array([3, 1]))
    >>> bool(np.isclose(loss, np.log(4))), bool((d[1:, 1] == 0).all())
    (True, True)
    """
    logits, target, mask = _check_classes(logits, target, lengths)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=-1, keepdims=True)
    idx = target[..., None]
    terms = np.log(sum_exp) - np.take_along_axis(shifted, idx, axis=-1)
    grad = exp / sum_exp
    np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=-1) - 1.0, axis=-1)
    if mask is None:
        loss = float(np.mean(terms))
        grad /= target.size
        return loss, grad
    n = int(np.broadcast_to(mask, target.shape).sum())
    padded = ~mask[..., None]
    np.copyto(terms, 0, where=padded)
    np.copyto(grad, 0, where=padded)
    loss = float(np.sum(terms) / n)
    grad /= n
    return loss, grad


def accuracy(logits, target, lengths=None) -> float:
    """Fraction of positions where ``argmax(logits, -1) == target``, or of the real positions
    of variable-length sequences.

    Parameters
    ----------
    logits : ndarray, shape (..., C)
    target : ndarray of int, shape (...)
        Class indices in ``[0, C)``; with ``lengths``, anything at padded steps.
    lengths : ndarray of int, shape (B,), optional
        Real length of each sequence, in ``[1, T]``, for ``(T, B, C)`` logits; the steps
        ``t >= lengths[b]`` are padding and not counted.

    Returns
    -------
    float
        In ``[0, 1]``: correct positions over all positions, or with ``lengths`` correct real
        positions over ``sum(lengths)`` (for ``(T, B, C)``).

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import losses
    >>> losses.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5

    With lengths (2 and 1 of ``T = 2``), the padded step (its target 7 is no class) is not
    counted: 2 of the 3 real positions are right.

    >>> logits = np.array([[[0.1, 0.9], [0.8, 0.2]], [[0.3, 0.7], [0.6, 0.4]]])
    >>> target = np.array([[1, 1], [1, 7]])
    >>> round(losses.accuracy(logits, target, lengths=np.array([2, 1])), 4)
    0.6667
    """
    logits, target, mask = _check_classes(logits, target, lengths)
    hit = np.argmax(logits, axis=-1) == target
    if mask is None:
        return float(np.mean(hit))
    hit &= mask
    return int(hit.sum()) / int(np.broadcast_to(mask, target.shape).sum())


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
