"""Saving results to Zarr / netCDF and opening them again: nothing is lost or changed."""

import json
import shutil

import numpy as np
import pytest

import numrnn as nr

xr = pytest.importorskip("xarray")
xrt = pytest.importorskip("xarray.testing")

SUFFIXES = (".zarr", ".nc")


def datasets():
    """Real diagnostics results: NaN past ragged ends, string coords (direction, gate), attrs."""
    rng = np.random.default_rng(0)
    T, B, D, H = 6, 3, 2, 4
    x = rng.standard_normal((T, B, D))
    lengths = np.array([6, 2, 4])
    lstm = nr.LSTM(D, H, 2, True, seed=1, forget_bias=1.0)
    gru = nr.GRU(D, H, 1, False, seed=2, reset_after=False)
    rnn = nr.RNN(D, H, 1, True, seed=3, nonlinearity="relu")
    d_out = rng.standard_normal((T, B, 2 * H))
    return {
        "jacobian_lstm": nr.diagnostics.jacobian_norms(lstm, x, lengths=lengths, n_sv=2),
        "jacobian_gru_fro": nr.diagnostics.jacobian_norms(gru, x, ord="fro"),
        "gradients_lstm": nr.diagnostics.gradient_norms(lstm, x, d_out, lengths=lengths),
        "lyapunov_rnn": nr.diagnostics.lyapunov_spectrum(rnn, x, lengths=lengths, warmup=1),
        "powers_lstm": nr.diagnostics.weight_powers(lstm, 5),
        "powers_rnn": nr.diagnostics.weight_powers(rnn, 3),
    }


@pytest.fixture(scope="module")
def results():
    return datasets()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_is_identical(tmp_path, results, suffix):
    for name, ds in results.items():
        path = tmp_path / f"{name}{suffix}"
        assert nr.save(ds, path) == path
        back = nr.open(path)
        xrt.assert_identical(back, ds)
        for var in ds.variables:  # same dtypes, string coords stay strings
            assert back[var].dtype.kind == ds[var].dtype.kind, (name, var)
        assert list(back.direction.values) == list(ds.direction.values)
        assert json.loads(back.attrs["config"]) == json.loads(ds.attrs["config"])
        assert nr.results.config(back) == nr.results.config(ds)
        # fully loaded: still readable after the file is gone
        shutil.rmtree(path) if suffix == ".zarr" else path.unlink()
        for var in ds.data_vars:
            np.testing.assert_array_equal(back[var].values, ds[var].values)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_str_paths_overwrite_and_refuse(tmp_path, results, suffix):
    a, b = results["powers_lstm"], results["powers_rnn"]
    path = str(tmp_path / f"r{suffix}")
    nr.save(a, path)
    nr.save(b, path)  # mode "w" overwrites
    xrt.assert_identical(nr.open(path), b)
    with pytest.raises(FileExistsError, match="exists"):
        nr.save(a, path, mode="w-")
    xrt.assert_identical(nr.open(path), b)
    fresh = str(tmp_path / f"fresh{suffix}")
    nr.save(a, fresh, mode="w-")
    xrt.assert_identical(nr.open(fresh), a)


def test_zarr_path_with_trailing_slash(tmp_path, results):
    path = str(tmp_path / "r.zarr") + "/"
    nr.save(results["powers_rnn"], path)
    xrt.assert_identical(nr.open(path), results["powers_rnn"])


def test_unknown_suffix(tmp_path, results):
    for name in ("r.h5", "r", "r.zarr.bak", "r.nc4"):
        with pytest.raises(ValueError, match=r"path must end in '\.zarr' or '\.nc'"):
            nr.save(results["powers_rnn"], tmp_path / name)
        with pytest.raises(ValueError, match="path must end"):
            nr.open(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_missing_file(tmp_path, suffix):
    with pytest.raises(FileNotFoundError, match="no result at"):
        nr.open(tmp_path / f"missing{suffix}")


@pytest.mark.parametrize("bad", [{"a": 1}, [1, 2], (1,), True, None, np.arange(3)])
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_non_serialisable_attrs_are_refused(tmp_path, results, bad, suffix):
    ds = results["powers_rnn"].copy()
    ds.attrs["extra"] = bad
    path = tmp_path / f"r{suffix}"
    with pytest.raises(TypeError, match=r"ds\.attrs\['extra'\].*JSON"):
        nr.save(ds, path)
    assert not path.exists()


def test_save_needs_a_dataset(tmp_path, results):
    with pytest.raises(TypeError, match="xarray.Dataset"):
        nr.save(results["powers_rnn"].power_norm, tmp_path / "r.nc")


def test_save_never_replaces_a_sweep_store_or_someones_directory(tmp_path):
    """to_zarr(mode="w") deletes whatever directory is at the path: save refuses a sweep's
    store and a directory that is not a Zarr store, and replaces a Zarr result."""
    import os

    import xarray as xr

    from numrnn import sweep

    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    store = str(tmp_path / "runs.zarr")
    sweep.run(sweep.EXAMPLE, store, workers=1, progress=False)
    with pytest.raises(FileExistsError, match="is a sweep's store"):
        nr.save(ds, store)
    assert nr.open(store)["status"].size == 4  # untouched
    mine = tmp_path / "mine.zarr"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a Zarr store"):
        nr.save(ds, str(mine))
    assert (mine / "notes.txt").read_text() == "keep me"
    again = str(tmp_path / "again.zarr")
    nr.save(ds, again)
    nr.save(ds * 2, again)  # a result saved before is replaced
    np.testing.assert_array_equal(nr.open(again)["a"], [0.0, 2.0, 4.0])
    os.mkdir(tmp_path / "dir.nc")
    with pytest.raises(FileExistsError, match="is a directory, not a netCDF file"):
        nr.save(ds, str(tmp_path / "dir.nc"))
