"""Argument validation shared by every public entry point.

Validate once at the boundary, then trust internally: compiled code never raises.
Messages name the argument, what was expected and what was given, e.g.
``x must have shape (T, B, 3), got (10, 4, 2)``.
"""

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a float or bool for an integer, a string for a
    number). Both a TypeError and a ValueError, as ``numpy.exceptions.AxisError`` is both
    a ValueError and an IndexError: callers may catch either."""


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    if value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {known}, got {value!r}")
    return value


def check_int(name, value, minimum=1, *, none_ok=False):
    """Return ``value`` as an int if it is an integer >= ``minimum`` (or None if allowed).

    A non-integer (bools included) is an :class:`ArgumentTypeError`, one below ``minimum``
    a ValueError.
    """
    if value is None and none_ok:
        return None
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    ) + (" or None" if none_ok else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be {what}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value}")
    return int(value)


def check_positive_int(name, value):
    """Return ``value`` as an int if it is a positive integer."""
    return check_int(name, value, 1)


def check_number(name, value, lo=-math.inf, hi=math.inf, *, open_lo=False, open_hi=False,
                 none_ok=False):  # fmt: skip
    """Return ``value`` as a finite float in the interval from ``lo`` to ``hi`` (closed
    unless ``open_lo``/``open_hi``), or None if allowed.

    A value that is not a real number (bools included) is an :class:`ArgumentTypeError`,
    one outside the interval, NaN or inf a ValueError.
    """
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    bad_lo = value <= lo if open_lo else value < lo
    bad_hi = value >= hi if open_hi else value > hi
    if not math.isfinite(value) or bad_lo or bad_hi:
        interval = f"{'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"
        raise ValueError(f"{name} must be finite and in {interval}, got {value}")
    return value


def check_positive_number(name, value, *, none_ok=False):
    """Return ``value`` as a finite float > 0 (or None if allowed)."""
    return check_number(name, value, 0.0, open_lo=True, none_ok=none_ok)


def check_bool(name, value):
    """Return ``value`` as a bool if it is one (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_dtype(dtype, name="dtype"):
    """Return ``dtype`` as a numpy dtype if it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {dtype!r}") from err
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {dt.name}")
    return dt


def _fmt(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_array(name, a, shape, dtype, finite=True):
    """Return ``a`` as a C-contiguous, writeable array of ``dtype`` after checking it.

    A read-only array (a memory map, ``np.broadcast_to``, a buffer) is copied: Numba types
    read-only arrays apart from writeable ones, so passing one to the kernels would compile
    a second variant of each (seconds each, and not what ``numrnn warmup`` cached).

    Parameters
    ----------
    name : str, the argument's name in messages.
    a : array_like
    shape : tuple of int or str; a str entry (e.g. ``"T"``) matches any size.
    dtype : numpy dtype the array must already have (no silent casting between
        float32 and float64; integer or object arrays are a TypeError).
    finite : bool, reject NaN and inf.
    """
    arr = a if type(a) is np.ndarray else np.asarray(a)
    if arr.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype.name} (the model's dtype), got {arr.dtype.name}"
            + (f"; convert with {name}.astype('{dtype.name}')" if arr.dtype.kind in "biuf" else "")
        )
    if arr.ndim != len(shape):
        raise ValueError(
            f"{name} must be a {len(shape)}-d array of shape {_fmt(shape)}, "
            f"got a {arr.ndim}-d array of shape {_fmt(arr.shape)}"
        )
    if arr.shape != shape:  # a str entry, or a wrong size
        for want, got in zip(shape, arr.shape, strict=True):
            if not isinstance(want, str) and want != got:
                raise ValueError(f"{name} must have shape {_fmt(shape)}, got {_fmt(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {_fmt(arr.shape)}")
    if finite and not all_finite(arr):
        raise ValueError(f"{name} contains NaN or inf")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr if arr.flags.writeable else arr.copy()


#: the most numbers one BLAS dot here multiplies: OpenBLAS runs a dot of up to 10000 on the
#: calling thread but wakes its worker threads for a longer one, and they then spin for
#: about 0.1 s, taking a core from the kernels that follow (an ensemble of 64 LSTMs' forward
#: + backward ran 1.7x slower after the finite test of its weights and gradients)
SERIAL_DOT = 8192


def sum_of_squares(a):
    """``(a * a).sum(-1)`` of a float array, as BLAS dots of at most :data:`SERIAL_DOT`
    numbers each, on the calling thread (a longer one would wake BLAS's threads): a float
    for a 1-D array, else an array of ``a.shape[:-1]``, each row's sum bit for bit the one
    its row alone gives (an ensemble member's, as alone)."""
    n = a.shape[-1]
    if n <= SERIAL_DOT:
        return float(a.dot(a)) if a.ndim == 1 else _dots(a)
    m = n - n % SERIAL_DOT
    pieces = a[..., :m].reshape(a.shape[:-1] + (m // SERIAL_DOT, SERIAL_DOT))
    rest = a[..., None, m:]
    s = _dots(pieces).sum(-1) + _dots(rest)[..., 0]
    return float(s) if a.ndim == 1 else s


def _dots(rows):
    """Each row's dot with itself, (..., r, n) -> (..., r): a stack of (1, n) @ (n, 1)
    products, which NumPy makes with one BLAS dot each (the same sum as ``row.dot(row)``)."""
    return np.matmul(rows[..., None, :], rows[..., :, None])[..., 0, 0]


def all_finite(a):
    """Whether every element of the float array ``a`` is finite.

    In float64, from the sum of squares (BLAS dots, :func:`sum_of_squares`: 0.4-0.5 us for
    a small network's weights, 11 us for 10^5 numbers, against 1.3-1.7 and 17 us for
    ``np.isfinite(a).all()``, which makes a boolean array first): it is NaN or inf exactly
    when an element is, or when it overflows (elements near 1e154; NumPy then warns, and
    the elementwise test decides). Squares are never negative, so nothing cancels. In
    float32 the squares would overflow from 2e19, within reach of a diverging network's
    gradients: the elementwise test.
    """
    if a.dtype == np.float64 and math.isfinite(sum_of_squares(a.ravel())):
        return True
    return bool(np.isfinite(a).all())


def all_finite_many(arrays):
    """Whether every element of every float array in ``arrays`` is finite: in float64 one
    test for them all (the sum of their sums of squares, :func:`all_finite`'s test,
    without a Python call per array; the BLAS dots are most of its time: an LSTM's four
    weight arrays, 32 units, 4.0-5.7 against 4.3-5.8 us), else or where that sum
    overflows, :func:`all_finite` of each."""
    arrays = tuple(arrays)
    total = 0.0
    for a in arrays:
        if a.dtype != np.float64:
            break
        total += sum_of_squares(a.ravel())
    else:
        if math.isfinite(total):
            return True
    return all(all_finite(a) for a in arrays)


def check_lengths(lengths, T, B):
    """Return ``lengths`` as an int64 array of shape (B,) with values in 1..T."""
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be an integer array of shape ({B},), got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {_fmt(arr.shape)}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(
            f"lengths must lie in 1..{T} (the number of steps), "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def as_rng(rng, name="rng"):
    """A numpy Generator from a Generator, an int seed, a SeedSequence or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    seedlike = isinstance(rng, (np.random.SeedSequence, numbers.Integral)) and not isinstance(
        rng, bool
    )
    if seedlike and not isinstance(rng, np.random.SeedSequence) and rng < 0:
        raise ValueError(f"{name} must be a non-negative int seed, got {rng}")
    if rng is None or seedlike:
        return np.random.default_rng(rng)
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {rng!r}")
