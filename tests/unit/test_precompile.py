"""numrnn warmup: the arguments it refuses (a run is its docstring's example); the
Jacobian-norm kernel compiled in a second process."""

import os
import subprocess
import sys

import numpy as np
import pytest

import numrnn as nr
from numrnn.kernels import _compiling


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
    # the diagnostics workloads compile on a made-up trajectory; they are only worth
    # anything if the kernels they compile are the ones real calls ask for: the same
    # argument types, whatever the cell, and the same family
    from numba import typeof

    from numrnn import diagnostics
    from numrnn.kernels.jacobian import example as jacobian_example
    from numrnn.kernels.jacobian import is_gru

    seen = {"jacobian_norms": [], "lyapunov_spectrum": []}
    for name, calls in seen.items():
        real = getattr(diagnostics._jac, name)
        record = lambda *a, real=real, calls=calls: calls.append(a) or real(*a)  # noqa: E731
        monkeypatch.setattr(diagnostics._jac, name, record)
    model = nr.nn.from_config(cell[0], input_size=2, hidden_size=3, dtype=dtype, seed=0,
                              num_layers=2, **cell[1])  # fmt: skip
    x = np.zeros((4, 2, 2), dtype)
    diagnostics.jacobian_norms(model, x, lengths=[4, 3])
    diagnostics.lyapunov_spectrum(model, x, n_exponents=2, warmup=1)
    example = jacobian_example(dtype, gru=cell[0] == "gru")
    # exercise_diagnostics's Lyapunov call adds q0 (1, 1), warmup 0 and interval 0
    lyapunov = (*example, np.ones((1, 1), dtype), 0, 0)
    for calls, want in ((seen["jacobian_norms"], example), (seen["lyapunov_spectrum"], lyapunov)):
        assert len(calls) == 2
        for args in calls:
            assert [typeof(a) for a in args[: len(want)]] == [typeof(a) for a in want]
            assert is_gru(args[0]) == is_gru(want[0])  # the same family's kernel


@pytest.mark.skipif(_compiling.cores() < 2, reason="one core: nothing compiles in a second")
def test_diagnostics_kernels_compile_in_a_second_process_into_the_cache(tmp_path):
    # an empty Numba cache: a second process compiles the Jacobian-norm kernel, after which
    # this one finds it there (and starts nothing); then lyapunov_spectrum's first call has
    # its kernel compiled in a second process while its forward pass runs, and loads it;
    # no second process compiles the backward kernels meanwhile (no backward pass follows).
    # About 30 s of compiling.
    code = """
import numpy as np, numrnn as nr
from numrnn.precompile import jacobian_norms_in_background
from numrnn.kernels import jacobian
from numrnn.nn import ahead
with nr.set_options(compile_notice=False):
    with jacobian_norms_in_background("float32") as pending:
        assert pending.proc is not None
    assert jacobian_norms_in_background("float32").proc is None
    model = nr.RNN(2, 3, dtype="float32", seed=0)
    x = np.zeros((4, 1, 2), "float32")
    jac = nr.diagnostics.jacobian_norms(model, x)
    lyap = nr.diagnostics.lyapunov_spectrum(model, x, n_exponents=2)
assert ahead._PENDING[("rnn", "float32")].proc is None, "backward kernels compiled ahead"
for kernel in jacobian.KERNELS[False]:
    assert kernel.stats.cache_hits, (kernel, "not loaded from the cache")
    assert not kernel.stats.cache_misses, kernel
assert float(jac.jacobian_norm[0, 0, 0, -1]) == 1.0 and lyap.lyapunov.shape[-1] == 2
print("ok")
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.stdout.strip() == "ok", out.stderr[-3000:]
