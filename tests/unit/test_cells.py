"""numrnn.nn.cells: the CellSpec registry is the one place that says what a cell is."""

import numpy as np
import pytest

import numrnn as nr
from numrnn.kernels.jacobian import KINDS
from numrnn.nn.cells import CELLS, MODELS, kernels, variants
from numrnn.nn.models import from_config


def test_specs_state_the_facts():
    assert [s.name for s in CELLS.values()] == ["rnn", "lstm", "gru"]
    assert CELLS["lstm"].gates == ("i", "f", "g", "o") and CELLS["gru"].gates == ("r", "z", "n")
    assert [CELLS[n].n_gates for n in CELLS] == [1, 4, 3]
    assert [CELLS[n].state_size(8) for n in CELLS] == [8, 16, 8]
    assert {n: s.torch_class for n, s in CELLS.items()} == {"rnn": "RNN", "lstm": "LSTM",
                                                              "gru": "GRU"}  # fmt: skip
    assert MODELS == {"rnn": nr.RNN, "lstm": nr.LSTM, "gru": nr.GRU}


def test_variants_name_every_config_cell():
    assert list(variants()) == ["rnn_tanh", "rnn_relu", "lstm", "gru"]
    for name, (spec, options) in variants().items():
        model = from_config(name, input_size=2, hidden_size=3, seed=0)
        assert type(model) is MODELS[spec.name]
        assert model.cell_name == name == model.config["cell"]
        assert model.cell.spec is spec and model.cell_type == spec.name
        for k, v in options.items():
            assert model.cell.options[k] == v


def test_jacobian_kind_of_each_form():
    kinds = {}
    for model in (nr.RNN(2, 3), nr.RNN(2, 3, nonlinearity="relu"), nr.LSTM(2, 3), nr.GRU(2, 3),
                  nr.GRU(2, 3, reset_after=False)):  # fmt: skip
        res = model.forward(np.zeros((2, 1, 2)))
        kinds[repr(model.cell.options)] = model.cell.jacobian_args(res.tape.layer(0, 0).cache)[0]
    assert sorted(kinds.values()) == sorted(KINDS.values())


def test_options_are_checked():
    with pytest.raises(TypeError, match="cell 'lstm' takes no option"):
        CELLS["lstm"].make(reset_after=True)
    with pytest.raises(ValueError, match="nonlinearity must be one of 'tanh', 'relu'"):
        CELLS["rnn"].make(nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="reset_after must be a bool"):
        CELLS["gru"].make(reset_after="yes")
    with pytest.raises(ValueError, match="cell must be one of rnn_tanh, rnn_relu, lstm, gru"):
        from_config("rnn_sigmoid", input_size=1, hidden_size=1)


def test_backends():
    cpu = kernels("cpu")
    from numrnn.kernels import lstm

    assert cpu.lstm_forward is lstm.lstm_forward
    with pytest.raises(AttributeError):
        cpu.forward  # noqa: B018 - not a kernel name
    with pytest.raises(ValueError, match="backend must be one of 'cpu', 'cuda'"):
        kernels("tpu")
