"""numrnn.plots: every helper on every kind of result numrnn makes (diagnostics of a model
and of an ensemble, nr.train's runs, a sweep store), its PNG, and its error messages."""

import numpy as np
import pytest

import numrnn as nr

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One small result of each kind (module-scoped: training and the sweep take seconds)."""
    from numrnn import sweep

    x = np.random.default_rng(0).standard_normal((12, 4, 3))
    m = nr.LSTM(3, 5, num_layers=2, bidirectional=True, seed=0)
    ens = nr.ensemble([nr.RNN(3, 5, seed=s) for s in range(3)])
    out = {
        "jac": nr.diagnostics.jacobian_norms(m, x),  # (layer, direction, batch, time)
        "gn": nr.diagnostics.gradient_norms(m, x, np.ones((12, 4, 10))),
        "jac_e": nr.diagnostics.jacobian_norms(ens, x),  # (member, layer, direction, batch, time)
        "lyap": nr.diagnostics.lyapunov_spectrum(m, x, warmup=2),  # (..., batch, exponent)
        "wp": nr.diagnostics.weight_powers(m, 5),  # power_norm (layer, direction, gate, k)
    }
    task = nr.tasks.Adding(6)
    model = nr.RNN(2, 4, output_size=1, readout="last", seed=0)
    out["run"] = nr.train(model, task, 20, 4, ("adam", {"lr": 0.01}), seed=0, progress=False,
                          eval_every=5, diagnostics=("grad_norm", "jacobian_norm"),
                          diagnostics_every=5)  # fmt: skip
    members = [nr.RNN(2, 4, output_size=1, readout="last", seed=s) for s in range(3)]
    out["runs"] = nr.train(nr.ensemble(members), task, 20, 4, ("adam", {"lr": 0.01}),
                           seed=[0, 1, 2], progress=False)  # fmt: skip
    path = str(tmp_path_factory.mktemp("sweep") / "x.zarr")
    sweep.run({"model": {"cell": "rnn_tanh", "hidden_size": 4}, "task": {"name": "adding", "T": 6},
               "train": {"steps": 8, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
               "diagnostics": {"record": ["grad_norm", "jacobian_norm"]},
               "grid": {"model.init": ["normal", "orthogonal"], "seed": [0, 1]}},
              path, workers=1, progress=False)  # fmt: skip
    out["store"] = nr.open(path)
    return out


def lines(ax):
    """The data lines of an Axes (not the baseline or zero line)."""
    return [ln for ln in ax.get_lines() if ln.get_gid() != "reference"]


def saved(fig_or_ax, tmp_path, name="fig"):
    """Save with nr.plots.save and check a PNG came out."""
    path = nr.plots.save(fig_or_ax, str(tmp_path / f"{name}.png"))
    with open(path, "rb") as f:
        assert f.read(8) == PNG
    return path


# -- norms -----------------------------------------------------------------------------------


def test_norms_layer_direction_as_before(results, tmp_path):
    ax = nr.plots.norms(results["jac"])
    labels = [ln.get_label() for ln in lines(ax)]
    assert labels == ["layer 0, forward", "layer 0, backward", "layer 1, forward",
                      "layer 1, backward"]  # fmt: skip
    assert ax.get_yscale() == "log"
    assert (
        ax.get_xlabel().startswith("lag")
        and ax.get_ylabel() == r"$\|\partial s_T/\partial s_t\|_2$"
    )
    assert "geometric mean over batch (4)" in ax.get_title()
    # lag: forward runs from T - 1 - t, so its first point (lag 0) is the last step's norm 1
    fwd = lines(ax)[0]
    np.testing.assert_array_equal(fwd.get_xdata(), np.arange(12))
    geo = np.exp(np.log(results["jac"]["jacobian_norm"]).mean("batch"))
    np.testing.assert_allclose(fwd.get_ydata(), geo.isel(layer=0, direction=0).values[::-1])
    assert ax.get_legend() is not None
    saved(ax, tmp_path)


def test_norms_into_an_axes_with_time_and_a_label(results, tmp_path):
    plt = nr.plots.pyplot()
    fig, ax = plt.subplots()
    out = nr.plots.norms(results["gn"], by="time", ax=ax, label="LSTM")
    assert out is ax and len(lines(ax)) == 4
    assert (
        ax.get_xlabel() == r"time step $t$"
        and ax.get_ylabel() == r"$\|\partial L/\partial h_t\|_2$"
    )
    assert lines(ax)[0].get_label() == "LSTM layer 0, forward"
    nr.plots.norms(results["gn"], "cell_grad_norm", ax=ax, by="time")
    assert len(lines(ax)) == 8
    saved(fig, tmp_path)


def test_norms_heatmap(results, tmp_path):
    ax = nr.plots.norms(results["jac"], heatmap=True)  # rows: layer x direction, x: time
    img = ax.get_images()[0]
    assert img.get_array().shape == (4, 12)
    rows = ["layer 0, forward", "layer 0, backward", "layer 1, forward", "layer 1, backward"]
    assert [t.get_text() for t in ax.get_yticklabels()] == rows
    assert ax.get_xlabel() == r"time step $t$" and ax.get_ylabel() == "layer, direction"
    ticks = ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # integer time steps
    cbar = img.colorbar
    assert cbar.ax.get_ylabel() == r"$\|\partial s_T/\partial s_t\|_2$"
    saved(ax, tmp_path)
    # one panel per direction, rows per layer
    fig = nr.plots.norms(results["jac"], heatmap=True, hue="layer")
    assert [a.get_title() for a in fig.axes if a.get_images()] == ["forward", "backward"]
    saved(fig, tmp_path, "facets")


def test_norms_of_an_ensemble(results, tmp_path):
    ax = nr.plots.norms(results["jac_e"])  # one line per member
    assert [ln.get_label() for ln in lines(ax)] == ["member 0", "member 1", "member 2"]
    assert "geometric mean over batch (4)" in ax.get_title()
    saved(ax, tmp_path)
    ax = nr.plots.norms(results["jac_e"], hue=())  # the members averaged too
    assert len(lines(ax)) == 1 and "batch (4) and member (3)" in ax.get_title()
    saved(ax, tmp_path, "mean")
    ax = nr.plots.norms(results["jac_e"], heatmap=True)
    assert ax.get_images()[0].get_array().shape == (3, 12) and ax.get_ylabel() == "member"
    saved(ax, tmp_path, "heatmap")


def test_norms_of_a_training_run_per_step(results, tmp_path):
    run = results["run"]
    ax = nr.plots.norms(run, "grad_norm")  # the last step with values
    assert len(lines(ax)) == 1 and "step 20 (last)" in ax.get_title()
    saved(ax, tmp_path)
    ax = nr.plots.norms(run, "grad_norm", hue="step")  # the diagnostics steps only
    assert [ln.get_label() for ln in lines(ax)] == [f"step {s}" for s in (0, 5, 10, 15, 20)]
    saved(ax, tmp_path, "steps")
    ax = nr.plots.norms(run, step=0)
    assert "step 0" in ax.get_title() and lines(ax)[0].get_ydata()[0] == pytest.approx(1.0)


def test_norms_of_a_sweep_store(results, tmp_path):
    store = results["store"]
    ax = nr.plots.norms(store)  # one line per init, seeds averaged, the last step
    assert [ln.get_label() for ln in lines(ax)] == ["normal", "orthogonal"]
    assert ax.get_legend().get_title().get_text() == "init"
    assert "geometric mean over seed (2)" in ax.get_title() and "step 8 (last)" in ax.get_title()
    saved(ax, tmp_path)
    fig = nr.plots.norms(store, "grad_norm", hue="seed", col="init", step=0)
    panels = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in panels] == ["normal", "orthogonal"]
    assert all(len(lines(a)) == 2 for a in panels) and "step 0" in fig.get_suptitle()
    saved(fig, tmp_path, "facets")


def test_norms_of_weight_powers_over_k(results, tmp_path):
    ax = nr.plots.norms(results["wp"])
    assert len(lines(ax)) == 4 and ax.get_xlabel() == r"power $k$"
    assert "gate (4)" in ax.get_title()
    np.testing.assert_array_equal(lines(ax)[0].get_xdata(), [1, 2, 3, 4, 5])
    saved(ax, tmp_path)


def test_norms_errors(results):
    need = r"norms needs a variable with a 'time' dim such as jacobian_norm or grad_norm"
    with pytest.raises(ValueError, match=need + r".*this Dataset has: loss \(member, step\)"):
        nr.plots.norms(results["runs"])
    with pytest.raises(ValueError, match=r"this Dataset has: lyapunov \(layer, direction, batch"):
        nr.plots.norms(results["lyap"])
    with pytest.raises(ValueError, match=r"var='grad_norm' is not in the Dataset.*jacobian_norm"):
        nr.plots.norms(results["jac"], "grad_norm")
    with pytest.raises(ValueError, match=r"hue='member' is not a dim of jacobian_norm"):
        nr.plots.norms(results["jac"], hue="member")
    with pytest.raises(ValueError, match=r"by must be 'lag' or 'time', got 't'"):
        nr.plots.norms(results["jac"], by="t")
    with pytest.raises(ValueError, match=r"recorded \(0, 5, 10, 15, 20\), got 3"):
        nr.plots.norms(results["run"], "grad_norm", step=3)
    _, ax = nr.plots.pyplot().subplots()
    with pytest.raises(ValueError, match=r"ax= takes one panel, but col=\('direction',\) makes 2"):
        nr.plots.norms(results["jac"], hue="layer", ax=ax)
    with pytest.raises(TypeError, match="expected an xarray Dataset or DataArray, got int"):
        nr.plots.norms(3)


# -- training --------------------------------------------------------------------------------


def test_training_of_one_run_with_evaluation_steps(results, tmp_path):
    run = results["run"]
    assert np.isnan(run["test_loss"].values).any()  # evaluated every 5 steps
    ax = nr.plots.training(run, ["loss", "test_loss"])
    data = lines(ax)
    assert [ln.get_label() for ln in data] == ["training loss", "test loss"]
    np.testing.assert_array_equal(data[1].get_xdata(), [0, 5, 10, 15, 20])  # the non-NaN points
    assert data[1].get_marker() == "o" and len(data[0].get_xdata()) == 21
    base = [ln for ln in ax.get_lines() if ln.get_gid() == "reference"]
    assert len(base) == 1 and base[0].get_linestyle() == "--"
    assert base[0].get_ydata()[0] == pytest.approx(run.attrs["baseline"])
    assert ax.get_xlabel() == "training step" and ax.get_title() == "task: adding (T=6)"
    assert ax.get_yscale() == "log"
    saved(ax, tmp_path)


def test_training_of_an_ensemble(results, tmp_path):
    runs = results["runs"]
    ax = nr.plots.training(runs)  # one line per member
    assert [ln.get_label() for ln in lines(ax)] == ["member 0", "member 1", "member 2"]
    assert not ax.collections  # nothing averaged, nothing shaded
    saved(ax, tmp_path)
    ax = nr.plots.training(runs, hue=(), spread="std")  # the mean over members, +-1 std
    assert len(lines(ax)) == 1 and len(ax.collections) == 1
    assert ax.get_title() == r"mean over member (3); shaded: $\pm$1 std"
    np.testing.assert_allclose(lines(ax)[0].get_ydata(), runs["loss"].mean("member").values)
    saved(ax, tmp_path, "mean")


def test_training_of_a_sweep_store(results, tmp_path):
    store = results["store"]
    ax = nr.plots.training(store)  # one line per init, min-max over seeds
    assert [ln.get_label() for ln in lines(ax)] == ["normal", "orthogonal"]
    assert len(ax.collections) == 2
    assert ax.get_title() == "mean over seed (2); shaded: min to max"
    assert ax.get_ylabel() == "training loss"
    lo, hi = store["loss"].min("seed"), store["loss"].max("seed")
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(float(lo.sel(init="normal").min()))
    assert band.max() == pytest.approx(float(hi.sel(init="normal").max()))
    saved(ax, tmp_path)
    ax = nr.plots.training(store, "test_metric", hue="seed", spread=None)
    assert len(lines(ax)) == 2 and not ax.collections and "mean over init (2)" in ax.get_title()
    assert ax.get_ylabel() == "test MSE"
    saved(ax, tmp_path, "metric")


def test_training_errors(results):
    with pytest.raises(ValueError, match=r"training needs a variable with a 'step' dim such as "
                       r"loss or test_loss; this Dataset has: jacobian_norm"):  # fmt: skip
        nr.plots.training(results["jac"])
    with pytest.raises(ValueError, match=r"grad_norm also has dims \(layer, direction, time\)"):
        nr.plots.training(results["run"], "grad_norm")
    with pytest.raises(ValueError, match=r"var='los' is not in the Dataset; its variables with "
                       r"a 'step' dim: loss \(step\)"):  # fmt: skip
        nr.plots.training(results["run"], "los")
    with pytest.raises(ValueError, match=r"spread must be 'minmax', 'std' or None, got 'iqr'"):
        nr.plots.training(results["runs"], spread="iqr")
    with pytest.raises(ValueError, match=r"hue='lr' is not a dim of loss; its dims are "
                       r"\(init, seed, step\)"):  # fmt: skip
        nr.plots.training(results["store"], hue="lr")


# -- lyapunov --------------------------------------------------------------------------------


def test_lyapunov_spectrum(results, tmp_path):
    lyap = results["lyap"]
    ax = nr.plots.lyapunov(lyap)
    assert len(lines(ax)) == 4 and len(ax.collections) == 4  # a band over batch per line
    zero = [ln for ln in ax.get_lines() if ln.get_gid() == "reference"]
    assert len(zero) == 1 and zero[0].get_ydata()[0] == 0
    np.testing.assert_array_equal(lines(ax)[0].get_xdata(), np.arange(1, 11))
    mean = lyap["lyapunov"].isel(layer=0, direction=0).mean("batch")
    np.testing.assert_allclose(lines(ax)[0].get_ydata(), mean)
    assert ax.get_ylabel() == r"Lyapunov exponent $\lambda_i$ (nats/step)"
    assert ax.get_xlabel() == r"exponent index $i$ (1: largest)"
    assert ax.get_title() == "mean over batch (4); shaded: min to max"
    saved(ax, tmp_path)
    fig = nr.plots.lyapunov(lyap, hue="layer", spread="std")  # a panel per direction
    panels = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in panels] == ["forward", "backward"]
    assert [len(lines(a)) for a in panels] == [2, 2]
    saved(fig, tmp_path, "facets")


def test_lyapunov_of_an_ensemble(results, tmp_path):
    x = np.random.default_rng(1).standard_normal((10, 3, 3))
    ens = nr.ensemble([nr.RNN(3, 4, seed=s) for s in range(2)])
    ax = nr.plots.lyapunov(nr.diagnostics.lyapunov_spectrum(ens, x, warmup=2))
    assert [ln.get_label() for ln in lines(ax)] == ["member 0", "member 1"]
    saved(ax, tmp_path)


def test_lyapunov_errors(results):
    with pytest.raises(ValueError, match=r"lyapunov needs a variable with an 'exponent' dim "
                       r"such as lyapunov.*this Dataset has: jacobian_norm"):  # fmt: skip
        nr.plots.lyapunov(results["jac"])
    with pytest.raises(ValueError, match=r"this Dataset has: .*lyapunov_max \(init, seed"):
        nr.plots.lyapunov(results["store"])


# -- heatmap ---------------------------------------------------------------------------------


def test_heatmap_of_a_sweep_final_loss(results, tmp_path):
    store = results["store"]
    ax = nr.plots.heatmap(store, x="init", y="seed", var="loss")
    img = ax.get_images()[0].get_array()
    np.testing.assert_allclose(img, store["loss"].isel(step=-1).transpose("seed", "init"))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["normal", "orthogonal"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1"]
    assert ax.get_xlabel() == "init" and ax.get_ylabel() == "seed"
    assert ax.get_images()[0].colorbar.ax.get_ylabel() == "final training loss"
    assert ax.get_title() == "step 8 (last)"
    assert len(ax.texts) == 4  # each cell's value
    saved(ax, tmp_path)
    ax = nr.plots.heatmap(store["loss"], x="init", y="step")  # a DataArray, seeds averaged
    assert ax.get_title() == "mean over seed (2)" and ax.get_images()[0].get_array().shape == (9, 2)
    saved(ax, tmp_path, "steps")
    ax = nr.plots.heatmap(store, "init", "seed", var="lyapunov_max")  # signed: centred on 0
    assert ax.get_images()[0].get_cmap().name.startswith("RdBu_r")
    saved(ax, tmp_path, "lyapunov_max")


def test_heatmap_of_diagnostics(results, tmp_path):
    ax = nr.plots.heatmap(results["wp"], x="k", y="gate")
    assert ax.get_images()[0].get_array().shape == (4, 5)
    assert ax.get_title() == "geometric mean over layer (2) and direction (2)"
    assert ax.get_images()[0].norm.__class__.__name__ == "LogNorm"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4", "5"]
    saved(ax, tmp_path)
    ax = nr.plots.heatmap(results["jac_e"], x="time", y="member")
    assert ax.get_title() == "geometric mean over batch (4)"
    saved(ax, tmp_path, "members")
    ax = nr.plots.heatmap(results["runs"], x="step", y="member", var="loss")
    assert ax.get_images()[0].get_array().shape == (3, 21) and not ax.texts  # too many cells
    saved(ax, tmp_path, "runs")


def test_heatmap_errors(results):
    with pytest.raises(ValueError, match=r"heatmap needs a variable with dims 'init' and 'lr'; "
                       r"this Dataset has: .*loss \(init, seed, step\)"):  # fmt: skip
        nr.plots.heatmap(results["store"], x="init", y="lr")
    with pytest.raises(ValueError, match=r"y='lr' is not a dim of loss; its dims are"):
        nr.plots.heatmap(results["store"], x="init", y="lr", var="loss")
    with pytest.raises(ValueError, match=r"heatmap needs x= and y=, two of the dims of "
                       r"jacobian_norm: \(layer, direction, batch, time\)"):  # fmt: skip
        nr.plots.heatmap(results["jac"])
    with pytest.raises(ValueError, match=r"x and y must be different dims, got 'init' for both"):
        nr.plots.heatmap(results["store"], "init", "init")
    with pytest.raises(ValueError, match=r"reduce must be one of mean, .*got 'sum'"):
        nr.plots.heatmap(results["store"], "init", "seed", reduce="sum")
