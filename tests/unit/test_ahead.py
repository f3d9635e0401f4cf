"""numrnn.nn.ahead: a cell's backward kernels compiled in a second process while its
forward compiles; the made-up arrays they compile on have the types of real calls."""

import sys

import numpy as np
import pytest
from helpers import run_compiling
from numba import typeof

import numrnn as nr
from numrnn.kernels import _compiling
from numrnn.nn import ahead
from numrnn.nn.cells import variants


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_before"])
def test_cache_like_has_the_shapes_and_types_of_forwards_cache(cell, dtype):
    spec, options = variants()[cell] if cell != "gru_before" else (
        variants()["gru"][0], {"reset_after": False})  # fmt: skip
    c = spec.make(**options)
    K, T, B, D, H = 2, 5, 3, 4, 6
    rng = np.random.default_rng(0)
    w = {name: rng.standard_normal(shape).astype(dtype) for name, shape in [
        ("w_ih", (K, spec.n_gates * H, D)), ("b_ih", (K, spec.n_gates * H)),
        ("w_hh", (K, spec.n_gates * H, H)), ("b_hh", (K, spec.n_gates * H))]}  # fmt: skip
    x = rng.standard_normal((K, T, B, D)).astype(dtype)
    state0 = tuple(np.zeros((K, B, H), dtype) for _ in spec.states)
    _, cache = c.forward(nr.nn.cells.kernels(), x, *w.values(), state0,
                         np.full(T, B, np.int64))  # fmt: skip
    like = c.cache_like(K, T, B, H, dtype)
    real, like = (cache, like) if isinstance(cache, tuple) else ((cache,), (like,))
    assert [a.shape for a in like] == [a.shape for a in real]
    assert [typeof(a) for a in like] == [typeof(a) for a in real]


def test_start_runs_one_process_per_cell_and_dtype_and_respects_the_option(monkeypatch):
    started = []
    monkeypatch.setattr(ahead, "_PENDING", {})
    monkeypatch.setattr(_compiling, "cores", lambda: 2)

    def in_background(module, call):
        started.append(call)
        return _compiling.Background()

    monkeypatch.setattr(_compiling, "in_background", in_background)
    ahead.start("lstm", "float32")
    ahead.start("lstm", "float32")  # the backward kernel of the same cell: started already
    assert started == ["exercise_backward('lstm', 'float32')"]
    with nr.set_options(compile_ahead=False):
        ahead.start("gru", "float64")
    with ahead.paused():
        ahead.start("gru", "float32")
    monkeypatch.setattr(_compiling, "cores", lambda: 1)
    ahead.start("rnn", "float64")
    assert len(started) == 1
    ahead.wait("lstm", np.float32)  # nothing running: returns
    ahead.wait("rnn", "float32")  # never started: returns


def test_the_hook_runs_when_a_cells_forward_loop_compiles(monkeypatch):
    import types

    import numba

    seen = []
    monkeypatch.setattr(_compiling, "_HOOKS", [lambda cell, dtype: seen.append((cell, dtype))])
    notice = _compiling._Notice()

    def compile_event(module, name):
        py_func = types.SimpleNamespace(__module__=module, __name__=name)
        dispatcher = types.SimpleNamespace(py_func=py_func)
        args = (numba.types.Array(numba.float32, 4, "C"),)
        notice.on_start(types.SimpleNamespace(data={"dispatcher": dispatcher, "args": args}))
        notice.on_end(None)

    with nr.set_options(compile_notice=False):
        compile_event("numrnn.kernels.gru", "_forward_items")
        compile_event("numrnn.kernels.gru", "_backward_items")
        compile_event("numrnn.kernels.linalg", "_forward_items")
        compile_event("numrnn.kernels.jacobian", "_forward_items")
    assert seen == [("gru", "float32")]


def test_the_hook_runs_before_a_forward_whose_kernel_is_neither_compiled_nor_cached(monkeypatch):
    # a forward pass calls the hooks before Numba starts (once per cell and dtype in a
    # process), unless its time loop is compiled here or cached on disk for that dtype
    import types

    import numba

    seen = []
    monkeypatch.setattr(_compiling, "_HOOKS", [lambda cell, dtype: seen.append((cell, dtype))])
    monkeypatch.setattr(_compiling, "_CHECKED", set())
    f64, f32 = (numba.types.Array(t, 4, "C") for t in (numba.float64, numba.float32))
    cached = {"lstm": [(f32, numba.int64)], "rnn": [], "gru": []}
    monkeypatch.setattr(_compiling, "cached_signatures", lambda kernel: cached[kernel.cell])
    compiled = {"lstm": [], "rnn": [(f64, numba.int64)], "gru": []}
    for cell in ("lstm", "rnn", "gru"):
        kernel = types.SimpleNamespace(cell=cell, signatures=compiled[cell])
        for dtype in (np.float64, np.float32, np.float64):
            _compiling.before_forward(cell, kernel, dtype)
    assert seen == [("lstm", "float64"), ("rnn", "float32"), ("gru", "float64"),
                    ("gru", "float32")]  # fmt: skip


@pytest.mark.skipif(_compiling.cores() < 2, reason="one core: nothing compiles ahead")
def test_the_first_backward_loads_what_the_second_process_compiled(tmp_path):
    # an empty Numba cache: the forward's compile starts a second process; after waiting
    # for it the backward pass compiles nothing, for a one-layer GRU with a head on every
    # step and for a stacked bidirectional LSTM with lengths and a head on the last state
    # (about 20 s of compiling on two cores)
    code = """
import numpy as np, numrnn as nr
from numrnn.nn import ahead
models = [(nr.GRU(2, 3, dtype="float32", seed=0, output_size=1), "gru", None),
          (nr.LSTM(2, 3, num_layers=2, bidirectional=True, output_size=2, readout="last",
                   seed=0), "lstm", [4, 2])]
for model, cell, lengths in models:
    x = np.zeros((4, 2, 2), model.dtype)
    with nr.set_options(compile_notice=False):
        compiled.clear()
        res = model.forward(x, lengths=lengths)
        pending = ahead._PENDING[(cell, model.dtype.name)]
        assert pending.proc is not None, "no second process"
        pending.proc.wait()
        assert pending.proc.returncode == 0, pending.proc.returncode
        assert "_forward_items" in compiled
        compiled.clear()
        model.backward(res, np.ones_like(res.output), norms=True)
    assert not compiled, (cell, compiled)
print("ok")
"""
    out = run_compiling(code, tmp_path, NUMBA_NUM_THREADS="2")
    assert out.stdout.strip() == "ok", out.stderr[-3000:]


def test_the_second_process_leaves_the_dense_product_to_the_first(tmp_path):
    # exercise_backward compiles the time loop and the weight gradients' products, not
    # linalg.matmul, which the first process compiles while it waits (or for its head)
    code = """
import numpy as np
from numrnn.nn import ahead
from numrnn.kernels import linalg
ahead.exercise_backward("rnn", "float32")
print(sorted(set(compiled) & {"_backward_items", "_matmul_tn_items", "_matmul_items"}))
# what the first process compiles while it waits serves a real input gradient and head
ahead.exercise_products("float32")
compiled.clear()
z = lambda *shape: np.zeros(shape, np.float32)
linalg.input_grad(z(1, 5, 1, 4), z(1, 4, 3))
linalg.matmul(z(1, 5, 4), z(1, 4, 2), z(1, 2))
print(compiled)
"""
    out = run_compiling(code, tmp_path)
    assert out.stdout.split("\n")[:2] == ["['_backward_items', '_matmul_tn_items']", "[]"], (
        out.stdout + out.stderr[-3000:]
    )


def test_wait_compiles_the_dense_product_while_the_second_process_runs(monkeypatch):
    class Proc:
        def __init__(self, code):
            self.code = code

        def poll(self):
            return self.code

        def wait(self):
            return 0

    products = []
    monkeypatch.setattr(ahead, "exercise_products", lambda dtype: products.append(dtype))
    running, ended = _compiling.Background(Proc(None)), _compiling.Background(Proc(0))
    monkeypatch.setattr(
        ahead, "_PENDING", {("gru", "float32"): running, ("lstm", "float64"): ended}
    )
    ahead.wait("gru", np.dtype("float32"))  # still running: the product meanwhile
    ahead.wait("gru", np.dtype("float32"))  # waited for: nothing more
    ahead.wait("lstm", np.dtype("float64"))  # ended already: nothing to overlap with
    assert products == [np.dtype("float32")]


def test_nothing_starts_in_a_frozen_app(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert (
        _compiling.in_background("numrnn.nn.ahead", "exercise_backward('rnn', 'float64')").proc
        is None
    )


def test_predict_compiles_no_backward_ahead(monkeypatch):
    # a prediction has no backward pass: its forward runs paused (a first use then
    # compiles no BPTT kernels in a second process), a plain forward does not
    seen = []
    real = nr.nn.Recurrent.forward

    def forward(self, *args, **kwargs):
        seen.append(not ahead._PAUSED[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(nr.nn.Recurrent, "forward", forward)
    model = nr.RNN(2, 3, output_size=1, seed=0)
    x = np.zeros((4, 5, 2))
    model.predict(x, chunk=2)
    model.forward(x)
    assert seen == [False, False, False, True]


def test_paused_blocks_in_several_threads_do_not_undo_each_other():
    # block A opens, B opens, A closes: B is still paused; after B, nothing is
    import threading

    a_open, b_open, a_closed = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with ahead.paused():
            a_open.set()
            b_open.wait(10)
        a_closed.set()

    def b():
        a_open.wait(10)
        with ahead.paused():
            b_open.set()
            a_closed.wait(10)
            seen["inside b after a"] = ahead._PAUSED[0]

    threads = [threading.Thread(target=f) for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"inside b after a": 1}
    assert ahead._PAUSED[0] == 0
