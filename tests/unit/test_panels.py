"""numrnn's packed-panel products (numrnn.kernels.panels) against the vector loops and NumPy."""

import numpy as np
import pytest
from helpers import from_python

from numrnn.kernels import linalg, panels

add_dot_panels = from_python(panels.add_dot_panels)
packed = from_python(panels.packed)
add_dot_loops = from_python(linalg.add_dot_loops)


@pytest.mark.parametrize(
    "M,K,N",
    [
        (1, 1, 1),
        (3, 5, 7),
        (4, 8, 32),
        (5, 300, 70),  # rows past a tile, columns past a line and a panel, k past DEPTH
        (16, 64, 256),
        (7, 513, 100),  # three passes over the panels
        (9, 1, 65),
        (2, 3, 0),
        (0, 3, 4),
        (3, 0, 4),
    ],  # fmt: skip
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_dot_panels_gives_the_loops_bits(M, K, N, dtype, rng):
    # every element the same sum over k in order, from out's value, as add_dot_loops (the
    # product's path may then change with the rows of a block without changing a bit)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    start = rng.standard_normal((M, N)).astype(dtype)
    bp = packed(b)
    assert bp.shape == (-(-N // panels.panel_width(dtype)) * K, panels.panel_width(dtype))
    out = start.copy()
    add_dot_panels(a, bp, out)
    loops = start.copy()
    add_dot_loops(a, b, loops)
    np.testing.assert_array_equal(out, loops)
    want = a.astype(float) @ b.astype(float) + start
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * max(1, np.abs(want).max(initial=0)))
    # a transposed a (the weight gradients' a.T @ b), and each row alone
    transposed = start.copy()
    add_dot_panels(np.ascontiguousarray(a.T).T, bp, transposed)
    np.testing.assert_array_equal(transposed, out)
    for i in range(M):
        row = start[i : i + 1].copy()
        add_dot_panels(a[i : i + 1], bp, row)
        np.testing.assert_array_equal(row[0], out[i])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pack_weights_is_every_members_pack(dtype, rng):
    w = rng.standard_normal((3, 9, 70)).astype(dtype)
    P, NP = -(-70 // panels.panel_width(dtype)), panels.panel_width(dtype)
    wp = panels.pack_weights(w)
    assert wp.shape == (3, P * 9, NP) and wp.flags.c_contiguous
    for k in range(3):
        np.testing.assert_array_equal(wp[k], packed(w[k]))
        # panel p is the columns p NP .. (p + 1) NP as 9 rows, zero past the last
        full = np.zeros((9, P * NP), dtype)
        full[:, :70] = w[k]
        for p in range(P):
            np.testing.assert_array_equal(
                wp[k, p * 9 : (p + 1) * 9], full[:, p * NP : (p + 1) * NP]
            )


def test_wide_is_half_a_panel():
    assert panels.wide(16, 8) and not panels.wide(15, 8)
    assert panels.wide(32, 4) and not panels.wide(31, 4)


def test_product_plan_follows_the_option_and_the_cpu(monkeypatch):
    from numba.core import config

    import numrnn as nr
    from numrnn.kernels import _config

    with nr.set_options(products="panels"):
        assert _config.product_plan() == _config.PANELS
    with nr.set_options(products="blas"):
        assert _config.product_plan() is None
    want = _config.PANELS if _config.wide_vectors() else 0
    assert _config.product_plan() == want  # "auto"
    # a portable target (NUMBA_CPU_NAME) decides by its own features, not this CPU's
    monkeypatch.setattr(config, "CPU_NAME", "generic")
    monkeypatch.setattr(config, "CPU_FEATURES", "")
    _config.wide_vectors.cache_clear()
    try:
        assert not _config.wide_vectors()
        monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f")
        _config.wide_vectors.cache_clear()
        assert _config.wide_vectors()
    finally:
        _config.wide_vectors.cache_clear()
