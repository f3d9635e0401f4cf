"""Optimizers against torch.optim step for step; gradient clipping against its definition."""

import math

import numpy as np
import pytest

from numrnn import optim

SHAPES = {"weight_hh_l0": (6, 3), "bias_hh_l0": (6,), "weight_out": (2, 3)}


def problem(seed=0, n_steps=6):
    """Random float64 parameters and a sequence of random gradient dicts."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s) * rng.uniform(0.1, 3) for k, s in SHAPES.items()}
             for _ in range(n_steps)]  # fmt: skip
    return params, grads


CONFIGS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5, "eps": 1e-6}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("adam", {"lr": 1e-3}),
    ("adam", {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.05}),
    ("adamw", {"lr": 1e-3}),  # torch's default weight_decay=0.01
    ("adamw", {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.3}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.0}),
]
TORCH = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=lambda c: str(c))
def test_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    params, grads = problem()
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    topt = getattr(torch.optim, TORCH[name])(list(tparams.values()), **kwargs)
    opt = optim.get(name, **kwargs)
    for g in grads:
        opt.step(params, g)
        for k, p in tparams.items():
            p.grad = torch.tensor(g[k])
        topt.step()
        for k, p in tparams.items():
            ref = p.detach().numpy()
            np.testing.assert_allclose(params[k], ref, rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS[::3], ids=lambda c: str(c))
def test_updates_in_place(name, kwargs):
    params, grads = problem(n_steps=2)
    before = {k: v for k, v in params.items()}
    copies = {k: v.copy() for k, v in params.items()}
    opt = optim.get(name, **kwargs)
    for g in grads:
        opt.step(params, g)
    for k in params:
        assert params[k] is before[k]
        assert not np.array_equal(params[k], copies[k])
    assert opt.steps == 2


def test_sgd_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    opt = optim.SGD(lr=0.5, momentum=0.9)
    opt.step(p, {"w": np.array([1.0, 1.0])})  # buf = g
    np.testing.assert_array_equal(p["w"], [0.5, -2.5])
    opt.step(p, {"w": np.array([1.0, 1.0])})  # buf = 0.9 + 1
    np.testing.assert_allclose(p["w"], [0.5 - 0.95, -2.5 - 0.95], rtol=1e-15)


def test_float32_params():
    p = {"w": np.ones(3, dtype=np.float32)}
    optim.Adam(lr=0.1).step(p, {"w": np.ones(3, dtype=np.float32)})
    assert p["w"].dtype == np.float32
    np.testing.assert_allclose(p["w"], 0.9, rtol=1e-6)


def test_validation():
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop(lr=0.1, alpha=-0.1)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        optim.Adam(lr=0.1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        optim.Adam(lr=0.1, eps=-1.0)
    opt = optim.SGD(lr=0.1)
    p = {"w": np.zeros(2)}
    with pytest.raises(ValueError, match=r"missing \['w'\], unexpected \['v'\]"):
        opt.step(p, {"v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads\['w'\].*shape \(2,\) and dtype float64"):
        opt.step(p, {"w": np.zeros(2, dtype=np.float32)})
    with pytest.raises(ValueError, match=r"grads\['w'\]"):
        opt.step(p, {"w": np.zeros(3)})


def test_registry():
    assert isinstance(optim.get("adam", lr=1e-3), optim.Adam)
    assert repr(optim.get("sgd", lr=0.1)) == (
        "SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)"
    )
    assert isinstance(optim.get("adamw", lr=1e-3), optim.AdamW)
    assert optim.get("adamw", lr=1e-3).weight_decay == 0.01  # torch's default
    with pytest.raises(
        ValueError, match="unknown optimizer 'adagrad'; known: adam, adamw, rmsprop, sgd"
    ):
        optim.get("adagrad", lr=0.1)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['beta'\]; accepted: lr, betas"):
        optim.get("adam", lr=0.1, beta=0.9)


# ------------------------------------------------------------------------------------------
# Clipping
# ------------------------------------------------------------------------------------------


def grads_with_norm(norm, seed=0):
    rng = np.random.default_rng(seed)
    g = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    total = math.sqrt(sum((v**2).sum() for v in g.values()))
    return {k: v * (norm / total) for k, v in g.items()}


def test_clip_grad_norm_above_threshold():
    g = grads_with_norm(10.0)
    direction = {k: v / 10.0 for k, v in g.items()}
    pre = optim.clip_grad_norm(g, 2.5)
    assert pre == pytest.approx(10.0, rel=1e-14)
    assert optim.global_norm(g) == pytest.approx(2.5, rel=1e-14)
    for k in g:
        np.testing.assert_allclose(g[k], 2.5 * direction[k], rtol=1e-14)


def test_clip_grad_norm_below_threshold_untouched():
    g = grads_with_norm(1.0)
    copy = {k: v.copy() for k, v in g.items()}
    assert optim.clip_grad_norm(g, 2.0) == pytest.approx(1.0, rel=1e-14)
    for k in g:
        np.testing.assert_array_equal(g[k], copy[k])


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_non_finite_returned_untouched(bad):
    g = grads_with_norm(5.0)
    g["bias_hh_l0"][2] = bad
    copy = {k: v.copy() for k, v in g.items()}
    pre = optim.clip_grad_norm(g, 1.0)
    assert math.isinf(pre) if bad == np.inf else math.isnan(pre)
    for k in g:
        np.testing.assert_array_equal(g[k], copy[k])


def test_global_norm_leaves_blas_threads_asleep():
    """Between training steps: woken BLAS threads would spin into the next forward pass."""
    from helpers import blas_wakes

    grads = {"a": np.ones((64, 128, 32)), "b": np.full(3 * 10**5, 2.0)}
    assert not blas_wakes(lambda: optim.global_norm(grads))
    assert optim.global_norm(grads) == pytest.approx(math.sqrt(64 * 128 * 32 + 12 * 10**5))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_members_norms_and_clipping_are_each_members_alone(dtype):
    """global_norms and clip_grad_norms over stacked arrays against global_norm and
    clip_grad_norm of each member alone, bit for bit: arrays longer than SERIAL_DOT per
    member (summed in pieces), a member whose squares overflow (the careful path), one
    with a NaN and one below the threshold."""
    from numrnn._checks import SERIAL_DOT

    rng = np.random.default_rng(5)
    K = 5
    grads = {"w": rng.standard_normal((K, 3, SERIAL_DOT // 2 + 7)),
             "b": rng.standard_normal((K, 40))}  # fmt: skip
    if dtype == "float64":
        grads["w"][1] *= 1e160
    grads["b"][2, 3] = np.nan
    grads["b"][3] *= 1e-4
    grads["w"][3] *= 1e-4
    grads = {n: g.astype(dtype) for n, g in grads.items()}
    with np.errstate(over="ignore"):
        alone = [optim.global_norm({n: g[k] for n, g in grads.items()}) for k in range(K)]
        np.testing.assert_array_equal(optim.global_norms(grads), alone)
        clipped = {n: g.copy() for n, g in grads.items()}
        np.testing.assert_array_equal(optim.clip_grad_norms(clipped, 0.5), alone)
    for k in range(K):
        each = {n: g[k].copy() for n, g in grads.items()}
        optim.clip_grad_norm(each, 0.5)
        for n in grads:
            np.testing.assert_array_equal(clipped[n][k], each[n])
            assert clipped[n].dtype == dtype
    assert alone[3] < 0.5 and math.isnan(alone[2])
    # against np.linalg.norm of each member's numbers, and the clipped norm is the threshold
    for k in (0, 3, 4):
        flat = np.concatenate([g[k].ravel() for g in grads.values()]).astype(np.float64)
        cut = np.concatenate([g[k].ravel() for g in clipped.values()]).astype(np.float64)
        tol = 1e-13 if dtype == "float64" else 1e-6
        assert alone[k] == pytest.approx(np.linalg.norm(flat), rel=1e-13)
        assert np.linalg.norm(cut) == pytest.approx(min(alone[k], 0.5), rel=tol)
    with pytest.raises(ValueError, match=r"norms must have shape \(5,\), one per member"):
        optim.clip_grad_norms(clipped, 0.5, [1.0, 2.0])


def test_global_norm_extreme_magnitudes():
    # Exploding and vanishing gradients: the squares over/underflow, the norm must not.
    for norm in (1e200, 1e-200, 3e307):
        assert optim.global_norm(grads_with_norm(norm)) == pytest.approx(norm, rel=1e-13)
    assert optim.global_norm({"a": np.array([np.inf, -np.inf])}) == math.inf
    assert optim.global_norm({"a": np.zeros(3)}) == 0.0
    g = grads_with_norm(1e200)
    assert optim.clip_grad_norm(g, 1.0) == pytest.approx(1e200, rel=1e-13)
    assert optim.global_norm(g) == pytest.approx(1.0, rel=1e-13)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    g = grads_with_norm(7.0, seed=3)
    tensors = [torch.tensor(v.copy()) for v in g.values()]
    for t in tensors:
        t.grad = t.clone()
    ref = torch.nn.utils.clip_grad_norm_(tensors, 3.0)
    pre = optim.clip_grad_norm(g, 3.0)
    assert pre == pytest.approx(ref.item(), rel=1e-14)
    for v, t in zip(g.values(), tensors, strict=True):
        np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-6)  # torch divides by norm + 1e-6


def test_clip_grad_value():
    g = {"w": np.array([-3.0, 0.5, 4.0]), "b": np.array([[np.nan, -0.1]])}
    pre = optim.clip_grad_value(g, 1.0)
    assert math.isnan(pre)
    np.testing.assert_array_equal(g["w"], [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(g["b"], [[np.nan, -0.1]])
    g = {"w": np.array([-3.0, 4.0])}
    assert optim.clip_grad_value(g, 2.0) == 5.0
    np.testing.assert_array_equal(g["w"], [-2.0, 2.0])


def test_clip_validation():
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm({"w": np.ones(2)}, 0.0)
    with pytest.raises(ValueError, match="value"):
        optim.clip_grad_value({"w": np.ones(2)}, -1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=lambda c: str(c))
def test_one_rate_per_member_is_each_member_alone(name, kwargs, dtype):
    """Stacked (K, ...) parameters with lr=[r_0, ..., r_K-1]: member k's trajectory is,
    bit for bit, that of its own parameters stepped alone with lr=r_k."""
    rates = [kwargs["lr"], kwargs["lr"] / 3, kwargs["lr"] * 7.1]
    members = [problem(seed=k) for k in range(3)]
    cast = lambda d: {n: v.astype(dtype) for n, v in d.items()}  # noqa: E731
    stacked = {n: np.stack([cast(m[0])[n] for m in members]) for n in SHAPES}
    opt = optim.get(name, **{**kwargs, "lr": rates})
    alone = [
        (cast(m[0]), optim.get(name, **{**kwargs, "lr": r}))
        for m, r in zip(members, rates, strict=True)
    ]
    for step in range(6):
        opt.step(stacked, {n: np.stack([cast(m[1][step])[n] for m in members]) for n in SHAPES})
        for (p, o), m in zip(alone, members, strict=True):
            o.step(p, cast(m[1][step]))
    for k, (p, _) in enumerate(alone):
        for n in SHAPES:
            np.testing.assert_array_equal(stacked[n][k], p[n])
            assert stacked[n].dtype == dtype


def test_rate_list_validation():
    with pytest.raises(ValueError, match=r"lr\[1\] must be finite and in"):
        optim.SGD(lr=[0.1, -1.0])
    with pytest.raises(ValueError, match="flat, non-empty list"):
        optim.Adam(lr=[])
    with pytest.raises(ValueError, match="flat, non-empty list"):
        optim.Adam(lr=[[0.1]])
    opt = optim.SGD(lr=[0.1, 0.2])
    assert opt.lr == (0.1, 0.2) and "lr=(0.1, 0.2)" in repr(opt)
    with pytest.raises(ValueError, match="lr has 2 rates .* shape \\(3, 4\\)"):
        opt.step({"w": np.zeros((3, 4))}, {"w": np.ones((3, 4))})
    with pytest.raises(ValueError, match="lr must be finite"):
        opt.lr = math.nan  # a rate set between steps is checked too


def test_a_rate_set_between_steps_may_be_zero():
    """A schedule may end at 0 (cosine annealing to eta_min=0), as torch allows; the rate
    an optimizer is built with must still be > 0."""
    for name in ("sgd", "adamw"):
        with pytest.raises(ValueError, match=r"lr must be finite and in \(0.0, inf\]"):
            optim.get(name, lr=0.0)
    opt = optim.AdamW(lr=0.1)
    opt.lr = 0.0
    opt.lr = [0.0, 0.2]
    assert opt.lr == (0.0, 0.2)
    with pytest.raises(ValueError, match=r"lr\[0\] must be finite and in \[0.0, inf\]"):
        opt.lr = [-0.1, 0.2]


def _numpy_adam(p, g, m, v, lr, betas, eps, t):
    """torch.optim.Adam's step in NumPy, operation for operation (numrnn's before its
    compiled pass); ``lr`` a float or a (K, 1, ...) array of the dtype."""
    beta1, beta2 = betas
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * (g * g)
    denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + eps
    p -= lr / (1 - beta1**t) * (m / denom) if np.ndim(lr) == 0 else (
        (np.asarray(lr, np.float64) / (1 - beta1**t)).astype(p.dtype) * (m / denom))  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rates", [0.01, [0.01, 0.003, 0.05]], ids=["one-rate", "member-rates"])
def test_adam_is_the_numpy_formula_bit_for_bit(dtype, rates):
    # the compiled pass must round exactly as the ten NumPy operations do (no fused
    # multiply-adds, float32 constants rounded as NumPy rounds a Python float)
    rng = np.random.default_rng(3)
    K, betas, eps = 3, (0.8, 0.95), 1e-6
    p = rng.normal(size=(K, 5, 4)).astype(dtype)
    want, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    opt = optim.Adam(lr=rates, betas=betas, eps=eps)
    lr = rates if np.ndim(rates) == 0 else np.array(rates).reshape(-1, 1, 1)
    for t in range(1, 8):
        g = (rng.normal(size=p.shape) * 10.0 ** rng.uniform(-3, 3)).astype(dtype)
        opt.step({"w": p}, {"w": g})
        _numpy_adam(want, g, m, v, lr, betas, eps, t)
        np.testing.assert_array_equal(p, want)
        np.testing.assert_array_equal(opt.state["w"]["exp_avg_sq"], v)


def test_adam_updates_a_non_contiguous_parameter_in_place():
    base = np.arange(24.0).reshape(4, 6)
    p = base[:, ::2]  # a strided view: updated through the copy the pass works on
    ref = p.copy()
    g = np.ones_like(ref)
    optim.Adam(lr=0.1).step({"w": p}, {"w": g})
    optim.Adam(lr=0.1).step({"w": ref}, {"w": g})
    np.testing.assert_array_equal(base[:, ::2], ref)
    np.testing.assert_array_equal(base[:, 1::2], np.arange(24.0).reshape(4, 6)[:, 1::2])


def test_float16_parameters_are_refused():
    with pytest.raises(ValueError, match=r"params\['w'\] must be float32 or float64"):
        optim.Adam(lr=0.1).step({"w": np.ones(3, np.float16)}, {"w": np.ones(3, np.float16)})


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop"])
def test_state_of_another_shape_is_refused_before_any_update(name):
    # one optimizer reused for a model of another shape: its moments no longer fit
    opt = optim.get(name, lr=0.1, **({"momentum": 0.9} if name == "sgd" else {}))
    opt.step({"a": np.ones(2), "w": np.ones(3)}, {"a": np.ones(2), "w": np.ones(3)})
    params = {"a": np.ones(2), "w": np.ones(1000)}
    with pytest.raises(ValueError, match=r"state '\w+' of params\['w'\] has shape \(3,\)"):
        opt.step(params, {"a": np.ones(2), "w": np.ones(1000)})
    np.testing.assert_array_equal(params["a"], np.ones(2))  # nothing updated


def test_adam_state_not_c_contiguous_is_updated():
    # a state array restored in Fortran order (or read-only) is replaced by a C copy that
    # the compiled pass updates
    p, g = {"w": np.ones((3, 4))}, {"w": np.full((3, 4), 0.5)}
    opt, ref = optim.Adam(lr=0.1), optim.Adam(lr=0.1)
    ref_p = {"w": np.ones((3, 4))}
    for o, q in ((opt, p), (ref, ref_p)):
        o.step(q, g)
    opt.state["w"]["exp_avg"] = np.asfortranarray(opt.state["w"]["exp_avg"])
    frozen = opt.state["w"]["exp_avg_sq"].copy()
    frozen.flags.writeable = False
    opt.state["w"]["exp_avg_sq"] = frozen
    opt.step(p, g)
    ref.step(ref_p, g)
    np.testing.assert_array_equal(p["w"], ref_p["w"])
    np.testing.assert_array_equal(opt.state["w"]["exp_avg"], ref.state["w"]["exp_avg"])
    np.testing.assert_array_equal(opt.state["w"]["exp_avg_sq"], ref.state["w"]["exp_avg_sq"])
