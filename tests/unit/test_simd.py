"""The eight-lane vectors of numrnn.kernels._simd: loads, stores and multiply-adds."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numrnn.kernels._simd import WIDTH, vfma, vload, vstore


@njit
def _axpy_rows(x, a, b, out, i, j):
    """out[i, j:j+8] = b[i, j:j+8] + x * a[i, j:j+8] through one vector multiply-add."""
    vstore(out, i, j, vfma(x, vload(a, i, j), vload(b, i, j)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_multiply_add_writes_one_row_slice(dtype, rng):
    a = rng.standard_normal((3, 20)).astype(dtype)
    b = rng.standard_normal((3, 20)).astype(dtype)
    out = np.zeros((3, 20), dtype)
    x = dtype(0.75)  # exact: x * a and the sum round once, fused or not, within an ulp
    _axpy_rows(x, a, b, out, 1, 5)
    want = np.zeros_like(out)
    want[1, 5 : 5 + WIDTH] = b[1, 5 : 5 + WIDTH] + x * a[1, 5 : 5 + WIDTH]
    np.testing.assert_allclose(out, want, rtol=np.finfo(dtype).eps, atol=0)
    assert not out[:, :5].any() and not out[:, 5 + WIDTH :].any() and not out[[0, 2]].any()


@njit
def _load_first(a):
    return vfma(1.0, vload(a, 0, 0), vload(a, 0, 0))


def test_strided_arrays_are_a_typing_error():
    # a vector is eight consecutive elements: a strided view cannot be read as one
    with pytest.raises(TypingError, match="C-contiguous"):
        _load_first(np.zeros((4, 16))[:, ::2])
    with pytest.raises(TypingError, match="float32 or float64"):
        _load_first(np.zeros((4, 16), np.int64))


@njit
def _vector_times_vector(a):
    return vfma(vload(a, 0, 0), vload(a, 0, 0), vload(a, 0, 0))


def test_multiply_add_takes_a_scalar_factor():
    with pytest.raises(TypingError, match="a scalar and two vectors"):
        _vector_times_vector(np.zeros((2, 8)))
