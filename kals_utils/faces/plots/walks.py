"""1D and 2D walks: f(x) against the identity and the loss curve (1D), the loss heat map (2D), a walk
drawn at a few steps, every chain against the step, and a walk as GIF frames (blitted)."""

from typing import Optional

import numpy as np
import torch

from ...model import config_of, model_device
from .figure import (CHAIN_STYLE, FRAME_DPI, FRAME_SIZE, HEAT_CMAP, START_STYLE, TRAIN_COLOR, TRAIN_STYLE, _axes,
                     _curve, _kinds, _legend_handles, _range_of, _train_points, new_figure)

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
