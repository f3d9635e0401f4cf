"""Losses: values against direct formulas and PyTorch, gradients against finite differences."""

import warnings

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


# --- lengths: many-to-many losses over the real steps of variable-length sequences ---------


def random_lengths(rng, T, B):
    """Lengths in 1..T, with a full-length and a length-1 sequence among them."""
    lengths = rng.integers(1, T + 1, B)
    lengths[:2] = T, 1
    return rng.permutation(lengths)


def real_steps(T, lengths):
    """(T, B) bool, True where t < lengths[b], by a loop (independent of the code's mask)."""
    mask = np.zeros((T, len(lengths)), dtype=bool)
    for b, n in enumerate(lengths):
        mask[:n, b] = True
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_mse_against_torch(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10 + seed)
    T, B, O = 7, 5, 3
    pred, target = rng.normal(size=(T, B, O)), rng.normal(size=(T, B, O))
    lengths = random_lengths(rng, T, B)
    p = torch.tensor(pred, requires_grad=True)
    mask = (torch.arange(T)[:, None] < torch.tensor(lengths)[None, :]).to(torch.float64)
    ref = ((p - torch.tensor(target)) ** 2 * mask[..., None]).sum() / (mask.sum() * O)
    ref.backward()
    loss, grad = losses.mse(pred, target, lengths=lengths)
    assert isinstance(loss, float)
    assert loss == pytest.approx(ref.item(), rel=1e-12, abs=0)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-12, atol=0)
    assert grad.shape == pred.shape and grad.dtype == pred.dtype
    assert (grad[~real_steps(T, lengths)] == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_xent_against_torch(seed):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pack = torch.nn.utils.rnn.pack_padded_sequence
    rng = np.random.default_rng(20 + seed)
    T, B, C = 6, 5, 4
    logits = rng.normal(size=(T, B, C)) * 3
    target = rng.integers(0, C, (T, B))
    lengths = random_lengths(rng, T, B)
    loss, grad = losses.xent(logits, target, lengths=lengths)
    assert isinstance(loss, float)
    padded = ~real_steps(T, lengths)
    assert (grad[padded] == 0).all()

    # the real positions picked out with a mask built in torch
    z = torch.tensor(logits, requires_grad=True)
    tt = torch.tensor(target)
    mask = torch.arange(T)[:, None] < torch.tensor(lengths)[None, :]
    ref = F.cross_entropy(z[mask], tt[mask])
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12, abs=0)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=0)

    # ... and as PyTorch's packed sequences (time-major, unsorted lengths)
    z = torch.tensor(logits, requires_grad=True)
    lens = torch.tensor(lengths, dtype=torch.int64)
    packed = pack(z, lens, enforce_sorted=False)
    packed_target = pack(tt, lens, enforce_sorted=False)
    ref = F.cross_entropy(packed.data, packed_target.data)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12, abs=0)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=0)
    assert (z.grad.numpy()[padded] == 0).all()


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_full_lengths_equal_unmasked_bit_for_bit(dtype, layout):
    T, B, C = 13, 11, 7  # over 8 terms a row: pairwise sums, whose order shows in the bits
    full = np.full(B, T)
    for seed in range(10):  # a changed summation order shows in some draws, not in all
        rng = np.random.default_rng([30, seed])
        pred = rng.normal(size=(T, B, C)).astype(dtype)
        target = rng.normal(size=(T, B, C))
        classes = rng.integers(0, C, (T, B))
        if layout == "F":  # the sums run in memory order, which lengths must not change
            pred = np.asfortranarray(pred)
        elif layout == "strided":
            pred = np.repeat(pred, 2, axis=0)[::2]
        for fn, y in [(losses.mse, target), (losses.xent, classes)]:
            loss, grad = fn(pred, y)
            masked_loss, masked_grad = fn(pred, y, lengths=full)
            assert masked_loss == loss
            assert masked_grad.dtype == grad.dtype == dtype
            np.testing.assert_array_equal(masked_grad, grad)
        assert losses.accuracy(pred, classes, lengths=full) == losses.accuracy(pred, classes)


def test_padding_garbage_changes_nothing():
    rng = np.random.default_rng(40)
    T, B, C = 8, 6, 3
    lengths = random_lengths(rng, T, B)
    padded = ~real_steps(T, lengths)
    pred, target = rng.normal(size=(T, B, C)), rng.normal(size=(T, B, C))
    classes = rng.integers(0, C, (T, B))
    clean = (
        losses.mse(pred, target, lengths=lengths),
        losses.xent(pred, classes, lengths=lengths),
        losses.accuracy(pred, classes, lengths=lengths),
    )
    junk = np.array([np.nan, np.inf, -np.inf, 1e308, -1e308])
    bad_pred, bad_target, bad_classes = pred.copy(), target.copy(), classes.copy()
    n_pad = int(padded.sum())
    bad_pred[padded] = rng.choice(junk, (n_pad, C))
    bad_target[padded] = rng.choice(junk, (n_pad, C))
    bad_classes[padded] = rng.choice([-1, C, C + 100, -(2**62), 2**62], n_pad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warning from the junk
        dirty = (
            losses.mse(bad_pred, bad_target, lengths=lengths),
            losses.xent(bad_pred, bad_classes, lengths=lengths),
            losses.accuracy(bad_pred, bad_classes, lengths=lengths),
        )
    for (v0, g0), (v1, g1) in zip(clean[:2], dirty[:2], strict=True):
        assert v1 == v0
        np.testing.assert_array_equal(g1, g0)
        assert (g1[padded] == 0).all()
    assert dirty[2] == clean[2]
    # float32 predictions: float64 junk targets are not cast (no overflow to inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v32, g32 = losses.mse(pred.astype(np.float32), bad_target, lengths=lengths)
    assert np.isfinite(v32) and g32.dtype == np.float32 and (g32[padded] == 0).all()


def test_lengths_validation():
    z, y = np.zeros((5, 3, 4)), np.zeros((5, 3), dtype=int)
    for fn, target in [(losses.mse, z), (losses.xent, y), (losses.accuracy, y)]:
        with pytest.raises(ValueError, match=r"lengths must have shape \(3,\), got \(4,\)"):
            fn(z, target, lengths=np.array([5, 5, 5, 5]))
        with pytest.raises(ValueError, match=r"lengths must have shape \(3,\), got \(\)"):
            fn(z, target, lengths=5)
        with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.5.*got values from 0"):
            fn(z, target, lengths=np.array([5, 0, 2]))
        with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.5.*to 6"):
            fn(z, target, lengths=np.array([5, 6, 2]))
        with pytest.raises(TypeError, match=r"lengths must be an integer array.*float64"):
            fn(z, target, lengths=np.array([5.0, 1.0, 2.0]))
        with pytest.raises(TypeError, match=r"lengths must be an integer array.*bool"):
            fn(z, target, lengths=np.array([True, True, True]))
    # many-to-one predictions take no lengths
    many_to_one = r"lengths apply to many-to-many predictions of shape \(T, B, {}\); got {}"
    with pytest.raises(ValueError, match=many_to_one.format("C", r"logits of shape \(3, 4\)")):
        losses.xent(np.zeros((3, 4)), np.zeros(3, dtype=int), lengths=np.array([1, 1, 1]))
    with pytest.raises(ValueError, match=many_to_one.format("C", "logits")):
        losses.accuracy(np.zeros((3, 4)), np.zeros(3, dtype=int), lengths=np.array([1, 1, 1]))
    with pytest.raises(ValueError, match=many_to_one.format("O", r"pred of shape \(3, 4\)")):
        losses.mse(np.zeros((3, 4)), np.zeros((3, 4)), lengths=np.array([1, 1, 1, 1]))
    # out-of-range classes are accepted at padded steps only
    bad = y.copy()
    bad[4, 0] = 9
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\] at the real .*\[0, 9\]"):
        losses.xent(z, bad, lengths=np.array([5, 4, 4]))
    assert losses.xent(z, bad, lengths=np.array([4, 4, 4]))[0] == pytest.approx(np.log(4))


def test_accuracy_with_lengths():
    # T = 3, B = 2; argmax per position:   b=0   b=1
    logits = np.array([[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]],   # t=0:  0     1
                       [[0.0, 0.0, 2.0], [2.0, 0.0, 0.0]],   # t=1:  2     0
                       [[0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]])  # t=2:  1     2  # fmt: skip
    target = np.array([[0, 1], [2, 1], [0, 2]])
    # all steps: right at (0,0), (0,1), (1,0), (2,1) -> 4 of 6
    assert losses.accuracy(logits, target) == pytest.approx(4 / 6)
    # lengths (3, 1): real (0,0) (1,0) (2,0) (0,1) -> right at (0,0) (1,0) (0,1): 3 of 4
    assert losses.accuracy(logits, target, lengths=np.array([3, 1])) == 0.75
    # lengths (1, 2): real (0,0) (0,1) (1,1) -> right at (0,0) (0,1): 2 of 3
    assert losses.accuracy(logits, target, lengths=np.array([1, 2])) == pytest.approx(2 / 3)
    # random batch against a count over the real steps by loops
    rng = np.random.default_rng(50)
    T, B, C = 10, 7, 3
    logits = rng.normal(size=(T, B, C))
    target = rng.integers(0, C, (T, B))
    lengths = random_lengths(rng, T, B)
    right = sum(
        int(np.argmax(logits[t, b]) == target[t, b]) for b in range(B) for t in range(lengths[b])
    )
    assert losses.accuracy(logits, target, lengths=lengths) == pytest.approx(
        right / lengths.sum(), rel=1e-15
    )
