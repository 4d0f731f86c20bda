"""A walk as frames and as a GIF file: image grids (:mod:`render`) or 1D/2D plots (:mod:`plots`).

matplotlib is imported only when a 1D/2D walk is drawn, so exporting image walks stays headless.
"""

from pathlib import Path
from typing import Optional

import numpy as np

from .plots import walk_frames
from .render import (GIF_CHAINS, GIF_COLUMNS, GIF_FPS, GIF_HOLD_LAST, GIF_SCALE, grid_frames, label_frames,
                     save_gif)
from .sample import SampleResult


def frames_of(run, walk: SampleResult, *, scale: int = 1, title: Optional[str] = None) -> np.ndarray:
    """uint8 frames of a walk of ``run`` (a :class:`pipeline.Run`): an image grid of the first
    GIF_CHAINS recorded chains per recorded step under a band with ``title`` (left, if given) and
    "step N" (right; :func:`render.label_frames`), or a 1D/2D plot per step (titled ``title``,
    default "kaleidoscope", with its step)."""
    if run.config.image_shape is not None:
        n = min(walk.frames.shape[1], GIF_CHAINS)
        grids = grid_frames(walk.frames[:, :n], run.config.image_shape, run.config.value_range,
                            nrow=GIF_COLUMNS, scale=scale)
        return label_frames(grids, [f"step {t}" for t in walk.steps], title or "")
    return walk_frames(run.model, run.data.x, walk, title="kaleidoscope" if title is None else title)


def export_gif(run, walk: SampleResult, path, *, fps: float = GIF_FPS, scale: int = GIF_SCALE,
               hold_last: int = GIF_HOLD_LAST, title: Optional[str] = None) -> Path:
    """Write ``walk`` as a GIF (labelled image grids, or 1D/2D plots; see :func:`frames_of`). Returns the path."""
    return save_gif(frames_of(run, walk, scale=scale, title=title), path, fps=fps, hold_last=hold_last)
