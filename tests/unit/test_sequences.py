"""Sequences: your own data as a task (layouts, splits, baselines, files, bad input)."""

import numpy as np
import pytest
import xarray as xr

from numrnn import losses, tasks


@pytest.fixture
def ragged(rng):
    """Five sequences of 3 features and lengths 5, 8, 6, 7, 4, with per-sequence labels."""
    seqs = [rng.standard_normal((n, 3)) for n in (5, 8, 6, 7, 4)]
    return seqs, np.array([0, 1, 1, 0, 2])


def test_list_padded_and_dataarray_give_the_same_task(ragged):
    seqs, labels = ragged
    a = tasks.Sequences(seqs, labels, validation=0.4, seed=3)
    lengths = np.array([len(s) for s in seqs])
    padded = np.zeros((8, 5, 3))
    for i, s in enumerate(seqs):
        padded[: len(s), i] = s
    b = tasks.Sequences(padded + 99 * (np.arange(8)[:, None, None] >= lengths[None, :, None]),
                        labels, lengths, validation=0.4, seed=3)  # fmt: skip
    da = xr.DataArray(padded.transpose(1, 2, 0), dims=("sample", "feature", "time"))
    c = tasks.Sequences(da, xr.DataArray(labels, dims="sample"), lengths, validation=0.4, seed=3)
    for t in (b, c):
        np.testing.assert_array_equal(t.x, a.x)  # padding zeroed, whatever it held
        np.testing.assert_array_equal(t.lengths, a.lengths)
        assert t.sha1 == a.sha1 and t.config == a.config
    assert (a.loss, a.readout, a.input_size, a.output_size, a.seq_len) == ("xent", "last", 3, 3, 8)
    assert sorted([*a.train_index, *a.val_index]) == list(range(5)) and len(a.val_index) == 2
    x, y, lengths = a.sample(3, rng=0)  # every training sequence, each once
    assert sorted(y.tolist()) == sorted(labels[a.train_index].tolist())
    for i in range(3):
        j = next(j for j in a.train_index if labels[j] == y[i] and len(seqs[j]) == lengths[i])
        np.testing.assert_array_equal(x[: lengths[i], i], seqs[j])


def test_many_to_many_targets_and_the_baseline_by_hand(rng):
    x = [rng.standard_normal((n, 2)) for n in (3, 5, 4, 2)]
    y = [np.cumsum(s, axis=0)[:, :1] for s in x]  # (T_i, 1) per step
    task = tasks.Sequences(x, y, validation=([rng.standard_normal((6, 2))], [np.ones((6, 1))]))
    assert (task.loss, task.readout, task.output_size, task.seq_len) == ("mse", "all", 1, 6)
    xv, yv, lv = task.test_set()
    assert xv.shape == (6, 1, 2) and lv.tolist() == [6]
    mean = np.concatenate(y).mean()  # over the real training entries only
    assert task.baseline == pytest.approx(np.mean((1 - mean) ** 2), rel=1e-14)
    labels = np.array([[0, 1], [1, 1], [2, 0]])  # (T, N) classes, 2 sequences of 3 steps
    cls = tasks.Sequences(np.zeros((3, 2, 1)), labels, validation=0.0)
    p = (np.bincount(labels.ravel(), minlength=3) + 1) / (6 + 3)  # add-one frequencies
    assert cls.baseline == pytest.approx(-np.mean(np.log(p[labels])), rel=1e-14)
    assert cls.readout == "all" and cls.test_set()[1].shape == (3, 2)  # validation 0: all


def test_tokens_one_hot_and_vocabulary(rng):
    ids = rng.integers(0, 5, (7, 4))
    task = tasks.Sequences(ids, np.roll(ids, -1, axis=0), validation=0.25, vocab_size=6)
    assert (task.vocab_size, task.input_size, task.output_size) == (6, None, 5)
    x, _, _ = task.sample(2, 0)
    assert x.dtype == np.int64 and x.shape == (7, 2)
    hot = tasks.Sequences(ids, np.roll(ids, -1, axis=0), validation=0.25, vocab_size=6,
                          one_hot=True)  # fmt: skip
    xh, _, _ = hot.sample(2, 0)
    assert (hot.vocab_size, hot.input_size) == (None, 6)
    np.testing.assert_array_equal(xh.argmax(-1), x)
    assert xh.sum(-1).min() == 1


def test_files_round_trip_and_refuse_other_data(tmp_path, ragged):
    seqs, labels = ragged
    task = tasks.Sequences(seqs, labels, validation=0.4, seed=1)
    for name in ("s.npz", "s.nc"):
        task.save(tmp_path / name)
        again = tasks.get("sequences", path=str(tmp_path / name), seed=1)
        assert again.sha1 == task.sha1
        np.testing.assert_array_equal(again.x, task.x)
    explicit = tasks.Sequences(seqs[:3], labels[:3], validation=(seqs[3:], labels[3:]))
    explicit.save(tmp_path / "e.npz")
    back = tasks.from_file(tmp_path / "e.npz", sha1=explicit.sha1)
    np.testing.assert_array_equal(back.val_index, explicit.val_index)
    with pytest.raises(ValueError, match="not those the task was built from"):
        tasks.from_file(tmp_path / "e.npz", sha1=task.sha1)
    with pytest.raises(ValueError, match="path .* does not exist"):
        tasks.get("sequences", path=str(tmp_path / "missing.npz"))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda r: ([r.random((3, 2)), r.random((4, 3))], [0, 1]), ValueError,
         r"x\[1\] has shape \(4, 3\).*feature shape \(2,\)"),
        (lambda r: (r.random((5, 2, 1)), [0, 1], {"lengths": [5, 6]}), ValueError,
         r"lengths must lie in 1..5"),
        (lambda r: (r.random((5, 2, 1)), [0, 3], {"n_classes": 3}), ValueError,
         r"label 3, outside 0..n_classes-1"),
        (lambda r: (np.array([[0, 7], [1, 2]]), [0, 1], {"vocab_size": 5}), ValueError,
         r"token id 7, outside the vocabulary"),
        (lambda r: (np.where(r.random((4, 3, 2)) > 0.9, np.nan, 0.0), [0, 1, 0]), ValueError,
         r"x contains NaN or inf"),
        (lambda r: (r.random((4, 3, 2)), [0, 1, 0], {"validation": 0.1}), ValueError,
         r"empty validation split"),
        (lambda r: (r.random((4, 3, 2)), [0, 1, 0], {"validation": (r.random((4, 1, 3)), [0])}),
         ValueError, r"validation x must be like x"),
        (lambda r: (r.random((4, 3)), [0, 1, 0]), ValueError, r"x\[\.\.\., None\]"),
        (lambda r: (r.random((4, 3, 1)), r.random((2,))), ValueError, r"y of float targets"),
        (lambda r: (r.random((4, 3, 1)) > 0.5, [0, 1, 1]), TypeError, "x must hold floats"),
        (lambda r: ([r.random((3, 2)), r.random((2, 2))], [np.zeros(3), np.zeros(3)]),
         ValueError, r"y\[1\] has 3 steps, its input sequence 2"),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument(make, error, match):
    args = make(np.random.default_rng(0))
    kwargs = {"validation": 0.0, **(args[2] if len(args) == 3 else {})}
    with pytest.raises(error, match=match):
        tasks.Sequences(args[0], args[1], **kwargs)


def test_masked_losses_on_a_batch_ignore_padding(ragged):
    seqs, _ = ragged
    task = tasks.Sequences(seqs, [s[:, :1] for s in seqs], validation=0.0)
    _, y, lengths = task.train_set()
    pred = np.zeros_like(y)
    value, grad = losses.mse(pred, y, lengths)
    assert value == pytest.approx(np.mean(np.concatenate([s[:, 0] for s in seqs]) ** 2))
    assert not grad[7, lengths < 8].any()  # padding gets no gradient


def test_a_netcdf_file_of_any_dim_order(tmp_path, rng):
    x = rng.standard_normal((6, 5, 2))
    y = rng.standard_normal((6, 5, 1))
    ds = xr.Dataset({"x": (("feature", "sample", "time"), x.transpose(2, 1, 0)),
                     "y": (("sample", "time", "output"), y.transpose(1, 0, 2))})  # fmt: skip
    ds.to_netcdf(tmp_path / "mine.nc")
    task = tasks.from_file(tmp_path / "mine.nc", validation=0.0)
    np.testing.assert_array_equal(task.x, x)
    np.testing.assert_array_equal(task.y, y)
    assert task.readout == "all"
