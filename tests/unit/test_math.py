"""Accuracy and codegen tests for numrnn.kernels._math.

The functions are called through small ``@njit`` loop kernels, the way the
cell kernels use them, compiled both without fast-math and with the project's
``FASTMATH`` flags.  References are NumPy / SciPy evaluated in ``longdouble``
(80-bit on x86) for float64 and in float64 for float32, so the measured error
is ours, not the reference's.
"""

import functools
import platform
import re

import numba
import numpy as np
import pytest
from numba import njit, types
from numba.core.errors import TypingError
from scipy.special import expit

from numrnn.kernels import _math
from numrnn.kernels._config import FASTMATH

FUNCS = {
    "exp": (_math.exp, np.exp),
    "sigmoid": (_math.sigmoid, expit),
    "tanh": (_math.tanh, np.tanh),
}
# Max error in ulp of the result's dtype.  Measured: float64 <= 2.0 ulp
# (rel 3.3e-16), float32 <= 2.3 ulp (rel 1.8e-7).
MAX_ULP = {np.float64: 3.0, np.float32: 4.0}
MAX_REL = {np.float64: 1e-15, np.float32: 1e-6}
FASTMATH_MODES = {"strict": False, "fastmath": FASTMATH}


@functools.cache
def _kernel(name, mode):
    f = FUNCS[name][0]

    @njit(fastmath=FASTMATH_MODES[mode])
    def apply(a, out):
        for j in range(a.size):
            out[j] = f(a[j])

    return apply


def _apply(name, mode, x):
    out = np.empty_like(x)
    _kernel(name, mode)(x, out)
    return out


@functools.cache
def _inputs(dtype):
    """2e6 log-spaced points of both signs, a uniform grid, and the edge cases."""
    mag = np.geomspace(1e-300, 800.0, 1_000_000)
    # Subnormals, the tanh branch point, saturation, float32 and float64 overflow
    # and underflow thresholds of exp.
    edges = np.array(
        "0 5e-324 2.2e-308 1e-300 1e-8 0.625 1 20 40 88.72 89 103.9 104 709.7"
        " 709.782712893384 710 745 745.2 746 1e300 inf".split(),
        dtype=float,
    )
    grid = np.linspace(-760.0, 760.0, 300_001)
    with np.errstate(over="ignore"):
        x = np.concatenate([mag, -mag, grid, edges, np.negative(edges), [np.nan]]).astype(dtype)
    return x


@functools.cache
def _reference(name, dtype):
    wide = np.longdouble if dtype == np.float64 else np.float64
    with np.errstate(over="ignore"):
        return FUNCS[name][1](_inputs(dtype).astype(wide))


@pytest.mark.parametrize("mode", FASTMATH_MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", FUNCS)
def test_accuracy(name, dtype, mode):
    x = _inputs(dtype)
    ref = _reference(name, dtype)
    out = _apply(name, mode, x)
    assert out.dtype == dtype
    info = np.finfo(dtype)

    finite = np.abs(ref) <= info.max
    err = np.abs(out[finite] - ref[finite])
    # ulp of the correctly rounded result; subnormal results count in subnormal ulps.
    ulp = err / np.spacing(np.abs(ref[finite]).astype(dtype)).astype(ref.dtype)
    assert ulp.max() <= MAX_ULP[dtype], x[finite][np.argmax(ulp)]
    normal = np.abs(ref[finite]) >= info.tiny
    rel = err[normal] / np.abs(ref[finite][normal])
    assert rel.max() <= MAX_REL[dtype], x[finite][normal][np.argmax(rel)]

    # nan in -> nan out; overflow and limits at +-inf exactly as the reference.
    with np.errstate(over="ignore"):
        expected = ref[~finite].astype(dtype)
    np.testing.assert_array_equal(out[~finite], expected)


@pytest.mark.parametrize("mode", FASTMATH_MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_special_values(dtype, mode):
    x = np.array([0.0, -0.0, 20.0, -20.0, 50.0, -50.0, 1e30, np.inf, -np.inf, np.nan], dtype)
    tanh = _apply("tanh", mode, x)
    np.testing.assert_array_equal(tanh, [0, 0, 1, -1, 1, -1, 1, 1, -1, np.nan])
    assert np.signbit(tanh[1]) and not np.signbit(tanh[0])
    sig = _apply("sigmoid", mode, x)
    np.testing.assert_array_equal(sig[[0, 1, 4, 7, 8, 9]], [0.5, 0.5, 1, 1, 0, np.nan])
    exp = _apply("exp", mode, x)
    np.testing.assert_array_equal(exp[[0, 1, 6, 7, 8, 9]], [1, 1, np.inf, np.inf, 0, np.nan])


@njit
def _all_scalar(x):
    return (
        _math.exp(x),
        _math.sigmoid(x),
        _math.tanh(x),
        _math.dsigmoid_from_y(x),
        _math.dtanh_from_y(x),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scalar_dtype_preserved(dtype):
    nbtype = numba.from_dtype(np.dtype(dtype))
    _all_scalar(dtype(0.25))
    sig = [s for s in _all_scalar.nopython_signatures if s.args == (nbtype,)][0]
    assert sig.return_type == types.UniTuple(nbtype, 5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_derivatives(dtype):
    y = np.array([-1.0, -0.999, -0.3, 0.0, 0.5, 0.999, 1.0], dtype)
    got = np.array([_all_scalar(v)[3:] for v in y], dtype)
    yl = y.astype(np.longdouble)
    np.testing.assert_allclose(got[:, 0], yl * (1 - yl), rtol=MAX_REL[dtype])
    np.testing.assert_allclose(got[:, 1], 1 - yl * yl, rtol=MAX_REL[dtype])


def test_rejects_non_float():
    with pytest.raises(TypingError):
        njit(lambda x: _math.tanh(x))(3)


def test_python_fallback():
    assert _math.exp(1.0) == np.exp(1.0)
    np.testing.assert_allclose(_math.sigmoid(np.array([0.0, 2.0])), expit([0.0, 2.0]))


@pytest.mark.skipif(
    platform.machine().lower() not in {"x86_64", "amd64", "aarch64", "arm64"},
    reason="vector width check written for x86-64 and ARM64",
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", FUNCS)
def test_loop_vectorises(name, dtype):
    k = _kernel(name, "fastmath")
    x = np.ones(4, dtype)
    k(x, np.empty_like(x))
    sig = [s for s in k.signatures if s[0].dtype == numba.from_dtype(np.dtype(dtype))][0]
    llvm = k.inspect_llvm(sig)
    ty = "double" if dtype == np.float64 else "float"
    assert re.search(rf"<\d+ x {ty}>", llvm), "loop did not vectorise"
    if dtype == np.float32:  # no silent promotion to float64
        assert " double " not in llvm.split("define")[1].split("\n}")[0]
