"""Training on your own sequences: variable lengths, truncated BPTT, early stopping."""

import json

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn.tasks import Sequences


def ragged_task(seed=0, n=24, readout="last"):
    """Sequences of 2 features, lengths 2..9: the sign of the first feature's sum (many to
    one) or its running sum (many to many)."""
    rng = np.random.default_rng(seed)
    seqs = [rng.standard_normal((t, 2)) for t in rng.integers(2, 10, n)]
    if readout == "last":
        return Sequences(seqs, np.array([int(s[:, 0].sum() > 0) for s in seqs]), seed=seed)
    return Sequences(seqs, [np.cumsum(s[:, :1], axis=0) for s in seqs], seed=seed)


@pytest.mark.parametrize("readout", ["last", "all"])
def test_ensemble_on_variable_lengths_is_each_member_alone(readout):
    """Padding skipped and masked out of the loss, early stopping per member: bit for bit."""
    task = ragged_task(readout=readout)
    out = 2 if readout == "last" else 1

    def build():
        return [nr.GRU(2, 4, seed=s, output_size=out, readout=readout) for s in (1, 2, 3)]

    kw = dict(optimizer=("adam", {"lr": [3e-2, 1e-2, 3e-3]}), eval_every=2, progress=False,
              early_stopping=2, diagnostics=("grad_norm",), diagnostics_every=5)  # fmt: skip
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, task, 16, 6, seed=4, **kw)
    for k, m in enumerate(build()):
        alone = nr.train(m, task, 16, 6, seed=4, **{**kw, "optimizer": ("adam", {
            "lr": kw["optimizer"][1]["lr"][k]})})  # fmt: skip
        xr.testing.assert_identical(runs[k], alone)
        for name, v in m.params.items():
            np.testing.assert_array_equal(ens.params[name][k], v)
    # the padded steps never reach the record: a step no sequence of the batch reaches is NaN
    assert np.isfinite(runs[0].loss).all()


def test_early_stopping_keeps_the_best_weights():
    task = ragged_task(seed=1)
    model = nr.RNN(2, 6, seed=0, output_size=2, readout="last")
    run = nr.train(model, task, 60, 8, ("adam", {"lr": 0.2}), seed=0, eval_every=1,
                   early_stopping={"patience": 3, "min_delta": 0.0}, progress=False)  # fmt: skip
    tested = run.test_loss.dropna("step")
    best, stopped = run.attrs["best_step"], run.attrs["stopped_at"]
    assert stopped == best + 3 == int(run.step[-1])  # three evaluations without improvement
    assert best == int(tested.step[int(np.argmin(tested.values))])
    x, y, lengths = task.test_set()
    loss, _ = nr.losses.xent(model.predict(x, lengths), y)  # the model holds the best weights
    assert loss == tested.sel(step=best)
    assert run.when_step.sel(when="final") == best
    again = nr.models_from(run)
    np.testing.assert_array_equal(again.params["weight_hh_l0"], model.params["weight_hh_l0"])


@pytest.mark.parametrize("cell, readout", [("rnn_tanh", "all"), ("lstm", "all"), ("gru", "last")])
def test_truncated_bptt_is_the_torch_detach_loop(torch, cell, readout):
    """nr.train(..., tbptt=5) on one sequence of 12 steps: chunks [0, 5), [5, 10), [10, 12),
    each an SGD update from the state the last one ended in (detached), then the sequence
    again from zeros; losses and final weights equal PyTorch's to 1e-10."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 1, 2))
    y = np.cumsum(x[..., :1], axis=0) * 0.3 if readout == "all" else x[:, 0, :1].sum(0)[None]
    task = Sequences(x, y, validation=0.0, readout=readout)
    model = nr.nn.from_config(cell, input_size=2, hidden_size=3, seed=0, output_size=1,
                              readout=readout)  # fmt: skip
    head = torch.nn.Linear(3, 1, dtype=torch.float64)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(model.params["weight_out"]))
        head.bias.copy_(torch.from_numpy(model.params["bias_out"]))
    body = {k: v for k, v in model.params.items() if not k.endswith("_out")}
    rnn = nr.nn.to_torch(nr.nn.from_config(cell, input_size=2, hidden_size=3, seed=0))
    with torch.no_grad():
        for k, p in rnn.named_parameters():
            p.copy_(torch.from_numpy(body[k]))
    opt = torch.optim.SGD([*rnn.parameters(), *head.parameters()], lr=0.1)
    steps, k = 6, 5
    run = nr.train(model, task, steps, 1, ("sgd", {"lr": 0.1}), tbptt=k, seed=0,
                   progress=False)  # fmt: skip

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    chunks = [(0, 5), (5, 10), (10, 12)] if readout == "all" else [(10, 12)]
    want = []
    for s in range(steps + 1):
        t0, t1 = chunks[s % len(chunks)]
        if s % len(chunks) == 0:  # a new pass over the sequence starts from zeros
            state = None
            if readout == "last":  # the chunks before the last carry the state, no gradient
                with torch.no_grad():
                    for a in range(0, 10, k):
                        _, state = rnn(xt[a : a + k], state)
        out, state = rnn(xt[t0:t1], state)
        pred = head(out) if readout == "all" else head(out[-1])
        loss = torch.nn.functional.mse_loss(pred, yt[t0:t1] if readout == "all" else yt)
        want.append(loss.item())
        if s < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
        state = tuple(v.detach() for v in state) if isinstance(state, tuple) else state.detach()
    np.testing.assert_allclose(run.loss.values, want, rtol=1e-10)
    for name, p in rnn.named_parameters():
        np.testing.assert_allclose(model.params[name], p.detach().numpy(), rtol=1e-10,
                                   atol=1e-14)  # fmt: skip
    np.testing.assert_allclose(model.params["weight_out"], head.weight.detach().numpy(),
                               rtol=1e-10)  # fmt: skip


def test_tbptt_and_lengths_errors():
    task = ragged_task()
    bi = nr.RNN(2, 3, bidirectional=True, seed=0, output_size=2, readout="last")
    with pytest.raises(ValueError, match="tbptt needs a unidirectional model"):
        nr.train(bi, task, 2, 4, ("sgd", {"lr": 0.1}), tbptt=3, progress=False)
    uni = nr.RNN(2, 3, seed=0, output_size=2, readout="last")
    with pytest.raises(ValueError, match="tbptt needs sequences of equal length"):
        nr.train(uni, task, 2, 4, ("sgd", {"lr": 0.1}), tbptt=3, progress=False)
    ens = nr.ensemble([nr.RNN(2, 3, seed=s, output_size=2, readout="last") for s in (0, 1)])
    with pytest.raises(ValueError, match="one seed for all members"):
        nr.train(ens, task, 2, 4, ("sgd", {"lr": 0.1}), seed=[0, 1], progress=False)
    with pytest.raises(ValueError, match="early_stopping"):
        nr.train(uni, task, 2, 4, ("sgd", {"lr": 0.1}), early_stopping={"wait": 3}, progress=False)
    with pytest.raises(ValueError, match="model.input_size must equal task.input_size = 2"):
        nr.train(nr.RNN(3, 3, output_size=2, readout="last"), task, 2, 4, ("adam", {"lr": 1}))


def test_a_sweep_trains_on_a_file_of_sequences_beside_its_config(tmp_path):
    task = ragged_task(seed=2)
    task.save(tmp_path / "data.npz")
    (tmp_path / "sweep.toml").write_text(
        '[model]\ncell = "gru"\nhidden_size = 3\n'
        '[task]\nname = "sequences"\npath = "data.npz"\nseed = 2\n'
        "[train]\nsteps = 3\nbatch_size = 4\nlr = 0.01\nearly_stopping = 5\n"
        "[grid]\nseed = [0, 1]\n"
    )
    counts = nr.sweep.run(tmp_path / "sweep.toml", tmp_path / "s.zarr", workers=1,
                          progress=False)  # fmt: skip
    assert counts["ok"] == 2
    ds = nr.open(tmp_path / "s.zarr")
    assert ds.sizes["seed"] == 2 and np.isfinite(ds.test_loss.isel(step=-1)).all()
    stored = json.loads(ds.attrs["config"])["task"]  # the file beside the config, pinned
    assert stored["sha1"] == task.sha1 and stored["path"] == str(tmp_path / "data.npz")
    ragged_task(seed=3).save(tmp_path / "data.npz")  # other data: resuming refuses them
    with pytest.raises(ValueError, match="holds a sweep of a different config"):
        nr.sweep.run(tmp_path / "sweep.toml", tmp_path / "s.zarr", workers=1, progress=False)


def test_token_model_with_tbptt_ensemble_is_each_member_alone():
    """Token ids through an embedding, truncated BPTT with the state carried: bit for bit."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, (13, 10))
    task = Sequences(ids, np.roll(ids, -1, axis=0), validation=0.2, n_classes=6)
    assert task.vocab_size == 6 and task.input_size is None

    def build():
        return [nr.LSTM(3, 4, vocab_size=6, output_size=6, seed=s) for s in (0, 1)]

    kw = dict(optimizer=("adam", {"lr": 1e-2}), tbptt=5, eval_every=2, progress=False)
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, task, 7, 4, seed=2, **kw)
    for k, m in enumerate(build()):
        xr.testing.assert_identical(runs[k], nr.train(m, task, 7, 4, seed=2, **kw))
    with pytest.raises(ValueError, match="model.vocab_size must equal task.vocab_size = 6"):
        nr.train(nr.LSTM(3, 4, output_size=6), task, 1, 2, ("adam", {"lr": 0.1}), progress=False)


@pytest.mark.parametrize("readout", ["all", "last"])
def test_predict_in_pieces_of_steps_carries_the_state(readout):
    model = nr.GRU(2, 4, num_layers=2, seed=0, output_size=1, readout=readout)
    x = np.random.default_rng(1).standard_normal((17, 5, 2))
    np.testing.assert_allclose(model.predict(x, steps=4, chunk=2), model.forward(x).output,
                               rtol=1e-13, atol=1e-15)  # fmt: skip
    with pytest.raises(ValueError, match="steps needs a unidirectional model"):
        model.predict(x, lengths=[3, 17, 4, 5, 6], steps=4)


def test_a_test_set_that_does_not_fit_fails_before_any_update():
    class Broken(nr.tasks.Adding):
        def test_set(self, rng=None):
            x, y = super().test_set(rng)
            return x[..., :1], y  # one input channel instead of two

    model = nr.RNN(2, 3, seed=0, output_size=1, readout="last")
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match="its test set does not fit the model: x must have"):
        nr.train(model, Broken(T=5), 10, 4, ("sgd", {"lr": 0.1}), progress=False)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])


def test_a_one_member_ensemble_is_its_member():
    """K = 1 keeps the member axis everywhere (it once got a second one in backward)."""
    task = ragged_task(readout="all")
    build = lambda: nr.GRU(2, 3, seed=0, output_size=1)  # noqa: E731
    ens = nr.ensemble([build()])
    (run,) = nr.training.train_members(ens, task, 3, 4, ("adam", {"lr": 1e-2}), seed=0,
                                       progress=False)  # fmt: skip
    xr.testing.assert_identical(run, nr.train(build(), task, 3, 4, ("adam", {"lr": 1e-2}),
                                              seed=0, progress=False))  # fmt: skip
    x, _, lengths = task.test_set()
    ds = nr.diagnostics.jacobian_norms(ens, x, lengths=lengths)
    assert ds.jacobian_norm.dims[0] == "member" and ds.sizes["member"] == 1
    assert nr.diagnostics.weight_powers(ens, 2).power_norm.sizes["member"] == 1
