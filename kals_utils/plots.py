"""Matplotlib figures for 1D/2D kaleidoscopes and loss curves.

Every function draws into the axes it is given, or into a new ``matplotlib.figure.Figure`` it makes
itself (no pyplot, no "current figure"), and returns that figure: nothing is ever drawn into a
figure the caller did not hand over. In a notebook, ``%matplotlib inline`` then ``fig`` shows it.
"""

from typing import Optional

import numpy as np
import torch

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
    dev = next(model.parameters()).device
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
    dev = next(model.parameters()).device
    g = torch.linspace(lo, hi, n, device=dev)
    zz = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)
    loss = ((model(zz) - zz) ** 2).mean(dim=1).reshape(n, n)
    return g.cpu().numpy(), g.cpu().numpy(), loss.cpu().numpy()


def plot_2d(model, train: torch.Tensor, noise=None, samples=None, ax=None, title: str = "", n: int = 101):
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
    from .models import config_of
    return config_of(model).value_range


def fig_to_array(fig) -> np.ndarray:
    """Render a Figure to uint8 RGB (H, W, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def walk_frames(model, train: torch.Tensor, result, title: str = "kaleidoscope", dpi: int = 80) -> np.ndarray:
    """One RGB frame per recorded step of a 1D or 2D walk (``result`` from ``kaleidoscope``).

    The landscape is drawn once; only the chain markers move. Returns uint8 (F, H, W, 3).
    """
    from .models import config_of
    dim = config_of(model).dim
    if dim not in (1, 2):
        raise ValueError("walk_frames draws 1D/2D walks; use render.grid_frames for images")
    start = result.frames[0]
    if dim == 1:
        fig = plot_1d(model, train, noise=start, title=title)
        fig.set_dpi(dpi)
        ax = fig.axes[0]
        xs, ys = _curve(model, *_range_of(model))
        moving = ax.scatter([], [], color=SAMPLE_COLOR, s=30, zorder=5)
    else:
        fig = plot_2d(model, train, noise=start, title=title)
        fig.set_dpi(dpi)
        ax = fig.axes[0]
        moving = ax.scatter([], [], color=SAMPLE_COLOR, s=22, zorder=5, edgecolors="white", linewidths=0.4)
    out = []
    for t, state in zip(result.steps, result.frames):
        p = state.cpu().numpy()
        if dim == 1:
            offsets = np.stack([p[:, 0], np.interp(p[:, 0], xs, ys)], axis=1)
        else:
            offsets = p
        moving.set_offsets(offsets)
        ax.set_title(f"{title} — step {t}")
        out.append(fig_to_array(fig))
    return np.stack(out)


def show_image(img: np.ndarray, ax=None, title: str = ""):
    """Show a uint8 image (H, W) or (H, W, 3) with no axes ticks."""
    fig, ax = _axes(ax, size=(5.0, 5.0))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig
