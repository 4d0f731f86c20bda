"""Images: one image, a grid of flat images (or of sample / nearest-training-image pairs), the
reconstructions f(x) during training, and some frames of a walk side by side."""

from typing import Optional

import numpy as np
import torch

from ...render import grid_frames, to_uint8
from .figure import FRAME_DPI, _axes, new_figure

FRAME_CELL_PX = 360  # frame grids are drawn at (this // their width) x their own pixels, at least 1x


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
    # image grids at a whole multiple of their own pixels (a noisy colour frame upscaled to 4 in is
    # ~300 kB of PNG)
    cell = (max(w / FRAME_DPI, 4.0) if ncols == 1 else 9.0 / ncols) if wide else max(1, FRAME_CELL_PX // w) * w / FRAME_DPI
    fig, axes = new_figure(ncols, size=(cell, cell * h / w + (0.35 if title else 0.05)), nrows=nrows)
    axes = np.atleast_1d(axes)
    for a, i in zip(axes, idx):
        show_image(frames[i], ax=a, title=f"{title} {steps[i]}" if title else "")
    for a in axes[len(idx):]:
        a.set_axis_off()
    if wide:
        fig.get_layout_engine().set(w_pad=0.0, h_pad=0.02, wspace=0.0, hspace=0.0)
    return fig
