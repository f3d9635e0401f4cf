"""Tasks to train on: the synthetic memory benchmarks and your own sequences.

base        Task, the contract of every task (batches, loss, readout, baseline, config)
synthetic   Adding, Copy, SequentialDigits: the long-range memory benchmarks
sequences   Sequences: a task from your arrays, lists, DataArrays or files
"""

from .._registry import Registry
from .base import TEST_SEED, Task, unpack
from .sequences import Sequences, from_file
from .synthetic import Adding, Copy, SequentialDigits

__all__ = ["TASKS", "TEST_SEED", "Adding", "Copy", "SequentialDigits", "Sequences", "Task",
           "from_file", "get", "unpack"]  # fmt: skip

#: The tasks by name; "sequences" reads a file (:func:`from_file`).
TASKS = Registry(
    "task", {"adding": Adding, "copy": Copy, "digits": SequentialDigits, "sequences": from_file}
)


def get(name: str, **kwargs) -> Task:
    """Build a task by name, e.g. ``get("adding", T=200)``.

    Parameters
    ----------
    name : {"adding", "copy", "digits", "sequences"}
    **kwargs
        The task's arguments.

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    TypeError
        For an argument the task does not take (named, with the accepted ones) or a missing
        required one.

    Examples
    --------
    >>> import numrnn as nr
    >>> nr.tasks.get("adding", T=200)
    Adding(T=200)
    >>> nr.tasks.get("adding", length=200)
    Traceback (most recent call last):
    ...
    TypeError: task 'adding' got unknown argument(s) ['length']; accepted: T
    """
    return TASKS.create(name, **kwargs)
