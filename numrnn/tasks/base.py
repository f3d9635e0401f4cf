"""What a task is: :class:`Task`, the contract :func:`numrnn.train` and sweeps rely on.

Every task has ``sample(batch_size, rng)`` returning a batch ``(x, y)``, or ``(x, y,
lengths)`` for variable-length sequences, with time-major inputs ``x`` of shape
``(T, B, D)`` (float64; integer token ids ``(T, B)`` for a task with ``vocab_size``), and
describes how a model should be trained on it:

- ``loss``: ``"mse"`` or ``"xent"`` (names in :data:`numrnn.losses.LOSSES`);
- ``readout``: ``"last"`` (many-to-one: predict from the final step) or ``"all"``
  (many-to-many: one prediction per step);
- the targets ``y`` have the shape the loss takes with the model's output: for ``"mse"``
  the output's own shape, float ``(B, O)`` (``"last"``) or ``(T, B, O)`` (``"all"``); for
  ``"xent"`` the output's shape without the class axis, int class indices ``(B,)`` or
  ``(T, B)``;
- ``lengths`` (B,) ints in 1..T or None: steps past a sequence's length are padding, which
  the model skips (packed sequences) and the losses leave out;
- ``input_size``, ``output_size``, ``seq_len``, ``vocab_size`` (None unless the inputs are
  token ids);
- ``baseline``: the loss of the best input-independent predictor, the level a model that
  learned nothing about the inputs reaches; beating it shows the task's memory is used;
- ``test_set(rng=None)``: a fixed evaluation batch;
- ``config``: a JSON-serialisable dict, with ``name``, that :func:`get` turns back into the task.
"""

from __future__ import annotations

import abc
import inspect

__all__ = ["TEST_SEED", "Task", "unpack"]

#: Seed of the synthetic tasks' evaluation batches: fixed, so every run is scored on the same
#: data, and unlike the small seeds used for training runs.
TEST_SEED = 0x7E57_5EED


class Task(abc.ABC):
    """Base class; subclasses set the attributes and implement :meth:`sample`.

    Attributes
    ----------
    name : str
        The registry name (:data:`TASKS`).
    loss : {"mse", "xent"}
        The loss :func:`numrnn.train` minimises.
    readout : {"last", "all"}
        Many-to-one or many-to-many. The targets ``y`` follow: regression (``loss="mse"``)
        targets have the prediction's shape, float (B, O) for ``"last"`` and (T, B, O) for
        ``"all"``; classification (``"xent"``) targets are int class indices, (B,) for
        ``"last"`` and (T, B) for ``"all"``.
    input_size, output_size, seq_len : int
        ``D``, ``O`` and ``T``; a model for the task needs the same ``input_size``,
        ``output_size`` and ``readout``.
    test_size : int
        Sequences in a synthetic task's :meth:`test_set` (1000).
    vocab_size : int or None
        For inputs of integer token ids ``(T, B)``: the number of distinct ids, which a
        model for the task needs as its ``vocab_size`` (its ``input_size`` is then the
        embedding's width, its own choice); None for float inputs.

    Examples
    --------
    >>> import numrnn as nr
    >>> task = nr.tasks.get("copy", T=5)
    >>> isinstance(task, nr.tasks.Task), task.loss, task.readout, task.seq_len
    (True, 'xent', 'all', 25)
    >>> task.config
    {'name': 'copy', 'T': 5, 'n_symbols': 8}
    """

    name: str
    loss: str
    readout: str
    input_size: int
    output_size: int
    seq_len: int
    #: Number of sequences in a synthetic task's :meth:`test_set`.
    test_size: int = 1000
    vocab_size: int | None = None

    @abc.abstractmethod
    def sample(self, batch_size: int, rng) -> tuple:
        """Draw a batch: ``x`` ``(T, B, D)`` float64, its targets ``y`` and, for
        variable-length sequences, their ``lengths``.

        Parameters
        ----------
        batch_size : int
            ``B``.
        rng : numpy.random.Generator or int

        Returns
        -------
        x : ndarray, shape (T, B, D)
        y : ndarray
            For ``readout="last"``: (B, O) float (``loss="mse"``) or (B,) int
            (``"xent"``); for ``"all"``: (T, B, O) float or (T, B) int.
        lengths : ndarray of int64, shape (B,), or None
            Only in a third element, from tasks of variable-length sequences
            (:func:`unpack` reads either form).
        """

    def test_set(self, rng=None) -> tuple:
        """A fixed evaluation batch of :attr:`test_size` sequences.

        Parameters
        ----------
        rng : numpy.random.Generator or int, optional
            Draw the batch from this instead of the fixed :data:`TEST_SEED`.

        Returns
        -------
        tuple
            ``(x, y)`` or ``(x, y, lengths)``, as :meth:`sample` returns them.
        """
        return self.sample(self.test_size, TEST_SEED if rng is None else rng)

    @property
    @abc.abstractmethod
    def baseline(self) -> float:
        """Loss of the best input-independent predictor."""

    @property
    def config(self) -> dict:
        """``{"name": ..., **constructor arguments}``, JSON-serialisable."""
        params = inspect.signature(type(self)).parameters
        return {"name": self.name, **{p: getattr(self, p) for p in params}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.config == self.config

    __hash__ = None


def unpack(batch) -> tuple:
    """``(x, y, lengths)`` from a batch as :meth:`Task.sample` or :meth:`Task.test_set`
    return it.

    Parameters
    ----------
    batch : tuple
        ``(x, y)`` (lengths None) or ``(x, y, lengths)``.

    Returns
    -------
    tuple
        ``(x, y, lengths)``.

    Examples
    --------
    >>> import numrnn as nr
    >>> x, y, lengths = nr.tasks.unpack(nr.tasks.Adding(T=4).sample(2, rng=0))
    >>> x.shape, lengths
    ((4, 2, 2), None)
    """
    if not isinstance(batch, tuple) or len(batch) not in (2, 3):
        raise TypeError(f"a task's batch must be (x, y) or (x, y, lengths), got {batch!r:.80}")
    return (*batch, None) if len(batch) == 2 else batch
