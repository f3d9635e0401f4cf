"""Parameter names, shapes and dtypes, and the conversion to and from torch.nn.RNN / LSTM /
GRU (``numrnn.from_torch``, ``to_torch``) against PyTorch.

The models' forward and backward passes are checked in test_models.py (same sizes here);
``from_torch``'s argument checks are in test_checks.py with the other argument checks.
"""

import subprocess
import sys

import numpy as np
import pytest
from helpers import model_class
from naive import CELL_SPECS, param_shapes, rel_err

import numrnn as nr

TOL = {"float64": 1e-9, "float32": 2e-4}

# Sizes for the torch comparisons (those of test_models.py).
T, B, D, H = 6, 3, 4, 5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_param_names_shapes_and_dtype(cell, num_layers, bidirectional, dtype):
    model = model_class(cell)(
        D, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype, seed=1
    )
    expected = param_shapes(cell, D, H, num_layers, bidirectional)
    assert {name: p.shape for name, p in model.params.items()} == expected
    for name, p in model.params.items():
        assert isinstance(p, np.ndarray)
        assert p.dtype == np.dtype(dtype), name
        assert np.all(np.isfinite(p)), name
        assert np.any(p != 0) or name.startswith("bias"), f"{name} left at zero"


def test_param_shapes_is_a_fresh_dict_each_call():
    # computed once per model (it never changes), handed out as a copy a caller may change
    model = model_class("lstm")(D, H, seed=0)
    shapes = model.param_shapes()
    shapes["extra"] = (1,)
    del shapes["weight_hh_l0"]
    assert model.param_shapes() == param_shapes("lstm", D, H, 1, False)


# --------------------------------------------------------------------------- torch interop


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", list(CELL_SPECS))
def test_from_torch(torch, rng, spec, dtype):
    cell, nonlinearity = CELL_SPECS[spec]
    tdtype = getattr(torch, dtype)
    kwargs = dict(num_layers=2, bidirectional=True, dtype=tdtype)
    if cell == "rnn":
        module = torch.nn.RNN(D, H, nonlinearity=nonlinearity, **kwargs)
    else:
        module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](D, H, **kwargs)
    model = nr.from_torch(module)
    assert isinstance(model, model_class(cell))
    named = dict(module.named_parameters())
    assert set(model.params) == set(named)
    for name, p in named.items():
        assert model.params[name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(model.params[name], p.detach().numpy())
    # The copy is independent of the module.
    model.params["bias_ih_l0"][...] += 1.0
    assert not np.array_equal(model.params["bias_ih_l0"], named["bias_ih_l0"].detach().numpy())
    model.params["bias_ih_l0"][...] -= 1.0
    # Same function (catches a lost nonlinearity or direction).
    x = rng.normal(size=(T, B, D)).astype(dtype)
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    out = model.forward(x).output
    assert out.dtype == np.dtype(dtype)
    assert rel_err(out, expected) < TOL[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", list(CELL_SPECS))
def test_to_torch_and_round_trip(torch, rng, spec, dtype):
    cell, nonlinearity = CELL_SPECS[spec]
    kwargs = dict(num_layers=2, bidirectional=True, dtype=dtype, seed=5)
    if cell == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    model = model_class(cell)(D, H, **kwargs)
    module = model.to_torch()
    expected_type = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    assert type(module) is expected_type
    assert module.num_layers == 2 and module.bidirectional and not module.batch_first
    assert module.input_size == D and module.hidden_size == H
    if cell == "rnn":
        assert module.nonlinearity == nonlinearity
    named = dict(module.named_parameters())
    assert set(named) == set(model.params)
    for name, p in named.items():
        assert p.dtype == getattr(torch, dtype)
        np.testing.assert_array_equal(p.detach().numpy(), model.params[name])
    x = rng.normal(size=(T, B, D)).astype(dtype)
    with torch.no_grad():
        got = module(torch.from_numpy(x))[0].numpy()
    assert rel_err(got, model.forward(x).output) < TOL[dtype]
    back = nr.from_torch(module)
    for name in model.params:
        np.testing.assert_array_equal(back.params[name], model.params[name])
        assert back.params[name].dtype == np.dtype(dtype)


def test_from_torch_gru_is_reset_after(torch, rng):
    module = torch.nn.GRU(D, H, dtype=torch.float64)
    model = nr.from_torch(module)
    x = rng.normal(size=(T, B, D))
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    assert rel_err(model.forward(x).output, expected) < 1e-12


def test_gru_reset_before_cannot_go_to_torch(torch):
    model = nr.GRU(D, H, reset_after=False, seed=0)
    with pytest.raises((ValueError, NotImplementedError, TypeError), match="reset_after"):
        model.to_torch()


def test_import_does_not_import_torch():
    code = "import numrnn, sys; assert 'torch' not in sys.modules, 'numrnn imported torch'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
