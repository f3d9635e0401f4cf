"""Compiled (Numba ``@njit``) time recurrences, one module per cell, forward and BPTT side by side.

Every kernel runs the whole time loop in one call; see ``rnn.py`` for the shared array
contract and ``numrnn/nn/cells.py`` for the interface the models use. A backend (these
CPU kernels, or their CUDA twins in ``numrnn/cuda/``) is a :class:`Namespace`: the kernel
``<cell>_forward`` of a backend package lives in its module ``<cell>``.
"""

import importlib

# _cache first: every kernel's cache is keyed on the whole package's sources; the compile
# notice listens from the first import
from . import _cache, _compiling  # noqa: F401


class Namespace:
    """The kernels of a backend package by name, each module imported on first use.

    ``Namespace("numrnn.kernels").lstm_backward`` is ``numrnn.kernels.lstm.lstm_backward``;
    a new cell's kernels are found by their names, with no list to extend.
    """

    def __init__(self, package):
        self.package = package

    def __getattr__(self, name):
        cell, _, _ = name.rpartition("_")
        if not cell or name.startswith("__"):
            raise AttributeError(name)
        kernel = getattr(importlib.import_module(f"{self.package}.{cell}"), name)
        setattr(self, name, kernel)  # found once; later look-ups are plain attributes
        return kernel

    def __repr__(self):
        return f"Namespace({self.package!r})"
