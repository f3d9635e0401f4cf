"""Mean-field predictions for random tanh RNNs: the reference the diagnostics are checked against.

For ``h_t = tanh(a_t)``, ``a_t = W h_{t-1} + b + u_t`` with ``W_ij ~ N(0, g^2/N)``, a fixed
bias ``b_i ~ N(0, sigma_b^2)`` and i.i.d. input drive ``u_t ~ N(0, sigma_u^2)``, the
pre-activations of a large network are Gaussian with variance ``q`` that settles at the
fixed point of the variance map (Poole et al. 2016, Eq. 3; Molgedey, Schuster &
Sompolinsky 1992 for the recurrent case)::

    q* = g^2 E[tanh(sqrt(q*) z)^2] + sigma_b^2 + sigma_u^2,       z ~ N(0, 1)

A perturbation ``delta`` of the state then grows or shrinks on average by ``chi_1`` in
squared norm per step, ``chi_1 = g^2 E[tanh'(sqrt(q*) z)^2]`` (Poole et al. 2016, Eq. 7;
Chen, Pennington & Schoenholz 2018 for RNNs), so that

- the largest Lyapunov exponent is ``0.5 ln chi_1`` (``ln g`` for ``g < 1`` without bias or
  input, where ``q* = 0``), positive (chaos) exactly when ``chi_1 > 1``;
- ``E ||ds_T/ds_t||_F^2 / N`` decays like ``chi_1^(T - t)``: gradients vanish with the
  timescale ``xi = -1 / ln chi_1`` steps in the ordered phase (``chi_1 < 1``).

The expectations are trapezoid sums over z in [-12, 12] with step 1/128: for integrands
analytic in a strip about the real axis, as these are, the error falls like
``exp(-2 pi d / h)`` (d the strip's half-width, pi / (2 sqrt(q)) for tanh), below rounding
for q up to about 100 (g about 10); Gauss-Hermite sums converge slowly here because
``tanh(sqrt(q) z)`` has poles near the real axis when q is large.

Examples
--------
>>> import numpy as np
>>> from numrnn import meanfield
>>> float(meanfield.lyapunov_max(0.5)), float(np.log(0.5))      # the ordered phase: ln g
(-0.6931471805599453, -0.6931471805599453)
>>> bool(meanfield.lyapunov_max(2.0) > 0), round(float(meanfield.fixed_point(2.0)), 4)
(True, 2.1215)
"""

import math

import numpy as np

from . import _checks

__all__ = ["chi1", "expect", "fixed_point", "lyapunov_max", "timescale"]

_NODES = np.linspace(-12.0, 12.0, 24 * 128 + 1)
_WEIGHTS = np.exp(-0.5 * _NODES**2) / math.sqrt(2 * math.pi) / 128  # the trapezoid's ends are 0


def expect(f, q):
    """``E[f(sqrt(q) z)]`` for ``z ~ N(0, 1)``, by the trapezoid rule (see the module).

    Parameters
    ----------
    f : callable
        A NumPy ufunc-like function of an array.
    q : float or array_like
        Variances, >= 0; broadcast.

    Returns
    -------
    float or ndarray
        Shaped like ``q``.

    Examples
    --------
    >>> from numrnn.meanfield import expect
    >>> round(float(expect(lambda a: a**2, 3.0)), 12)          # E[(sqrt(3) z)^2] = 3
    3.0
    """
    q = np.asarray(q, dtype=float)
    a = np.sqrt(q)[..., None] * _NODES
    return f(a) @ _WEIGHTS


def _sech2(a):
    return 1.0 / np.cosh(np.clip(a, -350.0, 350.0)) ** 2


def _check_args(g, bias_var, input_var):
    g = _checks.check_number("g", g, 0.0)
    bias_var = _checks.check_number("bias_var", bias_var, 0.0)
    input_var = _checks.check_number("input_var", input_var, 0.0)
    return g, bias_var + input_var


def fixed_point(g, bias_var=0.0, input_var=0.0):
    """The fixed point ``q*`` of the variance map, the stable one (0 if that is stable).

    Parameters
    ----------
    g : float >= 0
        The gain: ``W_ij ~ N(0, g^2 / N)``.
    bias_var, input_var : float >= 0, default 0
        ``sigma_b^2`` of the bias and ``sigma_u^2`` of the input drive, per unit.

    Returns
    -------
    float
        ``q*``; 0 for ``g <= 1`` without bias or input.

    Examples
    --------
    >>> from numrnn.meanfield import fixed_point
    >>> fixed_point(0.9), round(fixed_point(0.9, bias_var=0.1), 6)
    (0.0, 0.233948)
    """
    g, extra = _check_args(g, bias_var, input_var)
    if extra == 0 and g <= 1:
        return 0.0

    def excess(q):  # > 0 below q*, < 0 above it: the map is concave in q
        return g * g * expect(lambda a: np.tanh(a) ** 2, q) + extra - q

    lo, hi = 1e-300, g * g + extra  # excess(hi) <= 0 since tanh^2 < 1
    for _ in range(200):  # bisection: to the last bits, whatever the curvature near q = 0
        mid = 0.5 * (lo + hi) if hi / lo < 4 else math.sqrt(lo * hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 4 * np.finfo(float).eps * hi:
            break
    return 0.5 * (lo + hi)


def chi1(g, bias_var=0.0, input_var=0.0):
    """``chi_1 = g^2 E[tanh'(sqrt(q*) z)^2]``: the mean growth of a perturbation's squared
    norm per step.

    Parameters
    ----------
    g, bias_var, input_var
        As in :func:`fixed_point`.

    Returns
    -------
    float

    Examples
    --------
    >>> from numrnn.meanfield import chi1
    >>> chi1(0.5), round(chi1(3.0), 4)
    (0.25, 1.8599)
    """
    q = fixed_point(g, bias_var, input_var)
    return float(g * g * expect(lambda a: _sech2(a) ** 2, q))


def lyapunov_max(g, bias_var=0.0, input_var=0.0):
    """The mean-field largest Lyapunov exponent ``0.5 ln chi_1``, in nats per step.

    Parameters
    ----------
    g, bias_var, input_var
        As in :func:`fixed_point`.

    Returns
    -------
    float

    Examples
    --------
    >>> from numrnn.meanfield import lyapunov_max
    >>> round(lyapunov_max(1.5), 4), round(lyapunov_max(3.0), 4)
    (0.0652, 0.3102)
    """
    return 0.5 * math.log(chi1(g, bias_var, input_var))


def timescale(g, bias_var=0.0, input_var=0.0):
    """``xi = -1 / ln chi_1``: the number of steps over which ``E||ds_T/ds_t||_F^2`` falls by
    a factor e in the ordered phase (inf at the edge of chaos, NaN beyond it).

    Parameters
    ----------
    g, bias_var, input_var
        As in :func:`fixed_point`.

    Returns
    -------
    float

    Examples
    --------
    >>> from numrnn.meanfield import timescale
    >>> round(timescale(0.5), 4)                                 # -1 / ln(1/4)
    0.7213
    """
    c = chi1(g, bias_var, input_var)
    if c > 1:
        return math.nan
    return math.inf if c == 1 else -1.0 / math.log(c)
