"""Work splitting and threads (numrnn.kernels._parallel); the products of .linalg are in
test_linalg.py."""

import os
import time

import numpy as np
import pytest
from helpers import from_python
from numba import njit

import numrnn as nr
from numrnn.kernels import _parallel
from numrnn.kernels._config import MIN_LOOP_WORK, MIN_STEP_WORK
from numrnn.kernels._parallel import THREADS, blocks, loop_blocks, run_items

span = from_python(_parallel.span)


@pytest.mark.parametrize("K,B", [(1, 1), (1, 7), (2, 32), (3, 5), (64, 16), (5, 1)])
def test_blocks_cover_every_row_of_every_member_once(K, B):
    items, per_member, rows = blocks(K, B)
    seen = np.zeros((K, B), int)
    for item in range(items):
        m, lo, hi = span(item, per_member, rows, B)
        assert lo < hi
        seen[m, lo:hi] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize("T", [1, 50, 400])
@pytest.mark.parametrize("G,H,B", [(1, 8, 8), (4, 8, 8), (1, 64, 7), (4, 32, 16), (3, 512, 2)])
def test_loop_blocks_split_a_member_only_for_large_loops_and_whatever_k(G, H, B, T):
    # a time loop of T steps of B x H by H x GH is split only into blocks of at least
    # MIN_STEP_WORK multiply-adds a step and MIN_LOOP_WORK over the loop, and into no more
    # blocks than threads
    _, per_member, rows = loop_blocks(1, B, G, H, T)
    least = max(MIN_STEP_WORK, MIN_LOOP_WORK / T)
    split = THREADS > 1 and B * G * H * H >= 2 * least
    assert (per_member > 1) == split
    assert per_member <= min(B, THREADS)
    if split:
        assert rows * G * H * H >= MIN_STEP_WORK and T * rows * G * H * H >= MIN_LOOP_WORK
    assert per_member * rows >= B > (per_member - 1) * rows
    for K in (2, 3, 1024):
        assert loop_blocks(K, B, G, H, T) == (K * per_member, per_member, rows)


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


def test_run_items_serves_several_calling_threads_at_once():
    # a threaded Dask worker or a user's thread pool: callers share the persistent pool
    import concurrent.futures

    seen = [np.zeros(9, np.int64) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(3) as callers:
        list(callers.map(lambda s: run_items(_mark_items, 9, s, -1), seen))
    assert all((s == 1).all() for s in seen)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_items_on_a_pool_of_its_own():
    # the child inherits the parent's pool object but none of its threads; work handed to
    # it would wait forever
    import numba

    saved = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        run_items(_mark_items, 4, np.zeros(4, np.int64), -1)  # the parent's pool exists
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only if every item ran once
            seen = np.zeros(4, np.int64)
            try:
                run_items(_mark_items, 4, seen, -1)
            finally:
                os._exit(0 if (seen == 1).all() else 1)
        for _ in range(600):  # a hung child is killed after a minute, not waited on
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's run_items hung")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        numba.set_num_threads(saved)


def test_serial_blas_limits_blas_inside_and_restores_it_after():
    import scipy.linalg.cython_blas  # noqa: F401 - loaded before counting, as serial_blas does
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


@pytest.mark.skipif(THREADS < 2, reason="Numba has one thread: no pass runs on several")
def test_a_pass_limits_blas_from_its_first_threaded_kernel_to_its_end(monkeypatch, rng):
    """A pass of one sequence leaves BLAS alone (its kernels run on the calling thread);
    a batch's pass limits it where its kernels run on several threads, inside them, and
    restores it at the pass's end, however many threaded kernels it runs."""
    import scipy.linalg.cython_blas  # noqa: F401 - loaded before counting, as a pass does
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen, run = [], _parallel.run_items

    def watch(kernel, n, *args, **kwargs):
        def observed(*a):  # on each thread that runs the kernel
            seen.append((_parallel._serial, set(blas_threads())))
            return kernel(*a)

        return run(observed, n, *args, **kwargs)

    for module in ("rnn", "linalg"):
        monkeypatch.setattr(f"numrnn.kernels.{module}.run_items", watch)
    before = blas_threads()
    model = nr.RNN(3, 64, seed=0)
    res = model.forward(rng.standard_normal((40, 1, 3)))  # one work item
    model.backward(res, np.ones_like(res.output))
    assert seen and all(count == 0 and threads == set(before) for count, threads in seen)
    seen.clear()
    res = model.forward(rng.standard_normal((40, 16, 3)))  # the rows split: two items
    model.backward(res, np.ones_like(res.output))
    assert len(seen) > 4 and all(count == 1 and threads == {1} for count, threads in seen)
    assert _parallel._serial == 0 and blas_threads() == before


def test_serial_blas_leaves_a_library_at_one_thread_alone(monkeypatch):
    from numrnn.kernels import _parallel

    calls = []
    libs = [(lambda: 1, lambda n: calls.append(("one", n))),
            (lambda: 4, lambda n: calls.append(("four", n)))]  # fmt: skip
    monkeypatch.setattr(_parallel, "_blas", libs)
    with _parallel.serial_blas():
        with _parallel.serial_blas():
            pass
        assert calls == [("four", 1)]
    assert calls == [("four", 1), ("four", 4)]


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
