"""Internals of numrnn.kernels.jacobian: the Ritz pair of a Lanczos check (``_ritz``) and
``_abs_max``. The Jacobian norms themselves are checked in test_diagnostics.py."""

import numpy as np
from helpers import from_python


def test_lanczos_tridiagonal_top_eigenpair_matches_eigh():
    # the Ritz pair of each Lanczos check (bisection + inverse iteration) and the bound on
    # the second eigenvalue against LAPACK, over sizes 1..30, scales 1e-150..1e150,
    # clustered tops and split (beta = 0) matrices
    from numrnn.kernels import jacobian

    _ritz = from_python(jacobian._ritz)

    rng = np.random.default_rng(7)
    for trial in range(600):
        k = int(rng.integers(1, 31))
        scale = 10.0 ** rng.uniform(-150, 150)
        alpha = rng.standard_normal(31) * scale
        beta = rng.standard_normal(31) * scale * [1.0, 1e-8, 0.0][trial % 3]
        if trial % 4 == 0:
            alpha[:k] = scale * (1 + 1e-13 * rng.standard_normal(k))
        Tk = np.diag(alpha[:k]) + np.diag(beta[: k - 1], 1) + np.diag(beta[: k - 1], -1)
        w = np.linalg.eigvalsh(Tk)
        norm = np.abs(w).max()
        # no guess, or one just below, at or above the answer (Lanczos passes the last
        # check's value, which lies below)
        guess = [0.0, w[-1] * (1 - 1e-9), w[-1], w[-1] * 1.3 + norm][trial % 4]
        theta, theta2, s = _ritz(alpha, beta, k, guess)
        assert abs(theta - w[-1]) <= 1e-14 * norm, (trial, k)
        if k > 1:  # an upper bound, within 2^-16 of the Gershgorin interval (< 4 * its radius)
            radius = np.max(np.abs(np.diag(Tk)) + np.abs(Tk - np.diag(np.diag(Tk))).sum(1))
            assert -1e-14 * norm <= theta2 - w[-2] <= 2.0**-16 * 4 * radius, (trial, k)
        assert abs(np.linalg.norm(s) - 1) < 1e-14
        assert np.linalg.norm(Tk @ s - theta * s) <= 1e-13 * norm, (trial, k)


def test_abs_max_of_the_product_keeps_nan_and_inf():
    from numrnn.kernels import jacobian

    _abs_max = from_python(jacobian._abs_max)

    a = np.random.default_rng(0).standard_normal((7, 9))
    assert _abs_max(a) == np.abs(a).max()
    assert _abs_max(np.zeros((3, 3))) == 0.0
    for i in (0, 31, 62):
        b = a.copy()
        b.flat[i] = -np.inf
        assert _abs_max(b) == np.inf
        b.flat[62 - i] = np.nan
        assert np.isnan(_abs_max(b))
