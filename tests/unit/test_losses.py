"""Losses: values against direct formulas and PyTorch, gradients against finite differences."""

import numpy as np
import pytest

from numrnn import losses


def central_diff(f, x, eps=1e-6):
    """Central finite-difference gradient of scalar f at x."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def test_mse_value_and_gradient():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    loss, grad = losses.mse(pred, target)
    assert isinstance(loss, float)
    assert loss == pytest.approx(((pred - target) ** 2).mean(), rel=1e-15)
    fd = central_diff(lambda p: losses.mse(p, target)[0], pred.copy())
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 5)])
def test_xent_gradient_finite_differences(shape):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=shape) * 3
    target = rng.integers(0, shape[-1], shape[:-1])
    loss, grad = losses.xent(logits, target)
    fd = central_diff(lambda z: losses.xent(z, target)[0], logits.copy())
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)  # FD noise ~1e-16 / eps
    assert grad.shape == logits.shape


def test_xent_value_direct():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = np.array([2, 0])
    expected = np.mean([np.log(np.exp(logits[0]).sum()) - 3.0, np.log(3.0)])
    assert losses.xent(logits, target)[0] == pytest.approx(expected, rel=1e-15)


def test_xent_numerically_stable():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 4))
    target = rng.integers(0, 4, 5)
    loss, grad = losses.xent(logits, target)
    big_loss, big_grad = losses.xent(logits + 1e4, target)  # exp(1e4) would overflow
    assert np.isfinite(big_loss)
    assert big_loss == pytest.approx(loss, rel=1e-9)
    np.testing.assert_allclose(big_grad, grad, atol=1e-12)
    # A confident correct prediction: loss ~ exp(-1000), not log(0) or NaN.
    sure = np.array([[1000.0, 0.0]])
    assert losses.xent(sure, np.array([0]))[0] == 0.0
    assert losses.xent(sure, np.array([1]))[0] == pytest.approx(1000.0)


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(7, 3, 5))
    target = rng.integers(0, 5, (7, 3))
    z = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(z.reshape(-1, 5), torch.tensor(target).reshape(-1))
    ref.backward()
    loss, grad = losses.xent(logits, target)
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=1e-15)

    pred, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    p = torch.tensor(pred, requires_grad=True)
    ref = torch.nn.functional.mse_loss(p, torch.tensor(y))
    ref.backward()
    loss, grad = losses.mse(pred, y)
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-13)


def test_dtype_follows_prediction():
    rng = np.random.default_rng(4)
    pred = rng.normal(size=(3, 2)).astype(np.float32)
    assert losses.mse(pred, rng.normal(size=(3, 2)))[1].dtype == np.float32
    assert losses.xent(pred, np.array([0, 1, 1]))[1].dtype == np.float32


def test_accuracy():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert losses.accuracy(logits, np.array([1, 0, 0, 1])) == 0.5
    assert losses.accuracy(logits[None], np.array([[1, 0, 1, 0]])) == 1.0


def test_validation_names_argument():
    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"target must have shape \(4,\).*got \(3,\)"):
        losses.xent(z, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="target must be an integer array"):
        losses.xent(z, np.zeros(4))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 2\].*\[0, 3\]"):
        losses.xent(z, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"target must lie"):
        losses.xent(z, np.array([0, -1, 2, 1]))
    with pytest.raises(ValueError, match=r"target must have shape \(4, 3\)"):
        losses.mse(z, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="pred must be a floating-point array"):
        losses.mse(np.zeros((2, 2), dtype=int), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="logits must be a floating-point array"):
        losses.accuracy(np.zeros((2, 2), dtype=int), np.zeros(2, dtype=int))


def test_registry():
    assert losses.get("mse") is losses.mse and losses.get("xent") is losses.xent
    with pytest.raises(ValueError, match="unknown loss 'l1'; known: mse, xent"):
        losses.get("l1")
