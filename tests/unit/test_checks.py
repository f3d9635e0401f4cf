"""Argument validation at numrnn's public boundary (numrnn/_checks.py, as the models'
constructors, forward and backward, and ``from_torch`` use it).

Every error must name the offending argument; the tests match the name (as a
whole word) plus a distinctive fragment such as the shape or value given, never
the whole message.
"""

import math
import re

import numpy as np
import pytest

import numrnn as nr

T, B, D, H = 5, 2, 3, 4
CLASSES = {"rnn": nr.RNN, "lstm": nr.LSTM, "gru": nr.GRU}
CELLS = list(CLASSES)


def all_of(*patterns):
    """Regex matching when every pattern occurs somewhere, in any order."""
    return "(?s)" + "".join(f"(?=.*?(?:{p}))" for p in patterns)


def word(name):
    return rf"(?<![\w.]){re.escape(name)}(?!\w)"


def shape(t):
    return re.escape(repr(tuple(t)))


NONFINITE = r"(?i:nan|inf|finite)"


def make(cell, **kwargs):
    return CLASSES[cell](D, H, seed=0, **kwargs)


def state_like(cell, shape_=(1, B, H), fill=0.0):
    s = np.full(shape_, fill)
    return (s, np.zeros(shape_)) if cell == "lstm" else s


# --------------------------------------------------------------------------- constructor


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("arg", ["input_size", "hidden_size", "num_layers"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_sizes(cell, arg, value):
    kwargs = {"input_size": D, "hidden_size": H, "num_layers": 1, arg: value}
    with pytest.raises(ValueError, match=all_of(word(arg), re.escape(str(value)))):
        CLASSES[cell](**kwargs)


@pytest.mark.parametrize("arg", ["input_size", "hidden_size", "num_layers"])
@pytest.mark.parametrize("value", [3.0, 2.5, "3", None])
def test_non_integer_sizes(arg, value):
    """Not in the brief's list: sizes must be integers (no silent truncation of 2.5)."""
    kwargs = {"input_size": D, "hidden_size": H, "num_layers": 1, arg: value}
    with pytest.raises((TypeError, ValueError), match=word(arg)):
        nr.GRU(**kwargs)


@pytest.mark.parametrize("name", ["sigmoid", "gelu"])
def test_unknown_nonlinearity(name):
    with pytest.raises(ValueError, match=all_of(word("nonlinearity"), name)):
        nr.RNN(D, H, nonlinearity=name)


def test_unknown_nonlinearity_lists_known_ones():
    with pytest.raises(ValueError, match=all_of(word("nonlinearity"), "tanh", "relu")):
        nr.RNN(D, H, nonlinearity="sigmoid")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128"])
def test_unsupported_model_dtype(cell, dtype):
    with pytest.raises((TypeError, ValueError), match=all_of(word("dtype"), dtype)):
        make(cell, dtype=dtype)


# --------------------------------------------------------------------------- x


@pytest.mark.parametrize("cell", CELLS)
def test_x_wrong_feature_size(cell):
    model = CLASSES[cell](3, H, seed=0)
    with pytest.raises(ValueError, match=all_of(word("x"), shape((10, 4, 2)))):
        model.forward(np.zeros((10, 4, 2)))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad_shape", [(T, D), (D,), (1, T, B, D)])
def test_x_wrong_rank(cell, bad_shape):
    with pytest.raises(ValueError, match=all_of(word("x"), r"(?i:shape|dim|rank)")):
        make(cell).forward(np.zeros(bad_shape))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_x_not_finite(cell, bad):
    x = np.zeros((T, B, D))
    x[2, 1, 0] = bad
    with pytest.raises(ValueError, match=all_of(word("x"), NONFINITE)):
        make(cell).forward(x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_finite_test_is_exact_at_the_extremes(dtype):
    """all_finite against np.isfinite: every position of a NaN or inf, in arrays whose
    sum of squares overflows (float64's test from it then falls back to the elementwise
    one), non-contiguous views, the largest and the smallest numbers."""
    from numrnn._checks import all_finite

    info = np.finfo(dtype)
    for fill in (0.0, 1.0, info.tiny, info.smallest_subnormal, -info.max, info.max):
        a = np.full((3, 5), fill, dtype)
        with np.errstate(over="ignore"):  # NumPy warns where the squares overflow
            assert all_finite(a) and all_finite(a.T[::2])
            for bad in (np.nan, np.inf, -np.inf):
                for i in range(a.size):
                    b = a.copy()
                    b.flat[i] = bad
                    assert not all_finite(b) and not all_finite(b.T)


def test_finite_test_of_a_long_array():
    """Past SERIAL_DOT numbers the float64 test sums its squares in pieces: a NaN or inf in
    the first piece, a middle one or the remainder is found, and an array whose pieces each
    overflow (but no element) passes."""
    from numrnn._checks import SERIAL_DOT, all_finite, sum_of_squares

    a = np.random.default_rng(0).standard_normal(3 * SERIAL_DOT + 6)
    assert sum_of_squares(a) == pytest.approx(float(np.sum(a * a)), rel=1e-13)
    assert all_finite(a) and all_finite(a.reshape(-1, 6).T)
    for i in (0, SERIAL_DOT + 17, a.size - 1):
        for bad in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[i] = bad
            assert not all_finite(b)
    with np.errstate(over="ignore"):
        assert all_finite(np.full(a.size, 1e300))


def test_finite_test_of_several_arrays():
    """all_finite_many, one test of a whole set in float64, against all_finite of each: a
    NaN or inf in any array (first, middle, last), float32 among them, squares that
    overflow only when summed across arrays."""
    from numrnn._checks import all_finite, all_finite_many

    rng = np.random.default_rng(0)
    for dtypes in (["float64"] * 3, ["float64", "float32", "float64"]):
        arrays = [rng.standard_normal(shape).astype(dt)
                  for shape, dt in zip([(4, 3), (5,), (2, 2, 2)], dtypes, strict=True)]  # fmt: skip
        assert all_finite_many(arrays) and all_finite_many(a for a in arrays)
        for j in range(3):
            for bad in (np.nan, np.inf, -np.inf):
                b = [a.copy() for a in arrays]
                b[j].flat[-1] = bad
                assert not all_finite_many(b)
                assert [all_finite(a) for a in b].index(False) == j
    big = [np.full(1, 1.2e154), np.full(1, 1.2e154)]  # each square finite, not their sum
    assert math.isinf(sum(float(b[0]) ** 2 for b in big))
    assert all_finite_many(big) and not all_finite_many([*big, np.full(1, np.nan)])


@pytest.mark.parametrize("name", ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"])
def test_a_nonfinite_weight_is_named(name):
    """The forward pass tests all weights at once and, when that fails, names the one."""
    model = nr.GRU(3, 4, seed=0)
    model.params[name].flat[-1] = np.inf
    with pytest.raises(ValueError, match=rf"params\['{name}'\] contains NaN or inf"):
        model.forward(np.zeros((5, 2, 3)))


def test_finite_test_leaves_blas_threads_asleep():
    """A check of a long float64 array (an ensemble's weights, its outputs' gradient) makes
    only short dots, which OpenBLAS runs on the calling thread: a long one would wake its
    threads, whose spinning slowed the kernels after the check 1.7x (64 LSTMs)."""
    from helpers import blas_wakes

    from numrnn._checks import check_array

    a = np.ones((64, 100, 16, 32))
    assert not blas_wakes(lambda: check_array("d_output", a, a.shape, np.float64))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, bool])
def test_x_integer_dtype(cell, dtype):
    with pytest.raises((TypeError, ValueError), match=all_of(word("x"), "dtype")):
        make(cell).forward(np.zeros((T, B, D), dtype=dtype))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    ("model_dtype", "x_dtype"), [("float64", np.float32), ("float32", np.float64)]
)
def test_x_float_dtype_mismatching_model(cell, model_dtype, x_dtype):
    """No silent mixing of dtypes (DESIGN.md): x must have the model's dtype."""
    with pytest.raises((TypeError, ValueError), match=all_of(word("x"), "dtype")):
        make(cell, dtype=model_dtype).forward(np.zeros((T, B, D), dtype=x_dtype))


@pytest.mark.parametrize("bad_shape", [(0, B, D), (T, 0, D)])
def test_x_empty(bad_shape):
    """Not in the brief's list: T = 0 or B = 0 is an error (lengths must lie in 1..T)."""
    with pytest.raises(ValueError, match=all_of(word("x"), shape(bad_shape))):
        nr.LSTM(D, H, seed=0).forward(np.zeros(bad_shape))


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad_shape", [(2, B, H), (1, B + 1, H), (1, B, H + 1), (B, H)])
def test_state_wrong_shape(cell, bad_shape):
    with pytest.raises(ValueError, match=all_of(word("state"), shape(bad_shape))):
        make(cell).forward(np.zeros((T, B, D)), state=state_like(cell, bad_shape))


def test_state_wrong_shape_bidirectional_multilayer():
    model = nr.GRU(D, H, num_layers=2, bidirectional=True, seed=0)
    with pytest.raises(ValueError, match=all_of(word("state"), shape((2, B, H)))):
        model.forward(np.zeros((T, B, D)), state=np.zeros((2, B, H)))


def test_lstm_state_wrong_c_shape():
    state = (np.zeros((1, B, H)), np.zeros((1, B, H + 1)))
    with pytest.raises(ValueError, match=all_of(word("state"), shape((1, B, H + 1)))):
        nr.LSTM(D, H, seed=0).forward(np.zeros((T, B, D)), state=state)


@pytest.mark.parametrize(
    "bad", [np.zeros((1, B, H)), (np.zeros((1, B, H)),), (np.zeros((1, B, H)),) * 3]
)
def test_lstm_state_must_be_pair(bad):
    with pytest.raises((TypeError, ValueError), match=word("state")):
        nr.LSTM(D, H, seed=0).forward(np.zeros((T, B, D)), state=bad)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_state_not_finite(cell, bad):
    with pytest.raises(ValueError, match=all_of(word("state"), NONFINITE)):
        make(cell).forward(np.zeros((T, B, D)), state=state_like(cell, fill=bad))


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_lstm_cell_state_not_finite(bad):
    c = np.zeros((1, B, H))
    c[0, 1, 2] = bad
    with pytest.raises(ValueError, match=all_of(word("state"), NONFINITE)):
        nr.LSTM(D, H, seed=0).forward(np.zeros((T, B, D)), state=(np.zeros((1, B, H)), c))


def _cast_state(state, dtype):
    if isinstance(state, tuple):
        return tuple(s.astype(dtype) for s in state)
    return state.astype(dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_state_dtype_mismatching_model(cell):
    """float32 state into a float64 model: no silent mixing of dtypes."""
    with pytest.raises((TypeError, ValueError), match=all_of(word("state"), "dtype")):
        make(cell).forward(np.zeros((T, B, D)), state=_cast_state(state_like(cell), np.float32))


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad", [[0, 3], [3, T + 1], [-1, 2]])
def test_lengths_out_of_range(cell, bad):
    with pytest.raises(ValueError, match=all_of(word("lengths"), r"\d")):
        make(cell).forward(np.zeros((T, B, D)), lengths=np.array(bad))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad", [np.array([2, 3, 4]), np.array([[2], [3]]), np.array(3)])
def test_lengths_wrong_shape(cell, bad):
    with pytest.raises(ValueError, match=all_of(word("lengths"), shape(bad.shape))):
        make(cell).forward(np.zeros((T, B, D)), lengths=bad)


def test_lengths_not_integer():
    with pytest.raises((TypeError, ValueError), match=word("lengths")):
        nr.GRU(D, H, seed=0).forward(np.zeros((T, B, D)), lengths=np.array([2.5, 3.0]))


# --------------------------------------------------------------------------- backward


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bad_shape", [(T, B, H + 1), (T - 1, B, H), (T, B, 2 * H), (T, B)])
def test_d_output_wrong_shape(cell, bad_shape):
    model = make(cell)
    res = model.forward(np.zeros((T, B, D)))
    with pytest.raises(ValueError, match=all_of(word("d_output"), shape(bad_shape))):
        model.backward(res, np.ones(bad_shape))


def test_d_output_wrong_shape_bidirectional():
    model = nr.RNN(D, H, bidirectional=True, seed=0)
    res = model.forward(np.zeros((T, B, D)))
    with pytest.raises(ValueError, match=all_of(word("d_output"), shape((T, B, H)))):
        model.backward(res, np.ones((T, B, H)))


@pytest.mark.parametrize("cell", CELLS)
def test_d_state_wrong_shape(cell):
    """Not in the brief's list, but the same contract as ``state``."""
    model = make(cell)
    res = model.forward(np.zeros((T, B, D)))
    with pytest.raises(ValueError, match=all_of(word("d_state"), shape((1, B + 1, H)))):
        model.backward(res, np.ones((T, B, H)), d_state=state_like(cell, (1, B + 1, H)))


# --------------------------------------------------------------------------- from_torch


def test_from_torch_rejects_batch_first(torch):
    with pytest.raises(ValueError, match=word("batch_first")):
        nr.from_torch(torch.nn.LSTM(D, H, batch_first=True))


def test_from_torch_rejects_proj_size(torch):
    with pytest.raises(ValueError, match=word("proj_size")):
        nr.from_torch(torch.nn.LSTM(D, H, proj_size=2))


def test_from_torch_rejects_other_modules(torch):
    with pytest.raises((TypeError, ValueError), match="Linear"):
        nr.from_torch(torch.nn.Linear(D, H))


# -- siblings found by the reliability pass: each names its argument -------------------------


def test_bad_seed_and_params_are_named():
    with pytest.raises(ValueError, match="seed must be a non-negative int seed, got -1"):
        nr.RNN(3, 4, seed=-1)
    with pytest.raises(TypeError, match="seed must be a numpy Generator"):
        nr.RNN(3, 4, seed=1.5)
    model = nr.RNN(3, 4)
    model.params = None
    with pytest.raises(TypeError, match=r"params must be a dict of arrays with keys \['weight"):
        model.forward(np.zeros((2, 1, 3)))


def test_train_names_a_model_or_task_of_the_wrong_kind():
    from numrnn.tasks import Adding

    model = nr.RNN(2, 4, output_size=1, readout="last")
    with pytest.raises(TypeError, match="task must be a numrnn.tasks.Task, got NoneType"):
        nr.train(model, None, 1, 2, ("sgd", {"lr": 0.1}), progress=False)
    with pytest.raises(
        TypeError, match="model must be a numrnn RNN, LSTM, GRU or Ensemble, got str"
    ):
        nr.train("rnn", Adding(5), 1, 2, ("sgd", {"lr": 0.1}), progress=False)


def test_diagnostics_refuse_what_they_cannot_compute():
    model = nr.RNN(3, 4, seed=0)
    x = np.zeros((5, 3, 3))
    with pytest.warns(RuntimeWarning, match=r"sequences \[1\] have no more than warmup=3 "):
        ds = nr.diagnostics.lyapunov_spectrum(model, x, lengths=[5, 2, 5], warmup=3)
    lam = ds.lyapunov.values[0, 0]
    assert np.isnan(lam[1]).all() and np.isfinite(lam[[0, 2]]).all()
    with pytest.raises(ValueError, match="n_sv must be at most the state size 4, got 10"):
        nr.diagnostics.jacobian_norms(model, x, n_sv=10)
    model.params["weight_hh_l0"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"model.params\['weight_hh_l0'\] contains NaN or inf"):
        nr.diagnostics.weight_powers(model, 3)


def test_save_refuses_an_unknown_mode(tmp_path):
    import xarray as xr

    with pytest.raises(ValueError, match="mode must be one of 'w', 'w-', got 'a'"):
        nr.save(xr.Dataset(), str(tmp_path / "a.nc"), mode="a")
    assert not (tmp_path / "a.nc").exists()


def test_read_only_arrays_use_the_kernels_compiled_for_writeable_ones():
    # Numba types read-only arrays (a memory map, np.broadcast_to) apart: passed through,
    # they compiled a second variant of every kernel, which numrnn warmup had not cached
    from numrnn.kernels import lstm

    def read_only(a):
        a = np.array(a)
        a.flags.writeable = False
        return a

    model = nr.LSTM(3, 4, seed=0)
    rng = np.random.default_rng(0)
    x, h0, c0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((1, 2, 4)), np.zeros((1, 2, 4))
    res = model.forward(x, (h0, c0))
    want = model.backward(res, np.ones_like(res.output))
    kernels = (lstm._forward_items, lstm._backward_items)
    compiled = [len(k.signatures) for k in kernels]

    frozen = nr.LSTM(3, 4, seed=0)
    frozen.params = {k: read_only(v) for k, v in frozen.params.items()}
    res2 = frozen.forward(read_only(x), (read_only(h0), read_only(c0)))
    got = frozen.backward(res2, read_only(np.ones_like(res2.output)))
    assert [len(k.signatures) for k in kernels] == compiled
    np.testing.assert_array_equal(res2.output, res.output)
    for k in want.params:
        np.testing.assert_array_equal(got.params[k], want.params[k])
