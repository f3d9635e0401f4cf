"""Work splitting and the thread-parallel products (numrnn.kernels._parallel, .linalg)."""

import functools
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

import numrnn as nr
from numrnn.kernels import linalg
from numrnn.kernels._parallel import blocks, run_items, span


@pytest.mark.parametrize("K,B", [(1, 1), (1, 7), (2, 32), (3, 5), (64, 16), (5, 1)])
def test_blocks_cover_every_row_of_every_member_once(K, B):
    items, per_member, rows = blocks(K, B)
    seen = np.zeros((K, B), int)
    for item in range(items):
        m, lo, hi = span(item, per_member, rows, B)
        assert lo < hi
        seen[m, lo:hi] += 1
    assert (seen == 1).all()


@njit(nogil=True)
def _mark_items(seen, fail_at, first, step):
    for item in range(first, seen.shape[0], step):
        if item == fail_at:
            raise ValueError("item failed")
        seen[item] += 1


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("threads", [1, 2])
def test_run_items_runs_each_item_once_and_raises_what_an_item_raises(n, threads):
    import numba

    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        seen = np.zeros(n, np.int64)
        run_items(_mark_items, n, seen, -1)
        assert (seen == 1).all()
        with pytest.raises(ValueError, match="item failed"):
            run_items(_mark_items, n, np.zeros(n, np.int64), n - 1)
    finally:
        numba.set_num_threads(saved)


@pytest.mark.parametrize("Ka", [1, 3])
def test_matmul_and_matmul_tn_match_numpy(Ka, rng):
    a = rng.standard_normal((Ka, 37, 5))
    b = rng.standard_normal((3, 5, 4))
    want = np.matmul(np.broadcast_to(a, (3, 37, 5)), b)
    np.testing.assert_allclose(linalg.matmul(a, b, np.zeros((0, 0))), want, rtol=1e-13)
    bias = rng.standard_normal((3, 4))
    np.testing.assert_allclose(linalg.matmul(a, b, bias), want + bias[:, None], rtol=1e-13)


@pytest.mark.parametrize("Kb,Kc", [(1, 3), (3, 1), (3, 0)])
@pytest.mark.parametrize("G,D", [(6, 5), (128, 32), (600, 700)], ids=["tiny", "pieces", "large"])
def test_matmul_tn_matches_numpy(Kb, Kc, G, D, rng):
    # the weight-gradient pass: two products with one gradient and its sum, members
    # sharing b or c when theirs has one member, b longer in time than the gradient
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


@pytest.mark.parametrize("add", [False, True])
@pytest.mark.parametrize(
    "M,D,G",
    [(1, 1, 5), (8, 16, 128), (8, 17, 128), (5, 512, 512)],
    ids=["one", "loop", "blas", "transposed"],
)
def test_project_matches_numpy(M, D, G, add, rng):
    # a step's input projection: the loop up to LOOP_FEATURES inputs, BLAS above (with
    # step_dot's transposed path for the largest), written or added to out
    x = rng.standard_normal((M, D))
    w = rng.standard_normal((1, D, G))
    bias = rng.standard_normal(G)
    start = rng.standard_normal((M, G))
    out = start.copy()
    scratch = np.empty(M * (D + 2 * G))
    linalg.project(x, w[0], linalg.step_weights(w, M)[0], bias, out, add, scratch)
    want = x @ w[0] + bias + (start if add else 0)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize(
    "M,K,N",
    [(1, 3, 4), (16, 128, 512), (32, 128, 512), (10, 64, 2000), (5, 512, 512), (33, 700, 500)],
    ids=["one-call", "row-pieces", "balanced-pieces", "two-pieces", "transposed", "transposed-odd"],
)
def test_step_dot_matches_numpy(M, K, N, rng):
    a = rng.standard_normal((M, K))
    b = rng.standard_normal((1, K, N))
    bt = linalg.step_weights(b, M)[0]
    rows = linalg._rows_per_call(M, K, N)
    assert (bt.shape == (N, K)) == (rows == 0)  # the transpose only where it is used
    if bt.size:
        np.testing.assert_array_equal(bt, b[0].T)
    out = np.full((M, N), np.nan)
    linalg.step_dot(a, b[0], bt, out, np.empty(M * (K + N)))
    np.testing.assert_allclose(out, a @ b[0], rtol=1e-12, atol=1e-12 * np.abs(a @ b[0]).max())


def test_thread_start_leaves_the_environment_as_it_was(rng):
    before = {k: os.environ.get(k) for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    nr.RNN(2, 3).forward(rng.standard_normal((4, 2, 2)))
    assert {k: os.environ.get(k) for k in before} == before


def test_reuse_freed_memory_switches_glibc_malloc():
    code = (
        "import numpy as np; from numrnn.memory import reuse_freed_memory as r; ok = r(); "
        "a = np.ones(2**23); del a; b = np.ones(2**23); print(ok, b.sum())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = "True" if platform.libc_ver()[0] == "glibc" else "False"
    assert out.stdout.split() == [expected, str(float(2**23))]


def test_serial_blas_limits_blas_inside_and_restores_it_after():
    from threadpoolctl import threadpool_info

    from numrnn.kernels._parallel import serial_blas

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with serial_blas():
        with serial_blas():  # nested: still limited, and the outer exit restores
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_serial_blas_limits_blas_in_any_thread():
    # threadpoolctl ignores limits set from a thread other than the first one that set a
    # (pthreads) OpenBLAS's limit: serial_blas must not depend on which thread that was
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    from numrnn.kernels._parallel import serial_blas

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(1, user_api="blas"):  # this thread now "controls" OpenBLAS
        pass
    before = blas_threads()
    seen = []

    def work():
        with serial_blas():
            seen.append(blas_threads())
        seen.append(blas_threads())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert set(seen[0]) == {1}
    assert seen[1] == before


def test_single_sequence_pass_restores_the_thread_count_and_agrees_with_a_batch(rng):
    import numba

    model = nr.LSTM(3, 4, seed=0)
    x = rng.standard_normal((5, 1, 3))
    before = numba.get_num_threads()
    res = model.forward(x)  # K * B == 1: one work item, the pool is not woken
    assert numba.get_num_threads() == before
    alone = model.backward(res, np.ones_like(res.output))
    assert numba.get_num_threads() == before
    # the same sequence inside a batch of two gives the same numbers
    both = model.backward(model.forward(np.concatenate([x, x], 1)), np.ones((5, 2, 4)))
    np.testing.assert_allclose(both.params["weight_hh_l0"] / 2, alone.params["weight_hh_l0"],
                               rtol=1e-13)  # fmt: skip
