"""Matplotlib figures of numrnn results (imported on first use; uses the Agg backend
when no display is set, so it works on headless machines and in CI)."""

import os

import numpy as np


def pyplot():
    """``matplotlib.pyplot``, on the Agg backend when neither ``DISPLAY`` nor
    ``MPLBACKEND`` is set (headless machines, CI).

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Examples
    --------
    >>> from numrnn import plots
    >>> fig, ax = plots.pyplot().subplots()
    >>> plots.pyplot().close(fig)
    """
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def norms(ds, var=None, ax=None, by="lag", heatmap=False, label=None):
    """Plot a per-step norm on a log scale, one line per layer and direction.

    With a ``batch`` dimension, the geometric mean over it is drawn (the norms span many
    orders of magnitude).

    Parameters
    ----------
    ds : xarray.Dataset
        With a variable over (layer, direction, [batch,] time), e.g. from
        :func:`numrnn.diagnostics.jacobian_norms` or :func:`~numrnn.diagnostics.gradient_norms`.
    var : str or None
        The variable; by default ``jacobian_norm`` or ``grad_norm``, whichever is there.
    ax : matplotlib.axes.Axes or None
        Where to draw; None makes a new figure.
    by : {"lag", "time"}, default "lag"
        The x axis: the lag (T - 1 - t for the forward direction, t for the backward
        one: the distance the gradient travelled) or the time step.
    heatmap : bool, default False
        Draw a (layer x time) image of log10 of the norm (forward direction) instead of
        lines.
    label : str or None
        Prefix of the legend entries.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.LSTM(3, 4, num_layers=2, seed=0)
    >>> jac = nr.diagnostics.jacobian_norms(model, np.ones((10, 2, 3)))
    >>> ax = nr.plots.norms(jac, label="LSTM")
    >>> ax.get_xlabel(), ax.get_ylabel(), len(ax.get_lines())
    ('lag T - t', 'jacobian_norm', 2)
    >>> nr.plots.pyplot().close(ax.figure)
    """
    var = var or next(v for v in ("jacobian_norm", "grad_norm") if v in ds)
    da = ds[var]
    if "batch" in da.dims:
        # geometric mean over sequences: the norms span many orders of magnitude
        da = np.exp(np.log(da).mean("batch"))
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    T = da.sizes["time"]
    if heatmap:
        img = np.log10(da.isel(direction=0).transpose("layer", "time").values)
        im = ax.imshow(img, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
        ax.figure.colorbar(im, ax=ax, label=f"log10 {var}")
        ax.set(xlabel="time", ylabel="layer")
        return ax
    for layer in da["layer"].values:
        for direction in da["direction"].values:
            y = da.sel(layer=layer, direction=direction).values
            t = np.arange(T)
            if by == "lag":
                t = T - 1 - t if direction == "forward" else t
            name = f"layer {layer}" + (f" {direction}" if da.sizes["direction"] > 1 else "")
            ax.semilogy(t, y, label=f"{label} {name}" if label else name)
    ax.set(xlabel="lag T - t" if by == "lag" else "time t", ylabel=var)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def save(fig_or_ax, path):
    """Save a figure (or an Axes' figure) as PNG (120 dpi, tight layout) and close it.

    Parameters
    ----------
    fig_or_ax : matplotlib.figure.Figure or matplotlib.axes.Axes
    path : str or PathLike
        The PNG file.

    Returns
    -------
    str or PathLike
        ``path``.

    Examples
    --------
    >>> import os, tempfile, numpy as np, numrnn as nr
    >>> jac = nr.diagnostics.jacobian_norms(nr.RNN(3, 4, seed=0), np.ones((10, 2, 3)))
    >>> path = nr.plots.save(nr.plots.norms(jac), os.path.join(tempfile.mkdtemp(), "j.png"))
    >>> os.path.getsize(path) > 0
    True
    """
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path
