"""numrnn.kernels.lapack: LAPACK's QR and its Q's product, against NumPy's QR.

(The Lyapunov kernel calls them; in CI it is compiled by ``numrnn warmup`` and loaded from
the cache by the tests, so every Lyapunov test also checks that cached code finds them.)
"""

import numpy as np
import pytest
from helpers import from_python

from numrnn.kernels import lapack

workspace_size = from_python(lapack.workspace_size)
geqrf = from_python(lapack.geqrf)
apply_q = from_python(lapack.apply_q)
form_q = from_python(lapack.form_q)


@pytest.fixture(autouse=True)
def _registered():
    lapack.register()


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-13), ("float32", 1e-5)])
@pytest.mark.parametrize("S,n", [(7, 7), (9, 4), (5, 1), (64, 64), (130, 70)])
def test_geqrf_and_apply_q_match_numpy(S, n, dtype, tol, rng):
    Z = rng.standard_normal((S, n)).astype(dtype)
    J = rng.standard_normal((S, S)).astype(dtype)
    Q, R = np.linalg.qr(Z.astype(np.float64))
    zt, tau = np.array(Z.T, order="C"), np.empty(n, dtype)  # a copy: geqrf works in place
    work = np.empty(workspace_size(S, n), dtype)
    assert geqrf(zt, tau, work) == 0
    # R (rows up to sign, as the Householder vectors choose it) in zt's upper triangle
    sign = np.sign(np.diag(zt)) * np.sign(np.diag(R))
    got_r = np.triu(zt.T[:n].astype(np.float64)) * sign[:, None]
    np.testing.assert_allclose(got_r, R, rtol=0, atol=tol * np.abs(R).max())
    JQ = J.copy()
    assert apply_q(zt, tau, JQ, work) == 0
    want = J.astype(np.float64) @ Q
    np.testing.assert_allclose(JQ[:, :n] * sign, want, rtol=0, atol=tol * 10 * np.abs(want).max())
    # the thin Q itself, formed in place (for few exponents)
    qt = np.array(Z.T, order="C")
    geqrf(qt, tau, work)
    assert form_q(qt, tau, work) == 0
    np.testing.assert_allclose(qt.T * sign, Q, rtol=0, atol=tol * 10)
    # and the rest of J Q: Q's columns past n complete an orthogonal matrix
    full = np.linalg.solve(J.astype(np.float64), JQ.astype(np.float64))
    np.testing.assert_allclose(full.T @ full, np.eye(S), atol=tol * 100 * S)


def test_workspace_fits_the_blocked_routines():
    # LAPACK's optimal work size (a workspace query, lwork = -1) for the larger of the two
    from scipy.linalg import lapack as scipy_lapack

    for S, n in [(200, 10), (200, 200), (1000, 1000)]:
        a = np.zeros((S, n), order="F")
        qr, tau, work, info = scipy_lapack.dgeqrf(a, lwork=-1)
        best = work[0]
        c = np.zeros((S, S), order="F")
        _, work, _ = scipy_lapack.dormqr("L", "T", a, np.zeros(n), c, lwork=-1)
        best = max(best, work[0])
        assert workspace_size(S, n) >= best
