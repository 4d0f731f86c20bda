"""The look every figure shares and the canvas it is drawn on.

The styles of the three kinds of points (start states, chain states, training points) and their
legend entries; a fresh Agg-backed figure (no pyplot, no "current figure"); a figure as RGB pixels;
the size and dpi of a GIF frame. The other modules of :mod:`kals_utils.faces.plots` draw with these.
"""

import numpy as np
import torch

from ...model import config_of, model_device

# One look for the three kinds of points in every 1D/2D figure, chosen to stand out on a white
# background and on the grey loss heat map alike: start states as white rings, chain states in
# white-edged orange, training points as white-edged black squares on top of both (hollow: a chain
# that reached one shows inside it). Each dict is scatter() keywords; the z-orders put chains
# over starts and training points over chains.
START_STYLE = dict(marker="o", s=18, facecolors="white", edgecolors="0.15", linewidths=0.8, zorder=4, clip_on=False)
CHAIN_STYLE = dict(marker="o", s=30, facecolors="#ff5a00", edgecolors="white", linewidths=0.8, zorder=5, clip_on=False)
TRAIN_STYLE = dict(marker="s", s=140, facecolors="none", edgecolors="black", linewidths=1.8, zorder=6, clip_on=False)
TRAIN_HALO = 3.8       # width of the white outline of a training point's square (a path effect)
NOISE_COLOR, SAMPLE_COLOR, TRAIN_COLOR = "0.15", CHAIN_STYLE["facecolors"], "black"
HEAT_CMAP = "gray"     # the loss heat map: dark = low loss (the attractors' basins), light = high
LEGEND_LABELS = {"start": "start", "chain": "chain", "train": "training point"}


def new_figure(ncols: int = 1, size=(5.0, 3.6), nrows: int = 1):
    """A fresh Agg-backed Figure and its axes array (nrows x ncols, squeezed)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes[0, 0] if nrows * ncols == 1 else axes.ravel()


def _axes(ax, ncols=1, size=(5.0, 3.6)):
    if ax is None:
        return new_figure(ncols, size)
    return (ax[0] if isinstance(ax, (list, tuple, np.ndarray)) else ax).figure, ax


@torch.no_grad()
def _curve(model, lo, hi, n=501):
    dev = model_device(model)
    xs = torch.linspace(lo, hi, n, device=dev)[:, None]
    return xs[:, 0].cpu().numpy(), model(xs)[:, 0].cpu().numpy()


def _legend_handles(kinds=("start", "chain", "train")):
    """Legend entries (marker proxies) for the point kinds named, in the styles used to draw them."""
    from matplotlib import patheffects
    from matplotlib.lines import Line2D
    styles = {"start": START_STYLE, "chain": CHAIN_STYLE, "train": TRAIN_STYLE}
    halo = [patheffects.withStroke(linewidth=TRAIN_HALO, foreground="white")]
    return [Line2D([], [], linestyle="none", marker=styles[k]["marker"], markersize=np.sqrt(styles[k]["s"]),
                   markerfacecolor=styles[k]["facecolors"], markeredgecolor=styles[k]["edgecolors"],
                   markeredgewidth=styles[k]["linewidths"], label=LEGEND_LABELS[k],
                   path_effects=halo if k == "train" else None) for k in kinds]


def _train_points(ax, xs, ys):
    """Training points as hollow black squares with a white outline."""
    from matplotlib import patheffects
    halo = [patheffects.withStroke(linewidth=TRAIN_HALO, foreground="white")]
    return ax.scatter(xs, ys, path_effects=halo, **TRAIN_STYLE)


def _kinds(noise, samples, chain: bool = False):
    return [k for k, on in (("start", noise is not None), ("chain", chain or samples is not None), ("train", True))
            if on]


def _range_of(model):
    return config_of(model).value_range


def fig_to_array(fig) -> np.ndarray:
    """Render a Figure to uint8 RGB (H, W, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


FRAME_SIZE = {1: (9.0, 3.6), 2: (5.6, 5.6)}   # inches of a 1D / 2D walk frame ...
FRAME_DPI = 100                                 # ... at this dpi: 900 x 360 and 560 x 560 px
