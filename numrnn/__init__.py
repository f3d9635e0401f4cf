"""numrnn: Numba-accelerated RNN, LSTM and GRU with exact BPTT and gradient diagnostics.

Importing numrnn is light: the models are imported eagerly (numpy and numba only), the
xarray-based modules (diagnostics, results, plots, training, sweeps) on first use, and
torch never.
"""

import importlib

from .models import GRU, LSTM, RNN, Ensemble, Forward, Gradients, ensemble
from .params import from_torch

__version__ = "0.1.0"

_LAZY_MODULES = (
    "init",
    "losses",
    "optim",
    "tasks",
    "params",
    "diagnostics",
    "results",
    "plots",
    "training",
    "sweep",
    "analysis",
    "report",
    "cli",
    "cuda",
)
# functions re-exported from modules that import xarray or matplotlib, loaded on first use
_LAZY_FUNCTIONS = {"save": "results", "open": "results", "train": "training"}

__all__ = [
    "RNN", "LSTM", "GRU", "Ensemble", "ensemble", "Forward", "Gradients", "from_torch",
    *_LAZY_MODULES, *_LAZY_FUNCTIONS,
]  # fmt: skip


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(f".{_LAZY_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module 'numrnn' has no attribute {name!r}")
