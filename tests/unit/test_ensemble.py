"""An Ensemble of K networks equals its K members run one by one (the members are checked
against PyTorch and finite differences in test_models.py)."""

import numpy as np
import pytest

import numrnn as nr
from numrnn.kernels._parallel import THREADS, loop_blocks

CASES = [
    (nr.LSTM, {"forget_bias": 1.0}),
    (nr.GRU, {"reset_after": False}),
    (nr.GRU, {}),
    (nr.RNN, {"nonlinearity": "relu"}),
]


def members(cls, kw, K=3, **more):
    return [cls(3, 4, num_layers=2, bidirectional=True, seed=s, **kw, **more) for s in range(K)]


@pytest.mark.parametrize("cls,kw", CASES)
@pytest.mark.parametrize("per_member_x", [False, True])
def test_ensemble_equals_members(cls, kw, per_member_x, rng):
    ms = members(cls, kw)
    ens = nr.ensemble(ms)
    K, T, B = 3, 5, 2
    x = rng.standard_normal((K, T, B, 3) if per_member_x else (T, B, 3))
    lengths = np.array([3, 5])
    res = ens.forward(x, lengths=lengths)
    assert res.output.shape == (K, T, B, 8)
    dy = rng.standard_normal(res.output.shape)
    g = ens.backward(res, dy, norms=True)
    for k, m in enumerate(ms):
        xk = x[k] if per_member_x else x
        rk = m.forward(xk, lengths=lengths)
        gk = m.backward(rk, dy[k], norms=True)
        np.testing.assert_allclose(res.output[k], rk.output, rtol=1e-13, atol=1e-15)
        for name in gk.params:
            np.testing.assert_allclose(g.params[name][k], gk.params[name], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g.input[k], gk.input, rtol=1e-12, atol=1e-14)
        for name in gk.norms:
            np.testing.assert_allclose(g.norms[name][k], gk.norms[name], rtol=1e-12)


def test_ensemble_with_head_and_state(rng):
    ms = [nr.LSTM(2, 3, seed=s, output_size=2, readout="last") for s in range(2)]
    ens = nr.ensemble(ms)
    x = rng.standard_normal((4, 3, 2))
    h0 = rng.standard_normal((2, 1, 3, 3))
    c0 = rng.standard_normal((2, 1, 3, 3))
    res = ens.forward(x, state=(h0, c0))
    assert res.output.shape == (2, 3, 2)
    dy = rng.standard_normal(res.output.shape)
    g = ens.backward(res, dy)
    for k, m in enumerate(ms):
        rk = m.forward(x, state=(h0[k], c0[k]))
        gk = m.backward(rk, dy[k])
        np.testing.assert_allclose(res.output[k], rk.output, rtol=1e-13)
        np.testing.assert_allclose(g.state[1][k], gk.state[1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g.params["weight_out"][k], gk.params["weight_out"], rtol=1e-12)


def test_ensemble_diagnostics_have_a_member_dimension(rng):
    ms = members(nr.GRU, {}, K=2)
    ens = nr.ensemble(ms)
    x = rng.standard_normal((6, 2, 3))
    ds = nr.diagnostics.jacobian_norms(ens, x)
    assert ds.jacobian_norm.dims == ("member", "layer", "direction", "batch", "time")
    for k, m in enumerate(ms):
        one = nr.diagnostics.jacobian_norms(m, x)
        np.testing.assert_allclose(ds.jacobian_norm[k], one.jacobian_norm, rtol=1e-12)
    lam = nr.diagnostics.lyapunov_spectrum(ens, x, n_exponents=2)
    assert lam.lyapunov.dims == ("member", "layer", "direction", "batch", "exponent")
    wp = nr.diagnostics.weight_powers(ens, 3)
    assert wp.power_norm.dims == ("member", "layer", "direction", "gate", "k")


def test_unstack_round_trip():
    ms = members(nr.LSTM, {})
    ens = nr.ensemble(ms)
    for m, u in zip(ms, ens.unstack(), strict=True):
        for k in m.params:
            np.testing.assert_array_equal(m.params[k], u.params[k])


def test_ensemble_validation(rng):
    with pytest.raises(ValueError, match="models must share"):
        nr.ensemble([nr.LSTM(3, 4), nr.LSTM(3, 5)])
    with pytest.raises(ValueError, match="models must share"):
        nr.ensemble([nr.LSTM(3, 4), nr.GRU(3, 4)])
    with pytest.raises(TypeError, match="models"):
        nr.ensemble([])
    ens = nr.ensemble([nr.RNN(3, 4), nr.RNN(3, 4)])
    with pytest.raises(ValueError, match="x"):
        ens.forward(rng.standard_normal((3, 5, 2, 3)))  # 3 members' inputs for 2 members
    with pytest.raises(ValueError, match="state"):
        ens.forward(rng.standard_normal((5, 2, 3)), state=np.zeros((1, 2, 4)))
    with pytest.raises(TypeError, match="torch"):
        ens.to_torch()


@pytest.mark.parametrize("H", [16, 64], ids=["one-block", "rows-split"])
@pytest.mark.parametrize("cls,kw", CASES)
def test_members_equal_single_models_bit_for_bit(cls, kw, H, rng):
    """Each member's rows are split as a single model's are, so even the last bits agree
    (what lets sweeps batch points into ensembles without changing their results). At
    H = 64 the 7 sequences are split between threads (_parallel.loop_blocks; unless
    Numba has one thread), at 16 not."""
    G = {nr.RNN: 1, nr.LSTM: 4, nr.GRU: 3}[cls]
    assert (loop_blocks(1, 7, G, H, 80)[1] > 1) == (H == 64 and THREADS > 1)
    ms = [cls(3, H, seed=s, output_size=2, **kw) for s in range(3)]
    ens = nr.ensemble(ms)
    x = rng.standard_normal((80, 7, 3))
    res = ens.forward(x)
    dy = rng.standard_normal(res.output.shape)
    g = ens.backward(res, dy)
    for k, m in enumerate(ms):
        rk = m.forward(x)
        gk = m.backward(rk, dy[k])
        np.testing.assert_array_equal(res.output[k], rk.output)
        for name in gk.params:
            np.testing.assert_array_equal(g.params[name][k], gk.params[name], err_msg=name)
        # the input gradient is made inside the time loops or after them as one product
        # by the split of a member's rows, whatever K (linalg.loop_input_weights): the two
        # sum differently where BLAS makes the product (OpenBLAS's SkylakeX kernels)
        np.testing.assert_array_equal(g.input[k], gk.input)
