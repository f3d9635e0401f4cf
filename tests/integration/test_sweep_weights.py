"""Sweep stores keep every point's weights: the trained networks come back, bit for bit, in a
new process, for any diagnostic (the research loop: sweep, keep, reopen, analyse)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import numrnn as nr
from numrnn import sweep

pytestmark = pytest.mark.slow

CFG = {
    "model": {"cell": "lstm", "hidden_size": 4, "forget_bias": 1.0},
    "task": {"name": "adding", "T": 6},
    "train": {"steps": 5, "batch_size": 4, "optimizer": "adam", "lr": 0.02, "weights_at": [2]},
    "grid": {"model.init": ["normal", "orthogonal"], "seed": [0, 1]},
}


def trained_alone(init, seed):
    """The point (init, seed) trained on its own, as nr.train would: the reference networks."""
    (point,) = [p for p in sweep.points(sweep.load_config(CFG))
                if p["coords"] == {"init": init, "seed": seed}]  # fmt: skip
    model, task, settings = sweep.config.build(point["config"])
    nr.train(model, task, **{**settings, "progress": False})
    return model


def test_store_rebuilds_the_trained_ensemble_in_a_new_process(tmp_path):
    out = str(tmp_path / "w.zarr")
    assert sweep.run(CFG, out, workers=1, progress=False)["ok"] == 4
    x = np.random.default_rng(0).standard_normal((6, 3, 2))
    np.save(tmp_path / "x.npy", x)
    code = f"""
import json, numpy as np, numrnn as nr
x = np.load({str(tmp_path / "x.npy")!r})
ens = nr.models_from({out!r})  # all four points, one shape: an Ensemble
np.save({str(tmp_path / "out.npy")!r}, ens.forward(x).output)
jac = nr.diagnostics.jacobian_norms(nr.models_from({out!r}, init="orthogonal", seed=1), x)
np.save({str(tmp_path / "jac.npy")!r}, jac.jacobian_norm.values)
first = nr.models_from({out!r}, when="initial", init="normal", seed=0)
print(json.dumps([ens.members, first.config]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    members, first_config = json.loads(proc.stdout)
    assert members == 4
    outs = np.load(tmp_path / "out.npy")
    for i, (init, seed) in enumerate([(i, s) for i in ("normal", "orthogonal") for s in (0, 1)]):
        model = trained_alone(init, seed)
        np.testing.assert_array_equal(outs[i], model.forward(x).output)
        if (init, seed) == ("orthogonal", 1):
            want = nr.diagnostics.jacobian_norms(model, x).jacobian_norm.values
            np.testing.assert_array_equal(np.load(tmp_path / "jac.npy"), want)
    fresh = nr.LSTM(2, 4, output_size=1, readout="last", init="normal", seed=0, forget_bias=1.0)
    assert first_config == fresh.config


def test_points_without_weights_are_named(tmp_path):
    cfg = {**CFG, "grid": {"model.hidden_size": [3, 4]}}
    out = str(tmp_path / "shapes.zarr")
    sweep.run(cfg, out, workers=1, progress=False)
    with pytest.raises(ValueError, match="do not share a shape"):
        nr.models_from(out)
    assert nr.models_from(out, hidden_size=3).hidden_size == 3
    assert os.path.exists(out)


def test_before_after_diagnostics_and_their_report(tmp_path):
    grid = {"model.init": ["normal", "orthogonal"]}
    cfg = {**CFG, "diagnostics": {"before_after": True}, "grid": grid}
    out = str(tmp_path / "ba.zarr")
    assert sweep.run(cfg, out, workers=1, progress=False)["ok"] == 2
    ds = nr.open(out)
    assert ds["lyapunov_top"].dims == ("init", "when", "layer", "direction", "exponent")
    assert ds["jacobian_decay"].dims == ("init", "when", "layer", "direction")
    assert ds["test_grad_norm"].dims == ("init", "when", "layer", "direction", "time")
    assert np.isnan(ds["jacobian_decay"].sel(when="step 2")).all()  # only before and after
    # the "initial" entries are the initial network's, the "final" ones the trained one's
    task = nr.tasks.Adding(6)
    for when in ("initial", "final"):
        net = nr.models_from(ds, when=when, init="orthogonal")
        x = task.test_set()[0][:, :16]
        lam = nr.diagnostics.lyapunov_spectrum(net, x, n_exponents=3, warmup=1)
        np.testing.assert_allclose(ds["lyapunov_top"].sel(init="orthogonal", when=when),
                                   lam.lyapunov.mean("batch"), rtol=1e-12)  # fmt: skip
    assert not np.allclose(ds["lyapunov_top"].sel(when="initial"),
                           ds["lyapunov_top"].sel(when="final"))  # fmt: skip
    from numrnn.report import report

    written = report(out, str(tmp_path / "report"))
    assert any(p.endswith("before_after.png") for p in written)
    assert os.path.getsize(os.path.join(tmp_path, "report", "before_after.png")) > 10_000
    with pytest.raises(sweep.ConfigError, match="diagnostics.before_after must be true or false"):
        sweep.load_config({**cfg, "diagnostics": {"before_after": "yes"}})
