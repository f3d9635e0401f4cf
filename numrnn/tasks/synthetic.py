"""The synthetic benchmarks of long-range memory: adding, copy memory, sequential digits.

Each generates its batches (:meth:`~numrnn.tasks.Task.sample` returns ``(x, y)``) and has a
fixed evaluation batch drawn with :data:`~numrnn.tasks.TEST_SEED`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import _checks
from .._checks import check_positive_int
from .base import Task

__all__ = ["Adding", "Copy", "SequentialDigits"]


class Adding(Task):
    """The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015).

    Two input channels: values drawn from U(0, 1), and a marker that is 1 at exactly two
    steps, one in the first half (``t < T // 2``) and one in the second half. The target is
    the sum of the two marked values, read out at the last step.

    Parameters
    ----------
    T : int
        Sequence length, >= 2.

    Notes
    -----
    ``x`` is ``(T, B, 2)`` (channel 0 values, channel 1 markers), ``y`` is ``(B, 1)``.
    The baseline predicts 1 (the target's mean) always; its MSE is the variance of a sum of
    two U(0, 1) numbers, 2/12 = 1/6.

    Examples
    --------
    >>> import numrnn as nr
    >>> task = nr.tasks.Adding(T=10)
    >>> x, y = task.sample(4, rng=0)
    >>> x.shape, y.shape
    ((10, 4, 2), (4, 1))
    >>> x[:, :, 1].sum(axis=0)                     # two markers per sequence
    array([2., 2., 2., 2.])
    >>> round(task.baseline, 4)
    0.1667
    """

    name = "adding"
    loss = "mse"
    readout = "last"
    input_size = 2
    output_size = 1

    def __init__(self, T: int):
        self.T = check_positive_int("T", T)
        if self.T < 2:
            raise ValueError(f"T must be >= 2 (one marker in each half), got {T}")
        self.seq_len = self.T

    @property
    def baseline(self) -> float:
        return 1.0 / 6.0

    def sample(self, batch_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Draw a batch.

        Parameters
        ----------
        batch_size : int
            ``B``.
        rng : numpy.random.Generator or int

        Returns
        -------
        x : ndarray, shape (T, B, 2)
        y : ndarray, shape (B, 1)
        """
        B = check_positive_int("batch_size", batch_size)
        rng = _checks.as_rng(rng)
        T, half = self.T, self.T // 2
        x = np.zeros((T, B, 2))
        x[:, :, 0] = rng.random((T, B))
        first = rng.integers(0, half, B)
        second = rng.integers(half, T, B)
        cols = np.arange(B)
        x[first, cols, 1] = 1.0
        x[second, cols, 1] = 1.0
        y = (x[first, cols, 0] + x[second, cols, 0])[:, None]
        return x, y


class Copy(Task):
    """The copy-memory problem (Arjovsky, Shah & Bengio 2016).

    Input: 10 symbols drawn uniformly from ``1..n_symbols``, then ``T - 1`` blanks (0), a
    delimiter (``n_symbols + 1``), then 10 more blanks: ``T + 20`` steps, one-hot encoded.
    Target: blank at every step except the last 10, which must reproduce the 10 symbols.

    Parameters
    ----------
    T : int
        Delay between the end of the symbols and the delimiter, plus one; >= 1.
    n_symbols : int, optional
        Alphabet size (default 8).

    Notes
    -----
    ``x`` is ``(T + 20, B, n_symbols + 2)`` one-hot float64 (blank, symbols, delimiter);
    ``y`` is ``(T + 20, B)`` int64 class indices in ``0..n_symbols``. The delimiter is never
    a target, so ``output_size = n_symbols + 1`` (blank and symbols), as in Arjovsky et al.
    The baseline predicts blank for the first ``T + 10`` steps and a uniform guess among the
    symbols for the last 10: cross-entropy ``10 log(n_symbols) / (T + 20)``.

    Examples
    --------
    >>> import numrnn as nr
    >>> task = nr.tasks.Copy(T=5, n_symbols=4)
    >>> x, y = task.sample(2, rng=0)
    >>> x.shape, y.shape                          # (T + 20, B, n_symbols + 2), (T + 20, B)
    ((25, 2, 6), (25, 2))
    >>> bool((y[-10:] == x[:10].argmax(-1)).all())  # the last 10 targets repeat the symbols
    True
    """

    name = "copy"
    loss = "xent"
    readout = "all"

    def __init__(self, T: int, n_symbols: int = 8):
        self.T = check_positive_int("T", T)
        self.n_symbols = check_positive_int("n_symbols", n_symbols)
        self.seq_len = self.T + 20
        self.input_size = self.n_symbols + 2
        self.output_size = self.n_symbols + 1

    @property
    def baseline(self) -> float:
        return 10.0 * math.log(self.n_symbols) / (self.T + 20)

    def sample(self, batch_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Draw a batch.

        Parameters
        ----------
        batch_size : int
            ``B``.
        rng : numpy.random.Generator or int

        Returns
        -------
        x : ndarray, shape (T + 20, B, n_symbols + 2)
        y : ndarray of int64, shape (T + 20, B)
        """
        B = check_positive_int("batch_size", batch_size)
        rng = _checks.as_rng(rng)
        symbols = rng.integers(1, self.n_symbols + 1, (10, B))
        seq = np.zeros((self.seq_len, B), dtype=np.int64)
        seq[:10] = symbols
        seq[self.T + 9] = self.n_symbols + 1  # after 10 symbols and T - 1 blanks
        y = np.zeros((self.seq_len, B), dtype=np.int64)
        y[-10:] = symbols
        x = np.zeros((self.seq_len, B, self.input_size))
        np.put_along_axis(x, seq[..., None], 1.0, axis=-1)
        return x, y


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "SequentialDigits needs scikit-learn (its bundled 8x8 digits): pip install scikit-learn"
        ) from err
    data = load_digits()
    images = np.ascontiguousarray(data.data, dtype=np.float64) / 16.0  # pixels are 0..16
    images.setflags(write=False)
    labels = np.asarray(data.target, dtype=np.int64)
    labels.setflags(write=False)
    return images, labels


class SequentialDigits(Task):
    """Sequential (optionally permuted) digits: MNIST-style pixel-by-pixel classification.

    scikit-learn's bundled 8x8 digits (1797 images, offline), pixels scaled to [0, 1] and
    read one per step in row-major order (T = 64, D = 1); the class is read out at the last
    step. The permuted variant (Le et al. 2015) reads the pixels in a fixed random order,
    which spreads the informative pixels across the whole sequence.

    Parameters
    ----------
    permuted : bool, optional
        Read pixels in a fixed random order.
    seed : int, optional
        Seed of that order; ignored unless ``permuted``.

    Notes
    -----
    The split is fixed: the first 80% of the images (1437) train, the last 20% (360) test.
    :meth:`sample` draws a training minibatch without replacement; :meth:`test_set` is the
    whole test split and :meth:`train_set` the whole training split.
    The baseline is the cross-entropy on the test split of always predicting the training
    class frequencies (the best constant predictor; about ``log 10``, as the classes are
    nearly balanced).

    Examples
    --------
    >>> import numrnn as nr
    >>> task = nr.tasks.SequentialDigits(permuted=True, seed=1)
    >>> x, y = task.sample(5, rng=0)
    >>> x.shape, y.shape, y.dtype
    ((64, 5, 1), (5,), dtype('int64'))
    >>> task.test_set()[0].shape                   # the whole test split
    (64, 360, 1)
    """

    name = "digits"
    loss = "xent"
    readout = "last"
    input_size = 1
    output_size = 10
    seq_len = 64

    def __init__(self, permuted: bool = False, seed: int = 0):
        self.permuted = bool(permuted)
        self.seed = _checks.check_int("seed", seed, 0)
        self.permutation = (
            np.random.default_rng(self.seed).permutation(64) if self.permuted else np.arange(64)
        )

    def _split(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = _digits()
        n_train = int(0.8 * len(labels))
        rows = slice(0, n_train) if part == "train" else slice(n_train, None)
        return images[rows], labels[rows]

    def _to_sequences(self, images: np.ndarray) -> np.ndarray:
        # (B, 64) pixels -> (64, B, 1) time-major, in reading order.
        return np.ascontiguousarray(images[:, self.permutation].T[:, :, None])

    def sample(self, batch_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Draw a training minibatch (without replacement).

        Parameters
        ----------
        batch_size : int
            ``B``, at most the training split's size (1437).
        rng : numpy.random.Generator or int

        Returns
        -------
        x : ndarray, shape (64, B, 1)
        y : ndarray of int64, shape (B,)
        """
        B = check_positive_int("batch_size", batch_size)
        images, labels = self._split("train")
        if B > len(labels):
            raise ValueError(
                f"batch_size must be at most {len(labels)} (the training split), got {B}"
            )
        idx = _checks.as_rng(rng).choice(len(labels), size=B, replace=False)
        return self._to_sequences(images[idx]), labels[idx].copy()

    def train_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole training split.

        Returns
        -------
        x : ndarray, shape (64, 1437, 1)
        y : ndarray of int64, shape (1437,)
        """
        images, labels = self._split("train")
        return self._to_sequences(images), labels.copy()

    def test_set(self, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """The whole test split.

        Parameters
        ----------
        rng : ignored
            Kept for the signature of :meth:`Task.test_set`: the split is fixed.

        Returns
        -------
        x : ndarray, shape (64, 360, 1)
        y : ndarray of int64, shape (360,)
        """
        images, labels = self._split("test")
        return self._to_sequences(images), labels.copy()

    @property
    def baseline(self) -> float:
        _, train = self._split("train")
        _, test = self._split("test")
        prior = np.bincount(train, minlength=10) / len(train)
        return float(-np.mean(np.log(prior[test])))
