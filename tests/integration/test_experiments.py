"""The reproduction scripts of experiments/ in their --quick form: they run, write their
files, and their numbers obey what the references say even at these sizes."""

import importlib.util
import math
import os

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn import meanfield

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow


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
