"""Packed batches: variable-length sequences laid out so that kernels run prefixes.

The kernels need the sequences still running at step t to be a prefix of the batch, as
in PyTorch's packed sequences: the batch is sorted by length, longest first, and every
result is unsorted on the way out. The backward direction of a bidirectional layer runs
each sequence reversed within its own length. :class:`PackedBatch` holds that layout and
every conversion between it and the caller's (batch order, real time), so models and
diagnostics never handle the permutations themselves.

Array conventions: a leading member axis K, then time, then batch (``(K, T, B, ...)``),
unless a method says otherwise.
"""

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PackedBatch:
    """The layout of one batch: T steps, B sequences of the given lengths.

    Attributes
    ----------
    T, B : int
    order : (B,) permutation sorting the batch by length (longest first, stable), or None
        when every sequence has T steps (nothing is permuted).
    lengths : (B,) sorted lengths, or None (all T).
    rev : (T, B) time index reversing each sorted sequence within its length, or None.
    batch_sizes : (T,) int64, the number of sequences running at each step.
    """

    T: int
    B: int
    order: object
    lengths: object
    rev: object
    batch_sizes: np.ndarray

    @classmethod
    def make(cls, lengths, T, B):
        """The layout for ``lengths`` ((B,) ints in 1..T, checked by the caller, or None)."""
        if lengths is None or np.all(lengths == T):
            return _full(T, B)
        order = np.argsort(-lengths, kind="stable")
        lens = lengths[order]
        t = np.arange(T)[:, None]
        rev = np.where(t < lens[None, :], lens[None, :] - 1 - t, t)
        batch_sizes = (lens[None, :] > t).sum(axis=1).astype(np.int64)
        return cls(T, B, order, lens, rev, batch_sizes)

    def sort(self, a, axis):
        """``a`` with its batch ``axis`` in sorted order."""
        return a if self.order is None else a.take(self.order, axis)

    def unsort(self, a, axis):
        """Undo :meth:`sort` (nothing to undo when no sort was needed)."""
        if self.order is None:
            return a
        out = np.empty_like(a)
        idx = [slice(None)] * a.ndim
        idx[axis] = self.order
        out[tuple(idx)] = a
        return out

    def flip(self, a):
        """Reverse ``a`` (K, T, B, ...) in time, each sequence within its own length; an
        involution, so it also takes the backward direction's results back to real time.
        C-contiguous (the kernels take each step's rows)."""
        if self.rev is None:
            return np.ascontiguousarray(a[:, ::-1])
        return np.ascontiguousarray(a[:, self.rev, np.arange(a.shape[2])])

    def direction(self, a, d):
        """``a`` (K, T, B, ...) in direction ``d``'s own time order (0 forward, 1 backward),
        C-contiguous."""
        return np.ascontiguousarray(a) if d == 0 else self.flip(a)

    def final(self, traj):
        """Each sequence's state after its last step, from a (K, T+1, B, ...) trajectory."""
        if self.lengths is None:
            return traj[:, self.T]
        return traj[:, self.lengths, np.arange(self.B)]

    def lengths_or_full(self):
        """(B,) sorted lengths, T for each sequence when all are full."""
        return np.full(self.B, self.T, np.int64) if self.lengths is None else self.lengths

    def live(self):
        """(T, B) mask of the steps inside each (sorted) sequence."""
        if self.lengths is None:
            return np.ones((self.T, self.B), bool)
        return np.arange(self.T)[:, None] < self.lengths[None, :]

    def to_caller(self, a, d):
        """Per-sequence values in kernel order, (K, B, T, ...) in direction ``d``'s time,
        as (K, B, T, ...) in the caller's batch order and real time."""
        a = np.swapaxes(a, 1, 2)
        if d == 1:
            a = self.flip(a)
        return np.swapaxes(self.unsort(a, 2), 1, 2)


@functools.lru_cache(maxsize=64)
def _full(T, B):
    """The layout of B sequences of T steps each: made once per shape (the frozen dataclass
    and its batch sizes cost 1.5 us, a hundredth of a small model's forward pass), shared.
    Nothing writes ``batch_sizes`` (it stays writeable: Numba would compile a read-only
    array's kernels apart)."""
    return PackedBatch(T, B, None, None, None, np.full(T, B, np.int64))
