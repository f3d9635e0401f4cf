"""numrnn warmup: the arguments it refuses (a run is its docstring's example); the
Jacobian-norm kernel compiled in a second process."""

import os
import subprocess
import sys

import numpy as np
import pytest

import numrnn as nr


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cells": ["lstmm"]}, ValueError, "cells must be one of"),
        ({"dtypes": ["float16"]}, TypeError, "dtypes must be 'float32' or 'float64'"),
        ({"jobs": 0}, ValueError, "jobs must be a positive integer"),
        ({"cells": []}, ValueError, "at least one cell and one dtype"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        nr.warmup(progress=False, **kwargs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "cell",
    [
        ("rnn_tanh", {}),
        ("rnn_relu", {}),
        ("lstm", {}),
        ("gru", {}),
        ("gru", {"reset_after": False}),
    ],  # fmt: skip
)
def test_jacobian_example_has_the_types_of_every_cells_real_call(monkeypatch, cell, dtype):
    # the background compile is only worth anything if the kernel it compiles is the one
    # a real call asks for: the same argument types, whatever the cell
    from numba import typeof

    from numrnn import diagnostics
    from numrnn.precompile import jacobian_example

    seen = []
    real = diagnostics._jac.jacobian_norms
    monkeypatch.setattr(diagnostics._jac, "jacobian_norms",
                        lambda *a, **k: seen.append(a) or real(*a, **k))  # fmt: skip
    model = nr.nn.from_config(cell[0], input_size=2, hidden_size=3, dtype=dtype, seed=0,
                              num_layers=2, **cell[1])  # fmt: skip
    diagnostics.jacobian_norms(model, np.zeros((4, 2, 2), dtype), lengths=[4, 3])
    example = jacobian_example(dtype, gru=cell[0] == "gru")
    want = [typeof(a) for a in example]
    assert len(seen) == 2
    for args in seen:
        assert [typeof(a) for a in args[: len(want)]] == want
        assert (args[0] >= 3) == (example[0] >= 3)  # the same family's kernel


def test_jacobian_norms_compile_in_a_second_process_into_the_cache(tmp_path):
    # an empty Numba cache: a second process compiles the kernel, after which this one
    # finds it there (and starts nothing); about 20 s of compiling
    code = """
import numpy as np, numrnn as nr
from numrnn.precompile import jacobian_norms_in_background
from numrnn.kernels import jacobian
with nr.set_options(compile_notice=False):
    with jacobian_norms_in_background("float32") as pending:
        assert pending.proc is not None
    assert jacobian_norms_in_background("float32").proc is None
    model = nr.RNN(2, 3, dtype="float32", seed=0)
    nr.diagnostics.jacobian_norms(model, np.zeros((4, 1, 2), "float32"))
kernel = jacobian.KERNELS[False][0]
assert kernel.stats.cache_hits, "not loaded from the cache"
assert not kernel.stats.cache_misses
print("ok")
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.stdout.strip() == "ok", out.stderr[-3000:]
