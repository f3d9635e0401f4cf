"""The training loop: learning, divergence, determinism, recording and saving."""

import json
import math

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn.tasks import Adding, Copy, SequentialDigits


def small_run(seed=0, model_seed=0, steps=12, **kwargs):
    model = nr.RNN(2, 8, seed=model_seed, output_size=1, readout="last")
    kw = dict(optimizer=("adam", {"lr": 1e-2}), seed=seed, eval_every=5, progress=False)
    kw.update(kwargs)
    return model, nr.train(model, Adding(10), steps, 4, **kw)


@pytest.mark.slow
def test_lstm_learns_the_adding_problem():
    model = nr.LSTM(2, 32, seed=1, output_size=1, readout="last", forget_bias=1.0)
    ds = nr.train(
        model, Adding(50), 1500, 32, ("adam", {"lr": 1e-2}), seed=1, eval_every=500, progress=False
    )
    assert ds.attrs["status"] == "ok"
    test = ds.test_metric.dropna("step")
    assert list(test.step.values) == [0, 500, 1000, 1500]
    assert test[0] > Adding(50).baseline  # untrained
    assert test[-1] < 0.01


def test_record_layout_and_attrs():
    model, ds = small_run(steps=12, record_every=4)
    # recorded: every 4th step, the evaluations (every 5th) and the last step
    assert list(ds.step.values) == [0, 4, 5, 8, 10, 12]
    assert np.isfinite(ds.loss).all() and np.isfinite(ds.grad_norm_total).all()
    assert list(ds.test_loss.dropna("step").step.values) == [0, 5, 10, 12]
    np.testing.assert_array_equal(ds.test_metric, ds.test_loss)  # MSE task
    assert ds.attrs["status"] == "ok" and ds.attrs["diverged_at"] == -1
    assert nr.results.config(ds) == model.config
    train = json.loads(ds.attrs["train"])
    assert train["optimizer"] == {
        "name": "adam",
        "lr": 0.01,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.0,
    }
    assert train["seed"] == 0 and ds.attrs["task"] == '{"name": "adding", "T": 10}'
    assert ds.attrs["baseline"] == pytest.approx(1 / 6)


def test_first_row_is_the_initial_model():
    model = nr.RNN(2, 8, seed=0, output_size=1, readout="last")
    x_test, y_test = Adding(10).test_set()
    before = nr.losses.mse(model.forward(x_test).output, y_test)[0]
    ds = nr.train(model, Adding(10), 3, 4, ("sgd", {"lr": 0.1}), seed=0, progress=False)
    assert ds.test_loss.sel(step=0) == before
    after = nr.losses.mse(model.forward(x_test).output, y_test)[0]
    assert ds.test_loss.sel(step=3) == after


def test_determinism_by_seed():
    _, a = small_run(seed=3)
    _, b = small_run(seed=3)
    _, c = small_run(seed=4)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a.loss, c.loss)
    # dropout masks come from the seed too
    runs = []
    for _ in range(2):
        model = nr.GRU(2, 6, num_layers=2, seed=0, output_size=1, readout="last", dropout=0.3)
        runs.append(
            nr.train(model, Adding(8), 5, 4, ("adam", {"lr": 1e-2}), seed=9, progress=False)
        )
    xr.testing.assert_identical(*runs)


def test_divergence_is_recorded_not_raised():
    model = nr.RNN(
        2,
        16,
        seed=0,
        output_size=1,
        readout="last",
        init={"weight_hh": ("normal", {"std": 1.0}), "weight_ih": ("normal", {})},
    )
    with np.errstate(all="raise"):  # the loop must silence its own floating-point warnings
        ds = nr.train(model, Adding(20), 200, 8, ("sgd", {"lr": 1e6}), seed=0, progress=False)
    assert ds.attrs["status"] == "diverged"
    at = ds.attrs["diverged_at"]
    assert 0 < at < 200
    assert ds.step.values[-1] == at and ds.sizes["step"] == at + 1
    before = ds.sel(step=slice(None, at - 1))
    assert np.isfinite(before.loss).all() and np.isfinite(before.grad_norm_total).all()
    last = ds.sel(step=at)
    assert not (math.isfinite(last.loss) and math.isfinite(last.grad_norm_total))


def test_clipping_records_the_pre_clip_norm():
    _, free = small_run(steps=6)
    _, clipped = small_run(steps=6, clip=1e-3)
    _, valued = small_run(steps=6, clip_value=1e-4, clip=1.0)
    # same parameters and batch at step 0: the same pre-clip norm, then different paths
    assert free.grad_norm_total[0] == clipped.grad_norm_total[0] == valued.grad_norm_total[0]
    assert clipped.grad_norm_total[0] > 1e-3
    assert not np.allclose(free.loss[1:], clipped.loss[1:])
    assert not np.allclose(clipped.loss[1:], valued.loss[1:])


def test_diagnostics_snapshots():
    model = nr.LSTM(2, 4, num_layers=2, bidirectional=True, seed=0, output_size=1, readout="last")
    ds = nr.train(
        model,
        Adding(7),
        6,
        3,
        ("adam", {"lr": 1e-2}),
        seed=0,
        progress=False,
        diagnostics=("grad_norm", "jacobian_norm"),
        diagnostics_every=4,
    )
    for name in ("grad_norm", "cell_grad_norm", "jacobian_norm"):
        assert ds[name].dims == ("step", "layer", "direction", "time")
        assert ds[name].shape == (7, 2, 2, 7)
        taken = ds[name].notnull().all(("layer", "direction", "time"))
        assert list(ds.step[taken].values) == [0, 4, 6]
        assert (ds[name].sel(step=[0, 4, 6]) > 0).all()
    assert list(ds.direction.values) == ["forward", "backward"]
    # ds_T/ds_t is the identity at the direction's last step
    jac = ds.jacobian_norm.sel(step=0)
    np.testing.assert_allclose(jac.sel(direction="forward", time=6), 1.0, rtol=1e-10)
    np.testing.assert_allclose(jac.sel(direction="backward", time=0), 1.0, rtol=1e-10)
    # the grad-norm snapshot at step 0 is the batch mean from BPTT on the first batch
    fresh = nr.LSTM(2, 4, num_layers=2, bidirectional=True, seed=0, output_size=1, readout="last")
    data_rng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0])
    x, y = Adding(7).sample(3, data_rng)
    res = fresh.forward(x)
    g = fresh.backward(res, nr.losses.mse(res.output, y)[1], norms=True)
    np.testing.assert_allclose(ds.grad_norm.sel(step=0), g.norms["grad_norm"].mean(axis=2))


def test_classification_metric_is_accuracy():
    model = nr.GRU(1, 8, seed=0, output_size=10, readout="last")
    ds = nr.train(model, SequentialDigits(), 3, 16, ("adam", {"lr": 1e-2}), seed=0, progress=False)
    acc = ds.test_metric.dropna("step")
    assert ((acc >= 0) & (acc <= 1)).all() and ds.attrs["metric"] == "accuracy"
    model = nr.RNN(10, 8, seed=0, output_size=9, readout="all")
    ds = nr.train(model, Copy(5), 2, 4, nr.optim.RMSprop(1e-3), seed=0, progress=False)
    assert ds.attrs["metric"] == "accuracy" and ds.attrs["status"] == "ok"


def test_roundtrip_netcdf(tmp_path):
    model = nr.RNN(2, 4, seed=0, output_size=1, readout="last")
    ds = nr.train(
        model,
        Adding(5),
        4,
        2,
        ("adam", {"lr": 1e-2}),
        seed=0,
        progress=False,
        diagnostics=("grad_norm", "jacobian_norm"),
        diagnostics_every=2,
    )
    path = nr.save(ds, tmp_path / "run.nc")
    xr.testing.assert_identical(nr.open(path), ds)


def test_model_must_match_the_task():
    task = Adding(5)
    opt = ("sgd", {"lr": 0.1})
    with pytest.raises(ValueError, match=r"model.output_size must equal task.output_size = 1"):
        nr.train(nr.RNN(2, 4), task, 1, 2, opt, progress=False)
    with pytest.raises(ValueError, match=r"model.input_size must equal task.input_size = 2"):
        nr.train(nr.RNN(3, 4, output_size=1, readout="last"), task, 1, 2, opt, progress=False)
    with pytest.raises(ValueError, match=r"model.readout must equal task.readout = 'last'"):
        nr.train(nr.RNN(2, 4, output_size=1), task, 1, 2, opt, progress=False)


def test_bad_arguments():
    model = nr.RNN(2, 4, output_size=1, readout="last")
    task = Adding(5)
    with pytest.raises(ValueError, match="unknown diagnostics"):
        nr.train(model, task, 1, 2, ("sgd", {"lr": 0.1}), diagnostics=("x",), progress=False)
    with pytest.raises(TypeError, match="optimizer must be"):
        nr.train(model, task, 1, 2, 0.1, progress=False)
    with pytest.raises(ValueError, match="unknown optimizer"):
        nr.train(model, task, 1, 2, ("adagrad", {"lr": 0.1}), progress=False)
    with pytest.raises(ValueError, match="clip must be"):
        nr.train(model, task, 1, 2, ("sgd", {"lr": 0.1}), clip=0, progress=False)


@pytest.mark.parametrize("shared_seed", [False, True])
def test_ensemble_trains_each_member_exactly_as_alone(shared_seed):
    """Batches, dropout masks, clipping, Adam and divergence per member, bit for bit; the
    third member diverges at step 0 (its weights overflow) and the others train on."""

    def build():
        kw = dict(num_layers=2, dropout=0.25, output_size=1, readout="last")
        return [
            nr.LSTM(2, 5, seed=1, init="orthogonal", **kw),
            nr.LSTM(2, 5, seed=2, forget_bias=1.0, **kw),
            nr.LSTM(2, 5, seed=3, init={"weight_out": ("constant", {"v": 1e300})}, **kw),
        ]

    seeds = 7 if shared_seed else [7, 8, 9]
    kw = dict(optimizer=("adam", {"lr": 1e-2}), clip=0.5, eval_every=3, progress=False,
              diagnostics=("grad_norm", "jacobian_norm"), diagnostics_every=4)  # fmt: skip
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, Adding(6), 9, 4, seed=seeds, **kw)
    assert [r.attrs["status"] for r in runs] == ["ok", "ok", "diverged"]
    assert [r.attrs["diverged_at"] for r in runs] == [-1, -1, 0]
    for k, m in enumerate(build()):
        alone = nr.train(m, Adding(6), 9, 4, seed=seeds if shared_seed else seeds[k], **kw)
        xr.testing.assert_identical(runs[k], alone)  # attrs too: each member's own config
        for name, v in m.params.items():  # final weights; the diverged one's as it diverged
            np.testing.assert_array_equal(ens.params[name][k], v)
    # train() stacks the same records over a member dimension
    ds = nr.train(nr.ensemble(build()), Adding(6), 9, 4, seed=seeds, **kw)
    assert list(ds.status.values) == ["ok", "ok", "diverged"]
    assert list(ds.diverged_at.values) == [-1, -1, 0]
    assert ds.loss.dims == ("member", "step") and ds.grad_norm.dims[:2] == ("member", "step")
    for k, run in enumerate(runs):
        np.testing.assert_array_equal(ds.loss.isel(member=k).sel(step=run.step), run.loss)
    assert np.isnan(ds.loss.isel(member=2).sel(step=slice(1, None))).all()
    assert np.isnan(ds.grad_norm.isel(member=2)).all()
    assert json.loads(ds.attrs["train"])["seed"] == ([7] * 3 if shared_seed else [7, 8, 9])
    assert json.loads(ds.attrs["config"])["members"] == 3


def test_ensemble_train_rejects_wrong_seeds():
    ens = nr.ensemble([nr.RNN(2, 3, seed=s, output_size=1, readout="last") for s in (0, 1)])
    with pytest.raises(ValueError, match="seed"):
        nr.train(ens, Adding(5), 1, 2, ("sgd", {"lr": 0.1}), seed=[1, 2, 3], progress=False)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ensemble_clipping_by_value_and_norm_is_each_member_alone(dtype):
    """Both clippings run over all members at once: each member's record and weights are
    still those of the member alone, with a weight matrix longer than one dot's piece
    (SERIAL_DOT numbers: W_hh of 100 units) and Adam."""
    build = lambda: [nr.RNN(2, 100, seed=s, output_size=1, readout="last", dtype=dtype)  # noqa: E731
                     for s in (0, 1, 2)]  # fmt: skip
    kw = dict(clip=0.05, clip_value=0.01, seed=4, eval_every=2, progress=False)
    opt = ("adam", {"lr": 1e-3})
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, Adding(5), 4, 3, opt, **kw)
    for k, m in enumerate(build()):
        alone = nr.train(m, Adding(5), 4, 3, opt, **kw)
        xr.testing.assert_identical(runs[k], alone)
        for name, v in m.params.items():
            np.testing.assert_array_equal(ens.params[name][k], v)
    assert (runs[0].grad_norm_total > 0.05).any()  # the norm clipping did clip


def test_ensemble_learning_rate_grid_trains_each_member_as_alone():
    """One rate per member (a learning-rate grid as one ensemble): each member's record and
    weights are those of the member trained alone with its rate; the stack records all."""
    build = lambda: [nr.RNN(2, 4, seed=s, output_size=1, readout="last") for s in (0, 1)]  # noqa: E731
    rates = [0.3, 0.01]
    kw = dict(clip=1.0, seed=3, eval_every=2, progress=False)
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, Adding(5), 4, 3, ("sgd", {"lr": rates}), **kw)
    for k, m in enumerate(build()):
        alone = nr.train(m, Adding(5), 4, 3, ("sgd", {"lr": rates[k]}), **kw)
        xr.testing.assert_identical(runs[k], alone)
    ds = nr.train(nr.ensemble(build()), Adding(5), 4, 3, ("sgd", {"lr": rates}), **kw)
    assert json.loads(ds.attrs["train"])["optimizer"]["lr"] == rates
    with pytest.raises(ValueError, match="lr has 2 rates, one per ensemble member, but the "
                                         "model is a single network"):  # fmt: skip
        nr.train(build()[0], Adding(5), 1, 3, ("sgd", {"lr": rates}), progress=False)
    with pytest.raises(ValueError, match="but the model has 3 members"):
        nr.train(nr.ensemble(build() + build()[:1]), Adding(5), 1, 3, ("sgd", {"lr": rates}),
                 progress=False)  # fmt: skip


# -- learning-rate schedules --------------------------------------------------------------


def test_schedule_sets_and_records_the_rate_of_each_update():
    """StepLR-like decay: row s records the rate of update s + 1 (NaN at the last row, where
    none follows); attrs keep the schedule and the optimizer's rate as built, which an
    optimizer instance gets back at the end."""
    opt = nr.optim.SGD(lr=0.1)
    model = nr.RNN(2, 4, seed=0, output_size=1, readout="last")
    sched = ("step", {"step_size": 3, "gamma": 0.5})
    ds = nr.train(model, Adding(5), 7, 3, opt, seed=0, progress=False, schedule=sched)
    want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, math.nan]
    rate = ds.learning_rate
    np.testing.assert_allclose(rate, want, rtol=1e-15)
    assert rate.dims == ("step",) and rate.attrs["units"] == "1" and rate.attrs["description"]
    train = json.loads(ds.attrs["train"])
    assert train["schedule"] == ["step", {"step_size": 3, "gamma": 0.5}]
    assert train["optimizer"]["lr"] == 0.1 and opt.lr == 0.1 and opt.steps == 7
    # recorded rows only; a diverged row makes no update
    _, sparse = small_run(steps=12, record_every=4, schedule=("exponential", {"gamma": 0.5}))
    want = [0.01 * 0.5**s for s in (0, 4, 5, 8, 10)] + [math.nan]
    np.testing.assert_allclose(sparse.learning_rate, want, rtol=1e-15)
    model = nr.RNN(
        2,
        16,
        seed=0,
        output_size=1,
        readout="last",
        init={"weight_hh": ("normal", {"std": 1.0}), "weight_ih": ("normal", {})},
    )
    ds = nr.train(model, Adding(20), 200, 8, ("sgd", {"lr": 1e6}), seed=0, progress=False,
                  schedule=("cosine", {"T_max": 400}))  # fmt: skip
    assert ds.attrs["status"] == "diverged" and np.isnan(ds.learning_rate[-1])
    assert np.isfinite(ds.learning_rate[:-1]).all()


def test_ensemble_with_a_rate_per_member_and_a_schedule_is_each_member_alone():
    """The factor multiplies each member's own rate; each member's record (its
    ``learning_rate`` included) and weights are those of the member trained alone with its
    rate."""
    build = lambda: [nr.GRU(2, 4, seed=s, output_size=1, readout="last") for s in (0, 1)]  # noqa: E731
    rates = [0.05, 0.002]
    sched = ("sequential", {"schedules": [("warmup", {"start_factor": 0.25, "total_iters": 2}),
                                          ("cosine", {"T_max": 4, "min_factor": 0.5})],
                            "milestones": [2]})  # fmt: skip
    kw = dict(clip=1.0, seed=[3, 4], eval_every=3, progress=False, schedule=sched)
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, Adding(5), 6, 3, ("adamw", {"lr": rates}), **kw)
    factors = [0.25, 0.625, 1.0, 0.5 + 0.25 * (1 + math.cos(math.pi / 4)), 0.75]
    for k, m in enumerate(build()):
        alone = nr.train(m, Adding(5), 6, 3, ("adamw", {"lr": rates[k]}),
                         **{**kw, "seed": kw["seed"][k]})  # fmt: skip
        xr.testing.assert_identical(runs[k], alone)
        np.testing.assert_allclose(
            runs[k].learning_rate[:5], [rates[k] * f for f in factors], rtol=1e-15
        )
        assert np.isnan(runs[k].learning_rate[-1])
    ds = nr.train(nr.ensemble(build()), Adding(5), 6, 3, ("adamw", {"lr": rates}), **kw)
    assert ds.learning_rate.dims == ("member", "step")
    np.testing.assert_array_equal(ds.learning_rate.isel(step=0), [0.25 * r for r in rates])


@pytest.mark.parametrize("schedule", [None, ("cosine", {"T_max": 8, "min_factor": 0.1})])
def test_training_is_the_hand_written_loop(schedule):
    """nr.train against a loop written here from the public pieces: the batches from the
    first of the two streams spawned from the seed, forward, MSE, BPTT, norm clipping, and
    Adam at the rate 0.02 * factor(s) for update s + 1 (the cosine by its formula; past
    T_max = 8 it rises again). Without a schedule the rate stays 0.02 throughout."""
    steps, batch, lr, clip, seed = 11, 4, 0.02, 1.0, 5
    task = Adding(7)

    def model():
        return nr.RNN(2, 6, num_layers=2, seed=1, output_size=1, readout="last")

    def rate(s):
        if schedule is None:
            return lr
        return lr * (0.1 + 0.9 * (1 + math.cos(math.pi * s / 8)) / 2)

    trained = model()
    ds = nr.train(trained, task, steps, batch, ("adam", {"lr": lr}), clip=clip, seed=seed,
                  progress=False, schedule=schedule)  # fmt: skip

    by_hand = model()
    data_rng, drop_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    opt = nr.optim.Adam(lr=lr)
    losses, rates = [], []
    for s in range(steps + 1):
        x, y = task.sample(batch, data_rng)
        res = by_hand.forward(x, train=True, rng=drop_rng)
        loss, d_out = nr.losses.mse(res.output, y)
        losses.append(loss)
        if s == steps:
            break
        grads = by_hand.backward(res, d_out, input_grad=False).params
        nr.optim.clip_grad_norm(grads, clip)
        opt.lr = rate(s)
        rates.append(opt.lr)
        opt.step(by_hand.params, grads)

    np.testing.assert_allclose(ds.learning_rate, [*rates, math.nan], rtol=1e-14)
    np.testing.assert_allclose(ds.loss, losses, rtol=1e-12)
    for name, v in by_hand.params.items():
        np.testing.assert_allclose(trained.params[name], v, rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(ds[name].sel(when="final").values.reshape(v.shape), v,
                                   rtol=1e-12, atol=1e-15, err_msg=name)  # fmt: skip
    if schedule is None:  # the same operations: bit for bit
        for name, v in by_hand.params.items():
            np.testing.assert_array_equal(trained.params[name], v, err_msg=name)


def test_a_schedule_of_factor_one_changes_nothing():
    """A schedule whose factor is always 1 gives the run without one, bit for bit (the rate
    set before each update is the rate as built); only the attrs name the schedule."""
    _, plain = small_run(steps=6, clip=0.5)
    _, same = small_run(steps=6, clip=0.5, schedule=("step", {"step_size": 100}))
    assert json.loads(plain.attrs["train"])["schedule"] is None
    same.attrs["train"] = plain.attrs["train"]
    xr.testing.assert_identical(plain, same)
    np.testing.assert_array_equal(plain.learning_rate, [0.01] * 6 + [math.nan])


def test_bad_schedule():
    model = nr.RNN(2, 4, output_size=1, readout="last")
    opt = ("sgd", {"lr": 0.1})
    with pytest.raises(ValueError, match="unknown schedule 'cosin'"):
        nr.train(model, Adding(5), 1, 2, opt, schedule=("cosin", {}), progress=False)
    with pytest.raises(ValueError, match="T_max must be a positive integer"):
        nr.train(model, Adding(5), 1, 2, opt, schedule=("cosine", {"T_max": 0}), progress=False)
    with pytest.raises(TypeError, match="schedule must be"):
        nr.train(model, Adding(5), 1, 2, opt, schedule=0.5, progress=False)
