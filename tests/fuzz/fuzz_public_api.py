"""Property-based fuzzing of numrnn's public entry points (run by tests/integration/test_fuzz.py
in a subprocess, so that a crash of the interpreter fails that test instead of the run).

Each property throws random shapes, dtypes, lengths, NaN/inf placements and foreign results
at an entry point and accepts only a correct result or a ValueError/TypeError whose message
names one of the entry point's arguments.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numrnn as nr

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))  # fmt: skip
CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def names_an_argument(err, names):
    msg = str(err)
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {msg}"
    assert any(n in msg for n in names), f"message names none of {names}: {msg}"


@st.composite
def models(draw):
    cell = draw(st.sampled_from(CELLS))
    return nr.nn.from_config(
        cell,
        input_size=draw(st.integers(1, 4)),
        hidden_size=draw(st.integers(1, 5)),
        num_layers=draw(st.integers(1, 2)),
        bidirectional=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 3)),
    )


@st.composite
def arrays(draw, shape):
    """An array near ``shape``: sometimes of another rank, size or dtype, with NaN/inf."""
    shape = list(shape)
    if draw(st.integers(0, 5)) == 0 and shape:
        shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(0, 6))
    if draw(st.integers(0, 7)) == 0:
        shape = shape[:-1] if draw(st.booleans()) else shape + [2]
    dtype = draw(st.sampled_from(["float64", "float32", "float64", "int64", "complex128"]))
    a = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(shape).astype(dtype)
    if a.size and a.dtype.kind == "f" and draw(st.integers(0, 5)) == 0:
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


@st.composite
def lengths_for(draw, B, T):
    kind = draw(st.sampled_from(["none", "good", "good", "range", "shape", "float"]))
    if kind == "none":
        return None
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    if kind == "good":
        return rng.integers(1, T + 1, B)
    if kind == "range":
        return rng.integers(-1, T + 3, B)
    if kind == "shape":
        return rng.integers(1, T + 1, B + 1)
    return rng.integers(1, T + 1, B).astype(float)


@st.composite
def batches(draw):
    """(model, x, lengths): a model and a batch for it, both possibly wrong."""
    model = draw(models())
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    return model, draw(arrays((T, B, model.input_size))), draw(lengths_for(B, T))


def check_forward(model, res, x, lengths):
    T, B = x.shape[:2]
    H, dirs = model.hidden_size, model.num_directions
    assert res.output.shape == (T, B, dirs * H) and res.output.dtype == model.dtype
    assert np.isfinite(res.output).all()
    if lengths is not None:
        for b, n in enumerate(lengths):
            assert not res.output[n:, b].any()  # zero output past the end


@SETTINGS
@given(st.data())
def test_forward_and_backward(data):
    model, x, lengths = data.draw(batches())
    try:
        res = model.forward(x, lengths=lengths)
    except Exception as err:
        names_an_argument(err, ["x", "lengths"])
        return
    check_forward(model, res, x, lengths)
    d_out = data.draw(arrays(res.output.shape))
    try:
        g = model.backward(res, d_out)
    except Exception as err:
        names_an_argument(err, ["d_output"])
        return
    for k, v in model.params.items():
        assert g.params[k].shape == v.shape and np.isfinite(g.params[k]).all()
    assert g.input.shape == x.shape


@SETTINGS
@given(st.data())
def test_backward_of_a_foreign_result(data):
    a, b = data.draw(models()), data.draw(models())
    T, B = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    x = np.ones((T, B, a.input_size), a.dtype)
    res = a.forward(x)
    with pytest.raises((ValueError, TypeError)) as err:
        b.backward(res, np.ones_like(res.output))
    names_an_argument(err.value, ["res"])


@SETTINGS
@given(st.data())
def test_diagnostics(data):
    model, x, lengths = data.draw(batches())
    which = data.draw(st.sampled_from(["jacobian", "lyapunov"]))
    try:
        if which == "jacobian":
            n_sv = data.draw(st.sampled_from([0, 1, 2, -1, 99, 1.5]))
            ds = nr.diagnostics.jacobian_norms(model, x, lengths=lengths, n_sv=n_sv)
            values = ds.jacobian_norm.values
        else:
            n = data.draw(st.sampled_from([None, 1, 0, 99]))
            warmup = data.draw(st.sampled_from([0, 1, -1, 99]))
            with warnings.catch_warnings():  # short sequences: NaN exponents, said by a warning
                warnings.simplefilter("ignore", RuntimeWarning)
                ds = nr.diagnostics.lyapunov_spectrum(model, x, lengths=lengths, n_exponents=n,
                                                      warmup=warmup)  # fmt: skip
            values = ds.lyapunov.values
    except Exception as err:
        names_an_argument(err, ["x", "lengths", "n_sv", "n_exponents", "warmup"])
        return
    assert values.shape[:2] == (model.num_layers, model.num_directions)
    assert not np.isinf(values).any()  # NaN past a sequence's end (or too short), never inf


@SETTINGS
@given(st.data())
def test_losses(data):
    pred = data.draw(arrays((data.draw(st.integers(1, 4)), 3)))
    which = data.draw(st.sampled_from(["mse", "xent"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 9)))
    try:
        if which == "mse":
            target = data.draw(arrays(pred.shape))
            value, d = nr.losses.mse(pred, target)
        else:
            target = rng.integers(-1, 4, pred.shape[:-1]) if pred.ndim else rng.integers(0, 3, ())
            value, d = nr.losses.xent(pred, target)
    except Exception as err:
        names_an_argument(err, ["pred", "target", "logits"])
        return
    assert d.shape == pred.shape


@SETTINGS
@given(st.data())
def test_train_settings(data):
    model = nr.RNN(2, 3, output_size=1, readout="last", seed=0)
    task = nr.tasks.Adding(4)
    kwargs = {
        "steps": data.draw(st.sampled_from([2, 0, -1, 1.5, True])),
        "batch_size": data.draw(st.sampled_from([2, 0, "2"])),
        "optimizer": data.draw(st.sampled_from([("sgd", {"lr": 0.1}), ("sgd", {"lr": -1}),
                                                ("adam", {"betas": 0.9}), "nope", 3])),
        "clip": data.draw(st.sampled_from([None, 1.0, 0, np.inf, "1"])),
        "seed": data.draw(st.sampled_from([0, -1, None, 2.5])),
        "eval_every": data.draw(st.sampled_from([None, 1, 0])),
    }  # fmt: skip
    try:
        ds = nr.train(model, task, progress=False, **kwargs)
    except Exception as err:
        names_an_argument(err, [*kwargs, "lr", "betas"])
        return
    assert ds.attrs["status"] in ("ok", "diverged")
