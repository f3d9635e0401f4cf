"""The models' old home, kept so that ``numrnn.models.LSTM`` and friends still import.

The engine now lives in :mod:`numrnn.nn`; import from ``numrnn`` (``nr.LSTM``) or
``numrnn.nn``.
"""

from .nn.models import GRU, LSTM, PER_MEMBER, RNN, Ensemble, ensemble, from_config
from .nn.recurrent import Recurrent
from .nn.tape import Forward, Gradients

__all__ = ["GRU", "LSTM", "PER_MEMBER", "RNN", "Ensemble", "Forward", "Gradients", "Recurrent",
           "ensemble", "from_config"]  # fmt: skip
