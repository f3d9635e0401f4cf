"""A run that overflows is recorded as diverged: nothing raises, nothing recorded is lost,
and in an ensemble the other members train on exactly as alone (issue: reliability)."""

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn import sweep
from numrnn.tasks import Adding, Copy

pytestmark = pytest.mark.slow


def exploding_irnn(seed=0):
    """The issue's case: a ReLU RNN with W_hh = 3 I, trained by SGD with lr 1e3."""
    init = {"weight_hh": nr.init.identity(3.0)}
    return nr.RNN(2, 16, nonlinearity="relu", init=init, output_size=1, readout="last", seed=seed)


def overflowing_head(output_size=1, readout="last", input_size=2, seed=0):
    """A ReLU RNN whose every output is +-inf at the first forward pass (head weights 1e308)."""
    init = {"weight_ih": ("constant", {"v": 10.0}), "weight_out": ("constant", {"v": 1e308}),
            "bias": "zeros"}  # fmt: skip
    return nr.RNN(input_size, 16, nonlinearity="relu", output_size=output_size, readout=readout,
                  init=init, seed=seed)  # fmt: skip


def test_forward_overflow_during_training_is_recorded_as_diverged():
    model = exploding_irnn()
    ds = nr.train(model, Adding(30), 50, 8, nr.optim.SGD(lr=1e3), seed=0, progress=False)
    assert ds.attrs["status"] == "diverged"
    at = ds.attrs["diverged_at"]
    assert at >= 1 and ds.step.values[-1] == at
    assert np.isfinite(ds.loss.values[:at]).all() and not np.isfinite(ds.loss.values[at])
    assert np.isfinite(ds.test_loss.values[0])  # the evaluation before kept
    # the weights are those that overflowed (the update made before the diverged row)
    assert all(np.isfinite(v).all() for v in model.params.values())


@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_first_forward_that_overflows(loss):
    if loss == "mse":
        model, task = overflowing_head(), Adding(6)
    else:
        task = Copy(T=4, n_symbols=3)
        model = overflowing_head(output_size=task.output_size, readout=task.readout,
                                 input_size=task.input_size)  # fmt: skip
    before = {k: v.copy() for k, v in model.params.items()}
    ds = nr.train(model, task, 5, 4, ("sgd", {"lr": 0.1}), seed=0, progress=False)
    assert ds.attrs["status"] == "diverged" and ds.attrs["diverged_at"] == 0
    assert ds.step.values.tolist() == [0] and np.isnan(ds.grad_norm_total.values[0])
    for k, v in before.items():  # no update was made
        np.testing.assert_array_equal(model.params[k], v)


def test_ensemble_member_that_overflows_leaves_the_others_as_alone():
    def build():
        calm = nr.RNN(2, 16, nonlinearity="relu", output_size=1, readout="last", seed=1)
        return [exploding_irnn(0), calm, overflowing_head(seed=2)]

    kw = dict(optimizer=("sgd", {"lr": 1e3}), clip=None, eval_every=5, progress=False)
    ens = nr.ensemble(build())
    runs = nr.training.train_members(ens, Adding(30), 20, 8, seed=3, **kw)
    assert [r.attrs["status"] for r in runs][0::2] == ["diverged", "diverged"]
    assert runs[2].attrs["diverged_at"] == 0
    for k, m in enumerate(build()):
        alone = nr.train(m, Adding(30), 20, 8, seed=3, **kw)
        xr.testing.assert_identical(runs[k], alone)
        for name, v in m.params.items():
            np.testing.assert_array_equal(ens.params[name][k], v)


def test_sweep_point_that_overflows_is_diverged_with_its_history(tmp_path):
    cfg = {
        "model": {"cell": "rnn_relu", "hidden_size": 16, "init": ["identity", {"scale": 3.0}]},
        "task": {"name": "adding", "T": 30},
        "train": {"steps": 30, "batch_size": 8, "optimizer": "sgd", "lr": 1000.0},
        "grid": {"seed": [0, 1]},
    }
    out = str(tmp_path / "diverge.zarr")
    counts = sweep.run(cfg, out, workers=1, progress=False)
    assert counts["diverged"] == 2 and counts["failed"] == 0
    ds = nr.open(out)
    for seed in (0, 1):
        at = int(ds.diverged_at.sel(seed=seed))
        loss = ds.loss.sel(seed=seed).values
        assert at >= 1 and np.isfinite(loss[:at]).all()
