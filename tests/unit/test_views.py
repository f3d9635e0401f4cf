"""numrnn.kernels._views.borrow: arrays whose views Numba does not reference-count."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numrnn.kernels._views import borrow


@njit
def _rows_into(src, dst, idx):
    """dst[i] = 2 * src[idx[i]] through views of borrowed arrays."""
    src, dst, idx = borrow(src, dst, idx)
    for i in range(dst.shape[0]):
        row, out = src[idx[i]], dst[i]
        for j in range(row.size):
            out[j] = 2 * row[j]
    return dst[1:].sum()


def test_borrowed_views_read_and_write_the_arrays(rng):
    src = rng.standard_normal((5, 3))
    dst = np.zeros((4, 3))
    idx = np.array([4, 0, 2, 2])
    total = _rows_into(src, dst, idx)
    np.testing.assert_array_equal(dst, 2 * src[idx])
    assert total == pytest.approx((2 * src[idx])[1:].sum(), rel=1e-15)
    # the arrays stay the caller's: alive, owned and writeable as before
    assert dst.flags.owndata and dst.flags.writeable and src.base is None


def test_borrow_takes_arrays_only():
    @njit
    def not_an_array(x):
        return borrow(x)

    with pytest.raises(TypingError, match="borrow takes arrays"):
        not_an_array(3.0)
