"""Your own sequences as a task: :class:`Sequences`, from arrays, lists, xarray or a file.

The data are kept padded and time-major, as the models take them: inputs ``(T, N, D)``
floats or ``(T, N)`` integer token ids, one length per sequence, targets per sequence
(many-to-one) or per step (many-to-many). A seeded split (or an explicit validation set)
gives the training sequences :meth:`Sequences.sample` draws from and the validation set
that :func:`numrnn.train` evaluates on.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from .. import _checks
from .base import Task

__all__ = ["Sequences", "from_file"]

#: The names a DataArray's dims may have: time, the sequences, the features/outputs.
_DIMS = {"time": ("time",), "sample": ("sample", "batch"), "feature": ("feature", "output")}


def _from_dataarray(a, name, ndims):
    """The values of a DataArray, dims ordered (time, sample, feature) among those present."""
    dims = tuple(a.dims)
    order = []
    for role in ndims:
        found = [d for d in dims if d in _DIMS[role]]
        if len(found) == 1:
            order.append(found[0])
    if sorted(order) != sorted(dims):
        want = " / ".join("(" + ", ".join(_DIMS[r][0] for r in roles) + ")" for roles in (
            ("time", "sample", "feature"), ("time", "sample"), ("sample", "feature"),
            ("sample",)))  # fmt: skip
        raise ValueError(f"{name} must be a DataArray with dims among {want} ('batch' for "
                         f"'sample', 'output' for 'feature'), got dims {dims}")  # fmt: skip
    return np.asarray(a.transpose(*order).values), [r for r in ndims if any(
        d in _DIMS[r] for d in dims)]  # fmt: skip


def _is_dataarray(a):
    return type(a).__name__ == "DataArray" and hasattr(a, "dims")


def _pad(items, name):
    """A list of per-sequence arrays (T_i, ...) -> padded (T, N, ...) and lengths (N,)."""
    if len(items) == 0:
        raise ValueError(f"{name} must hold at least one sequence, got an empty list")
    arrays = [np.asarray(a) for a in items]
    first = arrays[0]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[0] == 0:
            raise ValueError(f"{name}[{i}] must be a sequence of at least one step, got shape "
                             f"{a.shape}")  # fmt: skip
        if a.shape[1:] != first.shape[1:]:
            raise ValueError(f"{name}[{i}] has shape {a.shape}: every sequence must have the "
                             f"feature shape {first.shape[1:]} of {name}[0]")  # fmt: skip
        if a.dtype.kind != first.dtype.kind:
            raise TypeError(f"{name}[{i}] has dtype {a.dtype}, {name}[0] {first.dtype}: mix no "
                            "integer and float sequences")  # fmt: skip
    lengths = np.array([len(a) for a in arrays], np.int64)
    out = np.zeros((lengths.max(), len(arrays)) + first.shape[1:], first.dtype)
    for i, a in enumerate(arrays):
        out[: len(a), i] = a
    return out, lengths


def _real(lengths, T, N):
    """(T, N) bool: which entries are real steps, not padding."""
    if lengths is None:
        return np.ones((T, N), bool)
    return np.arange(T)[:, None] < lengths[None, :]


def _inputs(x, lengths, name):
    """Checked inputs: (x (T, N, D) float64 or (T, N) int64 ids, lengths (N,) or None)."""
    if isinstance(x, (list, tuple)):
        if lengths is not None:
            raise ValueError(f"lengths must be None when {name} is a list of sequences (their "
                             "lengths are taken from it)")  # fmt: skip
        x, lengths = _pad(x, name)
    elif _is_dataarray(x):
        x, _ = _from_dataarray(x, name, ("time", "sample", "feature"))
    x = np.asarray(x)
    if x.dtype.kind == "b" or x.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold floats (features) or integers (token ids), got "
                        f"dtype {x.dtype}")  # fmt: skip
    if x.dtype.kind in "iu":
        if x.ndim != 2:
            raise ValueError(f"{name} of integer token ids must be (T, N), got shape {x.shape}; "
                             "for integer features convert them to float")  # fmt: skip
    elif x.ndim != 3:
        raise ValueError(f"{name} must be (T, N, D) floats or (T, N) integer token ids, got "
                         f"shape {x.shape}" + ("; for one feature use x[..., None]"
                         if x.ndim == 2 else ""))  # fmt: skip
    T, N = x.shape[:2]
    if T == 0 or N == 0:
        raise ValueError(f"{name} must hold at least one step of one sequence, got {x.shape}")
    if lengths is not None:
        lengths = _checks.check_lengths(lengths, T, N)
    real = _real(lengths, T, N)
    x = x.astype(np.int64 if x.dtype.kind in "iu" else np.float64)  # a copy: padding zeroed
    x[~real] = 0
    if x.dtype.kind == "f" and not np.isfinite(x[real]).all():
        t, i = np.argwhere(~np.isfinite(x) & real[..., None])[0, :2]
        raise ValueError(f"{name} contains NaN or inf (first at step {t} of sequence {i})")
    return x, lengths


def _targets(y, T, N, lengths, readout, name):
    """Checked targets: (y, readout); y (N,) int / (N, O) float (many-to-one) or (T, N) int
    / (T, N, O) float (many-to-many), padding zeroed."""
    if isinstance(y, (list, tuple)):
        arrays = [np.asarray(a) for a in y]
        if len(arrays) != N:
            raise ValueError(f"{name} must have one entry per sequence ({N}), got {len(arrays)}")
        if all(a.ndim == 0 for a in arrays) or (readout == "last" and arrays[0].ndim == 1):
            y = np.stack(arrays)
        else:
            y, got = _pad(arrays, name)
            want = np.full(N, T) if lengths is None else lengths
            bad = np.flatnonzero(got != want)
            if bad.size:
                i = bad[0]
                raise ValueError(f"{name}[{i}] has {got[i]} steps, its input sequence {want[i]}")
            if y.shape[0] < T:
                y = np.concatenate([y, np.zeros((T - y.shape[0],) + y.shape[1:], y.dtype)])
    elif _is_dataarray(y):
        y, roles = _from_dataarray(y, name, ("time", "sample", "feature"))
        readout = readout or ("all" if "time" in roles else "last")
    y = np.asarray(y)
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold floats (regression) or integers (class labels), got "
                        f"dtype {y.dtype}")  # fmt: skip
    if readout is None:  # many-to-many when y starts with x's (T, N)
        readout = "all" if y.ndim >= 2 and y.shape[:2] == (T, N) else "last"
    _checks.check_choice("readout", readout, ("all", "last"))
    lead = (T, N) if readout == "all" else (N,)
    classes = y.dtype.kind in "iu"
    ndims = (len(lead),) if classes else (len(lead), len(lead) + 1)
    if y.shape[: len(lead)] != lead or y.ndim not in ndims:
        kind = "integer labels" if classes else "float targets"
        shapes = " or ".join(str(lead + (("O",) if i > len(lead) else ())) for i in ndims)
        raise ValueError(f"{name} of {kind} for readout={readout!r} must have shape {shapes}, "
                         f"got {y.shape}")  # fmt: skip
    if not classes and y.ndim == len(lead):
        y = y[..., None]  # one output
    y = y.astype(np.int64 if classes else np.float64)
    if readout == "all":
        real = _real(lengths, T, N)
        y[~real] = 0
        vals = y[real]
    else:
        vals = y
    if not classes and not np.isfinite(vals).all():
        raise ValueError(f"{name} contains NaN or inf")
    return y, readout


class Sequences(Task):
    """A task from your own sequences: padded arrays, a list of variable-length arrays,
    xarray DataArrays, or a file (:func:`from_file`).

    Parameters
    ----------
    x : array (T, N, D) of floats or (T, N) of integer token ids, list of N arrays (T_i, D)
        or (T_i,), or DataArray with dims ``time``, ``sample`` (or ``batch``) and ``feature``
        The inputs, time-major. Integer ids make a token task: the model embeds them
        (``vocab_size``), or ``one_hot=True`` feeds them as one-hot vectors.
    y : array, list or DataArray
        Per sequence (many-to-one): (N,) integer class labels, or (N,) / (N, O) floats;
        per step (many-to-many): (T, N) integer labels, or (T, N) / (T, N, O) floats (a list:
        one (T_i,) or (T_i, O) array per sequence). Integers make a classification task
        (cross-entropy, accuracy), floats a regression (MSE). A DataArray's dims: ``time``
        (per step), ``sample`` and ``output``.
    lengths : array of int (N,), optional
        Each padded sequence's length, 1..T (a list of arrays gives its own); entries past
        it are padding, never used.
    validation : float in [0, 1) or tuple (x, y) / (x, y, lengths), default 0.2
        The fraction of the sequences held out (a seeded permutation) for the validation
        set that training evaluates on, or an explicit validation set like ``x`` and ``y``.
        0 holds none out: :meth:`test_set` is then the training set.
    seed : int, default 0
        Seed of the split.
    readout : {"all", "last"} or None
        Many-to-many or many-to-one; None infers it: per step when ``y`` starts with the
        inputs' (T, N).
    n_classes : int or None
        For integer labels: the number of classes (None: the largest label + 1).
    vocab_size : int or None
        For token ids: the number of distinct ids (None: the largest id + 1).
    one_hot : bool, default False
        Feed token ids as one-hot float vectors (``input_size = vocab_size``) instead of
        through a model's embedding.

    Attributes
    ----------
    x, y, lengths : the checked, padded data (padding zeroed); ``lengths`` None when every
        sequence has all T steps.
    train_index, val_index : int arrays, the sequences of each split.

    Notes
    -----
    :meth:`sample` returns ``(x, y, lengths)``, a batch of training sequences drawn without
    replacement, padded to ``T``; the losses leave padding out (their ``lengths``).
    The baseline is the loss on the validation set of the best constant prediction fitted
    on the training sequences: the training mean of each output (MSE), or the training
    class frequencies with add-one smoothing (cross-entropy), over real entries only.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> rng = np.random.default_rng(0)
    >>> seqs = [rng.standard_normal((n, 3)) for n in (5, 8, 6, 7, 4)]   # variable lengths
    >>> labels = np.array([0, 1, 1, 0, 2])
    >>> task = nr.tasks.Sequences(seqs, labels, validation=0.4, seed=0)
    >>> task.loss, task.readout, task.input_size, task.output_size, task.seq_len
    ('xent', 'last', 3, 3, 8)
    >>> x, y, lengths = task.sample(2, rng=0)
    >>> x.shape, y.shape, lengths.shape
    ((8, 2, 3), (2,), (2,))
    >>> len(task.train_index), len(task.val_index)
    (3, 2)
    """

    name = "sequences"

    def __init__(self, x, y, lengths=None, *, validation=0.2, seed=0, readout=None,
                 n_classes=None, vocab_size=None, one_hot=False):  # fmt: skip
        self.seed = _checks.check_int("seed", seed, 0)
        self.one_hot = _checks.check_bool("one_hot", one_hot)
        x, lengths = _inputs(x, lengths, "x")
        T, N = x.shape[:2]
        y, readout = _targets(y, T, N, lengths, readout, "y")
        explicit = isinstance(validation, (tuple, list))
        if explicit:
            if len(validation) not in (2, 3):
                raise ValueError("validation must be a fraction or a tuple (x, y) or (x, y, "
                                 f"lengths), got a tuple of {len(validation)}")  # fmt: skip
            vx, vl = _inputs(validation[0], validation[2] if len(validation) == 3 else None,
                             "validation x")  # fmt: skip
            vy, _ = _targets(validation[1], *vx.shape[:2], vl, readout, "validation y")
            if vx.dtype != x.dtype or vx.shape[2:] != x.shape[2:]:
                raise ValueError(f"validation x must be like x: {_describe(x)}, got "
                                 f"{_describe(vx)}")  # fmt: skip
            lead = 1 if readout == "last" else 2
            if vy.dtype != y.dtype or vy.shape[lead:] != y.shape[lead:]:
                raise ValueError(f"validation y must be like y: {_describe(y)}, got "
                                 f"{_describe(vy)}")  # fmt: skip
            n_val = vx.shape[1]
            x, y, lengths = _concat(x, y, lengths, vx, vy, vl, readout)
            self.train_index = np.arange(N)
            self.val_index = np.arange(N, N + n_val)
            self.validation = "explicit"
        else:
            frac = _checks.check_number("validation", validation, 0.0, 1.0, open_hi=True)
            n_val = int(round(frac * N))
            if frac > 0 and n_val == 0:
                raise ValueError(f"validation={frac} of {N} sequences holds out none: an empty "
                                 "validation split; use a larger fraction, 0, or an explicit "
                                 "set")  # fmt: skip
            if n_val >= N:
                raise ValueError(f"validation={frac} of {N} sequences leaves no training "
                                 "sequence")  # fmt: skip
            perm = np.random.default_rng(self.seed).permutation(N)
            self.val_index, self.train_index = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            self.validation = frac
        self.x, self.y, self.lengths = x, y, lengths
        if lengths is not None and (lengths == x.shape[0]).all():
            self.lengths = None
        self.readout, self.seq_len = readout, x.shape[0]
        self.loss = "xent" if y.dtype.kind == "i" else "mse"
        real_y = y if readout == "last" else y[_real(self.lengths, *x.shape[:2])]
        if self.loss == "xent":
            top = int(real_y.max())
            if real_y.min() < 0:
                raise ValueError(f"y holds class labels from 0 up, got {int(real_y.min())}")
            self.n_classes = top + 1 if n_classes is None else _checks.check_positive_int(
                "n_classes", n_classes)  # fmt: skip
            if top >= self.n_classes:
                raise ValueError(f"y has label {top}, outside 0..n_classes-1 = "
                                 f"0..{self.n_classes - 1}")  # fmt: skip
            self.output_size = self.n_classes
        else:
            if n_classes is not None:
                raise ValueError("n_classes is for integer class labels; y holds floats")
            self.n_classes = None
            self.output_size = y.shape[-1]
        if x.dtype.kind == "i":
            ids = x[_real(self.lengths, *x.shape[:2])]
            if ids.min() < 0:
                raise ValueError(f"x holds token ids from 0 up, got {int(ids.min())}")
            V = int(ids.max()) + 1 if vocab_size is None else _checks.check_positive_int(
                "vocab_size", vocab_size)  # fmt: skip
            if ids.max() >= V:
                raise ValueError(f"x has token id {int(ids.max())}, outside the vocabulary "
                                 f"0..vocab_size-1 = 0..{V - 1}")  # fmt: skip
            self.n_tokens = V
            self.vocab_size = None if self.one_hot else V
            self.input_size = V if self.one_hot else None
        else:
            if vocab_size is not None or self.one_hot:
                raise ValueError("vocab_size and one_hot are for integer token ids; x holds "
                                 "floats")  # fmt: skip
            self.n_tokens = None
            self.input_size = x.shape[2]
        self.path = None
        self._options = {"validation": None if explicit else self.validation, "seed": self.seed,
                         "readout": readout, "n_classes": n_classes, "vocab_size": vocab_size,
                         "one_hot": self.one_hot}  # fmt: skip
        self.sha1 = _digest(self.x, self.y, self.lengths, self.val_index if explicit else None)

    # -- batches ------------------------------------------------------------------------

    def _take(self, idx):
        x = self.x[:, idx]
        if self.one_hot:
            x = np.eye(self.n_tokens)[x]
        y = self.y[idx] if self.readout == "last" else self.y[:, idx]
        lengths = None if self.lengths is None else self.lengths[idx]
        return x, y, lengths

    def sample(self, batch_size: int, rng) -> tuple:
        """Draw a training batch (sequences without replacement).

        Parameters
        ----------
        batch_size : int
            ``B``, at most the number of training sequences.
        rng : numpy.random.Generator or int

        Returns
        -------
        x : ndarray, (T, B, D) float64, or (T, B) int64 token ids
        y : ndarray, (B,) int / (B, O) float, or (T, B) int / (T, B, O) float
        lengths : ndarray of int64 (B,), or None when all sequences have T steps
        """
        B = _checks.check_positive_int("batch_size", batch_size)
        n = len(self.train_index)
        if B > n:
            raise ValueError(f"batch_size must be at most {n} (the training sequences), got {B}")
        pick = _checks.as_rng(rng).choice(n, size=B, replace=False)
        return self._take(self.train_index[pick])

    def train_set(self) -> tuple:
        """All training sequences, in order.

        Returns
        -------
        tuple
            ``(x, y, lengths)`` as :meth:`sample` gives them.
        """
        return self._take(self.train_index)

    def test_set(self, rng=None) -> tuple:
        """The validation set (the training set when ``validation=0``).

        Parameters
        ----------
        rng : ignored
            Kept for the signature of :meth:`Task.test_set`: the split is fixed.

        Returns
        -------
        tuple
            ``(x, y, lengths)`` as :meth:`sample` gives.
        """
        return self._take(self.val_index if len(self.val_index) else self.train_index)

    @property
    def baseline(self) -> float:
        from .. import losses

        x_tr, y_tr, l_tr = self.train_set()
        _, y_te, l_te = self.test_set()
        T = self.seq_len
        if self.readout == "all":
            y_tr = y_tr[_real(l_tr, T, y_tr.shape[1])]
        if self.loss == "mse":
            mean = y_tr.reshape(-1, self.output_size).mean(axis=0)
            pred = np.broadcast_to(mean, y_te.shape).copy()
            return losses.mse(pred, y_te, l_te if self.readout == "all" else None)[0]
        counts = np.bincount(y_tr.ravel(), minlength=self.n_classes) + 1.0
        logits = np.broadcast_to(np.log(counts / counts.sum()), y_te.shape + (self.n_classes,))
        return losses.xent(logits.copy(), y_te, l_te if self.readout == "all" else None)[0]

    # -- configs and files ----------------------------------------------------------------

    @property
    def config(self) -> dict:
        """``{"name": "sequences", "path": ..., "sha1": ..., **options}``: what
        :func:`numrnn.tasks.get` needs to rebuild the task from its file (``path`` None for
        data given in memory: :meth:`save` them to rebuild the task later), with the data's
        SHA-1 that the rebuilt task is checked against."""
        return {"name": self.name, "path": self.path, **self._options, "sha1": self.sha1}

    def __repr__(self) -> str:
        kind = "token ids" if self.x.dtype.kind == "i" else f"{self.input_size} features"
        return (f"Sequences({self.x.shape[1]} sequences of <= {self.seq_len} steps, {kind}, "
                f"{self.loss}, readout={self.readout!r}, path={self.path!r})")  # fmt: skip

    def save(self, path) -> None:
        """Write the sequences to ``path`` (``.npz``, ``.nc`` or ``.zarr``) for
        :func:`from_file` (and sweep configs: ``[task] name = "sequences"``, ``path``).

        An explicit validation set is written as ``x_val``/``y_val``/``lengths_val``; a
        fractional split is not stored (give ``validation`` and ``seed`` again).

        Parameters
        ----------
        path : str or os.PathLike
        """
        split = self.validation == "explicit"
        tr = self.train_index if split else slice(None)
        data = {"x": self.x[:, tr], "y": self.y[tr] if self.readout == "last" else self.y[:, tr]}
        if self.lengths is not None:
            data["lengths"] = self.lengths[tr]
        if split:
            x = self.x[:, self.val_index]
            y = self.y[self.val_index] if self.readout == "last" else self.y[:, self.val_index]
            data.update(x_val=x, y_val=y)
            if self.lengths is not None:
                data["lengths_val"] = self.lengths[self.val_index]
        path = os.fspath(path)
        if path.endswith(".npz"):
            np.savez(path, **data)
            return
        import xarray as xr

        dims = {
            "x": ("time", "sample", "feature")[: self.x.ndim],
            "y": (("time",) if self.readout == "all" else ()) + ("sample", "output"),
        }
        ds = xr.Dataset()
        for k, v in data.items():
            base = k.removesuffix("_val")
            sfx = "_val" if k.endswith("_val") else ""
            d = ("sample",) if base == "lengths" else dims[base][: v.ndim]
            ds[k] = tuple(n + sfx if n in ("sample", "time") else n for n in d), v
        ds.attrs["description"] = "numrnn sequences: nr.tasks.from_file reads them"
        (ds.to_zarr(path, mode="w") if path.endswith(".zarr") else ds.to_netcdf(path))


def _describe(a):
    kind = "token ids" if a.dtype.kind == "i" else "floats"
    return f"{kind} of shape {a.shape}"


def _concat(x, y, lengths, vx, vy, vl, readout):
    """The training and validation sets as one padded set (validation last)."""
    T = max(x.shape[0], vx.shape[0])

    def pad(a, n):
        return np.concatenate([a, np.zeros((n - a.shape[0],) + a.shape[1:], a.dtype)])

    full = np.full(x.shape[1], x.shape[0]) if lengths is None else lengths
    vfull = np.full(vx.shape[1], vx.shape[0]) if vl is None else vl
    x = np.concatenate([pad(x, T), pad(vx, T)], axis=1)
    if readout == "all":
        y = np.concatenate([pad(y, T), pad(vy, T)], axis=1)
    else:
        y = np.concatenate([y, vy])
    return x, y, np.concatenate([full, vfull]).astype(np.int64)


def _digest(*arrays):
    h = hashlib.sha1()
    for a in arrays:
        h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def from_file(path, *, validation=0.2, seed=0, readout=None, n_classes=None, vocab_size=None,
              one_hot=False, sha1=None):  # fmt: skip
    """A :class:`Sequences` task from a file: the registry's ``"sequences"`` (sweep
    configs: ``[task] name = "sequences"``, ``path = "data.npz"``).

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` with arrays ``x``, ``y`` and optionally ``lengths`` (and ``x_val``,
        ``y_val``, ``lengths_val`` for an explicit validation set); or ``.nc`` / ``.zarr``
        with those variables over named dims in any order (``time``, ``sample`` or
        ``batch``, ``feature``, ``output``; the validation set's ``time_val`` and
        ``sample_val``), as :meth:`Sequences.save` writes them.
    validation, seed, readout, n_classes, vocab_size, one_hot
        As in :class:`Sequences` (``validation`` is ignored when the file has ``x_val``).
    sha1 : str or None
        The data's digest (``task.config["sha1"]``): a file whose data differ raises
        ValueError, so a result is never silently re-run on other data.

    Returns
    -------
    Sequences

    Examples
    --------
    >>> import numpy as np, numrnn as nr, tempfile, os
    >>> x = np.random.default_rng(0).standard_normal((6, 10, 2))
    >>> task = nr.tasks.Sequences(x, x.sum(axis=(0, 2))[:, None], seed=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "sums.npz")
    >>> task.save(path)
    >>> again = nr.tasks.get("sequences", path=path, seed=1)
    >>> again.sha1 == task.sha1, again.config["path"] == path
    (True, True)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
    if path.endswith(".npz"):
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    elif path.endswith((".nc", ".zarr")):
        import xarray as xr

        with xr.open_zarr(path) if path.endswith(".zarr") else xr.open_dataset(path) as ds:
            # DataArrays, so that dims are matched by name in any order ("_val": validation)
            data = {k: ds[k].rename({d: d.removesuffix("_val") for d in ds[k].dims}).load()
                    for k in ds.data_vars}  # fmt: skip
    else:
        raise ValueError(f"path must name a .npz, .nc or .zarr file, got {path!r}")
    missing = {"x", "y"} - set(data)
    if missing:
        raise ValueError(f"{path} must hold arrays x and y, missing {sorted(missing)}; it has "
                         f"{sorted(data)}")  # fmt: skip
    if "x_val" in data:
        validation = tuple(data[k] for k in ("x_val", "y_val", "lengths_val") if k in data)
    task = Sequences(data["x"], data["y"], data.get("lengths"), validation=validation, seed=seed,
                     readout=readout, n_classes=n_classes, vocab_size=vocab_size,
                     one_hot=one_hot)  # fmt: skip
    if sha1 is not None and sha1 != task.sha1:
        raise ValueError(f"the data in {path} are not those the task was built from (SHA-1 "
                         f"{task.sha1}, expected {sha1})")  # fmt: skip
    task.path = path
    return task
