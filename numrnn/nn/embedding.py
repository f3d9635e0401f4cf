"""Learned token embeddings: integer ids looked up in a (V, D) table, with exact gradients.

The one home of the embedding math, used by :class:`~numrnn.nn.Recurrent` (a model built
with ``vocab_size`` reads token ids through its ``weight_emb``) and by the standalone
:class:`Embedding` (``torch.nn.Embedding``'s arguments and semantics):

* :func:`check_ids` validates token ids at the public boundary;
* :func:`lookup` is ``weight[ids]`` with the leading member axis K of the engine;
* :func:`scatter_grad` is its gradient: the embedded input's gradient added into the rows
  of the ids it came from (``np.add.at``, no compiled kernel), zero for ``padding_idx``.

``padding_idx`` follows PyTorch: its row is initialised to zero and gets no gradient, but
the lookup returns whatever the row holds.
"""

import numbers

import numpy as np

from .. import _checks
from .init import init_params

__all__ = ["Embedding", "check_ids", "check_padding_idx", "init_weight", "lookup",
           "scatter_grad"]  # fmt: skip


def check_padding_idx(padding_idx, vocab_size, name="padding_idx"):
    """``padding_idx`` checked and normalised like ``torch.nn.Embedding``'s.

    Parameters
    ----------
    padding_idx : int or None
        A token id in ``-V..V-1``; a negative one counts from the end (``-1`` is ``V - 1``).
    vocab_size : int or None
        ``V``; None (no embedding) allows only ``padding_idx=None``.
    name : str, default "padding_idx"
        The argument's name in messages.

    Returns
    -------
    int or None
        ``padding_idx`` in ``0..V-1``, or None.

    Examples
    --------
    >>> check_padding_idx(-1, 7), check_padding_idx(None, 7)
    (6, None)
    """
    if padding_idx is None:
        return None
    if vocab_size is None:
        raise ValueError(
            f"{name} needs an embedding: give vocab_size too, got {name}={padding_idx!r} "
            "and vocab_size=None"
        )
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
        raise _checks.ArgumentTypeError(f"{name} must be an integer or None, got {padding_idx!r}")
    idx = int(padding_idx)
    if not -vocab_size <= idx < vocab_size:
        raise ValueError(
            f"{name} must be in -{vocab_size}..{vocab_size - 1} (vocab_size={vocab_size}), "
            f"got {idx}"
        )
    return idx + vocab_size if idx < 0 else idx


def check_ids(name, ids, shape, vocab_size):
    """Token ids checked at the public boundary.

    Parameters
    ----------
    name : str
        The argument's name in messages (``"x"`` for a model's input).
    ids : array_like of int
        Token ids of any integer dtype (signed or unsigned), each in ``0..V-1``.
    shape : tuple of int and str, or None
        The expected shape; a str entry (``"T"``) matches any size; None: any shape.
    vocab_size : int
        ``V``, the number of rows of the table.

    Returns
    -------
    ndarray of intp
        ``ids``, C-contiguous.

    Raises
    ------
    TypeError
        For ids that are not integers (floats, bools, objects).
    ValueError
        For a wrong shape, an empty array, or an id outside ``0..V-1`` (the message gives
        the range of the values found).

    Examples
    --------
    >>> check_ids("x", [[0, 4], [2, 1]], ("T", "B"), 5).shape
    (2, 2)
    >>> check_ids("x", [[0, 5]], ("T", "B"), 5)
    Traceback (most recent call last):
    ...
    ValueError: x must hold token ids in 0..4 (vocab_size=5), got values from 0 to 5
    """
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer array of token ids in 0..{vocab_size - 1} "
            f"(vocab_size={vocab_size}), got dtype {arr.dtype.name}"
        )
    if shape is not None:
        want = "(" + ", ".join(str(s) for s in shape) + ")"
        bad = arr.ndim != len(shape) or any(
            not isinstance(s, str) and s != n for s, n in zip(shape, arr.shape, strict=False)
        )
        if bad:
            raise ValueError(
                f"{name} must be token ids of shape {want}, got shape {tuple(arr.shape)}"
            )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(arr.shape)}")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= vocab_size:
        raise ValueError(
            f"{name} must hold token ids in 0..{vocab_size - 1} (vocab_size={vocab_size}), "
            f"got values from {lo} to {hi}"
        )
    return np.ascontiguousarray(arr, dtype=np.intp)


def init_weight(num_embeddings, embedding_dim, padding_idx=None, seed=None, dtype="float64"):
    """A table drawn like ``torch.nn.Embedding``'s: N(0, 1), the ``padding_idx`` row zero.

    The numbers are those of a model's ``weight_emb`` made with the same seed and the
    default ``init`` (the stream is keyed by the name ``weight_emb``,
    :func:`numrnn.nn.init.init_params`).

    Parameters
    ----------
    num_embeddings : int
        ``V``.
    embedding_dim : int
        ``D``.
    padding_idx : int or None
        A row in ``0..V-1`` to zero (already normalised).
    seed : int, numpy.random.Generator or None
    dtype : {"float64", "float32"}

    Returns
    -------
    ndarray, shape (V, D)

    Examples
    --------
    >>> init_weight(4, 2, padding_idx=0, seed=0)[0]
    array([0., 0.])
    """
    shape = {"weight_emb": (num_embeddings, embedding_dim)}
    weight = init_params(shape, 1, 1, rng=seed, dtype=dtype)["weight_emb"]
    if padding_idx is not None:
        weight[padding_idx] = 0
    return weight


def lookup(weight, ids):
    """``weight[ids]`` for each of K members.

    Parameters
    ----------
    weight : ndarray, shape (K, V, D)
        The members' tables.
    ids : ndarray of int, shape (K or 1, ...)
        Checked token ids (:func:`check_ids`), one set per member or one shared (leading 1).

    Returns
    -------
    ndarray, shape (K, ..., D)
        Member k's table looked up at its ids, e.g. (K, T, B, D) for ids (K, T, B).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.arange(12.0).reshape(2, 3, 2)            # K = 2 tables of V = 3 rows
    >>> lookup(w, np.array([[[2], [0]]]))[:, :, 0]      # shared ids (1, T=2, B=1)
    array([[[ 4.,  5.],
            [ 0.,  1.]],
    <BLANKLINE>
           [[10., 11.],
            [ 6.,  7.]]])
    """
    K = weight.shape[0]
    out = np.empty((K, *ids.shape[1:], weight.shape[2]), weight.dtype)
    for k in range(K):
        np.take(weight[k], ids[k if len(ids) > 1 else 0], axis=0, out=out[k], mode="clip")
    return out


def scatter_grad(d_embedded, ids, vocab_size, padding_idx=None):
    """The gradient of the tables from the gradient of what :func:`lookup` returned.

    Row v of member k's gradient is the sum of ``d_embedded[k]`` over the positions whose
    id is v (``np.add.at``, in the positions' order); the ``padding_idx`` row is zero.

    Parameters
    ----------
    d_embedded : ndarray, shape (K, ..., D)
        dL/d(lookup(weight, ids)).
    ids : ndarray of int, shape (K or 1, ...)
        The ids the lookup read.
    vocab_size : int
        ``V``.
    padding_idx : int or None
        A row in ``0..V-1`` that gets no gradient.

    Returns
    -------
    ndarray, shape (K, V, D)

    Examples
    --------
    >>> import numpy as np
    >>> d = np.ones((1, 3, 2))                          # K = 1, three positions, D = 2
    >>> scatter_grad(d, np.array([[1, 1, 0]]), 3, padding_idx=0)[0]
    array([[0., 0.],
           [2., 2.],
           [0., 0.]])
    """
    K, D = d_embedded.shape[0], d_embedded.shape[-1]
    grad = np.zeros((K, vocab_size, D), d_embedded.dtype)
    for k in range(K):
        rows = ids[k if len(ids) > 1 else 0].reshape(-1)
        np.add.at(grad[k], rows, d_embedded[k].reshape(-1, D))
    if padding_idx is not None:
        grad[:, padding_idx] = 0
    return grad


class Embedding:
    """A learned lookup table, ``torch.nn.Embedding``'s arguments and semantics in NumPy.

    The recurrent models have one built in (``vocab_size=``, parameter ``weight_emb``);
    this class is the same math on its own, for a table shared or used elsewhere.

    Parameters
    ----------
    num_embeddings : int
        ``V``, the number of tokens.
    embedding_dim : int
        ``D``, the size of each token's vector.
    padding_idx : int or None
        A token whose row starts at zero and gets no gradient (a negative one counts from
        the end, as in torch); its lookup still returns the row.
    dtype : {"float64", "float32"}, default "float64"
    seed : int, numpy.random.Generator or None
        The source of the initial table, N(0, 1) like torch's; None draws fresh entropy.

    Attributes
    ----------
    params : dict
        ``{"weight": ndarray (V, D)}``, torch's name.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import Embedding
    >>> emb = Embedding(5, 3, padding_idx=0, seed=0)
    >>> ids = np.array([[1, 0], [4, 1]])                  # any shape of integer ids
    >>> out = emb.forward(ids)
    >>> out.shape
    (2, 2, 3)
    >>> g = emb.backward(ids, np.ones_like(out))["weight"]
    >>> g[:, 0]                                           # row 1 twice, padding row none
    array([0., 2., 0., 0., 1.])
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype="float64",
                 seed=None):  # fmt: skip
        self.num_embeddings = _checks.check_positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = _checks.check_positive_int("embedding_dim", embedding_dim)
        self.padding_idx = check_padding_idx(padding_idx, self.num_embeddings)
        self.dtype = _checks.check_dtype(dtype)
        _checks.as_rng(seed, "seed")
        self.seed = seed if seed is None or isinstance(seed, (int, np.integer)) else repr(seed)
        self.params = {
            "weight": init_weight(
                self.num_embeddings, self.embedding_dim, self.padding_idx, seed, self.dtype
            )  # fmt: skip
        }

    def _weight(self):
        shape = (self.num_embeddings, self.embedding_dim)
        return _checks.check_array("params['weight']", self.params.get("weight"), shape,
                                   self.dtype)  # fmt: skip

    def forward(self, ids):
        """The rows of the table at ``ids``.

        Parameters
        ----------
        ids : array_like of int, any shape S
            Token ids in ``0..V-1``.

        Returns
        -------
        ndarray, shape S + (D,)

        Examples
        --------
        >>> from numrnn.nn import Embedding
        >>> emb = Embedding(4, 2, seed=0)
        >>> bool((emb.forward([3]) == emb.params["weight"][3]).all())
        True
        """
        ids = check_ids("ids", ids, None, self.num_embeddings)
        return lookup(self._weight()[None], ids[None])[0]

    def backward(self, ids, d_out):
        """The gradient of ``L = sum(d_out * forward(ids))`` with respect to the table.

        Parameters
        ----------
        ids : array_like of int, any shape S
            The ids given to :meth:`forward`.
        d_out : ndarray, shape S + (D,)
            dL/d(output), of the table's dtype.

        Returns
        -------
        dict
            ``{"weight": ndarray (V, D)}``: the sum of ``d_out`` over each token's
            positions, zero for unused tokens and ``padding_idx``.

        Examples
        --------
        >>> import numpy as np
        >>> from numrnn.nn import Embedding
        >>> emb = Embedding(3, 2, seed=0)
        >>> emb.backward([0, 0], np.ones((2, 2)))["weight"]
        array([[2., 2.],
               [0., 0.],
               [0., 0.]])
        """
        ids = check_ids("ids", ids, None, self.num_embeddings)
        d_out = _checks.check_array("d_out", d_out, ids.shape + (self.embedding_dim,),
                                    self.dtype)  # fmt: skip
        grad = scatter_grad(d_out[None], ids[None], self.num_embeddings, self.padding_idx)
        return {"weight": grad[0]}

    @classmethod
    def from_torch(cls, module):
        """An Embedding with a ``torch.nn.Embedding``'s sizes, ``padding_idx``, dtype and
        weights.

        Parameters
        ----------
        module : torch.nn.Embedding
            Without ``max_norm`` or ``scale_grad_by_freq`` (numrnn has neither); float32
            or float64.

        Returns
        -------
        Embedding

        Examples
        --------
        >>> import torch
        >>> from numrnn.nn import Embedding
        >>> module = torch.nn.Embedding(5, 3, padding_idx=-1, dtype=torch.float64)
        >>> Embedding.from_torch(module)
        Embedding(5, 3, padding_idx=4)
        """
        from .torch import embedding_weight

        weight, padding_idx = embedding_weight(module)
        out = cls(weight.shape[0], weight.shape[1], padding_idx, dtype=weight.dtype.name, seed=0)
        out.params["weight"] = weight
        out.seed = None
        return out

    def to_torch(self):
        """The equivalent ``torch.nn.Embedding``, with the same table and dtype.

        Returns
        -------
        torch.nn.Embedding

        Examples
        --------
        >>> from numrnn.nn import Embedding
        >>> Embedding(5, 3, padding_idx=0, seed=0).to_torch()
        Embedding(5, 3, padding_idx=0)
        """
        from .torch import torch_embedding

        return torch_embedding(self._weight(), self.padding_idx)

    def __repr__(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        dtype = "" if self.dtype == np.float64 else f", dtype={self.dtype.name!r}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{pad}{dtype})"
