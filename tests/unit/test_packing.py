"""numrnn.nn.packing: the packed layout of variable-length batches, against plain loops."""

import numpy as np
import pytest

from numrnn.nn.packing import PackedBatch


def test_full_length_batch_is_not_permuted():
    p = PackedBatch.make(None, 4, 3)
    assert p.order is None and p.lengths is None and p.rev is None
    assert p.batch_sizes.tolist() == [3, 3, 3, 3]
    a = np.arange(2 * 4 * 3).reshape(2, 4, 3)
    assert p.sort(a, 2) is a and p.unsort(a, 2) is a
    np.testing.assert_array_equal(p.flip(a), a[:, ::-1])
    assert p.live().all()
    np.testing.assert_array_equal(p.final(np.arange(2 * 5 * 3).reshape(2, 5, 3)),
                                  np.arange(2 * 5 * 3).reshape(2, 5, 3)[:, 4])  # fmt: skip
    assert PackedBatch.make(np.array([4, 4, 4]), 4, 3).order is None


@pytest.fixture
def packed():
    return PackedBatch.make(np.array([2, 5, 3, 5]), 5, 4)


def test_sorted_longest_first_stably(packed):
    assert packed.order.tolist() == [1, 3, 2, 0]
    assert packed.lengths.tolist() == [5, 5, 3, 2]
    assert packed.batch_sizes.tolist() == [4, 4, 3, 2, 2]  # running at each step: a prefix


def test_sort_and_unsort_are_inverse(packed, rng):
    a = rng.normal(size=(2, 5, 4, 3))
    s = packed.sort(a, 2)
    np.testing.assert_array_equal(s[:, :, 0], a[:, :, 1])
    np.testing.assert_array_equal(packed.unsort(s, 2), a)


def test_flip_reverses_each_sequence_within_its_length(packed, rng):
    a = rng.normal(size=(1, 5, 4))
    f = packed.flip(a)
    for b, n in enumerate(packed.lengths):
        np.testing.assert_array_equal(f[0, :n, b], a[0, :n, b][::-1])
        np.testing.assert_array_equal(f[0, n:, b], a[0, n:, b])  # padding stays
    np.testing.assert_array_equal(packed.flip(f), a)  # an involution
    assert f.flags.c_contiguous
    np.testing.assert_array_equal(packed.direction(a, 1), f)
    np.testing.assert_array_equal(packed.direction(a, 0), a)


def test_final_live_and_to_caller(packed, rng):
    traj = rng.normal(size=(1, 6, 4))  # (K, T+1, B)
    fin = packed.final(traj)
    for b, n in enumerate(packed.lengths):
        assert fin[0, b] == traj[0, n, b]
    live = packed.live()
    assert live.sum(axis=0).tolist() == packed.lengths.tolist()
    # to_caller: kernel order (K, B_sorted, T in the direction's time) -> caller order, real time
    v = rng.normal(size=(1, 4, 5))
    back = packed.to_caller(v, 1)
    for b_sorted, b in enumerate(packed.order):
        n = packed.lengths[b_sorted]
        np.testing.assert_array_equal(back[0, b, :n], v[0, b_sorted, :n][::-1])
    np.testing.assert_array_equal(packed.to_caller(v, 0)[0, packed.order], v[0])
