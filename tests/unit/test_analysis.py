"""numrnn.analysis: decay rates of Jacobian norms and summaries over seeds."""

import numpy as np
import pytest
import xarray as xr

from numrnn import sweep
from numrnn.analysis import decay_rate, summarize

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("r", [-0.3, 0.0, 0.25])
def test_decay_rate_of_an_exact_exponential(r):
    T = 9
    t = np.arange(T)
    lag = np.stack([T - 1 - t, t])  # forward: T - 1 - t; backward: t
    da = xr.DataArray(np.exp(r * lag), dims=("direction", "time"),
                      coords={"direction": ["forward", "backward"], "time": t},
                      name="jacobian_norm")  # fmt: skip
    rate = decay_rate(da)
    assert rate.dims == ("direction",)
    np.testing.assert_allclose(rate.values, [r, r], rtol=0, atol=1e-12)
    # the same through a Dataset, with NaN past a sequence's end left out
    short = da.where(da["time"] < T - 2)
    rate = decay_rate(xr.Dataset({"jacobian_norm": short}))
    np.testing.assert_allclose(rate.values, [r, r], rtol=0, atol=1e-12)


def test_summarize_over_seed_matches_numpy(rng):
    loss = rng.uniform(0.1, 2.0, size=(2, 3, 5))  # (init, seed, step)
    loss[1, 2, 3:] = np.nan  # a diverged run: its last finite value is at step 2
    ds = xr.Dataset(
        {"loss": (("init", "seed", "step"), loss),
         "status": (("init", "seed"), np.array([["ok"] * 3, ["ok", "ok", "diverged"]]))},
        coords={"init": ["normal", "identity"], "seed": [0, 1, 2], "step": np.arange(5)},
    )  # fmt: skip
    out = summarize(ds)
    final = loss[:, :, -1].copy()
    final[1, 2] = loss[1, 2, 2]
    np.testing.assert_array_equal(out["final_loss"].values, final)
    np.testing.assert_allclose(out["final_loss_mean"].values, final.mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(out["final_loss_std"].values, final.std(axis=1), rtol=1e-14)
    assert out["n_ok"].values.tolist() == [3, 2]
    assert out["final_loss_mean"].dims == ("init",)


def test_report_of_a_sweep_over_seeds_only(tmp_path):
    """A grid of one dimension (seed): the summary's "over seeds" part is one row (it was a
    0-dimensional table that pandas could not index)."""
    from numrnn.report import report

    out = str(tmp_path / "seeds.zarr")
    sweep.run({"model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
               "train": {"steps": 4, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
               "grid": {"seed": [0, 1]}}, out, workers=1, progress=False)  # fmt: skip
    written = report(out, str(tmp_path / "report"))
    summary = open(written[0]).read()
    assert "over seeds" in summary and "\nall " in summary
