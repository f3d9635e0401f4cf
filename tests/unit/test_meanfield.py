"""Mean-field predictions against adaptive quadrature, closed forms and a simulation."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize

from numrnn import meanfield as mf


def gauss(f, q):
    """E[f(sqrt(q) z)] by scipy's adaptive quadrature (independent of numrnn's rule)."""
    dens = lambda z: f(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return integrate.quad(dens, -np.inf, np.inf, epsabs=1e-15, epsrel=1e-14, limit=200)[0]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(("g", "var"), [(0.9, 0.1), (1.5, 0.0), (2.0, 0.0), (3.0, 0.0),
                                        (1.2, 0.05), (6.0, 0.3)])  # fmt: skip
def test_against_adaptive_quadrature(g, var):
    sech4 = lambda a: 0.0 if abs(a) > 100 else 1 / math.cosh(a) ** 4  # noqa: E731
    q = optimize.brentq(lambda q: g * g * gauss(lambda a: math.tanh(a) ** 2, q) + var - q,
                        1e-12, g * g + var, xtol=1e-15)  # fmt: skip
    chi = g * g * gauss(sech4, q)
    assert mf.fixed_point(g, bias_var=var) == pytest.approx(q, rel=1e-12)
    assert mf.chi1(g, input_var=var) == pytest.approx(chi, rel=1e-12)
    assert mf.lyapunov_max(g, var / 2, var / 2) == pytest.approx(0.5 * math.log(chi), rel=1e-11)


def test_closed_forms():
    for g in (0.1, 0.5, 0.99, 1.0):  # q* = 0 in the ordered phase: chi_1 = g^2
        assert mf.fixed_point(g) == 0.0
        assert mf.chi1(g) == pytest.approx(g * g, rel=1e-15)
        assert mf.lyapunov_max(g) == pytest.approx(math.log(g), rel=1e-14)
    assert mf.timescale(1.0) == math.inf and math.isnan(mf.timescale(2.0))
    assert mf.timescale(0.5) == pytest.approx(-1 / math.log(0.25), rel=1e-14)
    # just above g = 1, q* ~ 3 (g^2 - 1) / (2 g^2)... to leading order (tanh^2 a ~ a^2 - 2a^4/3)
    g = 1.001
    assert mf.fixed_point(g) == pytest.approx((g * g - 1) / (2 * g * g), rel=5e-3)
    # chi_1 crosses 1 at g = 1 without bias or input, above 1 with them
    assert mf.chi1(1.0 + 1e-6) > 1 - 1e-9 and mf.chi1(1.1, bias_var=0.5) < 1
    assert mf.expect(lambda a: a**4, 2.0) == pytest.approx(3 * 4, rel=1e-13)  # E z^4 = 3


def test_variance_map_against_a_simulated_network():
    """The pre-activation variance of a large random tanh network settles at q*."""
    rng = np.random.default_rng(0)
    n, g, var = 3000, 1.8, 0.2
    w = rng.standard_normal((n, n)) * g / math.sqrt(n)
    b = rng.standard_normal(n) * math.sqrt(var)
    h, qs = rng.standard_normal(n), []
    for t in range(200):
        a = w @ h + b
        h = np.tanh(a)
        if t >= 100:
            qs.append(np.mean(a * a))
    assert np.mean(qs) == pytest.approx(mf.fixed_point(g, bias_var=var), rel=0.03)


def test_bad_arguments():
    with pytest.raises(ValueError, match="g must be finite"):
        mf.chi1(-1.0)
    with pytest.raises(ValueError, match="bias_var must be finite"):
        mf.fixed_point(1.0, bias_var=math.nan)
    with pytest.raises(TypeError, match="input_var must be a real number"):
        mf.lyapunov_max(1.0, input_var="0.1")
