"""The numrnn command (``python -m numrnn.cli``): sweep, train and report.

Every sweep here is tiny; the helpers shared with test_sweep.py (tiny configs, running the
CLI) are in tests/helpers.py.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import _edit, cli, no_store, tiny, to_toml

import numrnn as nr

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_invalid_toml_file_is_rejected_by_the_cli(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(to_toml(_edit(train={"optimizer": "adagrad"})))
    out = tmp_path / "never.zarr"
    proc = subprocess.run([sys.executable, "-m", "numrnn.cli", "sweep", str(config), "--out",
                           str(out), "--workers", "1"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert "optimizer" in proc.stderr and "adagrad" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert no_store(str(out))


# -- the train and report commands ------------------------------------------------------------


def test_report_writes_summary_and_images(tmp_path):
    import matplotlib.image

    cfg = tiny(diagnostics={"record": ["grad_norm", "jacobian_norm"]})
    config = tmp_path / "diag.toml"
    config.write_text(to_toml(cfg))
    store = tmp_path / "diag.zarr"
    cli("sweep", config, "--out", store, "--workers", "1")
    ds = nr.open(str(store))
    assert (ds["status"] == "ok").all()
    assert ds["grad_norm"].dims == ("init", "seed", "step", "layer", "direction", "time")
    assert ds["jacobian_norm"].sizes["time"] == 6

    out = tmp_path / "report"
    proc = cli("report", store, "--out", out)
    summary = (out / "summary.txt").read_text()
    assert "final_loss" in summary and "normal" in summary and "orthogonal" in summary
    pngs = {p.name for p in out.glob("*.png")}
    assert {"loss.png", "grad_norm_heatmap.png", "jacobian_decay.png"} <= pngs
    for name in pngs:
        assert str(out / name) in proc.stdout
        img = matplotlib.image.imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, (name, img.shape)
        assert img[..., :3].std() > 0.01, f"{name} is blank"


def test_train_command_writes_a_netcdf_run(tmp_path):
    cfg = tiny()
    del cfg["grid"]
    cfg["train"]["seed"] = 3
    config = tmp_path / "one.toml"
    config.write_text(to_toml(cfg))
    out = tmp_path / "run.nc"
    cli("train", config, "--out", out)
    ds = nr.open(str(out))
    assert ds.attrs["status"] == "ok"
    assert ds["loss"].dims == ("step",) and ds.sizes["step"] == 9
    assert np.isfinite(ds["loss"]).all()
    assert "spectral_radius" in ds and "lyapunov_max" in ds


def test_shipped_single_run_config_trains_and_keeps_its_network(tmp_path):
    config = os.path.join(ROOT, "experiments", "train_adding.toml")
    out = tmp_path / "irnn.nc"
    proc = cli("train", config, "--out", out, timeout=600)
    assert proc.stdout.startswith("ok: final loss")
    ds = nr.open(str(out))
    assert list(ds["when"].values) == ["initial", "step 100", "final"]
    assert ds["lyapunov_top"].dims == ("when", "layer", "direction", "exponent")
    model = nr.models_from(str(out))
    assert model.cell_name == "rnn_relu" and model.hidden_size == 32


def test_a_finished_sweep_says_so_and_report_errors_are_one_line(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(tiny()))
    store = tmp_path / "tiny.zarr"
    cli("sweep", config, "--out", store, "--workers", "1")
    again = cli("sweep", config, "--out", store, "--workers", "1")
    assert again.stdout.strip() == f"4 points already complete; store {store}"
    proc = subprocess.run([sys.executable, "-m", "numrnn.cli", "report", str(tmp_path / "no.zarr"),
                           "--out", str(tmp_path / "r")], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"numrnn report: no sweep store at {str(tmp_path / 'no.zarr')!r}"


def test_train_refuses_to_write_over_a_sweep_store_before_running(tmp_path):
    config = tmp_path / "one.toml"
    config.write_text(to_toml({k: v for k, v in tiny().items() if k != "grid"}))
    store = tmp_path / "runs.zarr"
    cli("sweep", _write(tmp_path, tiny()), "--out", store, "--workers", "1")
    proc = subprocess.run([sys.executable, "-m", "numrnn.cli", "train", str(config), "--out",
                           str(store)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "is a sweep's store" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert nr.open(str(store))["status"].size == 4


def _write(tmp_path, cfg):
    path = tmp_path / "sweep.toml"
    path.write_text(to_toml(cfg))
    return path
