"""Matplotlib figures of numrnn results (imported on first use; uses the Agg backend
when no display is set, so it works on headless machines and in CI)."""

import os

import numpy as np


def pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def norms(ds, var=None, ax=None, by="lag", heatmap=False, label=None):
    """Plot a per-step norm on a log scale, one line per layer and direction.

    Parameters
    ----------
    ds : xarray.Dataset with a variable of dims (layer, direction, [batch,] time), e.g. from
        :func:`numrnn.diagnostics.jacobian_norms` or :func:`~numrnn.diagnostics.gradient_norms`.
    var : name of the variable; by default ``jacobian_norm`` or ``grad_norm``.
    ax : matplotlib Axes or None (a new figure).
    by : "lag" (T - 1 - t for the forward direction, t for the backward one: the distance
        the gradient travelled) or "time".
    heatmap : draw a (layer x time) image of log10 of the norm instead of lines.
    label : prefix of the legend entries.

    Returns
    -------
    matplotlib Axes
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
    """Save a figure (or an Axes' figure) as PNG and close it."""
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path
