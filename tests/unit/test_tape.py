"""numrnn.nn.tape: what forward returns and saves; backward takes only its own model's."""

import numpy as np
import pytest

import numrnn as nr
from numrnn.nn.tape import LayerTape, Tape


def test_tape_is_typed_and_indexed_by_layer_and_direction(rng):
    model = nr.GRU(3, 4, num_layers=2, bidirectional=True, seed=0)
    res = model.forward(rng.normal(size=(6, 2, 3)), lengths=np.array([6, 4]))
    tp = res.tape
    assert isinstance(tp, Tape) and tp.model is model
    assert (tp.K, tp.T, tp.B) == (1, 6, 2)
    assert len(tp.layers) == 4 and all(isinstance(e, LayerTape) for e in tp.layers)
    assert tp.layer(1, 1) is tp.layers[3]
    assert tp.layer(1, 0).xin.shape == (1, 6, 2, 8)  # the second layer reads both directions
    assert tp.packed.lengths.tolist() == [6, 4]
    with pytest.raises(AttributeError):
        tp.K = 2  # frozen


def test_reprs_are_short_and_show_shapes(rng):
    model = nr.LSTM(3, 64, seed=0)
    res = model.forward(rng.normal(size=(50, 8, 3)))
    g = model.backward(res, np.ones_like(res.output))
    assert repr(res) == "Forward(output=array(50, 8, 64), state=(array(1, 8, 64), array(1, 8, 64)))"
    assert len(repr(g)) < 400 and "weight_hh_l0: array(256, 64)" in repr(g)
    assert "input=array(50, 8, 3)" in repr(g)


def test_backward_refuses_a_result_of_another_model(rng):
    x = rng.normal(size=(5, 2, 3))
    a, b = nr.LSTM(3, 4, seed=0), nr.LSTM(3, 4, seed=1)
    small, big = nr.LSTM(3, 2, seed=0), nr.LSTM(3, 256, seed=0)
    res = a.forward(x)
    with pytest.raises(ValueError, match="res must come from this model's forward"):
        b.backward(res, np.ones_like(res.output))  # same shape, other weights
    res = big.forward(x)
    with pytest.raises(ValueError, match="res must come from this model's forward"):
        small.backward(res, np.ones((5, 2, 2)))  # was a segfault: kernels of another shape
    with pytest.raises(TypeError, match="res must be the Forward result"):
        a.backward(nr.Forward(output=np.ones((5, 2, 4)), state=None), np.ones((5, 2, 4)))
