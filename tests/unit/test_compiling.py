"""numrnn.kernels._compiling: the one-line notice when a cell's kernels compile."""

import types

import numba
import numpy as np

import numrnn as nr
from numrnn.kernels._compiling import NOTICE, _Notice


def event(module, dtype):
    dispatcher = types.SimpleNamespace(py_func=types.SimpleNamespace(__module__=module))
    return types.SimpleNamespace(data={"dispatcher": dispatcher,
                                       "args": (numba.types.Array(dtype, 2, "C"),)})  # fmt: skip


def test_once_per_cell_and_dtype_and_not_for_callees(capsys):
    notice = _Notice()
    lstm64 = event("numrnn.kernels.lstm", numba.float64)
    notice.on_start(lstm64)
    notice.on_start(event("numrnn.kernels.linalg", numba.float64))  # a callee: inside
    notice.on_end(None)
    notice.on_end(None)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "numrnn: compiling the LSTM kernels for float64 (first use on this machine" in err
    notice.on_start(lstm64)  # the backward kernel of the same cell and dtype: said already
    notice.on_end(None)
    notice.on_start(event("numrnn.kernels.lstm", numba.float32))
    notice.on_end(None)
    notice.on_start(event("numrnn.kernels.linalg", numba.float32))  # not a cell: silent
    notice.on_end(None)
    notice.on_start(event("someone.else", numba.float64))
    notice.on_end(None)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LSTM kernels for float32" in err


def test_option_turns_it_off(capsys):
    notice = _Notice()
    with nr.set_options(compile_notice=False):
        notice.on_start(event("numrnn.kernels.gru", numba.float64))
        notice.on_end(None)
    assert capsys.readouterr().err == ""


def test_listens_to_numba_and_is_silent_for_cached_kernels(capsys):
    assert NOTICE in numba.core.event._registered["numba:compile"]
    model = nr.RNN(2, 3, seed=0)
    model.forward(np.zeros((2, 1, 2)))  # compiled (or loaded from the cache) already
    capsys.readouterr()
    model.forward(np.zeros((2, 1, 2)))
    assert "compiling" not in capsys.readouterr().err
