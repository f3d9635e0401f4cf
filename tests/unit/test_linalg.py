"""The thread-parallel products of numrnn.kernels.linalg against NumPy."""

import functools

import numpy as np
import pytest
from helpers import from_python, run_compiling
from numba import njit

import numrnn as nr
from numrnn.kernels import linalg
from numrnn.kernels._config import PANELS

step_dot = from_python(linalg.step_dot)
project = from_python(linalg.project)
add_dot_loops = from_python(linalg.add_dot_loops)
dot_rows = from_python(linalg.dot_rows)


@pytest.mark.parametrize("products", ["blas", "panels"])
@pytest.mark.parametrize("Ka", [1, 3])
@pytest.mark.parametrize("O", [4, 40])  # the panels take products at least 16 wide
def test_matmul_matches_numpy(Ka, O, products, rng):
    a = rng.standard_normal((Ka, 37, 5))
    b = rng.standard_normal((3, 5, O))
    want = np.matmul(np.broadcast_to(a, (3, 37, 5)), b)
    with nr.set_options(products=products):
        np.testing.assert_allclose(linalg.matmul(a, b, np.zeros((0, 0))), want, rtol=1e-13)
        bias = rng.standard_normal((3, O))
        got = linalg.matmul(a, b, bias)
    np.testing.assert_allclose(got, want + bias[:, None], rtol=1e-13)


@pytest.mark.parametrize("Kb,Kc", [(1, 3), (3, 1), (3, 0)])
@pytest.mark.parametrize(
    "G,D,plan",
    [
        (6, 5, None),
        (9, 17, None),
        (128, 32, None),
        (600, 700, None),
        (6, 5, PANELS),
        (128, 40, PANELS),
        (600, 700, PANELS),
    ],
    ids=[
        "loops",
        "loops-tails",
        "blas",
        "large",
        "tiny-panels",
        "panels-and-narrow",
        "large-panels",
    ],
)
def test_matmul_tn_matches_numpy(Kb, Kc, G, D, plan, rng, monkeypatch):
    # the weight-gradient pass: two products with one gradient and its sum, members
    # sharing b or c when theirs has one member, b longer in time than the gradient; a
    # small network's products as loops, larger ones one BLAS call each or the panels; with
    # the panels, c (3 wide) narrower than half a panel: one BLAS call
    monkeypatch.setattr(linalg, "product_plan", lambda: plan)
    T, B, E = 13, 7, 3
    a = rng.standard_normal((3, T, B, G))
    b = rng.standard_normal((Kb, T + 1, B, D))
    c = rng.standard_normal((Kc, T, B, E)) if Kc else np.zeros((0, 0, 0, 0))
    ab, ac, s = linalg.matmul_tn(a, b, c)
    # sums of 91 terms of size 1: compare with an absolute tolerance at rounding level
    close = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=1e-12)
    for k in range(3):
        a2 = a[k].reshape(T * B, G)
        close(ab[k], a2.T @ b[min(k, Kb - 1), :T].reshape(T * B, D))
        close(s[k], a2.sum(axis=0))
        if Kc:
            close(ac[k], a2.T @ c[min(k, Kc - 1)].reshape(T * B, E))
    assert ac.shape == (3, G, E if Kc else 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_tn_transposed_where_its_columns_fill_panels_badly(dtype, rng, monkeypatch):
    # 32 columns fill half a float32 panel: the weight gradient is made as (src.T @ a)^T,
    # a's G = 128 columns in the panels, and must give the bits of the product the usual
    # way round (a.T @ src), each element the same sum over the rows in order; float64's
    # panel is 32 wide: b's 32 columns fill it (made the usual way), c's 40 fill 40 of 64
    # (made transposed)
    from numrnn.kernels._parallel import blocks
    from numrnn.kernels._views import strided
    from numrnn.kernels.panels import fills_better, packed

    monkeypatch.setattr(linalg, "product_plan", lambda: PANELS)
    T, B, G, D, E = 40, 16, 128, 32, 40
    a = rng.standard_normal((2, T, B, G)).astype(dtype)
    b = rng.standard_normal((1, T + 1, B, D)).astype(dtype)
    c = rng.standard_normal((2, T, B, E)).astype(dtype)
    ab, ac, _ = linalg.matmul_tn(a, b, c)
    assert fills_better(G, D, a.itemsize) is (dtype == "float32")

    @njit
    def usual(a, src, out):  # out = a.T @ src, the panels over src's columns
        out[:] = 0
        linalg.add_dot_panels(strided(a.T), packed(src), out)

    _, per_member, rows = blocks(2, T * B, G * (D + E))  # the blocks' products, then added
    for k in range(2):
        a2 = a[k].reshape(T * B, G)
        for src, got in ((b[0, :T].reshape(T * B, D), ab[k]), (c[k].reshape(T * B, E), ac[k])):
            want = np.zeros((G, src.shape[1]), dtype)
            for j in range(per_member):
                part = np.empty_like(want)
                usual(a2[j * rows : (j + 1) * rows], src[j * rows : (j + 1) * rows], part)
                want += part
            np.testing.assert_array_equal(got, want)
            tol = 1e-4 if dtype == "float32" else 1e-12  # and NumPy's product, independently
            np.testing.assert_allclose(got, a2.T @ src, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize(
    "M,K,N,itemsize,plan,want",
    [
        (16, 64, 192, 8, None, True),  # 2^17.6 multiply-adds: the loops
        (32, 128, 128, 8, None, False),  # 2^19: BLAS
        (16, 64, 256, 8, None, False),  # b's rows 2 KB apart, above 2^16: BLAS
        (16, 64, 256, 4, None, True),  # float32: 1 KB apart
        (8, 32, 256, 8, None, True),  # 2 KB apart but 2^16: the loops
        (4, 32, 32, 8, PANELS, True),  # the panels: loops up to 2^12
        (4, 32, 33, 8, PANELS, False),
        (3, 64, 64, 8, PANELS, True),  # fewer rows than a tile
        (4, 64, 64, 8, PANELS, False),
        (64, 64, 15, 8, PANELS, True),  # narrower than half a panel (16 doubles)
        (64, 64, 16, 8, PANELS, False),
        (64, 64, 31, 4, PANELS, True),  # (32 floats)
        (64, 64, 32, 4, PANELS, False),
    ],
)
def test_use_loops(M, K, N, itemsize, plan, want):
    assert linalg.use_loops(M, K, N, N * itemsize, itemsize, plan) is want


def test_loop_weights_pads_only_where_the_loops_then_take_the_product(rng):
    w = rng.standard_normal((2, 64, 256))  # an LSTM of 64 units: rows 2 KB apart
    padded = linalg.loop_weights(w, 16, None)
    assert padded.shape == (2, 64, 264) and padded.flags.c_contiguous  # 33 lines a row
    np.testing.assert_array_equal(padded[:, :, :256], w)
    assert (padded[:, :, 256:] == 0).all()
    assert linalg.loop_weights(w, 32, None) is w  # 2^19 multiply-adds: BLAS, unpadded
    assert linalg.loop_weights(w, 16, PANELS) is w  # the panels
    assert linalg.loop_weights(w[:, :, :192].copy(), 16, None).shape == (2, 64, 192)  # 1.5 KB
    # a step's product and projection through the padded weights
    a = rng.standard_normal((16, 64))
    out, scratch = np.full((16, 256), np.nan), np.empty(16 * 256)
    step_dot(a, padded[0], np.empty((0, 0)), out, None)
    np.testing.assert_allclose(out, a @ w[0], rtol=1e-12, atol=1e-12 * np.abs(a @ w[0]).max())
    bias = rng.standard_normal(256)
    out[:] = 1.0
    project(a, padded[1], np.empty((0, 0)), bias, out, True, scratch, None)
    want = 1.0 + a @ w[1] + bias
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("add", [False, True])
@pytest.mark.parametrize(
    "M,D,G",
    [(1, 1, 5), (4, 2, 8), (1, 20, 8), (8, 16, 128), (5, 512, 512)],
    ids=["one", "tiny", "tiny-many-inputs", "loops-or-panels", "blas-or-panels"],
)
@pytest.mark.parametrize("plan", [None, PANELS], ids=["blas", "panels"])
def test_project_matches_numpy(M, D, G, add, plan, rng):
    # a step's input projection: add_dot_loops up to LOOP_PRODUCT multiply-adds (up to
    # LOOP_PRODUCT_PANELS against the panels), one BLAS call or the panels above, written
    # or added to out
    x = rng.standard_normal((M, D))
    w = rng.standard_normal((1, D, G))
    bias = rng.standard_normal(G)
    start = rng.standard_normal((M, G))
    out = start.copy()
    scratch = np.full(M * G, np.nan)
    project(x, w[0], linalg.step_weights(w, M, plan)[0], bias, out, add, scratch, plan)
    want = x @ w[0] + bias + (start if add else 0)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize(
    "M,K,N",
    [
        (1, 3, 4),
        (4, 8, 8),
        (2, 20, 30),
        (16, 128, 512),
        (3, 128, 512),
        (10, 64, 2000),
        (33, 700, 500),
    ],
    ids=["tiny", "tiny-H8", "loops", "large", "thin", "wide", "large-odd"],
)
@pytest.mark.parametrize("plan", [None, PANELS], ids=["blas", "panels"])
def test_step_dot_matches_numpy(M, K, N, plan, rng):
    # the loops, one BLAS call or the panels (on any machine: the tiles' code compiles for
    # any target), b's panels made only where the panels take the product
    a = rng.standard_normal((M, K))
    b = rng.standard_normal((1, K, N))
    bp = linalg.step_weights(b, M, plan)[0]
    loops = linalg.use_loops(M, K, N, N * 8, 8, plan)
    assert bp.size == 0 if loops or plan is None else bp.shape == (-(-N // 32) * K, 32)
    out = np.full((M, N), np.nan)
    step_dot(a, b[0], bp, out, plan)
    np.testing.assert_allclose(out, a @ b[0], rtol=1e-12, atol=1e-12 * np.abs(a @ b[0]).max())


@pytest.mark.parametrize("plan", ["None", "PANELS"])
def test_each_plan_compiles_only_its_own_products(plan, tmp_path):
    # the plan's type decides (None: BLAS, an int: the panels): for None Numba drops the
    # panels' branches before typing, so a BLAS-plan step product compiles no panels (a
    # machine without AVX-512 never runs them)
    code = f"""
import numpy as np
from numba import njit
from numrnn.kernels import linalg
from numrnn.kernels._config import PANELS
@njit
def call(a, b, bp, out, plan):
    linalg.step_dot(a, b, bp, out, plan)
a, b, out = np.ones((4, 64)), np.ones((64, 64)), np.full((4, 64), np.nan)
call(a, b, linalg.step_weights(b[None], 4, {plan})[0], out, {plan})
assert (out == 64).all()
print("add_dot_panels" in compiled)
"""
    out = run_compiling(code, tmp_path)
    assert out.stdout.split() == [str(plan == "PANELS")], out.stderr[-3000:]


def test_numpys_product_compiles_once_per_signature(tmp_path):
    # every BLAS call goes through linalg.blas_dot: Numba's np.dot implementation compiles
    # once for each of its signatures (C-contiguous and transposed a), not once more in
    # every product and kernel that calls it (0.15-0.2 s each)
    code = """
import numpy as np, numrnn as nr
from numrnn.kernels import linalg
nr.set_options(products="blas", compile_ahead=False)  # everything compiles here
model = nr.GRU(8, 32, output_size=3, seed=0)
res = model.forward(np.ones((5, 64, 8)))
model.backward(res, np.ones_like(res.output))
print(sum("dot_3" in name for name in compiled), len(linalg.blas_dot.signatures))
"""
    out = run_compiling(code, tmp_path)
    assert out.stdout.split() == ["2", "2"], (out.stdout, out.stderr[-3000:])


def test_a_kernels_helper_called_from_python_is_a_type_error():
    # compiled without a Python wrapper (_compiling.callee): Numba would call a null
    # pointer; the dispatcher says what went wrong instead
    a = np.ones((2, 3))
    with pytest.raises(TypeError, match="only compiled code can call it"):
        linalg.step_dot(a, np.ones((3, 4)), np.empty((0, 0)), np.empty((2, 4)), None)
    out = np.full((2, 4), np.nan)
    step_dot(a, np.ones((3, 4)), np.empty((0, 0)), out, None)  # through compiled code
    np.testing.assert_array_equal(out, np.full((2, 4), 3.0))


@njit(fastmath={"contract"})
def _scalar_dot_in_order(a, b, out):
    """``out += a @ b``, each element a scalar sum over k in order (multiply-adds fused where
    the CPU has FMA, as in the kernels): the reference for the vector loops, bit for bit."""
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            s = out[i, j]
            for k in range(a.shape[1]):
                s += a[i, k] * b[k, j]
            out[i, j] = s


@pytest.mark.parametrize(
    "M,K,N",
    [
        (1, 1, 1),
        (4, 8, 8),
        (3, 5, 13),
        (2, 7, 16),
        (5, 2, 7),
        (0, 3, 9),
        (3, 0, 9),
        (9, 5, 43),
        (1, 32, 128),
        (6, 3, 40),
        (8, 64, 72),
    ],  # fmt: skip
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_dot_loops_matches_numpy(M, K, N, dtype, rng):
    # rows in fours and one by one, columns in vectors of eight (four blocks at a time for
    # a single row) and the rest one by one; every element its own sum over k in order
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    start = rng.standard_normal((M, N)).astype(dtype)
    out = start.copy()
    add_dot_loops(a, b, out)
    want = a.astype(float) @ b.astype(float) + start
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * max(1, np.abs(want).max(initial=0)))
    scalar = start.copy()
    _scalar_dot_in_order(a, b, scalar)
    np.testing.assert_array_equal(out, scalar)
    # a row's result does not depend on the rows around it (the split of a member's
    # rows between threads must not change its results)
    for i in range(M):
        row = start[i : i + 1].copy()
        add_dot_loops(a[i : i + 1], b, row)
        np.testing.assert_array_equal(row[0], out[i])


@pytest.mark.parametrize("plan", [None, PANELS], ids=["blas", "panels"])
@pytest.mark.parametrize("transposed", [False, True])
def test_dot_rows_matches_numpy(plan, transposed, rng):
    # the Jacobian products: b a step's Jacobian (the Lyapunov kernel passes J.T), its
    # panels packed into a buffer made once, or made here when the buffer has no rows
    from numrnn.kernels import panels

    empty_panels = from_python(panels.empty_panels)
    a = rng.standard_normal((40, 70))
    b = rng.standard_normal((70, 70))
    b = b.T if transposed else b
    for bp in (empty_panels(70, 70, b), np.empty((0, 32))):
        out = np.full((40, 70), np.nan)
        dot_rows(a, b, out, plan, bp)
        np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12 * np.abs(a @ b).max())
