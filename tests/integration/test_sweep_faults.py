"""Sweeps under faults: killed sweeps and their workers, paths that are not numrnn's, damaged
stores, two sweeps at once, config and usage errors (issue #16).

Every sweep here is tiny; the kill tests use real subprocesses and signals, each bounded in
time. The store of the tiny sweep is made once (``reference``) and copied for each test
that damages it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import xarray as xr
from helpers import no_store, tiny, to_toml

import numrnn as nr
from numrnn import cli as numrnn_cli
from numrnn import sweep
from numrnn.results import DamagedStoreWarning
from numrnn.sweep import ConfigError, StoreError, store

pytestmark = pytest.mark.slow

CFG = tiny()  # init x seed = 2 x 2 points
OTHER = tiny(lr=0.05)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(path, Dataset) of the tiny sweep's store, run in this process; copy before use."""
    path = str(tmp_path_factory.mktemp("made") / "made.zarr")
    assert sweep.run(CFG, path, workers=1, progress=False)["ok"] == 4
    return path, nr.open(path)


def copy_of(made, tmp_path, name="s.zarr"):
    out = str(tmp_path / name)
    shutil.copytree(made[0], out)
    return out


def run(out, cfg=CFG, **kwargs):
    return sweep.run(cfg, out, workers=1, progress=False, **kwargs)


def tree(path):
    """{relative path: bytes} of everything under ``path``: to show it was left alone."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, path)] = fh.read()
    return out


def children(pid):
    """Process ids whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def alive(pid):
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def chunk(out, name, index):
    """Path of a variable's chunk file of the grid point ``index`` (format 2, '.')."""
    with open(os.path.join(out, name, ".zarray")) as f:
        ndim = len(json.load(f)["shape"])
    return os.path.join(out, name, ".".join(map(str, (*index, *[0] * (ndim - len(index))))))


def garble(path):
    with open(path, "wb") as f:
        f.write(b"not a chunk" * 7)


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


# -- 4. orphaned workers ----------------------------------------------------------------------


@linux_only
def test_workers_of_a_killed_sweep_die_with_it(tmp_path):
    # 2 groups of 3 long points: each worker has many seconds of work left at the kill
    cfg = tiny(grid={"seed": list(range(6))}, steps=4000, batch_size=8)
    config = tmp_path / "long.toml"
    config.write_text(to_toml(cfg))
    out = str(tmp_path / "long.zarr")
    proc = subprocess.Popen([sys.executable, "-m", "numrnn.cli", "sweep", str(config), "--out",
                             out, "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    workers = []
    try:

        def started():  # both workers exist and the run has begun (its token is in the store)
            workers[:] = [p for p in children(proc.pid) if _is_pool_worker(p)]
            return len(workers) == 2 and os.path.exists(os.path.join(out, store.MARKER))

        assert wait_until(started, 90), "the pool did not start"
        time.sleep(1.0)  # the workers are training now
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_until(lambda: not any(alive(p) for p in workers), 5), "workers live on"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in workers:
            if alive(p):
                os.kill(p, signal.SIGKILL)


def _is_pool_worker(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"spawn_main" in f.read()
    except OSError:
        return False


@linux_only
def test_watchdog_thread_ends_a_worker_without_prctl(tmp_path):
    # the fallback where prctl is missing (not Linux): a thread polling the parent's pid
    code = textwrap.dedent("""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", '''
        import os, sys, time
        from numrnn.sweep import executors
        sys.platform = "darwin"  # no prctl: only the polling thread is left
        executors._die_with_parent(os.getppid(), interval=0.05)
        print("watching", flush=True)
        time.sleep(60)
        '''], stdout=sys.stdout)
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    middle = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(middle.stdout.readline())
        assert middle.stdout.readline().strip() == "watching"
        middle.kill()
        middle.wait(timeout=10)
        assert wait_until(lambda: not alive(pid), 5), "the worker outlived its parent"
    finally:
        if middle.poll() is None:
            middle.kill()
            middle.wait()


def test_a_stale_token_cannot_write_into_a_replaced_store(made, tmp_path):
    out = copy_of(made, tmp_path)
    cfg = sweep.load_config(CFG)
    old = store.claim(out, cfg)  # the token a worker of the first run was handed
    p = sweep.points(cfg)[1]
    result = sweep.run_point(p)

    run(out)  # a later run of the same store takes a new token
    before = tree(out)
    with pytest.raises(StoreError, match="no longer this sweep's store"):
        sweep.write_point(out, cfg, p, result, token=old)
    assert tree(out) == before

    run(out, OTHER, overwrite=True)  # a new store of another config in its place
    replaced = nr.open(out)
    with pytest.raises(StoreError, match="no longer this sweep's store"):
        sweep.write_point(out, cfg, p, result, token=old)
    xr.testing.assert_identical(nr.open(out), replaced)
    assert json.loads(replaced.attrs["config"])["train"]["lr"] == 0.05


# -- 5. paths that are not numrnn's -----------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("what", ["files", "zarr3", "file", "zarr2"])
def test_what_numrnn_did_not_make_is_refused_and_left_alone(tmp_path, what, overwrite):
    out = str(tmp_path / "theirs.zarr")
    if what == "files":
        os.makedirs(os.path.join(out, "sub"))
        (tmp_path / "theirs.zarr" / "notes.txt").write_text("precious")
    elif what == "file":
        (tmp_path / "theirs.zarr").write_text("precious")
    else:  # another tool's Zarr store (format 3, or 2 without a sweep's attributes)
        ds = xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"config": "{}"})
        ds.to_zarr(out, zarr_format=int(what[-1]), consolidated=False)
    before = tree(out) if os.path.isdir(out) else open(out).read()
    with pytest.raises(StoreError, match="numrnn did not make"):
        run(out, overwrite=overwrite)
    assert (tree(out) if os.path.isdir(out) else open(out).read()) == before
    assert not os.path.exists(f"{out}.creating") and not os.path.exists(f"{out}.lock")


def test_an_empty_directory_is_free(tmp_path, made):
    out = str(tmp_path / "empty.zarr")
    os.mkdir(out)
    assert run(out)["ok"] == 4
    xr.testing.assert_identical(nr.open(out), made[1])


def test_a_sibling_creating_directory_is_removed_only_if_numrnn_made_it(tmp_path, made):
    out = str(tmp_path / "new.zarr")
    theirs = tmp_path / "new.zarr.creating"
    theirs.mkdir()
    (theirs / "data.csv").write_text("1,2,3")
    with pytest.raises(StoreError, match="numrnn did not make"):
        run(out)
    assert (theirs / "data.csv").read_text() == "1,2,3" and not os.path.exists(out)

    shutil.rmtree(theirs)
    shutil.copytree(made[0], theirs)  # a killed sweep's half-made store: numrnn's, cleared
    os.remove(theirs / ".zmetadata")
    assert run(out)["ok"] == 4
    assert not theirs.exists()
    xr.testing.assert_identical(nr.open(out), made[1])


@linux_only
def test_a_symbolic_link_is_resumed_through_but_never_replaced(tmp_path, made):
    real = copy_of(made, tmp_path, "real.zarr")
    link = str(tmp_path / "link.zarr")
    os.symlink(real, link)
    assert run(link) == {"ok": 0, "diverged": 0, "failed": 0}
    with pytest.raises(StoreError, match="symbolic link"):
        run(link, OTHER, overwrite=True)
    assert os.path.islink(link)
    xr.testing.assert_identical(nr.open(real), made[1])
    os.remove(link)
    os.symlink(str(tmp_path / "nowhere.zarr"), link)  # a dangling link is not a free path
    with pytest.raises(StoreError, match="numrnn did not make"):
        run(link)
    assert os.path.islink(link) and not os.path.exists(tmp_path / "nowhere.zarr")


def test_overwrite_replaces_only_numrnns_store_and_leaves_no_leftovers(tmp_path, made):
    out = copy_of(made, tmp_path)
    assert run(out, OTHER, overwrite=True)["ok"] == 4
    assert sorted(os.listdir(tmp_path)) == ["s.zarr"]
    got = nr.open(out)
    assert json.loads(got.attrs["config"])["train"]["lr"] == 0.05 and (got["status"] == "ok").all()


def test_damaged_consolidated_metadata_is_repaired_and_the_store_resumed(tmp_path, made):
    out = copy_of(made, tmp_path)
    with open(os.path.join(out, ".zmetadata"), "w") as f:
        f.write("{garbage")
    with pytest.warns(DamagedStoreWarning, match="without its consolidated metadata"):
        xr.testing.assert_identical(nr.open(out), made[1])
    with pytest.warns(DamagedStoreWarning, match="zmetadata"):
        counts = run(out)
    assert counts == {"ok": 0, "diverged": 0, "failed": 0}  # nothing recomputed
    xr.testing.assert_identical(nr.open(out), made[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedStoreWarning)
        nr.open(out)  # repaired for good


def test_a_store_made_before_markers_is_resumed(tmp_path, made):
    out = copy_of(made, tmp_path)
    os.remove(os.path.join(out, store.MARKER))
    # such stores leave out chunks that hold only missing values: not taken for damage
    os.remove(chunk(out, "grad_norm_total", (0, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedStoreWarning)
        assert run(out) == {"ok": 0, "diverged": 0, "failed": 0}
    assert os.path.exists(os.path.join(out, store.MARKER))


def test_damaged_store_attributes_are_rewritten_from_the_marker(tmp_path, made):
    out = copy_of(made, tmp_path)
    garble(os.path.join(out, ".zattrs"))
    with pytest.warns(DamagedStoreWarning, match="zattrs"):
        assert run(out) == {"ok": 0, "diverged": 0, "failed": 0}
    xr.testing.assert_identical(nr.open(out), made[1])


def test_a_store_damaged_beyond_repair_needs_overwrite(tmp_path, made):
    out = copy_of(made, tmp_path)
    garble(os.path.join(out, "loss", ".zarray"))
    with pytest.raises(StoreError, match=r"loss/\.zarray.*--overwrite"):
        run(out)
    assert run(out, overwrite=True)["ok"] == 4
    xr.testing.assert_identical(nr.open(out), made[1])


# -- 6. damaged points ------------------------------------------------------------------------


def test_a_point_with_deleted_chunks_is_named_and_run_again(tmp_path, made):
    out = copy_of(made, tmp_path)
    for name in ("status", "message", "diverged_at", "loss", "test_loss", "spectral_radius"):
        if os.path.exists(chunk(out, name, (0, 1))):
            os.remove(chunk(out, name, (0, 1)))
    with pytest.warns(DamagedStoreWarning, match=r"'init': 'normal', 'seed': 1"):
        ds = nr.open(out)
    assert ds["status"].values.tolist() == [["ok", "damaged"], ["ok", "ok"]]
    with pytest.warns(DamagedStoreWarning, match=r"1 damaged point.*'seed': 1"):
        assert run(out) == {"ok": 1, "diverged": 0, "failed": 0}
    xr.testing.assert_identical(nr.open(out), made[1])


def test_a_whole_store_with_chunks_of_missing_values_resumes_without_rerunning(tmp_path):
    # rnn points have no cell_grad_norm, diverged points NaN past their end: all on disk
    cfg = tiny(grid={"model.cell": ["rnn_tanh", "lstm"], "train.lr": [0.01, 1e6]},
               diagnostics={"record": ["grad_norm"]}, optimizer="sgd", steps=30)  # fmt: skip
    cfg["model"]["init"] = "normal"
    del cfg["train"]["lr"]
    out = str(tmp_path / "mixed.zarr")
    assert run(out, cfg) == {"ok": 2, "diverged": 2, "failed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedStoreWarning)
        assert run(out, cfg) == {"ok": 0, "diverged": 0, "failed": 0}


def test_a_finished_point_missing_one_chunk_is_run_again(tmp_path, made):
    out = copy_of(made, tmp_path)
    os.remove(chunk(out, "loss", (1, 0)))
    with pytest.warns(DamagedStoreWarning, match=r"'orthogonal', 'seed': 0.*loss missing"):
        assert run(out) == {"ok": 1, "diverged": 0, "failed": 0}
    xr.testing.assert_identical(nr.open(out), made[1])


@pytest.mark.parametrize("name", ["loss", "status", "diverged_at"])
def test_a_garbled_chunk_is_read_around_and_run_again(tmp_path, made, name):
    out = copy_of(made, tmp_path)
    garble(chunk(out, name, (1, 1)))
    with pytest.warns(DamagedStoreWarning, match=rf"'orthogonal', 'seed': 1.*{name}"):
        ds = nr.open(out)
    assert ds["status"].sel(init="orthogonal", seed=1).item() == "damaged"
    assert f"{name} unreadable" in ds["message"].sel(init="orthogonal", seed=1).item()
    others = ds.drop_sel(init="orthogonal")  # the other points are all there
    xr.testing.assert_identical(others, made[1].drop_sel(init="orthogonal"))
    if name == "loss":
        assert ds["loss"].sel(init="orthogonal", seed=1).isnull().all()
    with pytest.warns(DamagedStoreWarning, match=rf"'orthogonal', 'seed': 1.*{name} unreadable"):
        assert run(out) == {"ok": 1, "diverged": 0, "failed": 0}
    xr.testing.assert_identical(nr.open(out), made[1])


def test_report_of_a_store_with_a_damaged_point(tmp_path, made):
    out = copy_of(made, tmp_path)
    garble(chunk(out, "loss", (0, 0)))
    with pytest.warns(DamagedStoreWarning):
        paths = nr.report.report(out, str(tmp_path / "report"))
    assert any(str(p).endswith("summary.txt") for p in paths)


# -- 7. two sweeps at once --------------------------------------------------------------------


def test_a_store_in_use_is_refused_naming_the_process_and_a_stale_lock_is_not(tmp_path, made):
    out = str(tmp_path / "busy.zarr")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from numrnn.sweep import store
        with store.lock({out!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=rf"in use by another numrnn sweep \(process "
                                             rf"{holder.pid} "):  # fmt: skip
            run(out)
        assert no_store(out)
        holder.kill()  # dies holding the lock: its lock file stays, its lock does not
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert os.path.exists(f"{out}.lock")
    assert run(out)["ok"] == 4
    assert not os.path.exists(f"{out}.lock")  # released and removed on exit
    xr.testing.assert_identical(nr.open(out), made[1])


def test_two_sweeps_started_at_once_on_a_new_store(tmp_path, made):
    config = tmp_path / "c.toml"
    config.write_text(to_toml(CFG))
    out = str(tmp_path / "both.zarr")
    command = [sys.executable, "-m", "numrnn.cli", "sweep", str(config), "--out", out,
               "--workers", "1"]  # fmt: skip
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    for p, (_stdout, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode in (0, 2), stderr
        assert "Traceback" not in stderr
        if p.returncode == 2:
            assert "in use by another numrnn sweep (process" in stderr.splitlines()[-1]
    assert codes[0] == 0 or codes == [0, 0]
    assert sorted(os.listdir(tmp_path)) == ["both.zarr", "c.toml"]  # no leftovers
    xr.testing.assert_identical(nr.open(out), made[1])


# -- 9. config and usage errors ---------------------------------------------------------------


def main(capsys, *args):
    """Run ``numrnn ARGS`` in this process: (exit status, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        numrnn_cli.main([str(a) for a in args])
    return exit_.value.code, capsys.readouterr().err


def test_config_and_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(to_toml(CFG))
    betas = tmp_path / "betas.toml"
    betas.write_text(to_toml(tiny(betas=0.9)))
    one = dict(CFG)
    one.pop("grid")
    single = tmp_path / "one.toml"
    single.write_text(to_toml(one))
    a_file = tmp_path / "file.zarr"
    a_file.write_text("x")
    out = tmp_path / "x.zarr"
    cases = [
        (("sweep", tmp_path / "missing.toml", "--out", out), "no such config file"),
        (("sweep", tmp_path, "--out", out), "is a directory"),
        (("sweep", betas, "--out", out), "betas must be a pair"),
        (("sweep", good, "--out", a_file), "is a file that numrnn did not make"),
        (("sweep", good, "--out", tmp_path / "x.zar"), "must end in '.zarr'"),
        (("sweep", good, "--out", out, "--workers", "0"), "workers must be a positive"),
        (("sweep", good, "--out", out, "--batch", "-1"), "batch must be a positive"),
        (("sweep", good, "--out", out, "--workers", "two"), "invalid int value"),
        (("sweep", good), "required: --out"),
        (("train", tmp_path / "missing.toml", "--out", tmp_path / "r.nc"), "no such config"),
        (("train", betas, "--out", tmp_path / "r.nc"), "betas must be a pair"),
        (("train", good, "--out", tmp_path / "r.nc"), "makes 4 points"),
        (("train", single, "--out", tmp_path / "r.txt"), "must end in '.nc' or '.zarr'"),
        (("train", single), "required: --out"),
    ]
    for args, message in cases:
        code, err = main(capsys, *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and message in err, (args, err)
    assert not out.exists() and not (tmp_path / "r.nc").exists()


def test_a_file_as_out_from_the_real_command(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(to_toml(CFG))
    (tmp_path / "f.zarr").write_text("precious")
    proc = subprocess.run([sys.executable, "-m", "numrnn.cli", "sweep", str(config), "--out",
                           str(tmp_path / "f.zarr")], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "numrnn did not make" in proc.stderr
    assert (tmp_path / "f.zarr").read_text() == "precious"


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"train": {"betas": 0.9}}, "betas"),
        ({"model": {"cell": ["lstm"]}}, "cell"),
        ({"task": {"name": ["adding"]}}, "name"),
        ({"train": {"optimizer": ["adam"]}}, "optimizer"),
        ({"diagnostics": {"record": 0.9}}, "record"),
    ],
)
def test_wrongly_typed_values_are_config_errors(edit, key):
    cfg = tiny()
    for section, table in edit.items():
        cfg.setdefault(section, {}).update(table)
    with pytest.raises(ConfigError, match=key):
        sweep.load_config(cfg)


def test_template_probes_one_point_per_shape(monkeypatch):
    grid = {"model.cell": ["rnn_tanh", "lstm"], "model.num_layers": [1, 2], "task.T": [5, 7],
            "train.steps": [4, 6], "seed": [0, 1]}  # fmt: skip
    cfg = sweep.load_config(tiny(grid=grid, diagnostics={"record": ["grad_norm"]}))
    probes = []
    real = store.train
    monkeypatch.setattr(store, "train", lambda m, *a, **k: probes.append(m) or real(m, *a, **k))
    fast = store.template(cfg)
    assert len(probes) == 8  # cell x num_layers x T: 32 points
    # the template of probing every point
    monkeypatch.setattr(store, "shape_key", lambda c: json.dumps(c, sort_keys=True))
    xr.testing.assert_identical(fast, store.template(cfg))
    assert len(probes) == 8 + 32
    assert "cell_grad_norm" in fast and dict(fast["grad_norm"].sizes) == {
        "cell": 2, "num_layers": 2, "T": 2, "steps": 2, "seed": 2, "step": 7, "layer": 2,
        "direction": 1, "time": 7,
    }  # fmt: skip


def test_template_is_written_as_xarray_writes_it(tmp_path):
    cfg = sweep.load_config(tiny(grid={"model.cell": ["rnn_tanh", "lstm"], "seed": [0, 1, 2]},
                                 diagnostics={"record": ["grad_norm"]}))  # fmt: skip
    tmpl = store.template(cfg)
    quick, plain = str(tmp_path / "quick.zarr"), str(tmp_path / "plain.zarr")
    os.mkdir(quick)
    store.write_template(tmpl, quick, ["cell", "seed"])
    tmpl.to_zarr(plain, zarr_format=2, consolidated=True,
                 encoding=store._encoding(tmpl, ["cell", "seed"]))  # fmt: skip
    files = {k: v for k, v in tree(quick).items() if not k.endswith((".zarray", ".zmetadata"))}
    assert files == {k: v for k, v in tree(plain).items() if k in files}
    assert set(tree(quick)) == set(tree(plain))

    def meta(path):
        with open(os.path.join(path, ".zmetadata")) as f:
            return json.load(f)["metadata"]

    assert meta(quick) == meta(plain)
    xr.testing.assert_identical(nr.open(quick), nr.open(plain))
    names = list(nr.open(quick).data_vars)  # in name order, as zarr >= 3.1 consolidates
    assert names == sorted(names) == sorted(nr.open(plain).data_vars)


def test_template_of_a_large_grid_is_quick():
    cfg = sweep.load_config(tiny(grid={"train.lr": [0.001 * (i + 1) for i in range(100)],
                                       "seed": list(range(20))}))  # fmt: skip
    start = time.perf_counter()
    tmpl = store.template(cfg)
    assert time.perf_counter() - start < 10
    assert dict(tmpl["status"].sizes) == {"lr": 100, "seed": 20}
