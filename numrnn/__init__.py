"""numrnn: Numba-accelerated RNN, LSTM and GRU with exact BPTT and gradient diagnostics.

Importing numrnn is light: the models are imported eagerly (numpy and numba only), the
xarray-based modules (diagnostics, results, plots, training, sweeps) on first use, and
torch never.
"""

import importlib as _importlib

from ._options import get_option, set_options
from .nn import GRU, LSTM, RNN, Embedding, Ensemble, Forward, Gradients, ensemble, from_torch

__version__ = "0.1.0"

# public modules loaded on first use: name -> module path within the package
_LAZY_MODULES = {
    "nn": "nn",
    "init": "nn.init",
    "params": "nn.params",
    "losses": "losses",
    "optim": "optim",
    "schedules": "schedules",
    "tasks": "tasks",
    "datasets": "datasets",
    "diagnostics": "diagnostics",
    "results": "results",
    "plots": "plots",
    "training": "training",
    "sweep": "sweep",
    "analysis": "analysis",
    "meanfield": "meanfield",
    "report": "report",
    "cli": "cli",
    "cuda": "cuda",
    "weights": "weights",
}
# functions re-exported from modules that import xarray or matplotlib, loaded on first use
_LAZY_FUNCTIONS = {"save": "weights", "load": "weights", "models_from": "weights",
                   "open": "results", "train": "training", "warmup": "precompile"}  # fmt: skip

__all__ = [
    "RNN", "LSTM", "GRU", "Ensemble", "Embedding", "ensemble", "Forward", "Gradients", "from_torch",
    "get_option", "set_options", *_LAZY_MODULES, *_LAZY_FUNCTIONS,
]  # fmt: skip


def __getattr__(name):
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{_LAZY_MODULES[name]}", __name__)
    if name in _LAZY_FUNCTIONS:
        module = _importlib.import_module(f".{_LAZY_FUNCTIONS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'numrnn' has no attribute {name!r}")


def __dir__():
    return sorted({*__all__, "__version__"})
