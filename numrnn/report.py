"""``numrnn report``: a summary table and figures of a sweep store."""

import os

import numpy as np

from . import analysis, plots


def _main_dim(ds, grid):
    """The dimension the figures compare: ``init`` if swept, else the first grid dimension."""
    return "init" if "init" in grid else grid[0]


def _mean_over(da, keep):
    others = [d for d in da.dims if d not in keep]
    return da.mean(others, skipna=True) if others else da


def table(summary, grid):
    """The summary as text: one row per run, then mean and std over seeds when swept.

    Parameters
    ----------
    summary : xarray.Dataset
        From :func:`numrnn.analysis.summarize`.
    grid : list of str
        The sweep's grid dimensions (unused by the layout; kept for callers).

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from numrnn.analysis import summarize
    >>> from numrnn.report import table
    >>> ds = xr.Dataset(
    ...     {"loss": (("init", "seed", "step"), [[[1, 0.5], [1, 0.25]], [[1, 0.75], [1, np.nan]]]),
    ...      "status": (("init", "seed"), [["ok", "ok"], ["ok", "diverged"]])},
    ...     coords={"init": ["orthogonal", "identity"], "seed": [0, 1], "step": [0, 1]})
    >>> print(table(summarize(ds), ["init", "seed"]))
    per run
                     final_loss    status
    init       seed
    orthogonal 0            0.5        ok
               1           0.25        ok
    identity   0           0.75        ok
               1              1  diverged
    <BLANKLINE>
    over seeds
                final_loss_mean  final_loss_std  n_ok
    init
    orthogonal            0.375           0.125     2
    identity              0.875           0.125     1
    """
    per_run = [v for v in summary.data_vars if v.startswith("final_") and "_mean" not in v
               and "_std" not in v] + ["status"]  # fmt: skip
    text = "per run\n" + summary[per_run].to_dataframe().to_string(float_format="%.4g")
    agg = [v for v in summary.data_vars if v.endswith(("_mean", "_std")) or v == "n_ok"]
    if agg:
        over = summary[agg]
        if not over.dims:  # seed is the only grid dimension: one row, over all runs
            over = over.expand_dims(runs=["all"])
        text += "\n\nover seeds\n" + over.to_dataframe().to_string(float_format="%.4g")
    return text


def report(path, out_dir):
    """Write ``summary.txt`` and PNG figures of the sweep at ``path`` into ``out_dir``.

    Figures: ``loss.png`` (training loss per value of the main grid dimension, mean and
    min-max over the others: :func:`numrnn.plots.training`), ``grad_norm_heatmap.png``
    (||dL/dh_t|| on a log colour scale over time and layer/direction at the last
    diagnostics step, a panel per value of the main dimension: :func:`numrnn.plots.norms`),
    ``jacobian_decay.png`` (||ds_T/ds_t|| against lag with the fitted exponential rate,
    beside log spectral radius and the largest Lyapunov exponent at initialisation) and
    ``before_after.png`` (the network diagnostics of ``[diagnostics] before_after``,
    initial beside final), each drawn when the store has the variables.

    Parameters
    ----------
    path : str or PathLike
        A sweep store (``*.zarr``, :func:`numrnn.sweep.run`).
    out_dir : str or PathLike
        Created if missing.

    Returns
    -------
    list of str
        The paths written. The summary table is also printed.

    Examples
    --------
    >>> import os, tempfile, numrnn as nr
    >>> from numrnn.report import report
    >>> cfg = {"model": {"cell": "rnn_tanh", "hidden_size": 4},
    ...        "task": {"name": "adding", "T": 6},
    ...        "train": {"steps": 3, "batch_size": 4, "lr": 0.01},
    ...        "diagnostics": {"record": ["grad_norm", "jacobian_norm"]},
    ...        "grid": {"model.init": ["orthogonal", "identity"]}}
    >>> tmp = tempfile.mkdtemp()
    >>> _ = nr.sweep.run(cfg, os.path.join(tmp, "runs.zarr"), workers=1, progress=False)
    >>> paths = report(os.path.join(tmp, "runs.zarr"), os.path.join(tmp, "report"))
    per run
    ...
    >>> sorted(os.path.basename(p) for p in paths)
    ['grad_norm_heatmap.png', 'jacobian_decay.png', 'loss.png', 'summary.txt']
    """
    import json

    from . import results

    ds = results.open(path)
    grid = list(json.loads(ds.attrs["grid"]))
    os.makedirs(out_dir, exist_ok=True)
    main = _main_dim(ds, grid)
    written = []

    summary = analysis.summarize(ds)
    text = table(summary, grid)
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    written.append(os.path.join(out_dir, "summary.txt"))

    plt = plots.pyplot()
    labels = [str(v) for v in ds[main].values]

    ax = plots.training(ds, "loss", hue=main)
    written.append(plots.save(ax, os.path.join(out_dir, "loss.png")))

    if "grad_norm" in ds:
        fig = plots.norms(ds, "grad_norm", heatmap=True, by="time", hue=("layer", "direction"),
                          col=main)  # fmt: skip
        written.append(plots.save(fig, os.path.join(out_dir, "grad_norm_heatmap.png")))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if "jacobian_norm" in ds:
        j = ds["jacobian_norm"].isel(step=0).sel(direction="forward")
        rate = _mean_over(analysis.decay_rate(j), (main,))
        plots.norms(j, ax=axes[0], hue=main)
        for line, label, r in zip(axes[0].get_lines(), labels, rate.values, strict=True):
            line.set_label(f"{label}: {float(r):+.3f}/step")
        axes[0].legend(fontsize="small", title="fitted rate")
        axes[0].set_title(f"at initialisation; {axes[0].get_title()}", fontsize="medium")
    else:
        axes[0].text(0.5, 0.5, "no jacobian_norm recorded\n([diagnostics] record)",
                     ha="center", va="center")  # fmt: skip
    x = np.arange(len(labels))
    rho = _mean_over(np.log(ds["spectral_radius"]), (main,))
    lyap = _mean_over(ds["lyapunov_max"], (main,))
    axes[1].bar(x - 0.2, rho, 0.4, label="log spectral radius of W_hh")
    axes[1].bar(x + 0.2, lyap, 0.4, label="largest Lyapunov exponent")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set(xticks=x, xticklabels=labels, ylabel="nats per step", title="at initialisation")
    axes[1].legend(fontsize="small")
    written.append(plots.save(fig, os.path.join(out_dir, "jacobian_decay.png")))
    if "jacobian_decay" in ds:
        written.append(_before_after(ds, main, labels, out_dir))
    return written


def _before_after(ds, main, labels, out_dir):
    """``before_after.png``: what training changed, per value of the main grid dimension
    (mean over the others, first layer, forward direction): the Jacobian norms' decay rate,
    the largest Lyapunov exponent and log10 ||dL/dh_0|| of the test loss, initial beside
    final."""
    plt = plots.pyplot()
    first = {"layer": 0, "direction": 0}
    panels = [
        (
            ds["jacobian_decay"].isel(first),
            r"decay rate of $\|\partial s_T/\partial s_t\|$ (nats per step)",
        ),
        (
            ds["lyapunov_top"].isel(first).isel(exponent=0),
            r"largest Lyapunov exponent $\lambda_1$ (nats per step)",
        ),
        (
            np.log10(ds["test_grad_norm"].isel(first).isel(time=0)),
            r"$\log_{10}\|\partial L/\partial h_0\|$ of the test loss",
        ),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    x = np.arange(len(labels))
    for ax, (da, title) in zip(axes, panels, strict=True):
        for j, when in enumerate(("initial", "final")):
            v = _mean_over(da.sel(when=when), (main,))
            ax.bar(x + (j - 0.5) * 0.4, v, 0.4, label=when)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xticks=x, xticklabels=labels, title=title, xlabel=main)
        ax.legend(fontsize="small")
    fig.suptitle("before and after training (mean over the other grid dims; layer 0, forward)")
    return plots.save(fig, os.path.join(out_dir, "before_after.png"))
