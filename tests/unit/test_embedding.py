"""numrnn.nn.embedding: token ids through a learned table, in the models (``vocab_size``)
and on their own (:class:`~numrnn.nn.Embedding`), against torch's nn.Embedding + RNN +
Linear. Tiny float64 sizes: the cells are those the other tests compile."""

import numpy as np
import pytest

import numrnn as nr
from numrnn import results
from numrnn.nn import embedding as emb
from numrnn.weights import params_dataset

V, D, H, O = 7, 3, 4, 2


def rnn_params(model):
    return {k: v for k, v in model.params.items() if k not in ("weight_emb", "weight_out",
                                                               "bias_out")}  # fmt: skip


def torch_reference(torch, torch_module, model, cell, ids, lengths, dy):
    """Output and gradients of nn.Embedding -> nn.<cell> -> nn.Linear for
    L = sum(dy * output), the output zero past each sequence's end (as numrnn's head)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B = ids.shape
    table = nr.nn.Embedding(V, D, padding_idx=model.padding_idx, seed=0)
    table.params["weight"] = model.params["weight_emb"]
    embedding = table.to_torch()
    rnn = torch_module(cell, rnn_params(model), D, H, num_layers=model.num_layers,
                       bidirectional=model.bidirectional)  # fmt: skip
    head = torch.nn.Linear(model.num_directions * H, O, dtype=torch.float64)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(model.params["weight_out"]))
        head.bias.copy_(torch.from_numpy(model.params["bias_out"]))
    e = embedding(torch.from_numpy(ids))
    e.retain_grad()
    if lengths is None:
        out, _ = rnn(e)
        mask = torch.ones((T, B, 1), dtype=torch.float64)
    else:
        packed = pack_padded_sequence(e, torch.as_tensor(lengths), enforce_sorted=False)
        out, _ = pad_packed_sequence(rnn(packed)[0], total_length=T)
        mask = torch.as_tensor((np.arange(T)[:, None] < lengths)[..., None], dtype=torch.float64)
    y = head(out) * mask
    (torch.from_numpy(dy) * y).sum().backward()
    grads = {k: p.grad for k, p in rnn.named_parameters()}
    grads |= {"weight_emb": embedding.weight.grad, "weight_out": head.weight.grad,
              "bias_out": head.bias.grad}  # fmt: skip
    return y.detach().numpy(), {k: g.numpy() for k, g in grads.items()}, e.grad.numpy()


def close(mine, ref, what):
    scale = np.abs(ref).max()
    np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-13 * max(scale, 1), err_msg=what)


@pytest.mark.parametrize(
    "cell, layers, bidirectional, padding_idx, lengths",
    [
        ("lstm", 1, False, 0, None),
        ("lstm", 1, True, None, [4, 6, 2]),
        ("gru", 2, True, -1, [5, 3, 6]),
        ("rnn", 2, False, 2, [6, 1, 4]),
    ],
)
def test_gradients_match_torch(torch, torch_module, rng, cell, layers, bidirectional,
                               padding_idx, lengths):  # fmt: skip
    cls = {"lstm": nr.LSTM, "gru": nr.GRU, "rnn": nr.RNN}[cell]
    model = cls(D, H, num_layers=layers, bidirectional=bidirectional, seed=1, vocab_size=V,
                padding_idx=padding_idx, output_size=O)  # fmt: skip
    if padding_idx is not None:
        assert not model.params["weight_emb"][padding_idx].any()  # starts at zero, as torch's
        model.params["weight_emb"][padding_idx] = 0.5  # but is looked up as it is
    T, B = 6, 3
    ids = rng.integers(0, V, (T, B))
    ids[0] = [model.padding_idx or 0, 1, V - 1]
    if lengths is not None:
        lengths = np.array(lengths)
    res = model.forward(ids, lengths=lengths)
    dy = rng.standard_normal(res.output.shape)
    g = model.backward(res, dy)
    y, ref, d_embedded = torch_reference(torch, torch_module, model, cell, ids, lengths, dy)
    close(res.output, y, "output")
    assert list(g.params) == list(model.params)
    for name, value in g.params.items():
        close(value, ref[name], name)
    close(g.input, d_embedded, "input (the embedded input's gradient)")
    if padding_idx is not None:
        assert not g.params["weight_emb"][model.padding_idx].any()
    # training's call: no input gradient asked for, the same parameter gradients
    g2 = model.backward(res, dy, input_grad=False)
    assert g2.input is None
    np.testing.assert_array_equal(g2.params["weight_emb"], g.params["weight_emb"])


@pytest.mark.parametrize("per_member_ids", [False, True])
def test_ensemble_equals_its_members_bit_for_bit(rng, per_member_ids):
    ms = [nr.GRU(D, H, seed=s, vocab_size=V, padding_idx=0, output_size=O) for s in range(3)]
    ens = nr.ensemble(ms)
    T, B = 5, 3
    ids = rng.integers(0, V, (3, T, B) if per_member_ids else (T, B))
    lengths = np.array([5, 2, 4])
    res = ens.forward(ids, lengths=lengths)
    dy = rng.standard_normal(res.output.shape)
    g = ens.backward(res, dy)
    for k, m in enumerate(ms):
        rk = m.forward(ids[k] if per_member_ids else ids, lengths=lengths)
        gk = m.backward(rk, dy[k])
        np.testing.assert_array_equal(res.output[k], rk.output)
        for name in gk.params:
            np.testing.assert_array_equal(g.params[name][k], gk.params[name], err_msg=name)
        np.testing.assert_array_equal(g.input[k], gk.input)
    # chunks change the outputs at most in the last bits (a product blocked differently)
    np.testing.assert_allclose(ens.predict(ids, lengths, chunk=2), res.output, rtol=1e-13)


def test_bad_inputs_name_the_argument(rng):
    model = nr.RNN(D, H, seed=0, vocab_size=V)
    with pytest.raises(TypeError, match=r"x must be an integer array of token ids in 0\.\.6"):
        model.forward(rng.standard_normal((4, 2, D)))
    with pytest.raises(TypeError, match="x must be .* got dtype bool"):
        model.forward(np.ones((4, 2), bool))
    with pytest.raises(ValueError, match=r"x must hold token ids in 0\.\.6 .*from -1 to 7"):
        model.forward(np.array([[0, 7], [-1, 3]]))
    with pytest.raises(ValueError, match=r"x must be token ids of shape \(T, B\), got"):
        model.forward(np.zeros((4, 2, 1), np.int64))
    with pytest.raises(ValueError, match=r"x must be token ids of shape \(2, T, B\)"):
        nr.ensemble([nr.RNN(D, H, seed=s, vocab_size=V) for s in range(2)]).forward(
            np.zeros((3, 4, 2), np.int64))  # fmt: skip
    with pytest.raises(ValueError, match=r"padding_idx must be in -7\.\.6 .* got -8"):
        nr.LSTM(D, H, vocab_size=V, padding_idx=-8)
    with pytest.raises(ValueError, match=r"padding_idx must be in -7\.\.6 .* got 7"):
        nr.Embedding(V, D, padding_idx=7)
    with pytest.raises(ValueError, match="padding_idx needs an embedding: give vocab_size"):
        nr.GRU(D, H, padding_idx=0)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        nr.GRU(D, H, vocab_size=0)
    with pytest.raises(TypeError, match="ids must be an integer array"):
        nr.Embedding(V, D).forward([0.5])
    with pytest.raises(ValueError, match=r"d_out must have shape \(2, 3\)"):
        nr.Embedding(V, D).backward([0, 1], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="use to_torch\\(model, embedding=True\\)"):
        model.to_torch()


def test_init_config_and_standalone_table():
    model = nr.LSTM(D, H, seed=3, vocab_size=V, padding_idx=-2)
    assert list(model.params)[0] == "weight_emb" and model.padding_idx == 5
    assert model.config["vocab_size"] == V and model.config["padding_idx"] == 5
    assert "vocab_size" not in nr.LSTM(D, H).config  # features: the config as before
    # N(0, 1) like torch, the same numbers as the standalone table of that seed, and a
    # single init spec (the network's) leaves the table alone; a dict can name it
    table = nr.Embedding(V, D, padding_idx=5, seed=3).params["weight"]
    np.testing.assert_array_equal(model.params["weight_emb"], table)
    ortho = nr.LSTM(D, H, seed=3, vocab_size=V, padding_idx=5, init="orthogonal")
    np.testing.assert_array_equal(ortho.params["weight_emb"], table)
    small = nr.LSTM(D, H, seed=3, vocab_size=V, init={"weight_emb": ("normal", {"std": 1e-3})})
    assert np.abs(small.params["weight_emb"]).max() < 1e-2
    big = nr.Embedding(400, 50, seed=0).params["weight"]
    assert abs(big.std() - 1) < 0.02 and big.dtype == np.float64
    assert nr.Embedding(V, D, dtype="float32", seed=0).forward([[1]]).dtype == np.float32


def test_model_files_and_results_round_trip(tmp_path):
    model = nr.GRU(D, H, num_layers=2, seed=0, vocab_size=V, padding_idx=0, output_size=O)
    ids = np.array([[1, 0], [6, 2], [3, 3]])
    path = str(tmp_path / "lm.nc")
    back = nr.load(nr.save(model, path))
    assert back.config == model.config and list(back.params) == list(model.params)
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    np.testing.assert_array_equal(back.forward(ids).output, model.forward(ids).output)
    ds = nr.weights.model_dataset(model)
    assert ds["weight_emb"].dims == ("token", "input") and ds.sizes["token"] == V
    # what training records: the weights by "when", the config in attrs
    before = {k: v.copy() for k, v in model.params.items()}
    model.params["weight_emb"] += 1.0
    run = params_dataset(model, {"initial": (0, before), "final": (3, model.params)})
    run.attrs.update(results.model_attrs(model))
    np.testing.assert_array_equal(nr.models_from(run).params["weight_emb"],
                                  model.params["weight_emb"])  # fmt: skip
    np.testing.assert_array_equal(nr.models_from(run, when="initial").params["weight_emb"],
                                  before["weight_emb"])  # fmt: skip
    ens = nr.ensemble([nr.RNN(D, H, seed=s, vocab_size=V) for s in range(2)])
    again = nr.load(nr.save(ens, str(tmp_path / "ens.zarr")))
    np.testing.assert_array_equal(again.params["weight_emb"], ens.params["weight_emb"])


def test_torch_interop(torch, rng):
    lstm = torch.nn.LSTM(D, H, dtype=torch.float64)
    table = torch.nn.Embedding(V, D, padding_idx=-1, dtype=torch.float64)
    model = nr.from_torch(lstm, embedding=table)
    assert (model.vocab_size, model.padding_idx) == (V, V - 1)
    ids = rng.integers(0, V, (5, 2))
    out, _ = lstm(table(torch.from_numpy(ids)))
    np.testing.assert_allclose(model.forward(ids).output, out.detach().numpy(), rtol=1e-12)
    table2, lstm2 = model.to_torch(embedding=True)
    assert table2.padding_idx == V - 1
    np.testing.assert_array_equal(table2.weight.detach().numpy(), model.params["weight_emb"])
    np.testing.assert_array_equal(lstm2.weight_hh_l0.detach().numpy(),
                                  model.params["weight_hh_l0"])  # fmt: skip
    with pytest.raises(ValueError, match="embedding must have embedding_dim equal to"):
        nr.from_torch(lstm, embedding=torch.nn.Embedding(V, D + 1, dtype=torch.float64))
    with pytest.raises(TypeError, match="embedding must have the module's dtype float64"):
        nr.from_torch(lstm, embedding=torch.nn.Embedding(V, D))
    with pytest.raises(ValueError, match="max_norm=None"):
        nr.from_torch(lstm, embedding=torch.nn.Embedding(V, D, max_norm=1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="embedding=True needs a model with an embedding"):
        nr.LSTM(D, H).to_torch(embedding=True)
    # the standalone table: forward and backward against torch's
    mine = nr.Embedding.from_torch(table)
    ids = rng.integers(0, V, (2, 3, 2))
    d_out = rng.standard_normal((2, 3, 2, D))
    e = table(torch.from_numpy(ids))
    (torch.from_numpy(d_out) * e).sum().backward()
    np.testing.assert_array_equal(mine.forward(ids), e.detach().numpy())
    grad = mine.backward(ids, d_out)["weight"]
    np.testing.assert_allclose(grad, table.weight.grad.numpy(), rtol=1e-13, atol=1e-15)
    assert not grad[V - 1].any()
    back = mine.to_torch()
    assert back.padding_idx == V - 1 and back.weight.dtype == torch.float64


def test_diagnostics_take_token_ids(rng):
    model = nr.GRU(D, H, seed=0, vocab_size=V)
    ids = rng.integers(0, V, (6, 2))
    d_out = np.zeros((6, 2, H))
    d_out[-1] = 1
    g = nr.diagnostics.gradient_norms(model, ids, d_out, lengths=[6, 4])
    assert g.grad_norm.shape == (1, 1, 2, 6)
    j = nr.diagnostics.jacobian_norms(model, ids)
    assert float(j.jacobian_norm[0, 0, 0, -1]) == pytest.approx(1.0)
    lam = nr.diagnostics.lyapunov_spectrum(model, ids, n_exponents=2)
    assert np.isfinite(lam.lyapunov).all()


def test_scatter_grad_sums_repeated_ids_per_member():
    d = np.arange(12.0).reshape(2, 3, 2)  # K = 2, three positions, D = 2
    ids = np.array([[2, 0, 2], [1, 1, 1]])
    grad = emb.scatter_grad(d, ids, 3, padding_idx=0)
    np.testing.assert_array_equal(grad[0], [[0, 0], [0, 0], [4, 6]])
    np.testing.assert_array_equal(grad[1], [[0, 0], [24, 27], [0, 0]])
    shared = emb.scatter_grad(d, ids[:1], 3)
    np.testing.assert_array_equal(shared[1], [[8, 9], [0, 0], [16, 18]])
