"""Checks of the reference itself (tests/naive.py) against PyTorch and by hand.

If these fail, nothing judged against naive.py can be trusted.
"""

import itertools

import numpy as np
import pytest
from naive import (
    CELL_SPECS,
    finite_difference_grads,
    naive_forward,
    naive_loss,
    param_shapes,
    random_params,
    random_state,
    rel_err,
    sigmoid,
)

T, B, D, H = 5, 3, 4, 3
LENGTHS = np.array([3, 5, 1])  # unsorted, contains T and 1


def _setup(rng, cell, num_layers, bidirectional, with_state):
    dirs = 2 if bidirectional else 1
    params = random_params(rng, cell, D, H, num_layers, bidirectional)
    x = rng.normal(size=(T, B, D))
    state = random_state(rng, cell, num_layers, dirs, B, H) if with_state else None
    return params, x, state


@pytest.mark.parametrize(
    ("spec", "num_layers", "bidirectional", "use_lengths", "with_state"),
    list(itertools.product(CELL_SPECS, [1, 2, 3], [False, True], [False, True], [False, True])),
)
def test_forward_matches_torch(
    rng, torch_reference, spec, num_layers, bidirectional, use_lengths, with_state
):
    cell, nonlinearity = CELL_SPECS[spec]
    params, x, state = _setup(rng, cell, num_layers, bidirectional, with_state)
    lengths = LENGTHS if use_lengths else None
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, nonlinearity=nonlinearity)
    out, final = naive_forward(cell, params, x, state, lengths, **kw)
    ref = torch_reference(cell, params, x, state, lengths, **kw)
    dirs = 2 if bidirectional else 1
    assert out.shape == (T, B, dirs * H)
    assert rel_err(out, ref["output"]) < 1e-12
    if cell == "lstm":
        assert isinstance(final, tuple) and len(final) == 2
        for mine, theirs in zip(final, ref["state"], strict=True):
            assert mine.shape == (num_layers * dirs, B, H)
            assert rel_err(mine, theirs) < 1e-12
    else:
        assert final.shape == (num_layers * dirs, B, H)
        assert rel_err(final, ref["state"]) < 1e-12
    if use_lengths:
        for b, L in enumerate(LENGTHS):
            assert np.all(out[L:, b] == 0.0)


def test_param_shapes_match_torch(torch_module):
    for cell, layers, bidir in itertools.product(["rnn", "lstm", "gru"], [1, 2], [False, True]):
        shapes = param_shapes(cell, D, H, layers, bidir)
        module = torch_module(
            cell,
            random_params(np.random.default_rng(0), cell, D, H, layers, bidir),
            D,
            H,
            num_layers=layers,
            bidirectional=bidir,
        )
        assert {n: tuple(p.shape) for n, p in module.named_parameters()} == shapes


@pytest.mark.parametrize(
    ("spec", "num_layers", "bidirectional", "use_lengths"),
    [
        ("rnn_tanh", 2, True, True),
        ("rnn_relu", 1, False, False),
        ("lstm", 2, True, True),
        ("gru", 1, True, True),
        ("gru", 2, False, False),
    ],
)
def test_finite_differences_match_torch_autograd(
    rng, torch_reference, spec, num_layers, bidirectional, use_lengths
):
    """The finite-difference helper, applied to naive_loss, reproduces torch's autograd."""
    cell, nonlinearity = CELL_SPECS[spec]
    t, b = 4, 2
    dirs = 2 if bidirectional else 1
    params = random_params(rng, cell, 3, 2, num_layers, bidirectional)
    x = rng.normal(size=(t, b, 3))
    state = random_state(rng, cell, num_layers, dirs, b, 2)
    d_output = rng.normal(size=(t, b, dirs * 2))
    d_state = random_state(rng, cell, num_layers, dirs, b, 2, scale=1.0)
    lengths = np.array([2, 4]) if use_lengths else None
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, nonlinearity=nonlinearity)

    def f(a):
        p = {n: a[n] for n in params}
        s = (a["h0"], a["c0"]) if cell == "lstm" else a["h0"]
        return naive_loss(cell, p, a["x"], s, lengths, d_output, d_state, **kw)

    point = dict(params, x=x, h0=state[0] if cell == "lstm" else state)
    if cell == "lstm":
        point["c0"] = state[1]
    fd = finite_difference_grads(f, point, eps=1e-6)
    ref = torch_reference(cell, params, x, state, lengths, d_output, d_state, **kw)
    for name in params:
        assert rel_err(fd[name], ref["grads"][name]) < 1e-7, name
    assert rel_err(fd["x"], ref["d_input"]) < 1e-7
    if cell == "lstm":
        assert rel_err(fd["h0"], ref["d_state0"][0]) < 1e-7
        assert rel_err(fd["c0"], ref["d_state0"][1]) < 1e-7
    else:
        assert rel_err(fd["h0"], ref["d_state0"]) < 1e-7


def test_finite_differences_of_a_known_function():
    a = np.array([[0.3, -1.2], [2.0, 0.5]])
    v = np.array([1.5, -0.7, 0.1])
    fd = finite_difference_grads(
        lambda d: np.sum(np.sin(d["a"])) + np.sum(d["v"] ** 3), {"a": a, "v": v}
    )
    assert rel_err(fd["a"], np.cos(a)) < 1e-9
    assert rel_err(fd["v"], 3 * v**2) < 1e-9
    assert a[0, 0] == 0.3  # inputs untouched


def test_gru_reset_before_by_hand(rng):
    """One step of Cho et al.'s GRU, written out with the gates split by hand."""
    params = random_params(rng, "gru", D, H)
    x = rng.normal(size=(1, B, D))
    h0 = rng.normal(size=(1, B, H))
    out, h1 = naive_forward("gru", params, x, h0, reset_after=False)
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b_ih, b_hh = params["bias_ih_l0"], params["bias_hh_l0"]
    for b in range(B):
        xb, hb = x[0, b], h0[0, b]
        r = sigmoid(w_ih[:H] @ xb + b_ih[:H] + w_hh[:H] @ hb + b_hh[:H])
        z = sigmoid(w_ih[H : 2 * H] @ xb + b_ih[H : 2 * H] + w_hh[H : 2 * H] @ hb + b_hh[H : 2 * H])
        n = np.tanh(w_ih[2 * H :] @ xb + b_ih[2 * H :] + w_hh[2 * H :] @ (r * hb) + b_hh[2 * H :])
        expected = (1 - z) * n + z * hb
        np.testing.assert_allclose(out[0, b], expected, rtol=1e-14, atol=0)
        np.testing.assert_allclose(h1[0, b], expected, rtol=1e-14, atol=0)


def test_gru_reset_before_and_after_agree_when_reset_gate_is_open(rng):
    """With r == 1 the two GRU variants coincide; otherwise they differ."""
    params = random_params(rng, "gru", D, H, 2, True)
    x = rng.normal(size=(T, B, D))
    h0 = random_state(rng, "gru", 2, 2, B, H)
    after = naive_forward("gru", params, x, h0, num_layers=2, bidirectional=True)
    before = naive_forward(
        "gru", params, x, h0, num_layers=2, bidirectional=True, reset_after=False
    )
    assert rel_err(before[0], after[0]) > 1e-3
    for name in params:
        if name.startswith("bias_hh"):
            params[name][:H] = 60.0  # sigmoid(>= 55) == 1 in float64
    after = naive_forward("gru", params, x, h0, num_layers=2, bidirectional=True)
    before = naive_forward(
        "gru", params, x, h0, num_layers=2, bidirectional=True, reset_after=False
    )
    assert rel_err(before[0], after[0]) < 1e-14
    assert rel_err(before[1], after[1]) < 1e-14
