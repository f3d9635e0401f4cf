"""Helpers shared by several test modules: the sweep and CLI tests (tiny configs, running the
CLI) and the model and parameter tests (``model_class``).

Imported as ``helpers``, like ``naive`` (conftest.py puts tests/ on sys.path); conftest.py
registers it for pytest's assertion rewriting, as the test modules these came from were.
``from_python`` lets the kernel tests call the kernels' helpers; ``blas_wakes`` tells the
tests of numrnn's own BLAS calls whether a call woke BLAS's threads; ``run_compiling`` runs
code in a new Python with an empty Numba cache, telling it what Numba compiles.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from numba import njit

import numrnn as nr

#: Python source that collects in ``compiled`` the name of every function Numba compiles
#: (what it loads from its cache is not compiled), for :func:`run_compiling`
COMPILE_LOG = """
from numba.core import event
compiled = []
class _Log(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", _Log())
"""


def run_compiling(code, cache, **env):
    """Run ``code`` after :data:`COMPILE_LOG` (so it can read ``compiled``) in a new Python
    with the Numba cache directory ``cache`` and the environment variables ``env``; return
    the ``subprocess.CompletedProcess`` (text output)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), **env}
    return subprocess.run([sys.executable, "-c", COMPILE_LOG + code], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def from_python(helper):
    """A function Python can call that calls ``helper``, a kernel's helper compiled without
    a Python wrapper (``numrnn.kernels._compiling.callee``): a jitted function calling it
    with the same arguments."""

    @njit
    def call(*args):
        return helper(*args)

    return call


def model_class(cell):
    return {"rnn": nr.RNN, "lstm": nr.LSTM, "gru": nr.GRU}[cell]


def tiny(grid=None, diagnostics=None, **train):
    """A tiny sweep config as a dict; ``train`` entries override [train]."""
    cfg = {
        "model": {"cell": "rnn_tanh", "hidden_size": 4},
        "task": {"name": "adding", "T": 6},
        "train": {"steps": 8, "batch_size": 4, "optimizer": "adam", "lr": 0.01, **train},
        "grid": {"model.init": ["normal", "orthogonal"], "seed": [0, 1]} if grid is None else grid,
    }
    if diagnostics is not None:
        cfg["diagnostics"] = diagnostics
    return cfg


def to_toml(cfg):
    """TOML text of a config holding strings, numbers, booleans and lists of them."""
    lines = []
    for section, table in cfg.items():
        lines.append(f"[{section}]")
        lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def cli(*args, timeout=120, **kwargs):
    """Run ``python -m numrnn.cli ARGS`` to completion; fail the test on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-m", "numrnn.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, **kwargs)  # fmt: skip
    assert proc.returncode == 0, f"numrnn {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def no_store(path):
    return not os.path.exists(path) and not os.path.exists(f"{path}.creating")


def _edit(**edits):
    """A tiny config changed by ``edits``: {"section": {key: value}}, None deletes a key."""
    cfg = tiny()
    for section, table in edits.items():
        if table is None:
            cfg.pop(section, None)
            continue
        cfg.setdefault(section, {})
        for key, value in table.items():
            if value is None:
                cfg[section].pop(key, None)
            else:
                cfg[section][key] = value
    return cfg


def _other_threads_cpu(fn, wait=0.15):
    """CPU seconds this process's threads other than the calling one spent while ``fn()``
    ran and for ``wait`` seconds after, from a quiet start."""
    time.sleep(0.3)  # threads woken before fn have gone back to sleep
    process, caller = time.process_time(), time.thread_time()
    fn()
    time.sleep(wait)
    return (time.process_time() - process) - (time.thread_time() - caller)


def blas_wakes(fn):
    """Whether ``fn()`` woke BLAS's worker threads: OpenBLAS's spin, after a call that used
    them, about 0.1 s waiting for more work, which takes a core from the kernels that run
    next. Skips the test where a plain dot of 2 million numbers wakes no thread (a
    single-threaded or a sleeping BLAS: nothing to guard against)."""
    a = np.ones(2_000_000)
    idle = _other_threads_cpu(lambda: None)  # what other threads of the process use anyway
    if _other_threads_cpu(lambda: a.dot(a)) < idle + 0.02:
        pytest.skip("this BLAS does not spin its threads after a long dot")
    return _other_threads_cpu(fn) > idle + 0.02
