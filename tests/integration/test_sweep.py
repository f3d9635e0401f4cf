"""Sweeps (numrnn.sweep): configs, the store, executors, failures and resuming. The CLI's
commands are tested in test_cli.py, numrnn.analysis in unit/test_analysis.py, and the
helpers shared with test_cli.py (tiny configs, running the CLI) are in tests/helpers.py.

Every sweep here is tiny (hidden size 4-8, T 6-12, a few steps); the module runs in well
under a minute. The parallel paths use a real local process pool and a real
``dask.distributed.LocalCluster`` bound to the loopback interface only.
"""

import functools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from helpers import _edit, cli, no_store, tiny, to_toml

import numrnn as nr
from numrnn import sweep
from numrnn.sweep import ConfigError, executors, point, store

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# the example config of the sweeps issue, exactly as written there
ISSUE_TOML = """\
[model]
cell = "rnn_tanh"
hidden_size = 8
[task]
name = "adding"
T = 12
[train]
steps = 40
batch_size = 8
optimizer = "adam"
lr = 0.01
clip = 1.0
[grid]
"model.init" = ["normal", "orthogonal", "identity"]
seed = [0, 1]
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep run in this process (workers=1), opened with nr.open."""
    path = str(tmp_path_factory.mktemp("ref") / "ref.zarr")
    counts = sweep.run(tiny(), path, workers=1, progress=False)
    assert counts == {"ok": 4, "diverged": 0, "failed": 0}
    return nr.open(path)


# -- the issue's example ------------------------------------------------------------------


def test_issue_example_runs_as_written(tmp_path):
    config = tmp_path / "adding_inits.toml"
    config.write_text(ISSUE_TOML)
    out = str(tmp_path / "runs.zarr")
    counts = sweep.run(str(config), out, workers=1, progress=False)
    assert counts == {"ok": 6, "diverged": 0, "failed": 0}

    ds = nr.open(out)
    assert dict(ds["status"].sizes) == {"init": 3, "seed": 2}
    assert list(ds["init"].values) == ["normal", "orthogonal", "identity"]
    assert list(ds["seed"].values) == [0, 1]
    assert (ds["status"] == "ok").all()
    assert (ds["diverged_at"] == -1).all()
    assert list(ds["step"].values) == list(range(41))
    assert ds["loss"].dims == ("init", "seed", "step")
    assert np.isfinite(ds["loss"]).all()
    # the runs differ by initializer and by seed
    assert not np.array_equal(ds["loss"].isel(seed=0).values, ds["loss"].isel(seed=1).values)
    assert not np.array_equal(ds["loss"].isel(init=0).values, ds["loss"].isel(init=1).values)
    assert json.loads(ds.attrs["grid"]) == {"init": "model.init", "seed": "seed"}
    # the shipped example is this config
    shipped = os.path.join(ROOT, "experiments", "sweeps", "adding_inits.toml")
    assert sweep.load_config(shipped) == sweep.load_config(ISSUE_TOML)


def test_a_schedule_in_toml_and_in_the_grid(tmp_path):
    """``schedule = ["cosine", {T_max = 4}]`` (TOML has no tuples: a 2-element list is the
    pair), a grid key reaching into its arguments, and AdamW; the store records each
    point's learning rates."""
    toml = """\
[model]
cell = "rnn_tanh"
hidden_size = 4
[task]
name = "adding"
T = 6
[train]
steps = 5
batch_size = 4
optimizer = "adamw"
lr = 0.01
schedule = ["cosine", {T_max = 4, min_factor = 0.5}]
[grid]
"train.schedule.1.T_max" = [4, 8]
seed = [0, 1]
"""
    out = str(tmp_path / "cosine.zarr")
    assert sweep.run(toml, out, workers=1, progress=False) == {"ok": 4, "diverged": 0,
                                                                 "failed": 0}  # fmt: skip
    ds = nr.open(out)
    assert ds["learning_rate"].dims == ("T_max", "seed", "step") and list(ds["T_max"].values) == [
        4,
        8,
    ]
    for t_max in (4, 8):
        want = [0.01 * (0.5 + 0.25 * (1 + np.cos(np.pi * s / t_max))) for s in range(5)]
        for seed in (0, 1):
            got = ds["learning_rate"].sel(T_max=t_max, seed=seed).values
            np.testing.assert_allclose(got, [*want, np.nan], rtol=1e-14)
    config = json.loads(ds.attrs["config"])
    assert config["train"]["schedule"] == ["cosine", {"T_max": 4, "min_factor": 0.5}]


# -- parallel runs give the same store -------------------------------------------------------


def test_local_process_pool_gives_identical_store(tmp_path, reference):
    out = str(tmp_path / "pool.zarr")
    counts = sweep.run(tiny(), out, workers=2, progress=False)
    assert counts == {"ok": 4, "diverged": 0, "failed": 0}
    xr.testing.assert_identical(nr.open(out), reference)


def test_points_batched_into_ensembles_give_identical_store(tmp_path, reference, monkeypatch):
    groups = []
    real = sweep.run_group
    monkeypatch.setattr(executors, "run_group", lambda g, *a: groups.append(len(g)) or real(g, *a))
    for batch, sizes in ((None, [4]), (3, [3, 1]), (1, [1, 1, 1, 1])):
        groups.clear()
        out = str(tmp_path / f"batch{batch}.zarr")
        counts = sweep.run(tiny(), out, workers=1, progress=False, batch=batch)
        assert counts == {"ok": 4, "diverged": 0, "failed": 0}
        assert groups == sizes
        xr.testing.assert_identical(nr.open(out), reference)


def test_groups_keep_points_of_another_shape_apart():
    cfg = sweep.load_config(tiny(grid={"model.hidden_size": [3, 4], "seed": [0, 1, 2]}))
    got = sweep.groups(cfg, sweep.points(cfg), size=2)
    assert [[p["coords"] for p in g] for g in got] == [
        [{"hidden_size": 3, "seed": 0}, {"hidden_size": 3, "seed": 1}],
        [{"hidden_size": 3, "seed": 2}],
        [{"hidden_size": 4, "seed": 0}, {"hidden_size": 4, "seed": 1}],
        [{"hidden_size": 4, "seed": 2}],
    ]


def test_dask_cluster_gives_identical_store(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    out = str(tmp_path / "dask.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        counts = sweep.run(tiny(), out, scheduler=cluster.scheduler_address, progress=False)
    assert counts == {"ok": 4, "diverged": 0, "failed": 0}
    xr.testing.assert_identical(nr.open(out), reference)


# -- kill and resume --------------------------------------------------------------------------


def test_killed_sweep_resumes_to_the_uninterrupted_store(tmp_path):
    # 8 points of roughly half a second each, run one after another
    cfg = tiny(grid={"model.init": ["normal", "orthogonal"], "seed": [0, 1, 2, 3]},
               steps=300, batch_size=8)  # fmt: skip
    cfg["model"]["hidden_size"] = 8
    cfg["task"]["T"] = 12
    config = tmp_path / "resume.toml"
    config.write_text(to_toml(cfg))
    out = str(tmp_path / "resumed.zarr")
    command = [sys.executable, "-m", "numrnn.cli", "sweep", str(config), "--out", out,
               "--workers", "1"]  # fmt: skip

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(out):
                try:
                    with xr.open_zarr(out, zarr_format=2) as ds:
                        status = ds["status"].values
                except Exception:  # metadata caught mid-write: look again
                    status = None
                if status is not None and (status != "pending").any():
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status is not None and (status != "pending").any(), "no point finished in time"
    with xr.open_zarr(out, zarr_format=2) as ds:
        before = ds["status"].values.copy()
    n_done = int((before != "pending").sum())
    assert 0 < n_done < before.size, f"kill came too late: {n_done} of {before.size} done"
    assert set(before.ravel()) <= {"pending", "ok"}

    # the same command again runs exactly the points that were pending, each once
    done = cli("sweep", config, "--out", out, "--workers", "1").stdout
    assert f"{before.size - n_done} ok, 0 diverged, 0 failed" in done, done
    resumed = nr.open(out)
    assert (resumed["status"] == "ok").all()
    assert sweep.run(str(config), out, workers=1, progress=False) == {
        "ok": 0,
        "diverged": 0,
        "failed": 0,
    }  # nothing left to run

    full = str(tmp_path / "uninterrupted.zarr")
    sweep.run(str(config), full, workers=1, progress=False)
    xr.testing.assert_identical(resumed, nr.open(full))


# -- diverged and failed points ---------------------------------------------------------------


def test_diverged_point_is_recorded_and_the_others_are_ok(tmp_path):
    # plain SGD with lr 1e6 from N(0, 1) weights: the loss grows ~1e14 per step until inf
    cfg = tiny(grid={"train.lr": [0.01, 1e6]}, optimizer="sgd", steps=30)
    cfg["model"]["init"] = "normal"
    del cfg["train"]["lr"]
    out = str(tmp_path / "div.zarr")
    counts = sweep.run(cfg, out, workers=1, progress=False)
    assert counts == {"ok": 1, "diverged": 1, "failed": 0}
    ds = nr.open(out)
    assert list(ds["status"].values) == ["ok", "diverged"]
    assert list(ds["lr"].values) == [0.01, 1e6]
    ok, bad = ds.sel(lr=0.01), ds.sel(lr=1e6)
    assert int(ok["diverged_at"]) == -1 and np.isfinite(ok["loss"]).all()
    at = int(bad["diverged_at"])
    assert 0 < at <= 30
    # the diverged run keeps what it recorded up to the step where it diverged
    assert np.isfinite(bad["loss"].sel(step=slice(0, at - 1))).all()
    assert not np.isfinite(bad["loss"].sel(step=at))
    assert bad["loss"].sel(step=slice(at + 1, None)).isnull().all()


def test_failed_point_is_recorded_with_its_message_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import numrnn.training

    real = numrnn.training.train_members

    @functools.wraps(real)
    def train_members(model, task, steps, *args, **kwargs):
        seeds = kwargs.get("seed")
        if steps > 0 and 1 in (seeds if isinstance(seeds, list) else [seeds]):
            raise RuntimeError("boom at run time")  # the real run of seed 1, or its group
        return real(model, task, steps, *args, **kwargs)

    monkeypatch.setattr(numrnn.sweep.point, "train_members", train_members)
    out = str(tmp_path / "failed.zarr")
    counts = sweep.run(tiny(grid={"seed": [0, 1, 2]}), out, workers=1, progress=False)
    assert counts == {"ok": 2, "diverged": 0, "failed": 1}
    ds = nr.open(out)
    assert list(ds["status"].values) == ["ok", "failed", "ok"]
    assert ds["message"].sel(seed=1).item() == "RuntimeError: boom at run time"
    assert ds["message"].sel(seed=[0, 2]).values.tolist() == ["", ""]
    # a failed point keeps no data; the ones after it ran in full
    assert ds["loss"].sel(seed=1).isnull().all()
    assert np.isfinite(ds["loss"].sel(seed=[0, 2])).all()


# -- an existing store of another config --------------------------------------------------------


def test_changed_config_needs_overwrite(tmp_path):
    out = str(tmp_path / "store.zarr")
    sweep.run(tiny(grid={"seed": [0, 1]}), out, workers=1, progress=False)
    first = nr.open(out)
    changed = tiny(grid={"seed": [0, 1]}, lr=0.05)
    with pytest.raises(ConfigError, match="--overwrite"):
        sweep.run(changed, out, workers=1, progress=False)
    xr.testing.assert_identical(nr.open(out), first)  # left as it was

    counts = sweep.run(changed, out, workers=1, progress=False, overwrite=True)
    assert counts == {"ok": 2, "diverged": 0, "failed": 0}
    replaced = nr.open(out)
    assert json.loads(replaced.attrs["config"])["train"]["lr"] == 0.05
    assert (replaced["status"] == "ok").all()
    assert not np.array_equal(replaced["loss"].values, first["loss"].values)


# -- config validation ------------------------------------------------------------------------


def test_grid_keys_reach_into_nested_tables():
    """A dotted key goes down tables and lists (a number indexes a list): an initializer's
    argument becomes a dimension; the config itself is left as it was."""
    init = {"weight_hh": ["glorot_normal", {"gain": 1.0}], "bias": ["normal", {"std": 0.0}]}
    cfg = _edit(model={"init": init}, grid={"model.init.weight_hh.1.gain": [0.5, 2.0],
                                            "model.init.bias.1.std": [0.0, 0.3]})  # fmt: skip
    cfg["grid"].pop("model.init", None)
    cfg["grid"].pop("seed", None)
    pts = sweep.points(sweep.load_config(cfg))
    assert [p["coords"] for p in pts] == [{"gain": g, "std": s} for g in (0.5, 2.0)
                                          for s in (0.0, 0.3)]  # fmt: skip
    assert pts[3]["config"]["model"]["init"] == {"weight_hh": ["glorot_normal", {"gain": 2.0}],
                                                 "bias": ["normal", {"std": 0.3}]}  # fmt: skip
    assert cfg["model"]["init"] == init


INVALID = {
    "unknown section": (_edit(modle={"hidden_size": 4}), "modle"),
    "unknown model key": (_edit(model={"hiden_size": 4}), "hiden_size"),
    "unknown task key": (_edit(task={"length": 6}), "length"),
    "unknown train key": (_edit(train={"stepz": 8}), "stepz"),
    "unknown grid key path": (_edit(grid={"model.hiden_size": [4, 8]}), "hiden_size"),
    "unknown grid section": (_edit(grid={"modle.init": ["normal"]}), "modle.init"),
    "empty grid": (_edit(grid={"model.init": None, "seed": None}), "grid"),
    "grid value not a list": (_edit(grid={"train.lr": 0.1}), "train.lr"),
    "grid value empty list": (_edit(grid={"train.lr": []}), "train.lr"),
    "hidden_size not an int": (_edit(model={"hidden_size": "eight"}), "hidden_size"),
    "steps not an int": (_edit(train={"steps": 1.5}), "steps"),
    "bad value in the grid": (_edit(grid={"model.hidden_size": [4, "eight"]}), "hidden_size"),
    "unknown cell": (_edit(model={"cell": "rnn_sigmoid"}), "cell"),
    "unknown task": (_edit(task={"name": "adder"}), "name"),
    "unknown optimizer": (_edit(train={"optimizer": "adagrad"}), "optimizer"),
    "unknown schedule": (_edit(train={"schedule": ["cosin", {"T_max": 4}]}), "schedule"),
    "bad schedule argument": (_edit(train={"schedule": ["cosine", {"T_max": 0}]}), "T_max"),
    "same last part": (_edit(grid={"diagnostics.init": ["a", "b"]}), "init"),
    "seed twice": (_edit(grid={"train.seed": [3, 4]}), "seed"),
    "deep key into nothing": (
        _edit(grid={"model.init.weight_hh.1.gain": [1.0]}),
        "model.init.weight_hh.1.gain",
    ),  # fmt: skip
    "deep key past a list": (
        _edit(
            model={"init": {"weight_hh": ["glorot_normal", {}]}},
            grid={"model.init.weight_hh.2.gain": [1.0]},
        ),
        "weight_hh",
    ),  # fmt: skip
    "deep key, bad value": (
        _edit(
            model={"init": {"weight_hh": ["glorot_normal", {"gain": 1}]}},
            grid={"model.init.weight_hh.1.gain": [1.0, "big"]},
        ),
        "gain",
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_config_is_rejected_before_anything_runs(tmp_path, monkeypatch, name):
    cfg, key = INVALID[name]

    def never(*args, **kwargs):
        raise AssertionError("a point ran")

    monkeypatch.setattr(point, "run_point", never)
    monkeypatch.setattr(store, "template", never)
    out = str(tmp_path / "never.zarr")
    with pytest.raises(ConfigError) as err:
        sweep.run(cfg, out, workers=1, progress=False)
    assert key in str(err.value)
    assert no_store(out)
