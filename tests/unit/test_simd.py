"""The vectors of numrnn.kernels._simd: loads, stores and multiply-adds, of eight lanes and
of a cache line (masked)."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numrnn.kernels._simd import (
    WIDTH,
    line_lanes,
    line_load,
    line_load_n,
    line_store_n,
    vfma,
    vload,
    vstore,
)


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


@njit
def _line_axpy(x, a, b, out, i, j, n_load, n_store):
    """out[i, j:j+n_store] = b[i, j:j+n_store] + x * a[i, j:j+n_store] through cache-line
    vectors, a's lanes from n_load on masked to zero; and the line's lane count."""
    v = vfma(x, line_load_n(a, i, j, n_load), line_load(b, i, j))
    line_store_n(out, i, j, v, n_store)
    return line_lanes(a)


@pytest.mark.parametrize("n", [0, 1, 5, "all"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_line_vectors_move_their_first_n_lanes(n, dtype, rng):
    lanes = 64 // np.dtype(dtype).itemsize
    n = lanes if n == "all" else n
    a = rng.standard_normal((3, 40)).astype(dtype)
    b = rng.standard_normal((3, 40)).astype(dtype)
    x = dtype(0.5)  # x * a exact: the sum rounds once, fused or not
    want = np.full((3, 40), 7.0, dtype)
    want[1, 3 : 3 + n] = b[1, 3 : 3 + n] + x * a[1, 3 : 3 + n]
    out = np.full((3, 40), 7.0, dtype)
    assert _line_axpy(x, a, b, out, 1, 3, lanes, n) == lanes
    np.testing.assert_array_equal(out, want)  # n lanes written
    out = np.full((3, 40), 7.0, dtype)
    _line_axpy(x, a, b, out, 1, 3, n, lanes)  # a's lanes past n read as zero
    np.testing.assert_array_equal(out[1, 3 : 3 + n], want[1, 3 : 3 + n])
    np.testing.assert_array_equal(out[1, 3 + n : 3 + lanes], b[1, 3 + n : 3 + lanes])
