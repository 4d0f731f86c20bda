"""Matplotlib figures for 1D/2D kaleidoscopes and loss curves.

Every function draws into the axes it is given, or into a new ``matplotlib.figure.Figure`` it makes
itself (no pyplot, no "current figure"), and returns that figure: nothing is ever drawn into a
figure the caller did not hand over. In a notebook, ``%matplotlib inline`` then ``fig`` shows it.
"""

from typing import Optional

import numpy as np
import torch

from .model import config_of, model_device
from .render import grid_frames

NOISE_COLOR, SAMPLE_COLOR, TRAIN_COLOR = "tab:red", "tab:green", "black"


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


def plot_1d(model, train: torch.Tensor, noise=None, samples=None, axes=None, title: str = ""):
    """Two panels over the output range: f(x) against the identity, and the loss |f(x) - x|².

    train (N, 1) training points (black); noise (M, 1) start points (red); samples (M, 1) chain
    states (green), drawn on the curves. ``axes``: two matplotlib axes to draw into, or None.
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
    a.scatter(tr, tr, color=TRAIN_COLOR, zorder=3, label="training points")
    b.scatter(tr, np.zeros_like(tr), color=TRAIN_COLOR, zorder=3)
    for pts, color, label in ((noise, NOISE_COLOR, "start noise"), (samples, SAMPLE_COLOR, "chain states")):
        if pts is None:
            continue
        p = torch.as_tensor(pts)[:, 0].cpu().numpy()
        fp = np.interp(p, xs, ys)
        a.scatter(p, fp, color=color, s=18, zorder=4, label=label)
        b.scatter(p, (fp - p) ** 2, color=color, s=18, zorder=4)
    a.set(xlabel="x", ylabel="f(x)", title=title or "output curve", xlim=(lo, hi), ylim=(lo, hi))
    b.set(xlabel="x", ylabel="|f(x) - x|²", title="loss landscape", xlim=(lo, hi))
    a.legend(loc="upper left", fontsize=8)
    return fig


@torch.no_grad()
def loss_surface(model, n: int = 101):
    """Grid (n, n) of |f(z) - z|² / 2 over the 2D output range; returns (xs, ys, loss)."""
    lo, hi = _range_of(model)
    dev = model_device(model)
    g = torch.linspace(lo, hi, n, device=dev)
    zz = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)
    loss = ((model(zz) - zz) ** 2).mean(dim=1).reshape(n, n)
    return g.cpu().numpy(), g.cpu().numpy(), loss.cpu().numpy()


def plot_2d(model, train: torch.Tensor, *, noise=None, samples=None, ax=None, title: str = "", n: int = 101):
    """Heat map of the loss |f(z) - z|² over the unit square (log colour), training points in black,
    start noise in red, chain states in green."""
    from matplotlib.colors import LogNorm
    fig, ax = _axes(ax, size=(5.0, 4.3))
    xs, ys, loss = loss_surface(model, n)
    lo, hi = _range_of(model)
    im = ax.imshow(np.maximum(loss, 1e-8), origin="lower", extent=(lo, hi, lo, hi), cmap="viridis",
                   norm=LogNorm(vmin=1e-6, vmax=max(1e-5, float(loss.max()))))
    if not getattr(ax, "_kals_colorbar", False):
        fig.colorbar(im, ax=ax, label="|f(z) - z|²")
        ax._kals_colorbar = True
    tr = train.cpu().numpy()
    ax.scatter(tr[:, 0], tr[:, 1], marker="x", s=80, color="white", linewidths=2.5, zorder=3)
    ax.scatter(tr[:, 0], tr[:, 1], marker="x", s=60, color=TRAIN_COLOR, zorder=3, label="training points")
    for pts, color, label in ((noise, NOISE_COLOR, "start noise"), (samples, SAMPLE_COLOR, "chain states")):
        if pts is not None:
            p = torch.as_tensor(pts).cpu().numpy()
            ax.scatter(p[:, 0], p[:, 1], color=color, s=16, zorder=4, edgecolors="white", linewidths=0.4, label=label)
    ax.set(xlabel="z₁", ylabel="z₂", title=title or "loss surface", xlim=(lo, hi), ylim=(lo, hi))
    return fig


def _range_of(model):
    return config_of(model).value_range


def fig_to_array(fig) -> np.ndarray:
    """Render a Figure to uint8 RGB (H, W, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def walk_frames(model, train: torch.Tensor, result, title: str = "kaleidoscope", dpi: int = 80) -> np.ndarray:
    """One RGB frame per recorded step of a 1D or 2D walk (``result`` from ``kaleidoscope``).

    The landscape is drawn once and kept as a background; per frame only the chain markers and the
    step label are drawn on top of it (blitting). Returns uint8 (F, H, W, 3).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    dim = config_of(model).dim
    if dim not in (1, 2):
        raise ValueError("walk_frames draws 1D/2D walks; use render.grid_frames for images")
    start = result.frames[0].float()
    draw = plot_1d if dim == 1 else plot_2d
    fig = draw(model, train, noise=start, title=title)
    fig.set_dpi(dpi)
    axes = fig.axes[:2] if dim == 1 else fig.axes[:1]
    style = dict(color=SAMPLE_COLOR, s=30 if dim == 1 else 22, zorder=5, edgecolors="white", linewidths=0.4,
                 animated=True)
    moving = [ax.scatter([], [], **style) for ax in axes]
    label = axes[0].text(0.98, 0.03, "", transform=axes[0].transAxes, ha="right", va="bottom", animated=True,
                         fontsize=10, bbox=dict(boxstyle="round", facecolor="white", alpha=0.8))
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
        axes[0].draw_artist(label)
        out.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return np.stack(out)


def show_image(img: np.ndarray, ax=None, title: str = ""):
    """Show a uint8 image (H, W) or (H, W, 3) with no axes ticks."""
    fig, ax = _axes(ax, size=(5.0, 5.0))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_images(x: torch.Tensor, image_shape, value_range, nrow: int = 8, ax=None, title: str = ""):
    """Flat images ``x`` (N, D) in ``value_range`` as one grid (``nrow`` per row)."""
    return show_image(grid_frames(x, image_shape, value_range, nrow=nrow), ax=ax, title=title)


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


def plot_frames(frames: np.ndarray, steps, show=None, ncols: Optional[int] = None, title: str = "step"):
    """Some of the uint8 ``frames`` (F, H, W[, 3]) of a walk (from ``pipeline.frames_of``), in rows of
    ``ncols`` (default: up to 4 in one row, else two rows; 2 per row for wide frames).

    steps: the step number of each frame; show: the steps to draw (default: 4 spread over the walk,
    first and last included; a step that was not recorded shows the nearest recorded one).
    """
    steps = list(steps)
    h, w = frames.shape[1:3]
    if show is None:
        idx = sorted({int(round(i)) for i in np.linspace(0, len(steps) - 1, min(4, len(steps)))})
    else:
        idx = [int(np.argmin(np.abs(np.asarray(steps) - s))) for s in show]
    ncols = min(ncols or (2 if w > 1.5 * h else 4 if len(idx) <= 4 else -(-len(idx) // 2)), len(idx))
    nrows = -(-len(idx) // ncols)
    cell = 8.0 / ncols if w > 1.5 * h else 4.0
    fig, axes = new_figure(ncols, size=(cell, cell * h / w + 0.4), nrows=nrows)
    axes = np.atleast_1d(axes)
    for a, i in zip(axes, idx):
        show_image(frames[i], ax=a, title=f"{title} {steps[i]}")
    for a in axes[len(idx):]:
        a.set_axis_off()
    return fig


def plot_trajectories(result, train: Optional[torch.Tensor] = None, ax=None, title: str = "chains"):
    """1D walk: every chain's state against the step (start in red, last state in green, training
    points as dashed lines). ``result`` from ``sample.kaleidoscope``."""
    fig, ax = _axes(ax)
    fr = result.frames[:, :, 0].numpy()
    ax.plot(result.steps, fr, color="tab:blue", alpha=0.5, lw=1)
    ax.scatter(np.zeros(fr.shape[1]) + result.steps[0], fr[0], color=NOISE_COLOR, s=16, zorder=3, label="start noise")
    ax.scatter(np.zeros(fr.shape[1]) + result.steps[-1], fr[-1], color=SAMPLE_COLOR, s=16, zorder=3,
               label="last state")
    if train is not None:
        for v in train[:, 0].cpu().numpy():
            ax.axhline(v, color=TRAIN_COLOR, ls="--", lw=0.8)
    ax.set(xlabel="step t", ylabel="z_t", title=title, ylim=result.value_range)
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_walk_2d(model, train: torch.Tensor, result, show=(0, 1, 2, 5), title: str = "step"):
    """2D walk at a few steps: the loss heat map with the start noise (red) and the chain states at
    that step (green). ``result`` from ``sample.kaleidoscope``."""
    steps = list(result.steps)
    show = [s for s in show if s in steps] or [steps[0], steps[-1]]
    fig, axes = new_figure(len(show), size=(4.2, 3.6))
    for a, s in zip(np.atleast_1d(axes), show):
        plot_2d(model, train, noise=result.start, samples=result.frames[steps.index(s)], ax=a, title=f"{title} {s}")
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


def plot_depth_sweep(rows, keys=("converged", "coverage", "median_nn", "attractor_fraction"), axes=None,
                     title: str = ""):
    """One panel per metric against depth L (rows from ``sweep.depth_sweep``, any number of data
    sets and seeds): every run as a dot, the mean over seeds as a line, one colour per data set."""
    labels = {"converged": "converged fraction", "coverage": "coverage", "median_nn": "median NN distance (RMS)",
              "attractor_fraction": "attractor fraction"}
    if axes is None:
        fig, axes = new_figure(len(keys), size=(3.6, 3.0))
    else:
        fig = np.atleast_1d(axes)[0].figure
    axes = np.atleast_1d(axes)
    names = list(dict.fromkeys(r.get("data", "") for r in rows))
    for i, name in enumerate(names):
        rs = [r for r in rows if r.get("data", "") == name]
        depths = sorted({r["depth"] for r in rs})
        for ax, k in zip(axes, keys):
            pts = [(r["depth"], r[k]) for r in rs if r.get(k) is not None]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=f"C{i}", s=14, alpha=0.5)
            means = [np.mean([r[k] for r in rs if r["depth"] == d and r.get(k) is not None]) for d in depths]
            ax.plot(depths, means, "o-", color=f"C{i}", label=name)
    for ax, k in zip(axes, keys):
        ax.set(xlabel="depth L", ylabel=labels.get(k, k), title=labels.get(k, k))
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
