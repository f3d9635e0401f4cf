"""numrnn.weights: parameters as xarray, model files, and trained networks rebuilt from results."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn.tasks import Adding

MODELS = {
    "rnn_tanh": lambda dt: nr.RNN(3, 4, dtype=dt, seed=1),
    "rnn_relu_head": lambda dt: nr.RNN(
        3, 4, nonlinearity="relu", output_size=2, dtype=dt, seed=2, init="identity"
    ),  # fmt: skip
    "lstm_stacked_bidir": lambda dt: nr.LSTM(
        3,
        4,
        num_layers=2,
        bidirectional=True,
        dtype=dt,
        seed=3,
        forget_bias=1.0,
        output_size=1,
        readout="last",
        dropout=0.25,
    ),  # fmt: skip
    "gru_after": lambda dt: nr.GRU(3, 4, dtype=dt, seed=4, init={"weight_hh": "orthogonal"}),
    "gru_before": lambda dt: nr.GRU(3, 4, reset_after=False, dtype=dt, seed=5),
    "ensemble": lambda dt: nr.ensemble(
        [
            nr.LSTM(3, 4, dtype=dt, seed=s, forget_bias=fb)
            for s, fb in ((0, None), (1, 1.0), (2, 2.0))
        ]
    ),  # fmt: skip
}


def same_model(a, b):
    assert type(a) is type(b) and a.config == b.config and repr(a) == repr(b)
    assert list(a.params) == list(b.params)
    for k, v in a.params.items():
        assert b.params[k].dtype == v.dtype and b.params[k].flags.c_contiguous
        np.testing.assert_array_equal(b.params[k], v)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_round_trip_is_exact(tmp_path, name, dtype, suffix):
    model = MODELS[name](dtype)
    path = str(tmp_path / f"model{suffix}")
    assert nr.save(model, path) == path
    back = nr.load(path)
    same_model(model, back)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(dtype)
    np.testing.assert_array_equal(back.forward(x).output, model.forward(x).output)


def test_model_file_names_its_dimensions(tmp_path):
    ds = nr.weights.model_dataset(nr.LSTM(3, 4, num_layers=2, bidirectional=True, output_size=2))
    assert ds["weight_ih_l0"].dims == ("gate_unit", "input")
    assert ds["weight_ih_l1_reverse"].dims == ("gate_unit", "feature")
    assert ds["weight_hh_l1"].dims == ("gate_unit", "unit") and ds.sizes["gate_unit"] == 16
    assert ds["weight_out"].dims == ("output", "feature") and ds.sizes["feature"] == 8
    assert ds["bias_out"].attrs["description"].startswith("parameter bias_out")


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no result at"):
        nr.load(str(tmp_path / "missing.nc"))
    with pytest.raises(ValueError, match="path must end in '.zarr' or '.nc'"):
        nr.load(str(tmp_path / "model.pkl"))
    path = str(tmp_path / "result.nc")
    nr.save(xr.Dataset({"a": ("x", np.arange(3.0))}), path)
    with pytest.raises(ValueError, match="is not a numrnn model file"):
        nr.load(path)
    with pytest.raises(TypeError, match="ds must be an xarray.Dataset"):
        nr.save([1, 2], str(tmp_path / "x.nc"))


def trained(model, steps=6, **kw):
    return nr.train(model, Adding(5), steps, 4, ("adam", {"lr": 0.05}), seed=0, progress=False,
                    **kw)  # fmt: skip


def test_models_from_a_training_result(tmp_path):
    make = lambda: nr.GRU(2, 4, num_layers=2, output_size=1, readout="last", seed=0)  # noqa: E731
    model = make()
    ds = trained(model, weights_at=[3])
    assert list(ds["when"].values) == ["initial", "step 3", "final"]
    assert ds["when_step"].values.tolist() == [0, 3, 6]
    same_model(model, nr.models_from(ds))
    same_model(make(), nr.models_from(ds, when="initial"))
    again = make()
    trained(again, steps=3)  # the same run stopped after 3 updates
    same_model(again, nr.models_from(ds, when=3))
    # through a file, and a diagnostic of the rebuilt network equals the trained one's
    nr.save(ds, str(tmp_path / "run.nc"))
    rebuilt = nr.models_from(str(tmp_path / "run.nc"))
    x = np.random.default_rng(1).standard_normal((5, 3, 2))
    xr.testing.assert_identical(nr.diagnostics.jacobian_norms(rebuilt, x),
                                nr.diagnostics.jacobian_norms(model, x))  # fmt: skip
    with pytest.raises(ValueError, match="no snapshot after 4 updates; taken: \\[3\\]"):
        nr.models_from(ds, when=4)
    with pytest.raises(ValueError, match="when must be one of"):
        nr.models_from(ds, when="middle")


def test_models_from_an_ensemble_result():
    def make():
        return nr.ensemble([nr.RNN(2, 3, output_size=1, readout="last", seed=s, init=i)
                            for s, i in ((0, None), (1, "orthogonal"), (2, None))])  # fmt: skip

    ens = make()
    ds = nr.train(ens, Adding(5), 5, 4, ("sgd", {"lr": 0.1}), seed=[0, 1, 2], progress=False)
    assert ds["weight_hh_l0"].dims == ("member", "when", "gate_unit", "unit")
    same_model(ens, nr.models_from(ds))
    alone = ens.unstack()[1]
    same_model(alone, nr.models_from(ds, member=1))
    with pytest.raises(ValueError, match="member=7 is not in the result"):
        nr.models_from(ds, member=7)
    with pytest.raises(ValueError, match="cannot select init="):
        nr.models_from(ds, init="normal")


def test_a_diverged_member_keeps_the_weights_it_diverged_with():
    init = {"weight_hh": ("identity", {"scale": 3.0})}
    model = nr.RNN(2, 16, nonlinearity="relu", init=init, output_size=1, readout="last", seed=0)
    ds = nr.train(model, Adding(30), 40, 8, ("sgd", {"lr": 1e3}), seed=0, progress=False,
                  weights_at=[39])  # fmt: skip
    assert ds.attrs["status"] == "diverged"
    same_model(model, nr.models_from(ds))
    assert np.isnan(ds["weight_hh_l0"].sel(when="step 39")).all()
    with pytest.raises(ValueError, match="not finite in the result"):
        nr.models_from(ds, when=39)


def test_results_without_weights_say_so():
    ds = trained(nr.RNN(2, 3, output_size=1, readout="last", seed=0))
    old = ds.drop_vars([v for v in ds.data_vars if v.startswith(("weight", "bias"))])
    old = old.drop_dims("when", errors="ignore")
    with pytest.raises(ValueError, match="holds no network weights"):
        nr.models_from(old)


def test_rebuilt_in_a_new_process_is_bit_identical(tmp_path):
    model = nr.LSTM(2, 5, output_size=1, readout="last", seed=0, forget_bias=1.0)
    ds = trained(model)
    path = str(tmp_path / "run.nc")
    nr.save(ds, path)
    x = np.random.default_rng(2).standard_normal((5, 3, 2))
    np.save(tmp_path / "x.npy", x)
    code = (f"import json, numpy as np, numrnn as nr; m = nr.models_from({path!r}); "
            f"np.save({str(tmp_path / 'y.npy')!r}, m.forward(np.load({str(tmp_path / 'x.npy')!r}))"
            ".output); print(json.dumps(m.config))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == model.config
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.forward(x).output)
