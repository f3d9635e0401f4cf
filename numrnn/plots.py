"""Matplotlib figures of numrnn results (imported on first use; uses the Agg backend
when no display is set, so it works on headless machines and in CI).

Every helper takes a result as numrnn writes it (a Dataset from :mod:`numrnn.diagnostics`,
:func:`numrnn.train`, or a sweep store opened with :func:`numrnn.open`), whatever extra
dims it has (``member``, ``init``, ``seed``, ``step``, ...), and returns the Axes it drew
into (or the Figure, when it draws one panel per value of a dim). Dims that are neither
drawn nor faceted are averaged over, and the title says which. Pass ``ax=`` to draw into
an Axes of your own; :func:`save` writes a PNG in one call.

- :func:`norms`: per-step norms (Jacobian products, gradients; W_hh powers) against lag or
  time, log scale, as lines or a heatmap;
- :func:`training`: training curves over ``step`` with the spread over seeds or members;
- :func:`lyapunov`: Lyapunov spectra, exponent index against value;
- :func:`heatmap`: any variable over two named dims, e.g. a sweep's final loss.
"""

import json
import os
import warnings

import numpy as np

# how each variable numrnn writes reads on an axis (matplotlib mathtext)
LABELS = {
    "jacobian_norm": r"$\|\partial s_T/\partial s_t\|_2$",
    "grad_norm": r"$\|\partial L/\partial h_t\|_2$",
    "cell_grad_norm": r"$\|\partial L/\partial c_t\|_2$",
    "grad_norm_total": r"$\|\nabla_\theta L\|_2$ (before clipping)",
    "power_norm": r"$\|(W_{hh}^\top)^k\|_2$",
    "spectral_radius": r"spectral radius $\rho(W_{hh})$",
    "lyapunov": r"Lyapunov exponent $\lambda_i$ (nats/step)",
    "lyapunov_max": r"largest Lyapunov exponent $\lambda_1$ (nats/step)",
    "loss": "training loss",
    "test_loss": "test loss",
    "test_metric": "test metric",
    "final_loss": "final training loss",
    "final_test_loss": "final test loss",
    "final_test_metric": "final test metric",
}
# dims that are part of a measurement rather than of which run it is
_MEASURE_DIMS = ("batch", "step", "layer", "direction", "time", "exponent", "k", "gate", "when")
_SPREADS = ("minmax", "std", None)
_REDUCERS = ("mean", "geomean", "median", "min", "max")


def pyplot():
    """matplotlib.pyplot, with the Agg backend when no display is set (headless machines, CI).

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Examples
    --------
    >>> from numrnn import plots
    >>> plots.pyplot().__name__
    'matplotlib.pyplot'
    """
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig_or_ax, path):
    """Save a figure (or an Axes' figure) as PNG and close it.

    Parameters
    ----------
    fig_or_ax : matplotlib Figure or Axes (its figure is saved).
    path : str or PathLike of the PNG.

    Returns
    -------
    path

    Examples
    --------
    >>> import os, tempfile, numpy as np, numrnn as nr
    >>> ds = nr.diagnostics.jacobian_norms(nr.RNN(2, 4, seed=0), np.ones((8, 3, 2)))
    >>> path = nr.plots.save(nr.plots.norms(ds), os.path.join(tempfile.mkdtemp(), "jac.png"))
    >>> os.path.getsize(path) > 0
    True
    """
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


# -- the helpers ---------------------------------------------------------------------------


def norms(ds, var=None, ax=None, by=None, heatmap=False, label=None, *, hue=None, col=None,
          step="last"):  # fmt: skip
    """Plot a per-step norm on a log scale: one line per layer and direction, or per member,
    init, seed, step, ... of any result that has them.

    Parameters
    ----------
    ds : xarray.Dataset (or DataArray) with a variable over ``time`` (or ``k``), e.g. from
        :func:`numrnn.diagnostics.jacobian_norms` (layer, direction, batch, time),
        :func:`~numrnn.diagnostics.gradient_norms`, an ensemble's (with ``member``),
        :func:`numrnn.train`'s (with ``step``), a sweep store's (``init``, ``seed``, ...,
        ``step``), or ``power_norm`` of :func:`~numrnn.diagnostics.weight_powers` (over ``k``).
    var : name of the variable; by default ``jacobian_norm``, ``grad_norm``,
        ``cell_grad_norm`` or ``power_norm``, the first present.
    ax : matplotlib Axes to draw into, or None (a new figure). Not with facets (``col``).
    by : "lag" (T - 1 - t for the forward direction, t for the backward one: the distance
        the gradient travelled) or "time"; None: "lag" for lines, "time" for a heatmap.
    heatmap : draw an image of the norm (log colour scale) with one row per value of
        ``hue`` and the lag or time across, instead of lines.
    label : prefix of the legend entries (to tell apart several calls on one Axes).
    hue : dim name or tuple of names: one line (heatmap: one row) per value (combination).
        Default: the first of ``init``, ``member``, the store's grid dims, any other dim
        that is not part of the measurement (``case``, ``gate``, ...); when there is none,
        ``("layer", "direction")``.
    col : dim name or tuple of names: one panel per value; () for none. Default: ``layer``
        and ``direction`` when they have more than one value and are not the ``hue``.
    step : which training step to show when there is a ``step`` dim that is neither hue
        nor col: "last" (the last one with values) or a step number.

    Returns
    -------
    matplotlib Axes, or the Figure when there are facets.

    Notes
    -----
    Every other dim is averaged over by geometric mean (norms span decades): ``batch``
    always, the rest as the title says.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> x = np.random.default_rng(0).standard_normal((8, 3, 2))
    >>> ax = nr.plots.norms(nr.diagnostics.jacobian_norms(nr.RNN(2, 4, seed=0), x))
    >>> ax.get_xlabel()
    'lag $T - t$'
    """
    ds = _as_dataset(ds)
    var = _pick_var(ds, var, ("time", "k"), ("jacobian_norm", "grad_norm", "cell_grad_norm",
                    "power_norm"), "norms", "jacobian_norm or grad_norm, or a 'k' dim such "
                    "as power_norm")  # fmt: skip
    if by not in (None, "lag", "time"):
        raise ValueError(f"by must be 'lag' or 'time', got {by!r}")
    by = by or ("time" if heatmap else "lag")
    da = ds[var]
    xdim = "time" if "time" in da.dims else "k"
    hue, col = _hue_col(ds, da, hue, col, xdim)
    if xdim == "time" and by == "lag":
        da, xdim = _to_lag(da), "lag"
    da, notes = _reduce(da, (*hue, *col, xdim), "geomean", step)
    if "batch" not in ds[var].dims and ds[var].attrs.get("description", "").startswith(
        "batch mean"
    ):
        notes.insert(0, "batch mean")  # as nr.train and sweeps record it
    if heatmap and not hue:
        da, hue = da.expand_dims(_row=[var]), ("_row",)
    axes, fig = _panels(ax, da, col, var)
    xlabel = {"time": r"time step $t$", "k": r"power $k$"}.get(xdim)
    if xlabel is None:
        both = "direction" in da.dims and "backward" in da["direction"].values
        xlabel = r"lag $|T - t|$ ($T$: last step of each direction)" if both else r"lag $T - t$"
    ylabel = _label(var, ds)
    if heatmap:
        values = np.asarray(da.values, dtype=float)
        ok = values[np.isfinite(values) & (values > 0)]
        norm = _lognorm(ok)
        for ax_, (name, sel) in zip(axes, _combos(da, col), strict=False):
            im = _image(ax_, da.isel(sel).transpose(*hue, xdim), hue, xdim, norm)
            ax_.set_title(name)
        _axis_labels(axes, xlabel, ", ".join(h for h in hue if h != "_row"))
        cbar = fig.colorbar(im, ax=axes, label=ylabel)
        _readable_log([cbar.ax])
    else:
        lines = _combos(da, hue)
        colors = _colors(da, hue, len(lines))
        for ax_, (name, sel) in zip(axes, _combos(da, col), strict=False):
            for (line, hsel), color in zip(lines, colors, strict=True):
                y = da.isel({**sel, **hsel})
                text = " ".join(p for p in (label, line) if p) or (label or ylabel)
                ax_.plot(y[xdim].values, y.values, color=color, label=text)
            ax_.set_yscale("log")
            ax_.set_title(name)
            ax_.grid(True, which="major", alpha=0.3)
        _axis_labels(axes, xlabel, ylabel)
        _readable_log(axes)
        _legend(axes[0], da, hue, len(lines) > 1 or label is not None)
    _integer_ticks(axes, x=True)
    _suptitle(fig, axes, notes, facets=bool(col))
    return fig if col else axes[0]


def training(ds, var="loss", ax=None, *, hue=None, spread="minmax", log=None, baseline=True,
             label=None):  # fmt: skip
    """Training curves over ``step``: one line per value of ``hue``, the mean over the
    other runs with their spread shaded.

    Parameters
    ----------
    ds : xarray.Dataset from :func:`numrnn.train` (a single run, or an ensemble's over
        ``member``) or a sweep store opened with :func:`numrnn.open` (grid dims ``init``,
        ``seed``, ...).
    var : name, or a list of names, of per-step variables: ``loss`` (default),
        ``test_loss``, ``test_metric``, ``grad_norm_total``. Values recorded only at some
        steps (``test_loss`` at evaluation steps) are drawn as points joined by lines.
    ax : matplotlib Axes to draw into, or None (a new figure).
    hue : dim drawn as one line per value; default ``init`` if present, else ``member``,
        else the store's first grid dim; None when the Dataset has none (one line).
        Pass ``hue=()`` for one line over all runs.
    spread : what the shading over the other runs (e.g. seeds) shows: "minmax" (the
        lowest to the highest run), "std" (mean +- one standard deviation) or None; with
        several variables, the first one's.
    log : log y axis; default: when all values are positive and it is not an accuracy.
    baseline : draw the task's baseline (the loss of the best input-independent predictor,
        ``attrs["baseline"]``) as a dashed line, when the Dataset has it.
    label : prefix of the legend entries.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numrnn as nr
    >>> model = nr.RNN(2, 4, output_size=1, readout="last", seed=0)
    >>> run = nr.train(model, nr.tasks.Adding(6), 10, 4, ("adam", {"lr": 0.01}), seed=0,
    ...                progress=False)
    >>> nr.plots.training(run).get_ylabel()
    'training loss'
    """
    ds = _as_dataset(ds)
    names = [var] if isinstance(var, str) else list(var)
    if not names:
        raise ValueError("var must name at least one variable, got an empty list")
    for name in names:
        _pick_var(ds, name, ("step",), (), "training", "loss or test_loss")
        extra = [d for d in ds[name].dims if d in _MEASURE_DIMS and d != "step"]
        if extra:
            raise ValueError(
                f"training draws one value per step and run; {name} also has dims "
                f"({', '.join(extra)}): select them first (ds.sel(...)) or plot it with "
                f"norms(ds, {name!r}, hue='step')"
            )
    if spread not in _SPREADS:
        raise ValueError(f"spread must be 'minmax', 'std' or None, got {spread!r}")
    first = ds[names[0]]
    if hue is None:
        hue = _main_dim(ds, [d for d in first.dims if d != "step"])
        hue = (hue,) if hue else ()
    else:
        hue = _as_dims(hue, "hue")
        _check_dims(first, hue, "hue", names[0])
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    lines = _combos(first, hue)
    colors = _colors(first, hue, len(lines))
    styles = ["-", ":", "-.", (0, (5, 1))]
    notes = []
    all_values = []
    for k, name in enumerate(names):
        da = ds[name].where(np.isfinite(ds[name]))
        others = [d for d in da.dims if d not in (*hue, "step")]
        big = [d for d in others if da.sizes[d] > 1]
        with _quiet():
            mean = da.mean(others) if others else da
            if spread == "minmax" and big:
                low, high = da.min(others), da.max(others)
            elif spread == "std" and big:
                std = da.std(others)
                low, high = mean - std, mean + std
        if big and k == 0:
            note = "mean over " + _and([f"{d} ({da.sizes[d]})" for d in big])
            if spread:
                note += "; shaded: " + ("min to max" if spread == "minmax" else r"$\pm$1 std")
                note += f" of {_label(name, ds)}" if len(names) > 1 else ""
            notes.append(note)
        vals = da.values
        all_values.append(vals[np.isfinite(vals)])
        short = _label(name, ds) if len(names) > 1 else None
        for (line, sel), color in zip(lines, colors, strict=True):
            m = mean.isel(sel)
            ok = np.isfinite(m.values)
            if not ok.any():
                continue
            steps = m["step"].values[ok]
            idx = np.flatnonzero(ok)
            sparse = len(idx) < idx[-1] - idx[0] + 1  # gaps: recorded at some steps only
            text = ", ".join(p for p in (label, line, short) if p) or _label(name, ds)
            ax.plot(steps, m.values[ok], color=color, ls=styles[k % len(styles)], label=text,
                    marker="o" if sparse else None, ms=3)  # fmt: skip
            if spread and big and k == 0:  # the first variable's spread only: readable
                ax.fill_between(steps, low.isel(sel).values[ok], high.isel(sel).values[ok],
                                color=color, alpha=0.2, lw=0)  # fmt: skip
    values = np.concatenate(all_values) if all_values else np.array([])
    if baseline and "baseline" in ds.attrs and any(_has_baseline(ds, n) for n in names):
        b = float(ds.attrs["baseline"])
        ax.axhline(b, color="0.35", ls="--", lw=1, label=f"baseline {b:.3g}", gid="reference")
        values = np.append(values, b)
    if log is None:
        accuracy = any(_metric(ds, n) == "accuracy" for n in names)
        log = bool(len(values)) and (values > 0).all() and not accuracy
    if log:
        ax.set_yscale("log")
        _readable_log([ax])
    ax.set(xlabel="training step", ylabel=", ".join(_label(n, ds) for n in names))
    ax.grid(True, which="major", alpha=0.3)
    _integer_ticks([ax], x=True)
    task = _task(ds)
    ax.set_title("; ".join(notes) or task, fontsize="medium")
    _legend(ax, first, hue, len(ax.get_lines()) > 1 or label is not None)
    return ax


def lyapunov(ds, var=None, ax=None, *, hue=None, col=None, spread="minmax", step="last"):
    """Lyapunov spectra: exponent index against value, the mean over sequences (``batch``)
    with their spread shaded, and the zero line (above it: perturbations grow).

    Parameters
    ----------
    ds : xarray.Dataset from :func:`numrnn.diagnostics.lyapunov_spectrum` (layer,
        direction, batch, exponent; ``member`` for an ensemble).
    var : the variable; by default ``lyapunov``.
    ax : matplotlib Axes to draw into, or None (a new figure). Not with facets (``col``).
    hue, col : as for :func:`norms`: one line per value of ``hue`` (default the first of
        ``init``, ``member``, ... else ``("layer", "direction")``), one panel per value of
        ``col`` (default: layer and direction with more than one value, when not the hue).
    spread : shading over ``batch`` and the other dims averaged over: "minmax", "std"
        (mean +- one standard deviation) or None.
    step : the step shown when there is a ``step`` dim: "last" or a step number.

    Returns
    -------
    matplotlib Axes, or the Figure when there are facets.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> x = np.random.default_rng(0).standard_normal((8, 3, 2))
    >>> ds = nr.diagnostics.lyapunov_spectrum(nr.LSTM(2, 3, seed=0), x, warmup=2)
    >>> nr.plots.lyapunov(ds).get_xlabel()
    'exponent index $i$ (1: largest)'
    """
    ds = _as_dataset(ds)
    var = _pick_var(ds, var, ("exponent",), ("lyapunov",), "lyapunov",
                    "lyapunov (from nr.diagnostics.lyapunov_spectrum)")  # fmt: skip
    if spread not in _SPREADS:
        raise ValueError(f"spread must be 'minmax', 'std' or None, got {spread!r}")
    da = ds[var]
    hue, col = _hue_col(ds, da, hue, col, "exponent")
    notes = []
    if "step" in da.dims and "step" not in (*hue, *col):
        da, note = _select_step(da, step)
        notes.append(note)
    others = [d for d in da.dims if d not in (*hue, *col, "exponent")]
    big = [d for d in others if da.sizes[d] > 1]
    da = da.where(np.isfinite(da))
    with _quiet():
        mean = da.mean(others) if others else da
        if spread == "minmax":
            low, high = da.min(others), da.max(others)
        else:
            std = da.std(others)
            low, high = mean - std, mean + std
    if big:
        note = "mean over " + _and([f"{d} ({da.sizes[d]})" for d in big])
        if spread:
            note += "; shaded: " + ("min to max" if spread == "minmax" else r"$\pm$1 std")
        notes.insert(0, note)
    axes, fig = _panels(ax, mean, col, var)
    lines = _combos(mean, hue)
    colors = _colors(mean, hue, len(lines))
    index = mean["exponent"].values + 1 if "exponent" in mean.coords else None
    for ax_, (name, sel) in zip(axes, _combos(mean, col), strict=False):
        for (line, hsel), color in zip(lines, colors, strict=True):
            s = {**sel, **hsel}
            m = mean.isel(s).values
            x = index if index is not None else np.arange(1, len(m) + 1)
            ax_.plot(x, m, color=color, marker="o", ms=3, label=line or _label(var, ds))
            if spread and big:
                ax_.fill_between(x, low.isel(s).values, high.isel(s).values, color=color,
                                 alpha=0.2, lw=0)  # fmt: skip
        ax_.axhline(0, color="k", lw=0.8, gid="reference")
        ax_.set_title(name)
        ax_.grid(True, which="major", alpha=0.3)
    _axis_labels(axes, r"exponent index $i$ (1: largest)", _label(var, ds))
    _legend(axes[0], mean, hue, len(lines) > 1)
    _integer_ticks(axes, x=True)
    _suptitle(fig, axes, notes, facets=bool(col))
    return fig if col else axes[0]


def heatmap(da_or_ds, x=None, y=None, var=None, ax=None, *, reduce=None, log=None,
            step="last", annotate=None, cmap=None):  # fmt: skip
    """A 2-D heatmap of any result variable over two named dims, e.g. a sweep's final
    loss over ``init`` x ``lr``, or ``power_norm`` over ``gate`` x ``k``.

    Parameters
    ----------
    da_or_ds : xarray DataArray, or Dataset with ``var``.
    x, y : the dims across and up; default: the DataArray's two dims (after the step and
        the averaged dims go) when it has exactly two.
    var : the variable of a Dataset; default ``loss`` or the first one with dims ``x`` and ``y``.
    ax : matplotlib Axes to draw into, or None (a new figure).
    reduce : how the other dims are averaged: "mean", "geomean", "median", "min" or "max";
        default: "geomean" for norms (``*_norm``), "mean" otherwise.
    log : log colour scale; default for norms, or positive values that span over two decades.
    step : the step shown when there is a ``step`` dim: "last" (the last with values: the
        final loss) or a step number.
    annotate : write each cell's value in it; default when there are at most 100 cells.
    cmap : colormap name; default "viridis", or "RdBu_r" centred on 0 for values of both signs.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numrnn as nr
    >>> ds = nr.diagnostics.weight_powers(nr.GRU(2, 3, seed=0), 4)  # (layer, direction, gate, k)
    >>> ax = nr.plots.heatmap(ds, x="k", y="gate", var="power_norm")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('k', 'gate')
    """
    import matplotlib.colors as mcolors

    ds = _as_dataset(da_or_ds)
    dims = [d for d in (x, y) if d is not None]
    if var is None:
        found = [v for v in _data_vars(ds) if all(d in ds[v].dims for d in dims)]
        if not found:
            raise ValueError(f"heatmap needs a variable with dims {_and(dims, quote=True)}; "
                             f"this Dataset has: {_listing(ds)}")  # fmt: skip
        var = "loss" if "loss" in found else found[0]
    elif var not in ds:
        raise ValueError(f"var={var!r} is not in the Dataset; it has: {_listing(ds)}")
    da = ds[var]
    if reduce is None:
        reduce = "geomean" if var.endswith("norm") else "mean"
    if reduce not in _REDUCERS:
        raise ValueError(f"reduce must be one of {', '.join(_REDUCERS)}, got {reduce!r}")
    for arg, d in (("x", x), ("y", y)):
        if d is not None and d not in da.dims:
            raise ValueError(f"{arg}={d!r} is not a dim of {var}; its dims are "
                             f"({', '.join(da.dims)})")  # fmt: skip
    if x is None or y is None:
        rest = [d for d in da.dims if d not in ("step", "batch", x, y)]
        if len(rest) + len(dims) != 2:
            raise ValueError(f"heatmap needs x= and y=, two of the dims of {var}: "
                             f"({', '.join(da.dims)})")  # fmt: skip
        y = y or rest.pop(0)
        x = x or rest.pop(0)
    if x == y:
        raise ValueError(f"x and y must be different dims, got {x!r} for both")
    da, notes = _reduce(da, (y, x), reduce, step)
    da = da.transpose(y, x)
    values = np.asarray(da.values, dtype=float)
    ok = values[np.isfinite(values)]
    if log is None:
        pos = ok[ok > 0]
        log = (
            len(pos) == len(ok)
            and len(ok) > 0
            and (var.endswith("norm") or pos.max() > 100 * pos.min())
        )
    both = len(ok) and ok.min() < 0 < ok.max()
    if log:
        norm = _lognorm(ok[ok > 0])
    elif both and cmap is None:
        m = np.abs(ok).max()
        norm = mcolors.Normalize(-m, m)
    else:
        norm = mcolors.Normalize(*(ok.min(), ok.max()) if len(ok) else (0, 1))
    cmap = cmap or ("RdBu_r" if both and not log else "viridis")
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(min(10, max(4.5, 1.0 + 0.75 * da.sizes[x])),
                                      min(8, max(3.4, 1.4 + 0.45 * da.sizes[y]))),
                             layout="constrained")  # fmt: skip
    im = _image(ax, da, (y,), x, norm, cmap=cmap, categorical_x=True)
    if annotate is None:  # when the numbers fit in their cells
        annotate = values.size <= 64 and da.sizes[x] <= 8
    if annotate:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                r, g, b, _ = im.cmap(im.norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize="small",
                        color="white" if dark else "black")  # fmt: skip
    label = _label(var, ds)
    if (
        "step" in ds[var].dims
        and "step" not in (x, y)
        and step == "last"
        and var in ("loss", "test_loss", "test_metric")
    ):
        label = "final " + label
    cbar = ax.figure.colorbar(im, ax=ax, label=label)
    if log:
        _readable_log([cbar.ax])
    ax.set(xlabel=x, ylabel=y)
    ax.set_title("; ".join(notes) or label, fontsize="medium")
    return ax


# -- choosing what to draw ------------------------------------------------------------------


def _as_dataset(obj):
    import xarray as xr

    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name or "value")
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"expected an xarray Dataset or DataArray, got {type(obj).__name__}")
    return obj


def _data_vars(ds):
    """The measured variables of ``ds``: parameters (over ``when``), text and integers
    (``diverged_at``) left out."""
    return [v for v in ds.data_vars if "when" not in ds[v].dims and ds[v].dtype.kind == "f"]


def _listing(ds, names=None):
    names = [f"{v} ({', '.join(ds[v].dims)})" for v in (names or _data_vars(ds))]
    return ", ".join(names) if names else "no numeric variables"


def _pick_var(ds, var, dims, preferred, what, example):
    """The variable to plot: ``var`` or the first of ``preferred`` (else any) with one of
    ``dims``; a ValueError that names what ``ds`` has otherwise."""
    found = [v for v in _data_vars(ds) if any(d in ds[v].dims for d in dims)]
    need = " or ".join(f"{'an' if d[0] in 'aeiou' else 'a'} {d!r} dim" for d in dims)
    if var is not None and var in ds:
        if not any(d in ds[var].dims for d in dims):
            raise ValueError(f"{what} needs a variable with {need}; {var} has dims "
                             f"({', '.join(ds[var].dims)})")  # fmt: skip
        return var
    if var is not None and found:
        raise ValueError(f"var={var!r} is not in the Dataset; its variables with {need}: "
                         f"{_listing(ds, found)}")  # fmt: skip
    for v in (*preferred, *found):
        if v in found and var is None:
            return v
    need = need.split(" or ")[0]
    raise ValueError(f"{what} needs a variable with {need} such as {example}; this Dataset "
                     f"has: {_listing(ds)}")  # fmt: skip


def _main_dim(ds, dims):
    """The dim runs are compared by: ``init``, ``member``, the grid's first, any other."""
    try:
        grid = list(json.loads(ds.attrs.get("grid", "{}")))
    except (TypeError, ValueError):
        grid = []
    for d in ("init", "member", *grid, *dims):
        if d in dims and d not in _MEASURE_DIMS:
            return d
    return None


def _as_dims(value, arg):
    if value is None or value is False:
        return ()
    dims = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(d, str) for d in dims):
        raise TypeError(f"{arg} must be a dim name or a tuple of names, got {value!r}")
    return dims


def _check_dims(da, dims, arg, var):
    bad = [d for d in dims if d not in da.dims]
    if bad:
        raise ValueError(f"{arg}={bad[0]!r} is not a dim of {var}; its dims are "
                         f"({', '.join(da.dims)})")  # fmt: skip


def _hue_col(ds, da, hue, col, xdim):
    dims = [d for d in da.dims if d != xdim]
    main = _main_dim(ds, dims)
    ld = [d for d in ("layer", "direction") if d in dims]
    if hue is None:
        hue = (main,) if main else tuple(ld)
    else:
        hue = _as_dims(hue, "hue")
    if col is None:
        col = tuple(d for d in ld if d not in hue and da.sizes[d] > 1)
    else:
        col = _as_dims(col, "col")
    _check_dims(da, hue, "hue", da.name)
    _check_dims(da, col, "col", da.name)
    if set(hue) & set(col) or xdim in (*hue, *col):
        raise ValueError(f"hue={hue!r} and col={col!r} must name different dims, not {xdim!r}")
    return hue, col


def _select_step(da, step):
    """``da`` at one training step: the last one with values, or ``step``."""
    other = [d for d in da.dims if d != "step"]
    has = np.isfinite(da).any(other).values if other else np.isfinite(da.values)
    recorded = da["step"].values[has]
    if step == "last":
        if not len(recorded):
            raise ValueError(f"{da.name} has no finite values at any step")
        return da.sel(step=recorded[-1]), f"step {recorded[-1]} (last)"
    if isinstance(step, (bool, str)) or not np.isscalar(step) or step not in recorded:
        shown = ", ".join(str(s) for s in recorded[:12]) + (", ..." if len(recorded) > 12 else "")
        raise ValueError(f"step must be 'last' or a step at which {da.name} was recorded "
                         f"({shown}), got {step!r}")  # fmt: skip
    return da.sel(step=step), f"step {step}"


def _reduce(da, keep, how, step):
    """Select the step (unless kept) and average every dim not in ``keep`` by ``how``;
    returns the result and notes for the title."""
    notes = []
    if "step" in da.dims and "step" not in keep:
        da, note = _select_step(da, step)
        notes.append(note)
    elif "step" in da.dims:
        other = [d for d in da.dims if d != "step"]
        da = da.sel(step=np.isfinite(da).any(other))
    drop = sorted((d for d in da.dims if d not in keep), key=lambda d: d != "batch")
    big = [f"{d} ({da.sizes[d]})" for d in drop if da.sizes[d] > 1]
    if drop:
        da = da.where(np.isfinite(da))
        with _quiet():
            if how == "geomean":
                da = np.exp(np.log(da).mean(drop))
            else:
                da = getattr(da, how)(drop)
    if big:
        word = {"geomean": "geometric mean", "median": "median", "min": "minimum",
                "max": "maximum"}.get(how, "mean")  # fmt: skip
        notes.insert(0, f"{word} over {_and(big)}")
    return da, notes


def _to_lag(da):
    """``da`` over ``lag`` instead of ``time``: T - 1 - t forward, t backward."""
    T = da.sizes["time"]
    fwd = da.isel(time=slice(None, None, -1)).assign_coords(time=np.arange(T))
    if "direction" in da.dims:
        bwd = da.assign_coords(time=np.arange(T))
        fwd = fwd.where(da["direction"] == "forward", bwd)
    return fwd.rename(time="lag").assign_attrs(da.attrs)


def _combos(da, dims):
    """(label, isel dict) for every combination of values of ``dims``; a dim with one
    value names itself only when it is the only one."""
    if not dims:
        return [("", {})]
    sizes = [da.sizes[d] for d in dims]
    shown = [d for d in dims if da.sizes[d] > 1] or list(dims)
    out = []
    for idx in np.ndindex(*sizes):
        sel = dict(zip(dims, idx, strict=True))
        parts = [_value_label(da, d, sel[d]) for d in dims if d in shown]
        out.append((", ".join(p for p in parts if p), sel))
    return out


def _value_label(da, dim, i):
    if dim == "_row":
        return ""
    if dim not in da.coords:
        return f"{dim} {i}"
    v = da[dim].values[i]
    if isinstance(v, (str, np.str_)):
        return str(v)
    v = v.item() if hasattr(v, "item") else v
    return f"{dim} {v:g}" if isinstance(v, float) else f"{dim} {v}"


def _tick_label(da, dim, i):
    if dim not in da.coords:
        return str(i)
    v = da[dim].values[i]
    v = v.item() if hasattr(v, "item") else v
    return f"{v:g}" if isinstance(v, float) else str(v)


def _colors(da, hue, n):
    """One colour per line: the default cycle, or viridis for ordered values (steps,
    more than six numbers)."""
    import matplotlib as mpl

    ordered = (
        len(hue) == 1
        and hue[0] in da.coords
        and da[hue[0]].dtype.kind in "fiu"
        and (hue[0] == "step" or n > 6)
    )
    if ordered and n > 1:
        return [mpl.colormaps["viridis"](v) for v in np.linspace(0, 0.9, n)]
    if n > 10:
        return [mpl.colormaps["turbo"](v) for v in np.linspace(0.05, 0.95, n)]
    return [f"C{i}" for i in range(n)]


# -- drawing ---------------------------------------------------------------------------------


def _panels(ax, da, col, var):
    """The Axes to draw in: ``ax``, a new one, or one per value of ``col`` (a grid)."""
    if col and ax is not None:
        n = int(np.prod([da.sizes[d] for d in col]))
        raise ValueError(f"ax= takes one panel, but col={col!r} makes {n}: pass col=() or no ax")
    if ax is not None:
        return [ax], ax.figure
    plt = pyplot()
    n = int(np.prod([da.sizes[d] for d in col])) if col else 1
    ncols = min(n, 4 if n != 4 else 2)
    nrows = -(-n // ncols)
    size = (6.4, 4.2) if n == 1 else (3.6 * ncols + 0.6, 3.0 * nrows + 0.6)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, sharex=True,
                             sharey=True, layout="constrained")  # fmt: skip
    axes = list(axes.ravel())
    for extra in axes[n:]:
        extra.set_visible(False)
    # tick labels on the outer panels: the left column, and the lowest panel of each column
    for i, a in enumerate(axes[:n]):
        a.tick_params(which="both", labelleft=i % ncols == 0, labelbottom=i + ncols >= n)
    return axes[:n], fig


def _axis_labels(axes, xlabel, ylabel):
    """Axis labels on the outer panels only: the left column, the lowest of each column."""
    spec = axes[0].get_subplotspec()
    ncols = spec.get_gridspec().ncols if len(axes) > 1 and spec is not None else 1
    for i, a in enumerate(axes):
        if i + ncols >= len(axes):
            a.set_xlabel(xlabel)
        if i % ncols == 0:
            a.set_ylabel(ylabel)


def _image(ax, da, rows, xdim, norm, cmap="viridis", categorical_x=False):
    """imshow of ``da`` (rows..., xdim) with a row per combination of ``rows``, labelled."""
    import matplotlib as mpl

    values = np.asarray(da.values, dtype=float).reshape(-1, da.sizes[xdim])
    cm = mpl.colormaps[cmap].with_extremes(bad="0.85")
    im = ax.imshow(values, aspect="auto", origin="lower", interpolation="nearest", cmap=cm,
                   norm=norm)  # fmt: skip
    if categorical_x:  # heatmap(): the axis label names the dim, the ticks its values
        names = [_tick_label(da, rows[0], i) for i in range(da.sizes[rows[0]])]
    else:
        names = [name for name, _ in _combos(da, rows)]
    n = len(names)
    if any(names):
        every = -(-n // 16)  # at most 16 labels
        ax.set_yticks(range(0, n, every), [names[i] for i in range(0, n, every)])
    else:
        ax.set_yticks([])
    if categorical_x:
        m = da.sizes[xdim]
        every = -(-m // 12)  # at most 12 labels
        labels = [_tick_label(da, xdim, i) for i in range(0, m, every)]
        rotate = max(len(s) for s in labels) * len(labels) > 40
        ax.set_xticks(range(0, m, every), labels, rotation=30 if rotate else 0,
                      ha="right" if rotate else "center")  # fmt: skip
    else:
        coords = da[xdim].values
        im.set_extent((coords[0] - 0.5, coords[-1] + 0.5, -0.5, n - 0.5))
    return im


def _lognorm(positive):
    import matplotlib.colors as mcolors

    if not len(positive):
        return mcolors.LogNorm(1e-1, 1e1)
    lo, hi = positive.min(), positive.max()
    if hi <= lo:
        lo, hi = lo / 10, hi * 10
    return mcolors.LogNorm(lo, hi)


def _integer_ticks(axes, x=False):
    from matplotlib.ticker import MaxNLocator, NullLocator

    for ax in axes:
        if x:
            ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=3))
            ax.xaxis.set_minor_locator(NullLocator())


def _readable_log(axes):
    """Plain numbers (0.3, 2) on a log axis spanning under two decades, where matplotlib
    would write 3x10^-1, with a few minor ticks labelled when it spans under one."""
    from matplotlib.ticker import FuncFormatter

    for ax in axes:
        lo, hi = ax.get_ylim()
        if ax.get_yscale() != "log" or not 0 < lo < hi or not (1e-3 <= lo and hi <= 1e4):
            continue
        span = np.log10(hi / lo)
        if span > 2:
            continue
        keep = range(2, 10) if span < 0.5 else (2, 3, 5) if span < 1.2 else (2, 5)

        def minor(v, _, keep=keep):
            m = v / 10 ** np.floor(np.log10(v) + 1e-9)
            return f"{v:g}" if abs(m - round(m)) < 1e-6 and round(m) in keep else ""

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _legend(ax, da, hue, show):
    if not show:
        return
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    # a title for dims whose values are bare words (init: normal, orthogonal); the others'
    # entries already say "member 0", "layer 1, forward"
    bare = [h for h in hue if h != "direction" and h in da.coords and da[h].dtype.kind in "OUST"]
    title = ", ".join(bare) or None
    ncol = 2 if len(handles) > 6 else 1
    ax.legend(fontsize="small", title=title, title_fontsize="small", ncol=ncol,
              framealpha=0.8)  # fmt: skip


def _suptitle(fig, axes, notes, facets):
    if not notes:
        return
    text = "; ".join(notes)
    if facets:
        fig.suptitle(text, fontsize="medium")
    else:
        axes[0].set_title(text if not axes[0].get_title() else f"{axes[0].get_title()}\n{text}",
                          fontsize="medium")  # fmt: skip


def _label(name, ds):
    text = LABELS.get(name)
    metric = _metric(ds, name)
    if metric:
        text = text.replace("metric", metric if metric == "accuracy" else metric.upper())
    if text is None:
        units = ds[name].attrs.get("units") if name in ds else None
        text = name.replace("_", " ") + (f" ({units})" if units and units != "1" else "")
    return text


def _metric(ds, name):
    """ "accuracy" or "mse" for a ``test_metric`` variable ("" if unknown or another one):
    a run's attrs say it, a store's description does ("MSE on the test set")."""
    if not name.endswith("test_metric"):
        return ""
    desc = ds[name].attrs.get("description", "") if name in ds else ""
    metric = ds.attrs.get("metric") or (desc.split()[0] if desc.endswith("test set") else "")
    return str(metric).lower()


def _has_baseline(ds, name):
    """Whether the task's baseline (a loss) is on ``name``'s scale."""
    if name in ("loss", "test_loss"):
        return True
    return name == "test_metric" and ds.attrs.get("metric") == ds.attrs.get("loss")


def _task(ds):
    """The task as "task: adding (T=6)" from a run's or a store's attrs; "" when they have none."""
    try:
        if "task" in ds.attrs:
            task = json.loads(ds.attrs["task"])
        else:
            task = json.loads(ds.attrs["config"])["task"]
    except (KeyError, TypeError, ValueError):
        return ""
    if not isinstance(task, dict) or "name" not in task:
        return ""
    rest = ", ".join(f"{k}={v}" for k, v in task.items() if k != "name")
    return f"task: {task['name']}" + (f" ({rest})" if rest else "")


def _and(items, quote=False):
    items = [repr(i) if quote else str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _quiet(warnings.catch_warnings):
    """Silence numpy's warnings about empty slices and log(0) in the averages."""

    def __enter__(self):
        out = super().__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return out
