"""The reproduction scripts of experiments/ in their --quick form: they run, write their
files, and their numbers obey what the references say even at these sizes."""

import importlib.util
import json
import math
import os

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn import datasets, meanfield

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow
needs_statsmodels = pytest.mark.skipif(
    importlib.util.find_spec("statsmodels") is None, reason="needs statsmodels (numrnn[data])"
)
needs_sktime = pytest.mark.skipif(
    importlib.util.find_spec("sktime") is None, reason="needs sktime (numrnn[data])"
)


def script(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "experiments", f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_order_to_chaos(tmp_path):
    otc = script("order_to_chaos")
    big, spec, (lam, mf) = otc.main(["--quick", "--out", str(tmp_path)])
    for f in ("order_to_chaos.nc", "order_to_chaos.png", "lyapunov_spectra.png",
              "phase_diagram.png", "order_to_chaos_sweep.zarr"):  # fmt: skip
        assert os.path.exists(tmp_path / f), f
    mean = big.lyapunov_max.mean("seed")
    assert (mean.sel(g=0.5) < -0.4).all() and (mean.sel(g=3.0) > 0).all()  # ordered, chaotic
    assert float(mean.sel(g=3.0, N=40)) > 0.1
    np.testing.assert_allclose(big.meanfield, [meanfield.lyapunov_max(g) for g in big.g.values])
    for n in (20, 40):  # descending spectra, all finite
        s = spec[f"lyapunov_N{n}"].values
        assert np.isfinite(s).all() and (np.diff(s, axis=1) <= 1e-12).all()
    assert lam.dims == ("gain", "std") and mf.shape == lam.shape
    # Kaplan-Yorke: k exponents with a non-negative sum, plus the fraction into the next
    assert otc.kaplan_yorke(np.array([0.5, -0.2, -1.0])) == pytest.approx(2.3)
    assert otc.kaplan_yorke(np.array([-0.1, -0.2])) == 0.0
    assert otc.kaplan_yorke(np.array([0.1, 0.0])) == 2.0


def test_signal_propagation(tmp_path):
    ds = script("signal_propagation").main(["--quick", "--out", str(tmp_path)])
    assert os.path.exists(tmp_path / "signal_propagation.png")
    np.testing.assert_allclose(ds.frobenius_sq.sel(lag=0), 1.0, rtol=1e-12)  # ||I||_F^2 / N
    # in the linear regime (g = 0.5, no input, the state decays to 0) the rate is ln g^2
    assert float(ds.rate.sel(g=0.5, input_var=0.0)) == pytest.approx(2 * math.log(0.5), abs=0.3)
    ordered = ds.ln_chi1 < -0.2
    assert (ds.rate.where(ordered) < 0).sum() == ordered.sum()  # vanishing where predicted


def test_pascanu2013(tmp_path):
    ds = script("pascanu2013").main(["--quick", "--out", str(tmp_path)])
    c = ds.sel(case="contracting")
    assert float(c.sigma_max) < 1 and bool((c.jacobian_norm <= c.bound * (1 + 1e-12)).all())
    nn = ds.sel(case="non-normal")
    assert float(nn.rho) < 1 < float(nn.sigma_max) and float(nn.jacobian_norm[-1]) < 1e-2
    assert float(ds.sel(case="chaotic").jacobian_norm[-1]) > 1e2  # rho > 1: explodes
    sat = ds.sel(case="saturated")
    assert float(sat.rho) > 1 > float(sat.jacobian_norm[-1])  # rho > 1 yet vanishes


def test_adding_is_resumable(tmp_path):
    """Stopped after 20 iterations and run again, the run is the uninterrupted one."""
    adding = script("adding_le2015")
    whole = adding.main(["--quick", "--steps", "40", "--out", str(tmp_path / "a")])
    adding.main(["--quick", "--steps", "20", "--out", str(tmp_path / "b")])
    resumed = adding.main(["--quick", "--steps", "40", "--out", str(tmp_path / "b")])
    xr.testing.assert_identical(whole.drop_attrs(), resumed.drop_attrs())
    assert list(whole.lr.values) == [1e-2, 1e-3] and whole.sizes["step"] == 41
    assert os.path.exists(tmp_path / "a" / "adding_T10.png")
    assert len(adding.summary(whole)) == 6
    # each model's file reopens its networks: as built, and as the last chunk left them
    run = tmp_path / "b" / "adding_T10_lstm.nc"
    last = adding.chunks(str(tmp_path / "b"), "lstm")[-1]
    built = adding.build("lstm", 8, [1e-2, 1e-3], 0, "float64")
    for when, want in (("initial", built), ("final", nr.models_from(last))):
        got = nr.models_from(str(run), when=when)
        assert got.config == want.config
        for k, v in want.params.items():
            np.testing.assert_array_equal(got.params[k], v)


def test_copy(tmp_path):
    (ds,) = script("copy_arjovsky2016").main(["--quick", "--out", str(tmp_path)])
    assert ds.attrs["baseline"] == pytest.approx(10 * math.log(8) / 30)
    assert list(ds.model.values) == ["tanh", "irnn", "lstm"]
    assert np.isfinite(ds.test_loss.sel(step=40)).all()
    assert os.path.exists(tmp_path / "copy.png") and os.path.exists(tmp_path / "copy_T10.nc")
    lstm = nr.models_from(str(tmp_path / "copy_T10_lstm.nc"))  # the trained network reopens
    assert lstm.hidden_size == 10 and lstm.output_size == 9


@needs_statsmodels
def test_sunspots(tmp_path):
    ds = script("sunspots").main(["--quick", "--out", str(tmp_path)])
    assert os.path.exists(tmp_path / "sunspots.png")
    values, years = datasets.sunspots()
    n_train, n_val = 221, 256  # 1700-1920 training, 1921-1955 validation, 1956-2008 test
    assert years[n_train] == 1921 and years[n_val] == 1956
    test = ds.isel(year=(ds.part == "test").values)
    np.testing.assert_array_equal(test.year, years[n_val:])
    np.testing.assert_array_equal(test.truth, values[n_val:])
    # the baselines on the test years are datasets' functions on the same split
    pers = float(((test.persistence - test.truth) ** 2).mean())
    assert pers == pytest.approx(datasets.persistence_mse(values, n_val), rel=1e-12)
    assert ds.attrs["test_mse_persistence"] == pytest.approx(pers, rel=1e-12)
    val_mse = {
        p: np.mean((datasets.ar_predict(values, datasets.ar_fit(values[:n_train], p), n_train,
                                        n_val) - values[n_train:n_val]) ** 2)
        for p in range(1, 13)
    }  # fmt: skip
    p = min(val_mse, key=val_mse.get)
    assert ds.attrs["ar_p"] == p == 9  # the classical order, chosen on the validation years
    np.testing.assert_allclose(ds.ar_val_mse, list(val_mse.values()), rtol=1e-12)
    coef = datasets.ar_fit(values[:n_train], p)
    np.testing.assert_allclose(test.ar, datasets.ar_predict(values, coef, n_val), rtol=1e-12)
    # the saved networks (best validation weights) give the forecasts from the 20 years before
    z = (values - values[:n_train].mean()) / values[:n_train].std()
    x = np.stack([z[t - 20 : t] for t in range(n_train, len(z))], axis=1)[..., None]
    nets = nr.models_from(str(tmp_path / "sunspots.nc"))
    pred = nets.predict(x)[..., 0] * values[:n_train].std() + values[:n_train].mean()
    np.testing.assert_allclose(pred, ds.rnn_member, rtol=1e-10)
    for k in ds.member.values:  # training lowered each member's validation MSE
        m = ds.sel(member=k)
        assert float(m.test_loss.sel(step=int(m.best_step))) < float(m.test_loss.sel(step=0))


@needs_sktime
def test_japanese_vowels(tmp_path):
    ds = script("japanese_vowels").main(["--quick", "--out", str(tmp_path)])
    assert os.path.exists(tmp_path / "japanese_vowels.png")
    x_train, y_train, x_test, y_test = datasets.japanese_vowels()
    np.testing.assert_array_equal(ds.y_test, y_test)
    frames = np.concatenate(x_train)  # standardised with the training split's statistics
    np.testing.assert_allclose(ds.channel_mean, frames.mean(0), rtol=1e-12)
    assert ds.attrs["n_train"] + ds.attrs["n_validation"] == 270 and ds.attrs["n_test"] == 370
    assert ds.attrs["chance"] == pytest.approx(1 / 9)
    assert ds.attrs["majority"] == pytest.approx(88 / 370)
    cm = ds.confusion.values
    np.testing.assert_array_equal(cm.sum(1), np.bincount(y_test))
    acc = float(np.mean(ds.prediction == ds.y_test))
    assert np.trace(cm) / 370 == pytest.approx(acc) and ds.attrs["test_accuracy"] == acc
    # the saved networks (best validation weights) give the members' test predictions
    x = [(a - frames.mean(0)) / frames.std(0) for a in x_test]
    xt, _, lt = nr.tasks.Sequences(x, y_test, validation=0).train_set()
    logits = nr.models_from(str(tmp_path / "japanese_vowels.nc")).predict(xt, lt)
    np.testing.assert_array_equal(logits.argmax(-1), ds.member_prediction)
    for k in ds.member.values:  # training lowered each member's validation cross-entropy
        m = ds.sel(member=k)
        assert float(m.test_loss.sel(step=int(m.best_step))) < 0.9 * float(m.test_loss[0])


def test_char_lm(tmp_path):
    run, baselines = script("char_lm").main(["--quick", "--out", str(tmp_path)])
    assert os.path.exists(tmp_path / "char_lm.png")
    saved = nr.open(str(tmp_path / "char_lm.nc"))
    assert saved.attrs["vocab_size"] == saved.sizes["token"] and len(saved.attrs["sample"]) == 44
    assert json.loads(saved.attrs["train"])["tbptt"] == 20
    tested = run.test_loss.dropna("step")
    assert tested[-1] < tested[0]  # 40 updates of a tiny LSTM: it learns something
    assert baselines["bigram"] < baselines["unigram"]
    # the trained network comes back from the file and predicts the held-out text as stored
    model = nr.models_from(saved)
    text = nr.datasets.stdlib_text(30_000)
    ids, _ = nr.datasets.encode_chars(text, saved.attrs["alphabet"])
    x, y = script("char_lm").windows(ids[-3000:], 60)
    loss, _ = nr.losses.xent(model.predict(x, steps=20), y)
    assert loss == pytest.approx(float(tested[-1]), rel=1e-12)
