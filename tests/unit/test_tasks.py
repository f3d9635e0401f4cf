"""Tasks: data layout, determinism, and baselines estimated empirically."""

import importlib.util
import json
import math

import numpy as np
import pytest

from numrnn import losses, tasks

# scikit-learn (the digits data) is an optional dependency.
needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn"
)


def test_adding_layout():
    task = tasks.Adding(T=20)
    x, y = task.sample(64, np.random.default_rng(0))
    assert x.shape == (20, 64, 2) and x.dtype == np.float64
    assert y.shape == (64, 1) and y.dtype == np.float64
    assert task.seq_len == 20 and task.input_size == 2 and task.output_size == 1
    assert (task.loss, task.readout) == ("mse", "last")
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers[:10].sum(0), 1)  # one marker in each half
    np.testing.assert_array_equal(markers[10:].sum(0), 1)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(0), rtol=1e-15)


def test_adding_odd_length_and_minimum():
    x, _ = tasks.Adding(T=3).sample(500, 1)
    assert np.all(x[:1, :, 1].sum(0) == 1) and np.all(x[1:, :, 1].sum(0) == 1)
    with pytest.raises(ValueError, match="T must be >= 2"):
        tasks.Adding(T=1)


def test_adding_baseline_empirical():
    task = tasks.Adding(T=4)
    _, y = task.sample(200_000, np.random.default_rng(1))
    # The best constant is the target's mean, 1; its MSE is the target's variance, 1/6.
    assert abs(y.mean() - 1.0) < 0.005
    empirical, _ = losses.mse(np.ones_like(y), y)
    assert task.baseline == pytest.approx(1 / 6)
    assert abs(empirical - task.baseline) < 0.003  # sd of the estimate ~ 4e-4


def test_copy_layout():
    task = tasks.Copy(T=7, n_symbols=5)
    x, y = task.sample(32, np.random.default_rng(0))
    assert x.shape == (27, 32, 7) and x.dtype == np.float64
    assert y.shape == (27, 32) and y.dtype == np.int64
    assert (task.input_size, task.output_size, task.seq_len) == (7, 6, 27)
    assert (task.loss, task.readout) == ("xent", "all")
    np.testing.assert_array_equal(x.sum(-1), 1)  # one-hot
    seq = x.argmax(-1)
    assert np.all((seq[:10] >= 1) & (seq[:10] <= 5))
    np.testing.assert_array_equal(seq[10:16], 0)  # T - 1 blanks
    np.testing.assert_array_equal(seq[16], 6)  # delimiter
    np.testing.assert_array_equal(seq[17:], 0)  # 10 blanks
    np.testing.assert_array_equal(y[:17], 0)
    np.testing.assert_array_equal(y[17:], seq[:10])
    assert y.max() < task.output_size


@pytest.mark.parametrize(("T", "n_symbols"), [(10, 8), (50, 4)])
def test_copy_baseline_empirical(T, n_symbols):
    task = tasks.Copy(T=T, n_symbols=n_symbols)
    x, y = task.sample(500, np.random.default_rng(2))
    # Memoryless strategy: blank for T + 10 steps, then uniform over the symbols.
    logits = np.full(y.shape + (task.output_size,), -50.0)
    logits[: T + 10, :, 0] = 0.0
    logits[T + 10 :, :, 1:] = 0.0
    loss, _ = losses.xent(logits, y)
    assert task.baseline == pytest.approx(10 * math.log(n_symbols) / (T + 20))
    assert loss == pytest.approx(task.baseline, rel=1e-9)
    # Any other constant-in-input prediction does worse, e.g. uniform over all classes.
    assert losses.xent(np.zeros_like(logits), y)[0] > task.baseline


@needs_sklearn
def test_digits_layout_and_split():
    task = tasks.SequentialDigits()
    x, y = task.sample(50, np.random.default_rng(0))
    assert x.shape == (64, 50, 1) and x.dtype == np.float64 and x.flags.c_contiguous
    assert y.shape == (50,) and y.dtype == np.int64
    assert x.min() >= 0 and x.max() <= 1
    assert (task.loss, task.readout, task.output_size, task.seq_len) == ("xent", "last", 10, 64)
    xt, yt = task.test_set()
    xr, yr = task.train_set()
    assert xt.shape == (64, 360, 1) and xr.shape == (64, 1437, 1)
    assert set(np.unique(yt)) == set(range(10))
    # Pixel order: reading row by row reproduces scikit-learn's image.
    from sklearn.datasets import load_digits

    images = load_digits().images
    np.testing.assert_array_equal(xt[:, 0, 0].reshape(8, 8), images[1437] / 16)
    # Train and test are disjoint images.
    train = {row.tobytes() for row in xr[:, :, 0].T}
    assert len(train & {row.tobytes() for row in xt[:, :, 0].T}) < 5  # a few duplicates exist
    # Minibatches come from the training split, without replacement.
    big_x, _ = task.sample(1437, 3)
    assert {row.tobytes() for row in big_x[:, :, 0].T} == train
    with pytest.raises(ValueError, match="batch_size must be at most 1437"):
        task.sample(1438, 0)


@needs_sklearn
def test_digits_permuted():
    plain, perm = tasks.SequentialDigits(), tasks.SequentialDigits(permuted=True, seed=1)
    xp, yp = plain.test_set()
    xq, yq = perm.test_set()
    np.testing.assert_array_equal(yp, yq)
    np.testing.assert_array_equal(xq, xp[perm.permutation])
    assert sorted(perm.permutation) == list(range(64))
    assert not np.array_equal(perm.permutation, np.arange(64))
    other = tasks.SequentialDigits(permuted=True, seed=2)
    assert not np.array_equal(other.permutation, perm.permutation)
    again = tasks.SequentialDigits(permuted=True, seed=1)
    np.testing.assert_array_equal(again.permutation, perm.permutation)


@needs_sklearn
def test_digits_baseline_empirical():
    task = tasks.SequentialDigits()
    _, y_train = task.train_set()
    _, y_test = task.test_set()
    prior = np.bincount(y_train, minlength=10) / len(y_train)
    logits = np.tile(np.log(prior), (len(y_test), 1))
    loss, _ = losses.xent(logits, y_test)
    assert task.baseline == pytest.approx(loss, rel=1e-12)
    assert abs(task.baseline - math.log(10)) < 0.01  # nearly balanced classes


@pytest.mark.parametrize(
    "task",
    [tasks.Adding(12), tasks.Copy(5), pytest.param(tasks.SequentialDigits(), marks=needs_sklearn)],
    ids=repr,
)
def test_determinism_and_fixed_test_set(task):
    a = task.sample(16, np.random.default_rng(5))
    b = task.sample(16, 5)
    c = task.sample(16, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    t1, t2 = task.test_set(), task.test_set()
    np.testing.assert_array_equal(t1[0], t2[0])
    np.testing.assert_array_equal(t1[1], t2[1])


def test_synthetic_test_set_size_and_rng():
    task = tasks.Adding(10)
    x, y = task.test_set()
    assert x.shape == (10, 1000, 2) and y.shape == (1000, 1)
    assert not np.array_equal(task.test_set(np.random.default_rng(0))[0], x)


def test_registry_config_and_repr():
    task = tasks.get("copy", T=30, n_symbols=4)
    assert isinstance(task, tasks.Copy)
    assert repr(task) == "Copy(T=30, n_symbols=4)"
    assert repr(tasks.get("adding", T=5)) == "Adding(T=5)"
    assert repr(tasks.SequentialDigits(permuted=True)) == "SequentialDigits(permuted=True, seed=0)"
    config = json.loads(json.dumps(task.config))
    assert config == {"name": "copy", "T": 30, "n_symbols": 4}
    assert tasks.get(**config) == task


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown task 'mnist'; known: adding, copy, digits"):
        tasks.get("mnist")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['length'\]; accepted: T"):
        tasks.get("adding", length=10)
    with pytest.raises(TypeError, match="'T'"):
        tasks.get("adding")


def test_validation():
    with pytest.raises(ValueError, match="batch_size"):
        tasks.Adding(10).sample(0, 0)
    with pytest.raises(TypeError, match="T must be a positive integer"):
        tasks.Copy(2.5)
    with pytest.raises(TypeError, match="rng"):
        tasks.Adding(10).sample(4, "seed")
