"""Initializers: statistics against their definitions, and init_params' rules."""

import math

import numpy as np
import pytest

from numrnn import init

D, H = 5, 3


def lstm_shapes(d=D, h=H, g=4, layers=1, reverse=False, head=None):
    shapes = {}
    for k in range(layers):
        for suffix in ("", "_reverse") if reverse else ("",):
            d_in = d if k == 0 else (2 * h if reverse else h)
            shapes[f"weight_ih_l{k}{suffix}"] = (g * h, d_in)
            shapes[f"weight_hh_l{k}{suffix}"] = (g * h, h)
            shapes[f"bias_ih_l{k}{suffix}"] = (g * h,)
            shapes[f"bias_hh_l{k}{suffix}"] = (g * h,)
    if head is not None:
        shapes["weight_out"] = (head, 2 * h if reverse else h)
        shapes["bias_out"] = (head,)
    return shapes


def blocks(w, g):
    return np.split(w, g, axis=0)


# ------------------------------------------------------------------------------------------
# Registry and get()
# ------------------------------------------------------------------------------------------


def test_registry_names():
    assert set(init.INITIALIZERS) == {
        "normal", "uniform", "glorot_uniform", "glorot_normal", "he_normal", "orthogonal",
        "identity", "spectral", "zeros", "constant", "torch_default",
    }  # fmt: skip


def test_get_forms():
    assert init.get("orthogonal") == init.orthogonal()
    assert init.get(("spectral", {"radius": 1.5})) == init.spectral(1.5)
    assert init.get(["constant", {"v": 2}]).spec == ("constant", {"v": 2.0})

    def mine(shape, rng, dtype):
        return np.ones(shape, dtype)

    assert init.get(mine) is mine


def test_get_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown initializer 'ortho'.*glorot_uniform.*orthogonal"):
        init.get("ortho")


def test_get_bad_arguments():
    with pytest.raises(TypeError, match="'spectral' takes \\(radius\\)"):
        init.get("spectral")
    with pytest.raises(TypeError, match="gain"):
        init.get(("identity", {"gain": 2.0}))
    with pytest.raises(TypeError, match="spec"):
        init.get(3)


def test_factory_argument_validation():
    with pytest.raises(ValueError, match="std"):
        init.normal(-1.0)
    with pytest.raises(ValueError, match="radius"):
        init.spectral(math.inf)
    with pytest.raises(ValueError, match="hidden_size"):
        init.torch_default(0)


def test_repr_and_spec_roundtrip():
    f = init.glorot_uniform(gain=2.0)
    assert repr(f) == "glorot_uniform(gain=2.0)"
    assert init.get(f.spec) == f


# ------------------------------------------------------------------------------------------
# Individual initializers
# ------------------------------------------------------------------------------------------

ALL = [
    init.normal(0.5), init.uniform(0.3), init.glorot_uniform(), init.glorot_normal(),
    init.he_normal(), init.orthogonal(), init.identity(), init.spectral(0.9), init.zeros(),
    init.constant(0.25), init.torch_default(7),
]  # fmt: skip


@pytest.mark.parametrize("f", ALL, ids=repr)
def test_dtype_shape_contiguity_and_seed(f):
    a = f((6, 6), np.random.default_rng(1), np.float64)
    b = f((6, 6), np.random.default_rng(1), np.float64)
    c = f((6, 6), np.random.default_rng(1), np.float32)
    assert a.shape == (6, 6) and a.dtype == np.float64 and a.flags.c_contiguous
    assert c.dtype == np.float32 and c.flags.c_contiguous
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, a.astype(np.float32))  # drawn in float64, then cast


def test_normal_and_uniform_statistics():
    rng = np.random.default_rng(0)
    w = init.normal(0.5)((400, 500), rng)
    assert abs(w.mean()) < 0.005 and abs(w.std() - 0.5) < 0.005
    assert abs(init.normal()((400, 500), rng).std() - 1.0) < 0.01
    u = init.uniform(0.3)((400, 500), rng)
    assert np.abs(u).max() <= 0.3 and np.abs(u).max() > 0.299
    assert abs(u.var() - 0.3**2 / 3) < 1e-3 * 0.03


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_glorot_uniform_bounds_and_variance(gain):
    fan_out, fan_in = 300, 700
    w = init.glorot_uniform(gain)((fan_out, fan_in), np.random.default_rng(0))
    a = gain * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.999 * a
    np.testing.assert_allclose(w.var(), gain**2 * 2 / (fan_in + fan_out), rtol=0.01)


def test_glorot_normal_and_he_variance():
    rng = np.random.default_rng(0)
    w = init.glorot_normal(3.0)((300, 700), rng)
    np.testing.assert_allclose(w.var(), 9 * 2 / 1000, rtol=0.01)
    assert abs(w.mean()) < 0.01
    w = init.he_normal()((300, 700), rng)
    np.testing.assert_allclose(w.var(), 2 / 700, rtol=0.01)


def test_fan_initializers_need_matrices():
    with pytest.raises(ValueError, match=r"2-D shape.*\(5,\)"):
        init.glorot_uniform()((5,), np.random.default_rng(0))


@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal_square(gain):
    w = init.orthogonal(gain)((40, 40), np.random.default_rng(0))
    np.testing.assert_allclose(w @ w.T, gain**2 * np.eye(40), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.T @ w, gain**2 * np.eye(40), rtol=0, atol=1e-12)


def test_orthogonal_rectangular():
    rng = np.random.default_rng(0)
    wide = init.orthogonal()((3, 8), rng)
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)
    tall = init.orthogonal()((8, 3), rng)
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)


def test_orthogonal_is_haar():
    # Haar on O(2): W[0, 0] = cos(theta) with theta uniform, so E W[0,0] = 0, and det = +-1
    # equally often. Plain Householder QR without the sign fix fails both (Q[0,0] <= 0 always).
    rng = np.random.default_rng(0)
    f = init.orthogonal()
    ws = np.array([f((2, 2), rng) for _ in range(4000)])
    assert abs(ws[:, 0, 0].mean()) < 0.045  # ~4 sigma, sigma = sqrt(0.5 / 4000)
    assert abs((np.linalg.det(ws) > 0).mean() - 0.5) < 0.04
    np.testing.assert_allclose((ws[:, 0, 0] ** 2).mean(), 0.5, atol=0.03)


def test_identity():
    w = init.identity(0.5)((4, 4), np.random.default_rng(0))
    np.testing.assert_array_equal(w, 0.5 * np.eye(4))
    with pytest.raises(ValueError, match=r"square.*\(3, 4\)"):
        init.identity()((3, 4), np.random.default_rng(0))


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.3])
def test_spectral_radius_is_exact(radius):
    w = init.spectral(radius)((30, 30), np.random.default_rng(radius.as_integer_ratio()[0]))
    rho = np.max(np.abs(np.linalg.eigvals(w)))
    assert abs(rho - radius) <= 1e-12 * radius
    assert np.std(w) > 0  # not degenerate


def test_spectral_edge_cases():
    np.testing.assert_array_equal(init.spectral(0.0)((3, 3), np.random.default_rng(0)), 0)
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        init.spectral(1.0)((2, 3), np.random.default_rng(0))


def test_zeros_constant():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(init.zeros()((2, 3), rng), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.constant(1.5)((4,), rng), np.full(4, 1.5))


def test_torch_default():
    w = init.torch_default(16)((200, 300), np.random.default_rng(0))
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.249
    np.testing.assert_allclose(w.var(), 0.25**2 / 3, rtol=0.01)
    with pytest.raises(ValueError, match="needs hidden_size"):
        init.torch_default()((2, 2), np.random.default_rng(0))


# ------------------------------------------------------------------------------------------
# init_params
# ------------------------------------------------------------------------------------------


def test_init_params_shapes_dtype_order():
    shapes = lstm_shapes(layers=2, reverse=True, head=2)
    for dtype in (np.float64, np.float32):
        p = init.init_params(shapes, 4, H, rng=0, dtype=dtype)
        assert list(p) == list(shapes)
        for k, v in p.items():
            assert v.shape == shapes[k] and v.dtype == dtype and v.flags.c_contiguous


def test_init_params_deterministic():
    shapes = lstm_shapes(layers=2, reverse=True, head=2)
    a = init.init_params(shapes, 4, H, init="orthogonal", rng=7)
    b = init.init_params(shapes, 4, H, init="orthogonal", rng=np.random.default_rng(7))
    c = init.init_params(dict(reversed(shapes.items())), 4, H, init="orthogonal", rng=7)
    d = init.init_params(shapes, 4, H, init="orthogonal", rng=8)
    for k in shapes:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], c[k])  # shapes' order does not matter
    assert not np.array_equal(a["weight_hh_l0"], d["weight_hh_l0"])
    f32 = init.init_params(shapes, 4, H, init="orthogonal", rng=7, dtype=np.float32)
    np.testing.assert_array_equal(f32["weight_hh_l1"], a["weight_hh_l1"].astype(np.float32))


def test_init_params_streams_are_per_parameter():
    small = init.init_params(lstm_shapes(), 4, H, rng=3)
    big = init.init_params(lstm_shapes(layers=2, reverse=True, head=2), 4, H, rng=3)
    other = init.init_params(lstm_shapes(), 4, H, init={"weight_hh": "orthogonal"}, rng=3)
    for k in small:
        np.testing.assert_array_equal(small[k], big[k])
    np.testing.assert_array_equal(small["weight_ih_l0"], other["weight_ih_l0"])
    np.testing.assert_array_equal(small["bias_hh_l0"], other["bias_hh_l0"])


def test_torch_default_uses_hidden_size_and_head_fan_in():
    d, h = 50, 4  # 1/sqrt(D) = 0.14 would be far below the 1/sqrt(H) = 0.5 bound
    shapes = lstm_shapes(d=d, h=h, reverse=True, head=3)
    for spec in (None, "torch_default", {}):
        p = init.init_params(shapes, 4, h, init=spec, rng=0)
        for k, v in p.items():
            bound = 1 / math.sqrt(2 * h) if k.endswith("_out") else 1 / math.sqrt(h)
            assert np.abs(v).max() <= bound, k
        w = p["weight_ih_l0"]
        assert np.abs(w).max() > 0.95 / math.sqrt(h)
        np.testing.assert_allclose(w.var(), 1 / (3 * h), rtol=0.15)
        assert np.all(p["bias_ih_l0"] != 0)


def test_torch_default_matches_torch_bounds():
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(D, H)
    lin = torch.nn.Linear(H, 2)
    p = init.init_params(lstm_shapes(head=2), 4, H, rng=0)
    for k, v in lstm.named_parameters():
        assert np.abs(v.detach().numpy()).max() <= 1 / math.sqrt(H)
        assert p[k].shape == tuple(v.shape)
    assert p["weight_out"].shape == tuple(lin.weight.shape)


def test_single_spec_applies_to_weights_and_zeroes_biases():
    shapes = lstm_shapes(d=H, head=2)
    p = init.init_params(shapes, 4, H, init="orthogonal", rng=0)
    for k in ("weight_ih_l0", "weight_hh_l0"):
        for blk in blocks(p[k], 4):  # each gate's block is orthogonal on its own
            np.testing.assert_allclose(blk @ blk.T, np.eye(H), atol=1e-12)
    np.testing.assert_allclose(p["weight_out"] @ p["weight_out"].T, np.eye(2), atol=1e-12)
    for k in ("bias_ih_l0", "bias_hh_l0", "bias_out"):
        np.testing.assert_array_equal(p[k], 0.0)


def test_gru_spectral_per_gate():
    p = init.init_params(
        lstm_shapes(g=3, h=6), 3, 6, init={"weight_hh": ("spectral", {"radius": 1.1})}, rng=0
    )
    for blk in blocks(p["weight_hh_l0"], 3):
        assert abs(np.max(np.abs(np.linalg.eigvals(blk))) - 1.1) < 1e-12
    assert not np.array_equal(*blocks(p["weight_hh_l0"], 3)[:2])


def test_glorot_per_gate_block_fans():
    d, h = 40, 30
    p = init.init_params(lstm_shapes(d=d, h=h), 4, h, init="glorot_uniform", rng=0)
    a = math.sqrt(6 / (d + h))  # fan_out is H (the block), not 4H
    w = p["weight_ih_l0"]
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
    np.testing.assert_allclose(w.var(), 2 / (d + h), rtol=0.05)


def test_irnn_dict_spec():
    spec = {"weight_hh": ("identity", {"scale": 1.0}), "weight_ih": ("normal", {"std": 1e-3}),
            "bias": "zeros"}  # fmt: skip
    p = init.init_params(lstm_shapes(g=1, head=1), 1, H, init=spec, rng=0)
    np.testing.assert_array_equal(p["weight_hh_l0"], np.eye(H))
    assert 0 < np.abs(p["weight_ih_l0"]).max() < 5e-3
    for k in ("bias_ih_l0", "bias_hh_l0", "bias_out"):
        np.testing.assert_array_equal(p[k], 0.0)
    assert np.abs(p["weight_out"]).max() <= 1 / math.sqrt(H)  # missing kind: torch_default
    assert np.abs(p["weight_out"]).max() > 0


@pytest.mark.parametrize("spec", ["identity", ("spectral", {"radius": 0.9})])
def test_square_only_single_spec_is_recurrent_only(spec):
    d, h = 7, 4
    p = init.init_params(lstm_shapes(d=d, h=h, g=1, head=2), 1, h, init=spec, rng=0)
    rho = np.max(np.abs(np.linalg.eigvals(p["weight_hh_l0"])))
    assert rho == pytest.approx(1.0 if spec == "identity" else 0.9, rel=1e-12)
    for k in ("weight_ih_l0", "weight_out"):  # torch_default, bound 1/sqrt(H) = 0.5
        assert 0.3 < np.abs(p[k]).max() <= 0.5
    for k in ("bias_ih_l0", "bias_hh_l0", "bias_out"):
        np.testing.assert_array_equal(p[k], 0.0)


def test_square_only_initializer_on_input_weights_names_parameter():
    with pytest.raises(ValueError, match=r"weight_ih_l0.*identity.*\(3, 5\)"):
        init.init_params(lstm_shapes(g=1), 1, H, init={"weight_ih": "identity"}, rng=0)


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(ValueError, match=r"unknown parameter kind.*\['recurrent'\].*weight_hh"):
        init.init_params(lstm_shapes(), 4, H, init={"recurrent": "orthogonal"})


def test_callable_spec():
    def halves(shape, rng, dtype):
        return np.full(shape, 0.5, dtype)

    p = init.init_params(lstm_shapes(g=1), 1, H, init={"weight_hh": halves}, rng=0)
    np.testing.assert_array_equal(p["weight_hh_l0"], 0.5)


@pytest.mark.parametrize("spec", [None, "orthogonal"])
def test_forget_bias(spec):
    shapes = lstm_shapes(layers=2, reverse=True)
    plain = init.init_params(shapes, 4, H, init=spec, rng=0)
    p = init.init_params(shapes, 4, H, init=spec, rng=0, forget_bias=1.0)
    for k in shapes:
        if k.startswith("bias_"):
            s = k.replace("bias_ih", "bias_hh") if "bias_ih" in k else k.replace("hh", "ih")
            total = (p[k] + p[s])[H : 2 * H]
            np.testing.assert_array_equal(total, 1.0)
            expected = 1.0 if "bias_ih" in k else 0.0
            np.testing.assert_array_equal(p[k][H : 2 * H], expected)
            keep = np.r_[0:H, 2 * H : 4 * H]  # the other gates are untouched
            np.testing.assert_array_equal(p[k][keep], plain[k][keep])
        else:
            np.testing.assert_array_equal(p[k], plain[k])


def test_forget_bias_needs_lstm():
    with pytest.raises(ValueError, match="forget_bias.*n_gates=3"):
        init.init_params(lstm_shapes(g=3), 3, H, forget_bias=1.0)


def test_init_params_validation():
    bad = lstm_shapes()
    bad["weight_hh_l0"] = (12, 4)
    with pytest.raises(ValueError, match=r"shapes\['weight_hh_l0'\] must be \(12, 3\)"):
        init.init_params(bad, 4, H)
    with pytest.raises(ValueError, match="unknown parameter name 'weight_hr_l0'"):
        init.init_params({"weight_hr_l0": (3, 3)}, 1, H)
    with pytest.raises(ValueError, match="hidden_size"):
        init.init_params(lstm_shapes(), 4, 0)
    with pytest.raises(TypeError, match="dtype"):
        init.init_params(lstm_shapes(), 4, H, dtype=np.int32)
    with pytest.raises(ValueError, match="bias_out"):
        init.init_params({"bias_out": (2,)}, 1, H)
