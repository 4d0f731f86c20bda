"""Matplotlib figures for 1D/2D kaleidoscopes and loss curves.

Every function draws into the axes it is given, or into a new ``matplotlib.figure.Figure`` it makes
itself (no pyplot, no "current figure"), and returns that figure: nothing is ever drawn into a
figure the caller did not hand over. In a notebook, ``%matplotlib inline`` then ``fig`` shows it.
"""

import re
from typing import Optional, Sequence

import numpy as np
import torch

from .metrics import nearest_neighbours, nearest_pairs
from .model import config_of, model_device
from .render import grid_frames, to_uint8
from .studies.architectures import final_samples, kept_runs
from .tables import summarise

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


def plot_losses(losses, ax=None, title: str = "training loss"):
    """Loss history (log scale) vs epoch."""
    fig, ax = _axes(ax)
    ys = np.maximum(np.asarray(losses, dtype=float), 1e-12)
    ax.semilogy(np.arange(len(ys)), ys)
    ax.set(xlabel="epoch", ylabel="MSE |f(x) - x|²", title=title)
    return fig


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


def plot_1d(model, train: torch.Tensor, noise=None, samples=None, axes=None, title: str = ""):
    """Two panels over the output range: f(x) against the identity, and the loss |f(x) - x|².

    train (N, 1) training points (hollow squares); noise (M, 1) start points (white rings); samples
    (M, 1) chain states (orange), drawn on the curves. ``axes``: two matplotlib axes to draw into,
    or None.
    """
    fig, axes = _axes(axes, ncols=2)
    lo, hi = _range_of(model)
    xs, ys = _curve(model, lo, hi)
    loss = (ys - xs) ** 2
    a, b = axes[0], axes[1]
    a.plot(xs, xs, ":", color="grey", label="identity")
    a.plot(xs, ys, color="tab:blue", label="f(x)")
    b.plot(xs, loss, color="tab:blue")
    tr = train[:, 0].cpu().numpy()
    _train_points(a, tr, tr)
    _train_points(b, tr, np.zeros_like(tr))
    for pts, style in ((noise, START_STYLE), (samples, CHAIN_STYLE)):
        if pts is None:
            continue
        p = torch.as_tensor(pts)[:, 0].cpu().numpy()
        fp = np.interp(p, xs, ys)
        a.scatter(p, fp, **style)
        b.scatter(p, (fp - p) ** 2, **style)
    a.set(xlabel="x", ylabel="f(x)", title=title or "f(x) against the identity", xlim=(lo, hi), ylim=(lo, hi))
    b.set(xlabel="x", ylabel="|f(x) - x|²", title="loss landscape", xlim=(lo, hi))
    _legend_1d(a, _kinds(noise, samples))
    return fig


def _legend_1d(ax, kinds):
    """The legend of a 1D output-curve panel: its labelled lines, then the point kinds named."""
    ax.legend(handles=ax.get_legend_handles_labels()[0] + _legend_handles(kinds), loc="upper left", fontsize=9)


@torch.no_grad()
def loss_surface(model, n: int = 101):
    """Grid (n, n) of |f(z) - z|² / 2 over the 2D output range; returns (xs, ys, loss)."""
    lo, hi = _range_of(model)
    dev = model_device(model)
    g = torch.linspace(lo, hi, n, device=dev)
    zz = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)
    loss = ((model(zz) - zz) ** 2).mean(dim=1).reshape(n, n)
    return g.cpu().numpy(), g.cpu().numpy(), loss.cpu().numpy()


def plot_2d(model, train: torch.Tensor, *, noise=None, samples=None, ax=None, title: str = "", n: int = 101,
            colorbar: bool = True, legend: bool = True, chain_legend: bool = False):
    """Heat map of the loss |f(z) - z|² over the unit square (log scale, :data:`HEAT_CMAP`: dark =
    low loss), training points as hollow black squares, start noise as white rings, chain states in orange.

    colorbar / legend: draw this axes' own colour bar / legend (below the axes; ``plot_walk_2d``
    draws one of each for all its panels instead). ``chain_legend``: list the chain even without
    ``samples``. The image is the axes' first image (``ax.images[0]``), for a shared colour bar.
    """
    from matplotlib.colors import LogNorm
    fig, ax = _axes(ax, size=(5.0, 4.8))
    xs, ys, loss = loss_surface(model, n)
    lo, hi = _range_of(model)
    im = ax.imshow(np.maximum(loss, 1e-8), origin="lower", extent=(lo, hi, lo, hi), cmap=HEAT_CMAP,
                   norm=LogNorm(vmin=1e-6, vmax=max(1e-5, float(loss.max()))), interpolation="bilinear")
    if colorbar:   # as tall as the axes (an inset axes beside it)
        fig.colorbar(im, cax=ax.inset_axes([1.04, 0.0, 0.05, 1.0]), label="loss |f(z) - z|²")
    tr = train.cpu().numpy()
    _train_points(ax, tr[:, 0], tr[:, 1])
    for pts, style in ((noise, START_STYLE), (samples, CHAIN_STYLE)):
        if pts is not None:
            p = torch.as_tensor(pts).cpu().numpy()
            ax.scatter(p[:, 0], p[:, 1], **style)
    ax.set(xlabel="z₁", ylabel="z₂", title=title or "loss surface", xlim=(lo, hi), ylim=(lo, hi))
    if legend:
        ax.legend(handles=_legend_handles(_kinds(noise, samples, chain_legend)), loc="upper center",
                  bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=9, frameon=False, handletextpad=0.3)
    return fig


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


def _frame_figure(model, train, start, dim: int, title: str, dpi: int):
    """The static part of a walk frame: landscape, start states, legend, the title top left; and the
    animated step label top right (its place kept by the layout)."""
    panels = 2 if dim == 1 else 1
    fig, axes = new_figure(panels, size=(FRAME_SIZE[dim][0] / panels, FRAME_SIZE[dim][1]))
    fig.set_dpi(dpi)
    if dim == 1:
        plot_1d(model, train, noise=start, axes=axes)
        _legend_1d(axes[0], ("start", "chain", "train"))
        axes = list(axes)
    else:
        plot_2d(model, train, noise=start, ax=axes, chain_legend=True)
        axes.set_title("")   # the colour bar says what the map is; the frame's title is the figure's
        axes = [axes]
    fig.suptitle(title, x=0.01, ha="left", fontsize=13)
    label = fig.text(0.99, 0.98, "step 0", ha="right", va="top", fontsize=13, fontweight="bold", animated=True)
    return fig, axes, label


def walk_frames(model, train: torch.Tensor, result, title: str = "kaleidoscope", dpi: int = FRAME_DPI) -> np.ndarray:
    """One RGB frame per recorded step of a 1D or 2D walk (``result`` from ``kaleidoscope``):
    :data:`FRAME_SIZE` inches at ``dpi`` (900 px wide for 1D), ``title`` top left, "step N" top right.

    The landscape is drawn once and kept as a background; per frame only the chain markers and the
    step label are drawn on top of it (blitting). Returns uint8 (F, H, W, 3).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    dim = config_of(model).dim
    if dim not in (1, 2):
        raise ValueError("walk_frames draws 1D/2D walks; use render.grid_frames for images")
    fig, axes, label = _frame_figure(model, train, result.frames[0].float(), dim, title, dpi)
    moving = [ax.scatter([], [], animated=True, **CHAIN_STYLE) for ax in axes]
    on_top = [c for ax in axes for c in ax.collections if c.get_zorder() == TRAIN_STYLE["zorder"]]
    for c in on_top:                    # training points are drawn after the chain, every frame
        c.set_animated(True)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()                       # lays out once (constrained layout) ...
    fig.set_layout_engine("none")       # ... and keeps that layout for every frame
    background = canvas.copy_from_bbox(fig.bbox)
    if dim == 1:
        xs, ys = _curve(model, *_range_of(model))
    out = []
    for t, state in zip(result.steps, result.frames):
        p = state.float().cpu().numpy()
        canvas.restore_region(background)
        if dim == 1:
            fp = np.interp(p[:, 0], xs, ys)
            moving[0].set_offsets(np.stack([p[:, 0], fp], axis=1))
            moving[1].set_offsets(np.stack([p[:, 0], (fp - p[:, 0]) ** 2], axis=1))
        else:
            moving[0].set_offsets(p)
        label.set_text(f"step {t}")
        for ax, artist in zip(axes, moving):
            ax.draw_artist(artist)
        for c in on_top:
            c.axes.draw_artist(c)
        fig.draw_artist(label)
        out.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return np.stack(out)


def show_image(img: np.ndarray, ax=None, title: str = "", *, width: Optional[float] = None, top: float = 0.0):
    """Show a uint8 image (H, W) or (H, W, 3) with no axes ticks. A new figure is sized to the image's
    shape: ``width`` inches (default 4 to 9, by its pixel width) plus ``top`` inches above it."""
    h, w = img.shape[:2]
    width = width or float(np.clip(w / 60, 4.0, 9.0))
    fig, ax = _axes(ax, size=(width, width * h / w + (0.4 if title else 0.1) + top))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


PAIR_HEADERS = ("sample", "nearest\ntraining image")


def pair_grid(x: torch.Tensor, image_shape, value_range, per_row: int = 4) -> tuple:
    """(image, centres): flat images ``x`` (2k, D), taken as k pairs (a sample, then its nearest
    training image; ``metrics.nearest_pairs``), ``per_row`` pairs a row. Each pair sits side by side in
    a dark frame with a grey line between its two images; white gaps separate the pairs. ``centres``:
    the x pixel centre of every image column of the top row (sample, nearest, sample, ...)."""
    c, h, w = image_shape
    k = len(x) // 2
    u8 = to_uint8(x[:2 * k].cpu(), value_range).view(k, 2, c, h, w).permute(0, 1, 3, 4, 2).numpy()
    line, gap, vgap = max(1, w // 14), max(4, w // 2), max(3, h // 5)
    block_w, block_h = 2 * w + line + 2, h + 2
    rows = max(1, -(-k // per_row))
    canvas = np.full((rows * (block_h + vgap) - vgap, per_row * (block_w + gap) - gap, c), 255, np.uint8)
    for i in range(k):
        y, x0 = (i // per_row) * (block_h + vgap), (i % per_row) * (block_w + gap)
        canvas[y:y + block_h, x0:x0 + block_w] = 40                     # the pair's frame
        canvas[y + 1:y + 1 + h, x0 + 1 + w:x0 + 1 + w + line] = 150     # the line between its images
        canvas[y + 1:y + 1 + h, x0 + 1:x0 + 1 + w] = u8[i, 0]
        canvas[y + 1:y + 1 + h, x0 + 1 + w + line:x0 + 1 + 2 * w + line] = u8[i, 1]
    centres = [(j // 2) * (block_w + gap) + 1 + w / 2 + (j % 2) * (w + line) for j in range(2 * min(per_row, k))]
    return (canvas[..., 0] if c == 1 else canvas), centres


def plot_images(x: torch.Tensor, image_shape, value_range, *, nrow: int = 8, ax=None, title: str = "",
                pairs: bool = False):
    """Flat images ``x`` (N, D) in ``value_range`` as one grid (``nrow`` per row). ``pairs``: ``x`` is
    (sample, nearest training image) pairs (``metrics.nearest_pairs``): each pair is framed, pairs are
    set apart, and every column is headed "sample" / "nearest training image" (``nrow // 2`` pairs a row)."""
    if not pairs:
        return show_image(grid_frames(x, image_shape, value_range, nrow=nrow), ax=ax, title=title)
    per_row = max(1, min(nrow // 2, len(x) // 2))
    img, centres = pair_grid(x, image_shape, value_range, per_row=per_row)
    own = ax is None
    fig = show_image(img, ax=ax, width=min(10.0, 2.2 * per_row + 0.3), top=0.35)
    ax = fig.axes[0] if own else ax
    for i, cx in enumerate(centres):
        ax.text(cx, -1.5, PAIR_HEADERS[i % 2], ha="center", va="bottom", fontsize=8, clip_on=False)
    if title and own:
        fig.suptitle(title)
    elif title:   # above the two-line column headers
        ax.set_title(title, pad=24)
    return fig


def plot_reconstructions(rec, image_shape, value_range, ax=None, title: str = "f(x) during training"):
    """Rows: the training images, then f(x) of them after each recorded epoch
    (``rec`` from ``experiments.train_with_reconstructions``)."""
    rows = torch.cat([rec.originals[None], rec.images])
    grid = grid_frames(rows.reshape(-1, rows.shape[-1]), image_shape, value_range, nrow=rows.shape[1])
    labels = ["training x"] + [f"epoch {e}" for e in rec.epochs[:-1]] + [f"best (epoch {rec.epochs[-1]})"]
    fig, ax = _axes(ax, size=(0.9 * rows.shape[1] + 1.5, 0.9 * len(rows)))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    step = grid.shape[0] / len(rows)
    ax.set_yticks([step * (i + 0.5) for i in range(len(rows))], labels)
    ax.set_xticks([])
    ax.set_title(title)
    return fig


def plot_frames(frames: np.ndarray, steps, show=None, ncols: Optional[int] = None, title: Optional[str] = None):
    """Some of the uint8 ``frames`` (F, H, W[, 3]) of a walk (from ``export.frames_of``, which labels
    every frame with its step), in rows of ``ncols`` (default: up to 4 in one row, else two rows; one
    per row, at the frame's own size, for wide 1D frames).

    steps: the step number of each frame; show: the steps to draw (default: 4 spread over the walk,
    first and last included; a step that was not recorded shows the nearest recorded one).
    title: a word to title each panel with "<title> <step>" (for frames that carry no label), or None.
    """
    steps = list(steps)
    h, w = frames.shape[1:3]
    if show is None:
        idx = sorted({int(round(i)) for i in np.linspace(0, len(steps) - 1, min(4, len(steps)))})
    else:
        idx = [int(np.argmin(np.abs(np.asarray(steps) - s))) for s in show]
    wide = w > 1.5 * h
    ncols = min(ncols or (1 if wide else 4 if len(idx) <= 4 else -(-len(idx) // 2)), len(idx))
    nrows = -(-len(idx) // ncols)
    cell = (max(w / FRAME_DPI, 4.0) if ncols == 1 else 9.0 / ncols) if wide else 4.0
    fig, axes = new_figure(ncols, size=(cell, cell * h / w + (0.35 if title else 0.05)), nrows=nrows)
    axes = np.atleast_1d(axes)
    for a, i in zip(axes, idx):
        show_image(frames[i], ax=a, title=f"{title} {steps[i]}" if title else "")
    for a in axes[len(idx):]:
        a.set_axis_off()
    if wide:
        fig.get_layout_engine().set(w_pad=0.0, h_pad=0.02, wspace=0.0, hspace=0.0)
    return fig


def plot_trajectories(result, train: Optional[torch.Tensor] = None, ax=None, title: str = "chains"):
    """1D walk: every chain's state against the step (start as white rings, last state in orange,
    training points as dashed lines). ``result`` from ``sample.kaleidoscope``."""
    fig, ax = _axes(ax)
    fr = result.frames[:, :, 0].numpy()
    ax.plot(result.steps, fr, color="tab:blue", alpha=0.5, lw=1)
    ax.scatter(np.zeros(fr.shape[1]) + result.steps[0], fr[0], label="start", **START_STYLE)
    ax.scatter(np.zeros(fr.shape[1]) + result.steps[-1], fr[-1], label="last state", **CHAIN_STYLE)
    if train is not None:
        for i, v in enumerate(train[:, 0].cpu().numpy()):
            ax.axhline(v, color=TRAIN_COLOR, ls="--", lw=0.8, label="training point" if i == 0 else None)
    ax.set(xlabel="step t", ylabel="z_t", title=title, ylim=result.value_range)
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_walk_2d(model, train: torch.Tensor, result, show=(0, 1, 2, 5), title: str = "step"):
    """2D walk at a few steps: the loss heat map with the start noise (white rings) and the chain
    states at that step (orange), one shared colour bar and one legend. ``result`` from
    ``sample.kaleidoscope``."""
    steps = list(result.steps)
    show = [s for s in show if s in steps] or [steps[0], steps[-1]]
    fig, axes = new_figure(len(show), size=(3.4, 3.9))
    axes = np.atleast_1d(axes)
    for i, (a, s) in enumerate(zip(axes, show)):
        plot_2d(model, train, noise=result.start, samples=result.frames[steps.index(s)], ax=a, title=f"{title} {s}",
                colorbar=False, legend=False)
        if i:
            a.set_ylabel("")
            a.tick_params(labelleft=False)
    fig.colorbar(axes[0].images[0], ax=list(axes), label="loss |f(z) - z|²", shrink=0.85, pad=0.02)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncol=3, frameon=False)
    return fig


def plot_corner_loss(points, ax=None, paper: Optional[dict] = None, title: str = "loss at the cube's corners"):
    """Corner loss against the number of training points n (log x), one line per dimension d;
    ``paper`` ({d: {n: loss}}) adds the published values as dashed lines."""
    fig, ax = _axes(ax)
    for i, d in enumerate(sorted({p.dim for p in points})):
        ps = sorted((p for p in points if p.dim == d), key=lambda p: p.n)
        color = f"C{i}"
        ax.plot([p.n for p in ps], [p.corner_loss for p in ps], "o-", color=color, label=f"d={d} (kals)")
        if paper and d in paper:
            ns = sorted(paper[d])
            ax.plot(ns, [paper[d][n] for n in ns], "x--", color=color, alpha=0.6, label=f"d={d} (paper)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="number of training points n", ylabel="max over corners ‖c - f(c)‖² / d", title=title)
    ax.legend(fontsize=8)
    return fig


SWEEP_LABELS = {"fd_classifier": "classifier Fréchet distance (lower is better)",
                "fd_heldout": "classifier Fréchet distance to held-out images",
                "fd_pixels": "Fréchet distance in pixels", "converged": "converged at the end", "coverage": "coverage", "median_nn": "median NN distance (RMS)",
                "attractor_fraction": "attractor fraction",
                "radius_median": "spectral radius at the training points (median)",
                "spurious": "stopped at a spurious point", "burn_in": "burn-in (steps)", "novelty": "novelty",
                "copies": "copies", "class_tv": "class TV distance", "loss": "training loss",
                "memorized": "memorised fraction", "coverage_converged": "coverage (converged)"}
SWEEP_UNITS = {"median_nn": "RMS distance", "radius_median": "radius (< 1: attracting)", "burn_in": "steps",
               "loss": "MSE", "novelty": "NN distance / point spacing"}
FRACTION_KEYS = {"converged", "coverage", "attractor_fraction", "spurious", "copies", "class_tv", "memorized",
                 "coverage_converged", "novel_fixed", "train_fixed"}


def metric_label(key: str) -> str:
    """A readable name for a metric key: ``converged_at_5`` -> "converged after 5 steps"."""
    m = re.fullmatch(r"converged_at_(\d+)", key)
    if m:
        return f"converged after {m[1]} step" + ("s" if m[1] != "1" else "")
    return SWEEP_LABELS.get(key, key.replace("_", " "))


def is_fraction(key: str) -> bool:
    """Whether the metric ``key`` is a fraction in [0, 1] (drawn on a 0..1 axis)."""
    return key in FRACTION_KEYS or key.startswith("converged_at_")


def _sweep_axis(ax, key: str, depths):
    import textwrap
    from matplotlib.ticker import MaxNLocator
    ax.set_title("\n".join(textwrap.wrap(metric_label(key), 26)), fontsize=10)
    ax.set_xlabel("depth L")
    if len(depths) <= 12:
        ax.set_xticks(depths)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    pad = max(0.5, 0.06 * (max(depths) - min(depths))) if depths else 0.5
    if depths:
        ax.set_xlim(min(depths) - pad, max(depths) + pad)
    if is_fraction(key):
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction")
    else:
        if key == "radius_median":
            ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        if key != "loss":
            ax.set_ylim(bottom=0)
        ax.set_ylabel(SWEEP_UNITS.get(key, ""))
    ax.grid(alpha=0.3)


def plot_depth_sweep(rows, keys=("converged", "coverage", "median_nn", "attractor_fraction"), axes=None,
                     title: str = ""):
    """One panel per metric against depth L (rows from ``experiments.depth_sweep``, any number of data
    sets and seeds): every run as a dot, the mean over seeds as a line, one colour per data set.
    Depth ticks are the depths swept; fractions (:func:`is_fraction`) are drawn from 0 to 1; panels are
    titled by :func:`metric_label`."""
    if axes is None:
        fig, axes = new_figure(len(keys), size=(3.3, 3.1))
    else:
        fig = np.atleast_1d(axes)[0].figure
    axes = np.atleast_1d(axes)
    names = list(dict.fromkeys(r.get("data", "") for r in rows))
    all_depths = sorted({int(r["depth"]) for r in rows})
    for i, name in enumerate(names):
        rs = [r for r in rows if r.get("data", "") == name]
        for ax, k in zip(axes, keys):
            pts = [(r["depth"], r[k]) for r in rs if r.get(k) is not None]
            if not pts:
                continue
            depths = sorted({d for d, _ in pts})
            means = [np.mean([v for d2, v in pts if d2 == d]) for d in depths]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=f"C{i}", s=14, alpha=0.45, clip_on=False)
            ax.plot(depths, means, "o-", color=f"C{i}", label=name or None, clip_on=False, zorder=3)
    for ax, k in zip(axes, keys):
        _sweep_axis(ax, k, all_depths)
    if any(names):
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=f"C{i}", marker="o", label=name) for i, name in enumerate(names)]
        fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="data", title_fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_frontier(rows, *, ax=None, marks: Optional[dict] = None, target=(0.2, 0.7),
                  title: str = "covering without copying"):
    """Memorised fraction (x) against PRDC coverage (y) for :func:`experiments.recipe_frontier` rows
    (colour: the denoising noise range; size: the jitter eps), the target box (memorised <= target[0],
    coverage >= target[1]) shaded, and ``marks`` {label: (memorized, coverage)} as stars (e.g. the
    paper and improved recipes)."""
    fig, ax = _axes(ax, size=(6.4, 4.6))
    ax.fill_between([0, target[0]], target[1], 1, color="tab:green", alpha=0.12, label="target")
    sigmas = sorted({tuple(r["sigma"]) for r in rows})
    for i, sg in enumerate(sigmas):
        rs = [r for r in rows if tuple(r["sigma"]) == sg]
        ax.scatter([r["memorized"] for r in rs], [r["coverage"] for r in rs], s=[30 + 300 * r["eps"] for r in rs],
                   color=f"C{i}", alpha=0.8, edgecolors="white", label=f"σ {sg[0]:g}–{sg[1]:g}")
    for label, (m, c) in (marks or {}).items():
        ax.scatter([m], [c], marker="*", s=220, color="black", zorder=5)
        ax.annotate(label, (m, c), textcoords="offset points", xytext=(7, -3), fontsize=9)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="memorised (nearest training image < 1/3 of the 2nd nearest)",
           ylabel="coverage (k-NN balls, k=5)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_final_samples(rows: Sequence[dict], data, *, k: int = 16, ncols: int = 4, pairs: bool = False,
                       title: str = ""):
    """One figure: the final states of the first ``k`` chains of the first kept run of each label
    (:func:`final_samples`), titled with the mean converged fraction and median NN distance over
    its seeds, then ``k`` training images of ``data`` for comparison; ``pairs``: each sample followed
    by its nearest training image instead (no training-image panel). Returns the Figure."""
    finals = final_samples(rows, k=k)
    if pairs:
        finals = {label: nearest_pairs(x, data.x, nearest_neighbours(x, data.x)[1], k=k) for label, x in finals.items()}
    means = {m["label"]: m for m in summarise(rows, by=("label",), keys=("converged", "median_nn"))}
    fig, axes = new_figure(ncols, size=(3.2, 3.7), nrows=-(-(len(finals) + (not pairs)) // ncols))
    axes = np.atleast_1d(axes)
    for ax, (label, x) in zip(axes, finals.items()):
        m = means[label]
        plot_images(x, data.image_shape, data.value_range, nrow=4, ax=ax)
        seeds = f"{m['runs']} seed" + "s" * (m["runs"] > 1)
        ax.set_title(f"{label}\nconverged {m['converged']:.2f}, NN {m['median_nn']:.2f} ({seeds})", fontsize=9)
    if not pairs:
        plot_images(data.x[:k], data.image_shape, data.value_range, nrow=4, ax=axes[len(finals)])
        axes[len(finals)].set_title("training images", fontsize=9)
    for ax in axes[len(finals) + (not pairs):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_loss_curves(rows: Sequence[dict], *, title: str = "training loss (first kept run of each)"):
    """The training-loss curves of the first kept run of each label in one log-scale plot."""
    fig, ax = new_figure()
    runs = kept_runs(rows)
    for run in runs.values():
        plot_losses(run.result.losses, ax=ax, title=title)
    ax.legend(list(runs), fontsize=8)
    return fig


# ---------------------------------------------------------------- basins of attraction (issue #24)
SPURIOUS_COLOR, UNSETTLED_COLOR = "0.68", "black"   # basins of spurious fixed points / of chains still moving
BASIN_ALPHA = 0.85      # basin colours are softened a little so the loss contours and points read on top
CONTOUR_LEVELS = (1e-5, 1e-4, 1e-3, 1e-2)           # loss |f(z) - z|² contours drawn over a 2D basin map


def basin_colors(k: int) -> list:
    """One colour per training point (tab10, then tab20 for more than 10), as RGB tuples."""
    from matplotlib import colormaps
    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [tuple(cmap(i % cmap.N)[:3]) for i in range(k)]


def _basin_rgb(bmap) -> np.ndarray:
    """The map's labels as an RGB image: a training point's colour, grey spurious, black unsettled."""
    from matplotlib.colors import to_rgb
    k, s = len(bmap.train), len(bmap.spurious)
    table = np.array(basin_colors(k) + [to_rgb(SPURIOUS_COLOR)] * s + [to_rgb(UNSETTLED_COLOR)])
    lab = bmap.labels.numpy()
    idx = np.where(lab < 0, k + s, lab)
    return 1 - BASIN_ALPHA * (1 - table[idx])   # blend towards white


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%" if v >= 0.001 or v == 0 else "<0.1%"


def _basin_legend(bmap, *, loc="outside lower center", anchor=None, ncol=2, fig=None, ax=None):
    """Legend entries: each training point (its location and area share), spurious, unsettled."""
    from matplotlib.patches import Patch
    k = len(bmap.train)
    loc_txt = (lambda p: f"{p[0]:.2f}") if bmap.dim == 1 else (lambda p: f"({p[0]:.2f}, {p[1]:.2f})")
    handles = [Patch(color=c, label=f"{loc_txt(bmap.train[i].tolist())}: {_pct(float(bmap.fractions[i]))}")
               for i, c in enumerate(basin_colors(k))]
    handles.append(Patch(color=SPURIOUS_COLOR, label=f"spurious ({len(bmap.spurious)}): "
                                                     f"{_pct(float(bmap.fractions[k:-1].sum()))}"))
    handles.append(Patch(color=UNSETTLED_COLOR, label=f"unsettled: {_pct(float(bmap.fractions[-1]))}"))
    target = fig if fig is not None else ax
    return target.legend(handles=handles, loc=loc, bbox_to_anchor=anchor, ncol=ncol, fontsize=8, frameon=False,
                         title="basin: area share", title_fontsize=8, handlelength=1.2, columnspacing=1.0)


def plot_basins_2d(bmap, model=None, *, ax=None, title: str = "basins of attraction", legend: bool = True,
                   annotate: bool = False, contours: bool = True):
    """A 2D basin map (``basins.basin_map``): every start coloured by where its chain ends (one
    colour per training point, grey: a spurious fixed point, black: still moving), the training
    points (hollow squares) and spurious fixed points (grey crosses) on top, and, with ``model``, the
    loss |f(z) - z|² as contour lines (:data:`CONTOUR_LEVELS`). ``legend``: the area shares below the
    axes; ``annotate``: each training point's share written beside it (for small panels)."""
    fig, ax = _axes(ax, size=(5.0, 6.0))
    lo, hi = bmap.value_range
    ax.imshow(_basin_rgb(bmap), origin="lower", extent=(lo, hi, lo, hi), interpolation="nearest")
    if contours and model is not None:
        xs, ys, loss = loss_surface(model, 151)
        cs = ax.contour(xs, ys, np.maximum(loss, 1e-12), levels=CONTOUR_LEVELS, colors="0.2", linewidths=0.6,
                        alpha=0.7)
        ax.clabel(cs, fmt=lambda v: f"{v:.0e}", fontsize=6)
    tr = bmap.train.numpy()
    _train_points(ax, tr[:, 0], tr[:, 1])
    if len(bmap.spurious):
        sp = bmap.spurious.numpy()
        ax.scatter(sp[:, 0], sp[:, 1], marker="x", s=30, color="0.3", linewidths=1.2, zorder=6)
    if annotate:
        for i, p in enumerate(tr):
            ax.annotate(_pct(float(bmap.fractions[i])), p, xytext=(0, 11), textcoords="offset points", ha="center",
                        fontsize=8, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8), zorder=7)
    ax.set(xlabel="z₁", ylabel="z₂", title=title, xlim=(lo, hi), ylim=(lo, hi))
    if legend:
        _basin_legend(bmap, fig=fig)
    return fig


def plot_basins_1d(bmap, model, *, title: str = "basins of attraction"):
    """A 1D basin map: f(x) against the identity (top) and, under it, the start line coloured by where
    each start's chain ends (one colour per training point, grey spurious, black unsettled), each
    interval labelled with its length; the legend gives every basin's total share."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    a, b = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    lo, hi = bmap.value_range
    xs, ys = _curve(model, lo, hi)
    a.plot(xs, xs, ":", color="grey", label="identity")
    a.plot(xs, ys, color="tab:blue", label="f(x)")
    tr = bmap.train[:, 0].numpy()
    _train_points(a, tr, tr)
    a.set(ylabel="f(x)", title=title, ylim=(lo, hi))
    a.legend(loc="upper left", fontsize=8)
    rgb = _basin_rgb(bmap)[None]
    b.imshow(rgb, extent=(lo, hi, 0, 1), aspect="auto", interpolation="nearest")
    for x0, x1, _ in bmap.intervals():
        b.axvline(x0, color="white", lw=0.8)
        b.text((x0 + x1) / 2, 0.5, f"{x1 - x0:.2f}", ha="center", va="center", fontsize=8)
    _train_points(b, tr, np.full_like(tr, 0.5))
    b.set(xlabel="start x₀", yticks=[], xlim=(lo, hi))
    b.set_title("where each start ends (interval lengths)", fontsize=9)
    _basin_legend(bmap, fig=fig, ncol=3)
    return fig


def plot_basins_by_depth(items, *, title: str = "basins by depth"):
    """Basin maps side by side, ``items`` = [(depth, model or run, map), ...] (e.g. from
    ``studies.capacity.basins_by_depth``): each panel titled by L, each training point's share
    written beside it, one legend for the colours."""
    fig, axes = new_figure(len(items), size=(3.2, 3.7))
    axes = np.atleast_1d(axes)
    for i, (a, (depth, model, bmap)) in enumerate(zip(axes, items)):
        plot_basins_2d(bmap, getattr(model, "model", model), ax=a, title=f"L = {depth}", legend=False, annotate=True)
        if i:
            a.set_ylabel("")
            a.tick_params(labelleft=False)
    from matplotlib.patches import Patch
    k = len(items[0][2].train)
    handles = [Patch(color=c, label=f"point {i}") for i, c in enumerate(basin_colors(k))]
    handles += [Patch(color=SPURIOUS_COLOR, label="spurious"), Patch(color=UNSETTLED_COLOR, label="unsettled")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


BASIN_FRAME_SIZE = (5.0, 6.0)   # inches of one basins-over-training GIF frame (at FRAME_DPI: 500 x 600 px)


def basin_frames(snapshots, *, title: str = "basins while training", dpi: int = FRAME_DPI) -> np.ndarray:
    """One RGB frame per (epoch, model, map) of ``studies.capacity.basins_over_training`` (or of the
    panel's ``basin_maps``, 1D maps too), all of one size, for ``render.save_gif``. Returns uint8
    (F, H, W, 3)."""
    frames = []
    for epoch, model, bmap in snapshots:
        if bmap.dim == 1:
            fig = plot_basins_1d(bmap, model, title=f"{title}: epoch {epoch}")
        else:
            fig, ax = new_figure(1, size=BASIN_FRAME_SIZE)
            plot_basins_2d(bmap, model, ax=ax, title=f"{title}: epoch {epoch}")
        fig.set_dpi(dpi)
        frames.append(fig_to_array(fig))
    return np.stack(frames)


def plot_capacity(rows, *, ax=None, key: str = "attractors", title: str = "stored as attractors"):
    """Share of the training points that are stable attractors against n (log x), from
    ``studies.capacity.capacity_sweep`` rows: mean over seeds as a line per L x H (colour: L,
    line style: H), every seed as a dot."""
    fig, ax = _axes(ax, size=(6.4, 4.4))
    depths = sorted({r["depth"] for r in rows})
    widths = sorted({r["width"] for r in rows})
    styles = ["-", "--", ":", "-."]
    for i, d in enumerate(depths):
        for j, w in enumerate(widths):
            rs = [r for r in rows if r["depth"] == d and r["width"] == w]
            if not rs:
                continue
            ns = sorted({r["n"] for r in rs})
            means = [np.mean([r[key] for r in rs if r["n"] == n]) for n in ns]
            ax.scatter([r["n"] for r in rs], [r[key] for r in rs], s=8, color=f"C{i}", alpha=0.35)
            ax.plot(ns, means, styles[j % len(styles)], marker="o", ms=3, color=f"C{i}", label=f"L={d}, H={w}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="training points n", ylabel="share of training points", ylim=(-0.03, 1.03), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=max(1, len(widths)), loc="lower left")
    return fig


def plot_basin_stats(stats, *, class_names=None, title: str = "basin sizes of training images"):
    """Two panels for ``basins.basin_statistics``: of the random starts that ended on a training image,
    the share on each class (bars, one colour per class) against the class's share of the training set
    (dots), and each image's basin size (share of all starts) against the distance to its nearest other
    training image (dots in the colour of their class)."""
    fig, (a, b) = new_figure(2, size=(4.6, 3.8))
    frac, nn = stats.fraction.numpy(), stats.nn_dist.numpy()
    if stats.classes is not None:
        cls = stats.classes.numpy()
        ks = sorted(set(cls.tolist()))
        names = [class_names[c] if class_names else str(c) for c in ks]
        reached = max(float(frac.sum()), 1e-12)
        a.bar(range(len(ks)), [frac[cls == c].sum() / reached for c in ks], color=[f"C{c % 10}" for c in ks],
              label="starts that reached an image")
        a.scatter(range(len(ks)), [(cls == c).mean() for c in ks], color="black", zorder=3, s=18,
                  label="share of training set")
        a.set_xticks(range(len(ks)), names, rotation=60, ha="right", fontsize=8)
        b.scatter(nn, frac, c=[f"C{c % 10}" for c in cls], s=16, alpha=0.8)
    else:
        b.scatter(nn, frac, s=16, color="tab:blue")
    a.set(ylabel="share", title="by class")
    a.legend(fontsize=7)
    b.set(xlabel="RMS distance to nearest other training image", ylabel="basin size (share of starts)",
          title=f"by isolation (Spearman {stats.rank_nn:.2f})")
    fig.suptitle(title + f" — spurious {_pct(stats.spurious)}, unsettled {_pct(stats.unsettled)}")
    return fig


def plot_sequence_2d(model, seq: torch.Tensor, result=None, *, ax=None, title: str = "stored sequence"):
    """A 2D stored loop: the points x_i in order (numbered, hollow squares), an arrow from each x_i to
    f(x_i) (on x_(i+1) if the loop is stored), and, with a walk ``result`` from
    ``sample.kaleidoscope``, its start states (white rings) and last states (orange)."""
    fig, ax = _axes(ax, size=(5.0, 5.0))
    lo, hi = _range_of(model)
    s = torch.as_tensor(seq).float()
    with torch.no_grad():
        fx = model(s.to(model_device(model))).cpu()
    p, q = s.numpy(), fx.numpy()
    ax.plot(np.r_[p[:, 0], p[:1, 0]], np.r_[p[:, 1], p[:1, 1]], color="0.8", lw=1, zorder=1)
    for i in range(len(p)):
        ax.annotate("", xy=q[i], xytext=p[i], arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2), zorder=3)
        if len(p) <= 24:
            ax.annotate(str(i), p[i], xytext=(7, 7), textcoords="offset points", fontsize=8)
    _train_points(ax, p[:, 0], p[:, 1])
    if result is not None:
        ax.scatter(result.start[:, 0], result.start[:, 1], **START_STYLE)
        ax.scatter(result.final[:, 0], result.final[:, 1], **CHAIN_STYLE)
    ax.set(xlabel="z₁", ylabel="z₂", title=title, xlim=(lo, hi), ylim=(lo, hi))
    ax.set_aspect("equal")
    ax.legend(handles=_legend_handles(("start", "chain", "train") if result is not None else ("train",)),
              loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)


def plot_versus(rows: Sequence[dict], *, key: str = "fd_classifier", ax=None, log_y: bool = True,
                title: str = "quality against training CPU time"):
    """``key`` (default the classifier Fréchet distance; lower is better) against the training
    budget in CPU minutes for :func:`studies.versus.versus_diffusion` rows: one line per label (mean
    over seeds, bars: the spread of the seeds; hollow markers: runs a stopping rule ended before
    the budget), the held-out real images' value as a dashed line."""
    fig, ax = _axes(ax, size=(6.4, 4.4))
    runs = [r for r in rows if r.get("budget_s") is not None and r.get(key) is not None]
    curves = _by_label(runs, key)
    if any(any(m["stopped"]) for m in curves):
        ax.plot([], [], "o", mfc="white", mec="0.3", ls="none", label="(hollow: ended by its stopping rule)")
    for i, m in enumerate(curves):
        ax.errorbar(m["x"], m["y"], yerr=m["sd"], marker="o", capsize=3, color=f"C{i}", label=m["label"])
        hollow = [j for j, s in enumerate(m["stopped"]) if s]
        ax.plot([m["x"][j] for j in hollow], [m["y"][j] for j in hollow], "o", mfc="white", mec=f"C{i}", ls="none",
                zorder=5)
    for r in rows:
        if r.get("family") == "real" and r.get(key) is not None:
            ax.axhline(r[key], ls="--", color="0.4", label="held-out real images")
    if log_y:
        ax.set_yscale("log")
    ax.set(xscale="log", xlabel="training budget, CPU minutes (one thread)", ylabel=metric_label(key), title=title)
    ax.legend(fontsize=8)
    return fig


def _by_label(rows: Sequence[dict], key: str) -> list:
    """[{label, x (budget, CPU minutes), y (mean of key), sd, stopped (every seed's run ended by a
    stopping rule before the budget)}] per label, budgets in order."""
    out = []
    for label in dict.fromkeys(r["label"] for r in rows):
        budgets = sorted({r["budget_s"] for r in rows if r["label"] == label})
        groups = [[r for r in rows if r["label"] == label and r["budget_s"] == b] for b in budgets]
        y = [float(np.mean([r[key] for r in g])) for g in groups]
        sd = [float(np.std([r[key] for r in g], ddof=1)) if len(g) > 1 else 0.0 for g in groups]
        out.append(dict(label=label, x=[b / 60 for b in budgets], y=y, sd=sd,
                        stopped=[all(r.get("stopped", False) for r in g) for g in groups]))
    return out


def plot_versus_grids(rows: Sequence[dict], image_shape, value_range, *, budget: Optional[float] = None,
                      seed: int = 0, ncols: int = 4, title: str = "", upto: bool = False):
    """The kept samples (``grid``) of every label side by side at ``budget`` CPU seconds (default:
    the largest any row has) for ``seed``, with the held-out real images; titled with the classifier
    Fréchet distance and the network evaluations per image. upto: each label at its largest budget
    up to ``budget`` (for families measured at fewer budgets), the budget in its title."""
    kept = [r for r in rows if "grid" in r]
    budget = budget if budget is not None else max((r["budget_s"] for r in kept if r["budget_s"] is not None), default=None)
    mine = [r for r in kept if r["family"] != "real" and r["seed"] == seed
            and (r["budget_s"] == budget or (upto and r["budget_s"] <= budget))]
    last = {r["label"]: max(q["budget_s"] for q in mine if q["label"] == r["label"]) for r in mine}
    show = [r for r in kept if r["family"] == "real"] + [r for r in mine if r["budget_s"] == last[r["label"]]]
    fig, axes = new_figure(ncols, size=(2.6, 3.0), nrows=max(1, -(-len(show) // ncols)))
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, show):
        plot_images(r["grid"], image_shape, value_range, nrow=4, ax=ax)
        held = f" / held-out {r['fd_heldout']:.0f}" if r.get("fd_heldout") is not None else ""
        after = f", {r['budget_s'] / 60:.3g} min" if upto and r["family"] != "real" else ""
        after += f"\n(its rule stopped it at {r['train_cpu_s'] / 60:.2g} min)" if after and r.get("stopped") else ""
        ax.set_title(f"{r['label']}{after}\nFD {r['fd_classifier']:.0f}{held}, {r['nfe']} evals/image", fontsize=8)
    for ax in axes[len(show):]:
        ax.set_axis_off()
    fig.suptitle(title or (f"samples after at most {budget / 60:.3g} training CPU minutes (seed {seed})" if upto else
                           f"samples after {budget / 60:.3g} training CPU minutes (seed {seed})"), fontsize=10)
    return fig
