"""The CUDA backend (``numrnn/cuda``) against the compiled CPU kernels.

Without a GPU the kernel tests run on Numba's CUDA simulator. It must be switched on
(``NUMBA_ENABLE_CUDASIM=1``) before Numba is first imported, and it replaces
``numba.cuda`` for the whole process; so :func:`test_kernels_on_simulator` re-runs this
module in a subprocess with the variable set, and the rest of the suite keeps the real,
compiled CPU kernels. In that subprocess (or in a process that has a GPU) the kernel
tests run directly; elsewhere they are skipped and reported through the subprocess test.

The simulator runs each thread as a Python thread, so sizes are tiny, and threads per
block and matmul tiles are patched small so that several threads share a loop and
partial tiles occur. Every kernel test runs through both paths of ``numrnn/cuda``: the
persistent kernels (weights in shared memory, or read from global memory) and the
per-step launches (``_common.PATH``).
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest

import numrnn as nr

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
TOL = {"float64": 1e-12, "float32": 2e-5}

T, B, D, H = 5, 3, 2, 4
LENGTHS = np.array([3, 5, 1])  # unsorted, with 1 and T

CELLS = {
    "rnn_tanh": lambda **kw: nr.RNN(D, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nr.RNN(D, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nr.LSTM(D, H, **kw),
    "gru": lambda **kw: nr.GRU(D, H, **kw),
    "gru_reset_before": lambda **kw: nr.GRU(D, H, reset_after=False, **kw),
}


def _gpu():
    """A real GPU usable here (imports numba.cuda; never the simulator in this branch)."""
    from numrnn import cuda as nc

    return nc.is_available()


# In-process on the simulator subprocess or on a real GPU; otherwise via the subprocess.
needs_cuda = pytest.mark.skipif(
    not (SIM or _gpu()), reason="no GPU: runs on the CUDA simulator in test_kernels_on_simulator"
)


@pytest.fixture(autouse=True, scope="module")
def simulator_setup():
    """On the simulator: a 50 us GIL switch interval instead of Python's 5 ms, and static
    shared arrays allocated under a lock.

    The simulator's launching thread polls the block's threads at every syncthreads, so
    each barrier waits out switch intervals; the short interval makes the kernel tests
    about 5x faster and changes no result. But it makes a race in the simulator likely:
    ``cuda.shared.array(shape, ...)`` looks the call site up in a dict and, if absent,
    allocates and stores an array, so two threads of a block's first call can each get
    their own array and read values the others never wrote (seen once in CI as a 3%
    error in the first tile of a matmul). The patch does the lookup and the store under a
    lock, keyed by the call site as the simulator does.
    """
    if not SIM:
        yield
        return
    import threading

    from numba.cuda.simulator import kernelapi

    lock = threading.Lock()
    unpatched = kernelapi.FakeCUDAShared.array

    def array(self, shape, dtype):
        if shape == 0:  # dynamic shared memory: one buffer, no lookup
            return unpatched(self, shape, dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            if caller not in self._allocations:
                self._allocations[caller] = np.empty(shape, np.dtype(str(dtype)))
            return self._allocations[caller]

    old = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    kernelapi.FakeCUDAShared.array = array
    try:
        yield
    finally:
        sys.setswitchinterval(old)
        kernelapi.FakeCUDAShared.array = unpatched


@pytest.fixture
def small_launches(monkeypatch):
    """On the simulator: 3 threads per block and 4x4 matmul tiles, so loops stride and
    tiles are partial (test_matmul has them partial along every axis)."""
    if SIM:
        from numrnn.cuda import _common as cm

        monkeypatch.setattr(cm, "MAX_THREADS", 3)
        monkeypatch.setattr(cm, "WARP", 1)
        monkeypatch.setattr(cm, "TILE", 4)


# How a test runs the kernels: (option cuda_path, shared memory for weights?, stepwise expected)
PATHS = {
    "persistent": ("persistent", True, False),
    "persistent-global": ("persistent", False, False),
    "stepwise": ("stepwise", True, True),
    "auto-global": ("auto", False, True),  # weights do not fit: auto picks the steps
}


def use_path(monkeypatch, name):
    """Set the path for a test; returns a list that records the per-step products launched,
    so the test can check which path really ran."""
    from numrnn._options import OPTIONS
    from numrnn.cuda import _common as cm

    path, shared, _ = PATHS[name]
    monkeypatch.setitem(OPTIONS, "cuda_path", path)
    if not shared:
        monkeypatch.setattr(cm, "SHARED_BYTES", 0)
    calls = []
    matmul = cm.matmul

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return matmul(*args, **kwargs)

    monkeypatch.setattr(cm, "matmul", spy)
    return calls


def rel(a, b):
    """max|a - b| / max|b|, NaNs required in the same places."""
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def run_both(model, x, state, lengths, d_out, d_state, norms):
    out = {}
    for backend in ("cpu", "cuda"):
        res = model.forward(x, state, lengths, backend=backend)
        grads = model.backward(res, d_out, d_state, norms=norms)
        out[backend] = (res, grads)
    return out["cpu"], out["cuda"]


def _state(rng, cell, n, dtype):
    shape = (n, B, H)
    if cell == "lstm":
        return tuple(rng.normal(size=shape).astype(dtype) for _ in range(2))
    return rng.normal(size=shape).astype(dtype)


def _flat(s):
    return s if isinstance(s, tuple) else (s,)


STACKED = dict(num_layers=2, bidirectional=True, lengths=LENGTHS, norms=True)
SINGLE = dict(num_layers=1, bidirectional=False, lengths=None, norms=False)


@needs_cuda
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize(
    "config",
    [
        # stacked, bidirectional, unsorted lengths, norms: through both paths
        dict(STACKED, path="persistent"),
        dict(STACKED, path="stepwise"),
        # one layer, full lengths, no norms, weights too large for shared memory
        dict(SINGLE, path="auto-global"),
    ],
    ids=lambda c: f"{'stacked-bidir-lengths-norms' if c['norms'] else 'single'}-{c['path']}",
)
def test_matches_cpu(cell, config, small_launches, monkeypatch, rng):
    calls = use_path(monkeypatch, config["path"])
    L, dirs = config["num_layers"], 2 if config["bidirectional"] else 1
    model = CELLS[cell](num_layers=L, bidirectional=config["bidirectional"], seed=1)
    x = rng.normal(size=(T, B, D))
    d_out = rng.normal(size=(T, B, dirs * H))
    state, d_state = _state(rng, cell, L * dirs, "f8"), _state(rng, cell, L * dirs, "f8")
    (rc, gc), (rg, gg) = run_both(
        model, x, state, config["lengths"], d_out, d_state, config["norms"]
    )
    tol = TOL["float64"]
    assert rel(rg.output, rc.output) < tol
    for a, b in zip(_flat(rg.state), _flat(rc.state), strict=True):
        assert rel(a, b) < tol
    assert set(gg.params) == set(gc.params)
    for k in gc.params:
        assert rel(gg.params[k], gc.params[k]) < tol, k
    assert rel(gg.input, gc.input) < tol
    for a, b in zip(_flat(gg.state), _flat(gc.state), strict=True):
        assert rel(a, b) < tol
    assert set(gg.norms) == set(gc.norms)
    assert bool(gc.norms) == config["norms"]
    for k in gc.norms:
        assert rel(gg.norms[k], gc.norms[k]) < tol, k  # NaN past each sequence's end
    assert bool(calls) == PATHS[config["path"]][2]


@needs_cuda
def test_token_model_matches_cpu(rng):
    """A model with an embedding: the lookup and its gradient stay on the host, around the
    same kernels."""
    model = nr.GRU(D, H, seed=1, vocab_size=6, padding_idx=0)
    ids = rng.integers(0, 6, (T, B))
    d_out = rng.normal(size=(T, B, H))
    (rc, gc), (rg, gg) = run_both(model, ids, None, LENGTHS, d_out, None, False)
    assert rel(rg.output, rc.output) < TOL["float64"]
    for k in gc.params:
        assert rel(gg.params[k], gc.params[k]) < TOL["float64"], k
    assert not gg.params["weight_emb"][0].any()


@needs_cuda
@pytest.mark.parametrize("path", ["persistent", "stepwise"])
@pytest.mark.parametrize("cell", ["lstm", "gru_reset_before"])
def test_float32_matches_cpu(cell, path, small_launches, monkeypatch, rng):
    use_path(monkeypatch, path)
    model = CELLS[cell](dtype="float32", seed=2)
    x = rng.normal(size=(T, B, D)).astype("f4")
    d_out = rng.normal(size=(T, B, H)).astype("f4")
    (rc, gc), (rg, gg) = run_both(model, x, None, LENGTHS, d_out, None, True)
    assert rg.output.dtype == np.float32
    assert rel(rg.output, rc.output) < TOL["float32"]
    for k in gc.params:
        assert gg.params[k].dtype == np.float32
        assert rel(gg.params[k], gc.params[k]) < TOL["float32"], k
    assert rel(gg.norms["grad_norm"], gc.norms["grad_norm"]) < TOL["float32"]


def _member_weights(rng, cell, K, dtype):
    """Random per-member weights: (G, weight args of the forward kernel, of the backward)."""
    G = {"lstm": 4, "gru": 3, "gru_reset_before": 3}.get(cell, 1) * H
    w = (rng.normal(size=(K, G, H)) * 0.5).astype(dtype)
    t = lambda a: np.ascontiguousarray(a.transpose(0, 2, 1))  # noqa: E731
    if cell == "gru_reset_before":
        w_rz, w_n = np.ascontiguousarray(w[:, : 2 * H]), np.ascontiguousarray(w[:, 2 * H :])
        return G, (t(w_rz), t(w_n)), (w_rz, w_n)
    if cell == "gru":
        empty = np.zeros((0, 0, 0), dtype)
        return G, (t(w), empty), (w, empty)
    return G, (t(w),), (w,)


def _call(k, cell, direction, *args):
    """Call the ``direction`` ("forward"/"backward") kernel of ``cell`` in namespace k."""
    name = {"rnn_tanh": "rnn", "rnn_relu": "rnn", "gru_reset_before": "gru"}.get(cell, cell)
    fn = getattr(k, f"{name}_{direction}")
    return fn(*args)


@needs_cuda
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("path", ["persistent", "persistent-global", "stepwise"])
def test_members_direct(cell, path, small_launches, monkeypatch, rng):
    """K = 2 members with their own weights, called directly, against the CPU kernels with
    K = 2: every output, NumPy out; norms filled in place (NaN past each sequence's end),
    or left alone when (0, 0, 0). (Two members show the member axis as well as more would;
    each member costs the simulator seconds per path.)"""
    from numrnn import cuda as nc
    from numrnn.nn.cells import kernels as backend_kernels

    calls = use_path(monkeypatch, path)
    K = 2
    gpu, cpu = nc.kernels(), backend_kernels("cpu")
    G, fw, bw = _member_weights(rng, cell, K, "f8")
    bs = np.array([3, 2, 2, 1, 1], np.int64)  # lengths 5, 3, 1: T and 1 included
    xin = rng.normal(size=(1, T, B, 4))  # one input for all members, as in an ensemble
    wih_t = rng.normal(size=(K, 4, G)) * 0.5
    bih, bhh = rng.normal(size=(K, G)), rng.normal(size=(K, G))
    s0 = [rng.normal(size=(K, B, H)) for _ in range(2 if cell == "lstm" else 1)]
    # relu (RNN) or reset_after (GRU); the LSTM has no flag
    flag = {"rnn_tanh": (False,), "rnn_relu": (True,), "lstm": ()}.get(cell, (cell == "gru",))
    fargs = (xin, wih_t, bih, *fw, bhh, *s0, bs, *flag)
    fg = _call(gpu, cell, "forward", *fargs)
    fc = _call(cpu, cell, "forward", *fargs)
    fg, fc = (f if isinstance(f, tuple) else (f,) for f in (fg, fc))
    for a, b in zip(fg, fc, strict=True):
        assert isinstance(a, np.ndarray) and a.shape == b.shape and a.shape[0] == K
        assert rel(a, b) < TOL["float64"]
    assert not np.allclose(fc[0][0], fc[0][1])  # the members really differ

    dout = rng.normal(size=(K, T, B, H))
    dfinal = [rng.normal(size=(K, B, H)) for _ in s0]
    want = path != "persistent-global"  # there the (0, 0, 0) "skip" arrays instead
    shape = (K, T, B) if want else (0, 0, 0)
    ng, nc_ = ([np.full(shape, 7.0) for _ in s0] for _ in range(2))
    wih = np.ascontiguousarray(wih_t.transpose(0, 2, 1))  # the input's gradient's weights
    bg = _call(gpu, cell, "backward", *fc, *bw, wih, xin, dout, *dfinal, bs, *flag, *ng)
    bc = _call(cpu, cell, "backward", *fc, *bw, wih, xin, dout, *dfinal, bs, *flag, *nc_)
    for a, b in zip(bg, bc, strict=True):
        assert isinstance(a, np.ndarray) and a.shape == b.shape and a.shape[0] == K
        assert rel(a, b) < TOL["float64"]
    for a, b in zip(ng, nc_, strict=True):
        assert a.shape == shape
        if want:
            assert rel(a, b) < TOL["float64"]
            assert np.isnan(a[:, 1:, 2]).all() and not np.isnan(a[:, :, 0]).any()
    # the steps launch one product per step in each direction (GRU reset before: two),
    # over the active rows only
    products = 2 if cell == "gru_reset_before" else 1
    assert bool(calls) == PATHS[path][2]
    if calls:
        rows = sorted(n for _, n, _ in calls)
        assert rows == sorted(2 * products * list(bs))


@needs_cuda
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul(accumulate, small_launches, rng):
    """The per-step product on strided views (a step's active rows, a gate slice), with
    partial tiles along every axis: c[m] (+)= a[m] @ b[m], the rest of c untouched."""
    from numrnn.cuda import _common as cm

    K, N, Q, P = 2, 3, 5, 6
    a = rng.normal(size=(K, 2, N + 1, Q + 2))
    b = rng.normal(size=(K, Q, P))
    c = rng.normal(size=(K, N + 1, P))
    d_a, d_b, d_c = cm.to_device(a, b, c)
    cm.matmul(d_a[:, 1, :N, 2:], d_b, d_c[:, :N], accumulate)
    want = c.copy()
    want[:, :N] = (c[:, :N] if accumulate else 0) + a[:, 1, :N, 2:] @ b
    assert rel(d_c.copy_to_host(), want) < TOL["float64"]


@needs_cuda
def test_path_choice(monkeypatch):
    """auto: persistent while the weights fit in shared memory, the steps beyond; the
    option cuda_path overrides it; a wrong path is an error naming the choices."""
    import numrnn as nr
    from numrnn._options import OPTIONS
    from numrnn.cuda import _common as cm

    fits = (4 * 32 * 32, 5 * 32, 64, np.float32)  # an LSTM of H = 32: 16 KiB of weights
    assert cm.plan(*fits)[:2] == (False, True)
    monkeypatch.setattr(cm, "SHARED_BYTES", 8 * 1024)
    assert cm.plan(*fits)[:2] == (True, False)
    monkeypatch.setitem(OPTIONS, "cuda_path", "persistent")  # weights from global memory
    assert cm.plan(*fits)[:2] == (False, False)
    monkeypatch.setitem(OPTIONS, "cuda_path", "stepwise")
    monkeypatch.setattr(cm, "SHARED_BYTES", 48 * 1024)
    assert cm.plan(*fits)[:2] == (True, True)
    with pytest.raises(ValueError, match="cuda_path must be one of"):
        nr.set_options(cuda_path="fast")


# ----------------------------------------------------------------- errors, no GPU needed


def _fake_numba_cuda(monkeypatch, module):
    import numba

    monkeypatch.setitem(sys.modules, "numba.cuda", module)
    if module is None:  # the import system then raises ImportError
        monkeypatch.delattr(numba, "cuda", raising=False)
    else:
        monkeypatch.setattr(numba, "cuda", module, raising=False)


def test_error_without_numba_cuda(monkeypatch):
    from numrnn import cuda as nc

    _fake_numba_cuda(monkeypatch, None)  # `from numba import cuda` -> ImportError
    with pytest.raises(RuntimeError, match="numba-cuda") as e:
        nc.kernels()
    assert "NUMBA_ENABLE_CUDASIM=1" in str(e.value)
    model = nr.LSTM(D, H, seed=0)
    with pytest.raises(RuntimeError, match="CUDA backend is unavailable"):
        model.forward(np.zeros((T, B, D)), backend="cuda")


def test_error_without_driver(monkeypatch):
    from numrnn import cuda as nc

    class NoDriver(types.ModuleType):
        def is_available(self):
            return False

        @property
        def gpus(self):
            raise ImportError("Error at driver init: CUDA driver library cannot be found.")

    _fake_numba_cuda(monkeypatch, NoDriver("numba.cuda"))
    with pytest.raises(RuntimeError, match="no usable CUDA driver.*driver library") as e:
        nc.kernels()
    assert "NUMBA_ENABLE_CUDASIM=1" in str(e.value)


def test_error_without_gpu(monkeypatch):
    from numrnn import cuda as nc

    fake = types.SimpleNamespace(is_available=lambda: False, gpus=[])
    _fake_numba_cuda(monkeypatch, fake)
    with pytest.raises(RuntimeError, match="no GPU"):
        nc.kernels()


@pytest.mark.skipif(SIM, reason="checks the real CUDA target, not the simulator")
def test_import_never_needs_numba_cuda():
    code = (
        "import sys; sys.modules['numba.cuda'] = None\n"
        "import numrnn, numrnn.nn.cells, numrnn.cuda\n"
        "assert numrnn.cuda.unavailable_reason().startswith('numba.cuda cannot be imported')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.skipif(SIM, reason="the simulator does not compile")
def test_kernels_compile_to_ptx(monkeypatch):
    """Every kernel type-checks and compiles for a real GPU, in both dtypes, with no float64
    instruction in the float32 kernels. Needs NVVM (a CUDA toolkit) but no GPU or driver."""
    from numba import boolean, cuda, float32, float64, int64

    from numrnn.cuda import _common as cm
    from numrnn.cuda import gru, lstm, rnn

    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except Exception as e:  # no CUDA toolkit
        pytest.skip(f"NVVM not available: {e}")
    # device functions are compiled for the current device's compute capability: fake one
    import numba.cuda.dispatcher as disp

    monkeypatch.setattr(
        disp, "get_current_device", lambda: types.SimpleNamespace(compute_capability=(8, 0))
    )
    bo, L, i = boolean, int64[::1], int64
    for ft in (float32, float64):
        a2, a3, a4 = ft[:, ::1], ft[:, :, ::1], ft[:, :, :, ::1]
        v3 = ft[:, :, :]  # strided views: a step's active rows, the weight-gradient slices
        sigs = {
            rnn._forward: (a4, a2, a2, L, a4, bo, bo),
            rnn._backward: (a4, a2, a4, L, bo, bo, bo, a4, a3, a3),
            rnn._step_forward: (a3, a4, a2, a4, bo, i),
            rnn._step_backward: (a3, a4, a4, bo, bo, a4, a3, i),
            lstm._forward: (a4, a2, a2, L, a4, a4, a4, a4, bo),
            lstm._backward: (a4, a4, a4, a4, a2, a4, L, bo, bo, a4, a3, a3, a3, a3),
            lstm._step_forward: (a3, a4, a2, a4, a4, a4, a4, i),
            lstm._step_backward: (a3, a3, a4, a4, a4, a4, bo, a4, a3, a3, i),
            gru._forward: (a4, a2, a2, a2, L, bo, bo, a4, a4, a4),
            gru._backward: (a4, a4, a4, a2, a2, a4, L, bo, bo, bo, a4, a4, a3, a3),
            gru._step_forward: (a3, a4, a2, a4, bo, a4, a4, i),
            gru._step_candidate: (a3, a4, a2, a4, a4, i),
            gru._step_backward: (a3, a4, a4, a4, a4, bo, bo, a4, a4, a3, i),
            gru._step_reset: (a3, a4, a4, a4, a4, a3, i),
            cm.matmul_nn: (v3, v3, v3, bo),
            cm.matmul_tn: (v3, a3, v3),
            cm.colsum: (v3, ft[:, :]),
            cm.fill_rows: (v3, ft[:, :]),
        }
        for kernel, sig in sigs.items():
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
            assert (".f64" in ptx) == (ft == float64), kernel.py_func.__qualname__


# ------------------------------------------------------------- the simulator subprocess


@pytest.mark.skipif(SIM, reason="already on the simulator")
def test_kernels_on_simulator():
    """Run this module's kernel tests on the CUDA simulator, in a fresh process."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "not on_simulator and not never_needs and not ptx",
        ],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, proc.stdout[-6000:]
