"""The engine: recurrent models with exact BPTT (NumPy and Numba only, never xarray).

cells      the CellSpec registry: what each cell is, and the glue to its kernels
packing    PackedBatch: the sorted, per-direction layout of variable-length batches
tape       Forward, Gradients and the Tape that forward saves for BPTT and diagnostics
recurrent  Recurrent: layers and directions composed once for every cell
head       the dense head, dropout, per-member random streams
models     RNN, LSTM, GRU, Ensemble
params     PyTorch's parameter names and shapes
torch      interop with torch.nn (torch imported only when used)
init       initializers and init_params
embedding  token ids looked up in a learned table: the math, and the Embedding class
ahead      a cell's backward kernels compiled in a second process while its forward compiles
"""

from .embedding import Embedding
from .models import GRU, LSTM, RNN, Ensemble, ensemble, from_config
from .recurrent import Recurrent
from .tape import Forward, Gradients
from .torch import from_torch, to_torch

__all__ = ["GRU", "LSTM", "RNN", "Embedding", "Ensemble", "Forward", "Gradients", "Recurrent",
           "ensemble", "from_config", "from_torch", "to_torch"]  # fmt: skip
