"""A one-line notice when numrnn's kernels compile: the first use of a cell and dtype on a
machine takes seconds of Numba compilation (cached on disk afterwards), which would
otherwise look like a hang.

Numba's event API reports each compilation ("numba:compile", not fired for a kernel
loaded from the cache); the notice names the first numrnn kernel of each cell and dtype
that compiles in a process, once. The option ``compile_notice`` (``nr.set_options``)
turns it off.
"""

import sys
import threading

from numba.core import event

from .._options import get_option

# kernel modules -> what the notice calls them
_WHAT = {"rnn": "Elman RNN", "lstm": "LSTM", "gru": "GRU", "jacobian": "Jacobian-product"}


class _Notice(event.Listener):
    def __init__(self):
        self.told = set()
        self.local = threading.local()  # compile depth: callees compile inside their caller

    def on_start(self, ev):
        depth = getattr(self.local, "depth", 0)
        self.local.depth = depth + 1
        if depth or not get_option("compile_notice"):
            return
        dispatcher = ev.data.get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        name = module.rsplit(".", 1)[-1]
        if not module.startswith("numrnn.kernels.") or name not in _WHAT:
            return
        dtypes = {str(getattr(a, "dtype", "")) for a in ev.data.get("args", ())}
        dtype = next((d for d in ("float64", "float32") if d in dtypes), "")
        if (name, dtype) in self.told:
            return
        self.told.add((name, dtype))
        tell(name, dtype)

    def on_end(self, ev):
        self.local.depth = max(0, getattr(self.local, "depth", 1) - 1)


def tell(name, dtype, where=""):
    """Write the notice for kernel module ``name`` (a key of ``_WHAT``) and ``dtype``
    ("" for none); ``where``: e.g. " in a second process"."""
    from tqdm import tqdm  # its write keeps an active progress bar whole

    tqdm.write(f"numrnn: compiling the {_WHAT[name]} kernels{' for ' + dtype if dtype else ''}"
               f"{where} (first use on this machine, cached afterwards; a few seconds to a "
               "minute)", file=sys.stderr)  # fmt: skip


NOTICE = _Notice()
event.register("numba:compile", NOTICE)
