"""The dense head, losses feeding BPTT, and dropout: against PyTorch and finite differences."""

import numpy as np
import pytest
from conftest import make_torch_module

import numrnn as nr
from numrnn import losses

MODELS = {"rnn": nr.RNN, "lstm": nr.LSTM, "gru": nr.GRU}
T, B, D, H = 6, 4, 3, 5
LENGTHS = np.array([6, 2, 5, 3])


def make_model(cell, readout, output_size=3, **kwargs):
    kw = dict(num_layers=2, bidirectional=True, seed=11, output_size=output_size)
    kw.update(kwargs)
    return MODELS[cell](D, H, readout=readout, **kw)


def make_data(readout, loss, output_size=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, D))
    shape = (T, B) if readout == "all" else (B,)
    if loss == "xent":
        y = rng.integers(0, output_size, shape)
    else:
        y = rng.normal(size=(*shape, output_size))
    return x, y


def torch_loss_and_grads(model, x, y, lengths, loss):
    """Loss and gradients of an equivalent torch.nn RNN/LSTM/GRU + nn.Linear."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    rnn_params = {k: v for k, v in model.params.items() if not k.endswith("_out")}
    module = make_torch_module(
        model.cell_type,
        rnn_params,
        D,
        H,
        num_layers=model.num_layers,
        bidirectional=model.bidirectional,
    )
    dirs, L = model.num_directions, model.num_layers
    head = torch.nn.Linear(dirs * H, model.output_size, dtype=torch.float64)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(model.params["weight_out"]))
        head.bias.copy_(torch.from_numpy(model.params["bias_out"]))
    xt = torch.tensor(x, requires_grad=True)
    packed = pack_padded_sequence(xt, torch.as_tensor(lengths), enforce_sorted=False)
    out, hn = module(packed)
    out, _ = pad_packed_sequence(out, total_length=T)
    if model.readout == "all":
        mask = torch.as_tensor(np.arange(T)[:, None] < lengths[None, :])[..., None]
        pred = head(out) * mask
    else:
        h = hn[0] if model.cell_type == "lstm" else hn
        pred = head(torch.cat([h[(L - 1) * dirs + d] for d in range(dirs)], dim=1))
    yt = torch.as_tensor(y)
    if loss == "mse":
        value = F.mse_loss(pred, yt)
    else:
        value = F.cross_entropy(pred.reshape(-1, model.output_size), yt.reshape(-1))
    value.backward()
    grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
    grads["weight_out"], grads["bias_out"] = head.weight.grad.numpy(), head.bias.grad.numpy()
    return value.item(), pred.detach().numpy(), grads, xt.grad.numpy()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(
    "readout, loss", [("all", "xent"), ("all", "mse"), ("last", "mse"), ("last", "xent")]
)
def test_head_gradients_match_torch(torch, cell, readout, loss):
    model = make_model(cell, readout)
    x, y = make_data(readout, loss)
    res = model.forward(x, lengths=LENGTHS)
    value, d_out = losses.get(loss)(res.output, y)
    g = model.backward(res, d_out)
    ref_value, ref_pred, ref_grads, ref_dx = torch_loss_and_grads(model, x, y, LENGTHS, loss)
    np.testing.assert_allclose(res.output, ref_pred, rtol=1e-10, atol=1e-12)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert set(g.params) == set(ref_grads)
    for k, ref in ref_grads.items():
        np.testing.assert_allclose(g.params[k], ref, rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(g.input, ref_dx, rtol=1e-9, atol=1e-12)


def loss_of(model, x, y, loss, lengths=None, **fwd):
    return losses.get(loss)(model.forward(x, lengths=lengths, **fwd).output, y)[0]


def check_finite_differences(model, f, grads, n_per=6, eps=1e-6, seed=0):
    """Central differences of the scalar ``f()`` at up to ``n_per`` entries of each parameter."""
    rng = np.random.default_rng(seed)
    for k, p in model.params.items():
        flat = p.reshape(-1)
        for i in rng.choice(flat.size, min(n_per, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = f()
            flat[i] = old - eps
            down = f()
            flat[i] = old
            fd = (up - down) / (2 * eps)
            np.testing.assert_allclose(
                grads[k].reshape(-1)[i], fd, rtol=1e-5, atol=1e-9, err_msg=f"{k}[{i}]"
            )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout, loss", [("all", "xent"), ("last", "mse")])
def test_head_gradients_match_finite_differences(cell, readout, loss):
    model = make_model(cell, readout)
    x, y = make_data(readout, loss, seed=1)
    res = model.forward(x, lengths=LENGTHS)
    g = model.backward(res, losses.get(loss)(res.output, y)[1])
    check_finite_differences(model, lambda: loss_of(model, x, y, loss, LENGTHS), g.params)


# -- dropout (Pham et al. 2014: between layers and before the head, never recurrent) ------


def test_dropout_single_layer_without_head_is_inactive():
    model = nr.LSTM(D, H, dropout=0.5, seed=0)
    x, _ = make_data("all", "mse")
    train = model.forward(x, train=True, rng=1)
    evaluation = model.forward(x)
    np.testing.assert_array_equal(train.output, evaluation.output)
    np.testing.assert_array_equal(train.state[0], evaluation.state[0])


def test_dropout_leaves_the_recurrent_path_untouched():
    x, _ = make_data("all", "mse")
    # one layer + head: the hidden states are the same in training and evaluation mode
    model = nr.GRU(D, H, seed=0, output_size=3, dropout=0.5)
    train, evaluation = model.forward(x, train=True, rng=1), model.forward(x)
    np.testing.assert_array_equal(train.state, evaluation.state)
    assert not np.allclose(train.output, evaluation.output)
    # two layers, no head: the first layer is untouched, the second sees dropped inputs
    model = nr.RNN(D, H, num_layers=2, seed=0, dropout=0.5)
    train, evaluation = model.forward(x, train=True, rng=1), model.forward(x)
    np.testing.assert_array_equal(train.state[0], evaluation.state[0])
    assert not np.allclose(train.state[1], evaluation.state[1])


def test_dropout_before_head_is_inverted_dropout():
    p = 0.25
    model = nr.RNN(D, H, seed=0, output_size=H, readout="last", dropout=p)
    model.params["weight_out"][:] = np.eye(H)
    model.params["bias_out"][:] = 0.0
    x = np.random.default_rng(0).normal(size=(T, 200, D))
    train, evaluation = model.forward(x, train=True, rng=3), model.forward(x)
    ratio = train.output / evaluation.output
    kept = ratio != 0
    np.testing.assert_allclose(ratio[kept], 1 / (1 - p), rtol=1e-12)
    assert abs(1 - kept.mean() - p) < 0.03


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout, loss", [("all", "mse"), ("last", "xent")])
def test_dropout_gradients_reuse_the_mask(cell, readout, loss):
    """Finite differences with a fixed mask (the same rng seed for every perturbed forward)."""
    model = make_model(cell, readout, dropout=0.4)
    x, y = make_data(readout, loss, seed=2)
    res = model.forward(x, lengths=LENGTHS, train=True, rng=5)
    assert not np.allclose(res.output, model.forward(x, lengths=LENGTHS).output)
    g = model.backward(res, losses.get(loss)(res.output, y)[1])

    def f():
        return loss_of(model, x, y, loss, LENGTHS, train=True, rng=5)

    check_finite_differences(model, f, g.params)
