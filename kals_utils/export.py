"""A walk as frames and as a GIF file: image grids (:mod:`render`) or 1D/2D plots (:mod:`plots`).

matplotlib is imported only when a 1D/2D walk is drawn, so exporting image walks stays headless.
"""

from pathlib import Path

import numpy as np

from .plots import walk_frames
from .render import GIF_CHAINS, GIF_COLUMNS, GIF_FPS, GIF_HOLD_LAST, GIF_SCALE, grid_frames, save_gif
from .sample import SampleResult


def frames_of(run, walk: SampleResult, *, scale: int = 1, title: str = "kaleidoscope") -> np.ndarray:
    """uint8 frames of a walk of ``run`` (a :class:`pipeline.Run`): an image grid of the first
    GIF_CHAINS recorded chains per recorded step, or a 1D/2D plot per step."""
    if run.config.image_shape is not None:
        n = min(walk.frames.shape[1], GIF_CHAINS)
        return grid_frames(walk.frames[:, :n], run.config.image_shape, run.config.value_range,
                           nrow=GIF_COLUMNS, scale=scale)
    return walk_frames(run.model, run.data.x, walk, title=title)


def export_gif(run, walk: SampleResult, path, *, fps: float = GIF_FPS, scale: int = GIF_SCALE,
               hold_last: int = GIF_HOLD_LAST, title: str = "kaleidoscope") -> Path:
    """Write ``walk`` as a GIF (image grids, or 1D/2D plots). Returns the path."""
    return save_gif(frames_of(run, walk, scale=scale, title=title), path, fps=fps, hold_last=hold_last)
