"""A walk as frames and as a GIF file: image grids (:mod:`render`) or 1D/2D plots (:mod:`plots`);
the GIFs of the studies' kept runs (one per recipe, one per architecture); and :func:`show`, which
shows such files in a notebook."""

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .plots import walk_frames
from ..render import GIF_CHAINS, GIF_COLUMNS, GIF_FPS, GIF_HOLD_LAST, gif_scale, grid_frames, label_frames, save_gif
from ..pipeline import sample_run
from ..render import gif_name, safe_name
from ..sample import SampleResult
from ..studies.architectures import kept_runs


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


def export_gif(run, walk: SampleResult, path, *, fps: float = GIF_FPS, scale: Optional[int] = None,
               hold_last: int = GIF_HOLD_LAST, title: Optional[str] = None) -> Path:
    """Write ``walk`` as a GIF (labelled image grids, or 1D/2D plots; see :func:`frames_of`); ``scale``: the
    pixel upscaling (default :func:`render.gif_scale` of the run's images). Returns the path."""
    scale = gif_scale(run.config.image_shape) if scale is None else scale
    return save_gif(frames_of(run, walk, scale=scale, title=title), path, fps=fps, hold_last=hold_last)


def show(*paths) -> None:
    """Show image files (GIF, PNG) in a notebook, one after another, each at its own size."""
    from IPython.display import Image, display
    for path in paths:
        display(Image(filename=str(path)))


def comparison_gifs(rows: Sequence[dict], out_dir, *, chains: int = 48, steps: int = 100, every: int = 2,
                    eps: float = 0.01, seed: int = 0) -> dict:
    """One GIF per recipe from the first kept run of each in ``rows`` (``compare_recipes(..., keep_runs=True)``),
    written to ``out_dir``, every frame labelled "recipe: <name>" and its step; returns {recipe name: path}."""
    gifs = {}
    for row in rows:
        if row["recipe"] in gifs or "run" not in row:
            continue
        run = row["run"]
        walk = sample_run(run, chains=chains, steps=steps, every=every, eps=eps, seed=seed)
        name = gif_name(run.config, chains, steps, eps, "start", extra=f"_{row['recipe']}")
        gifs[row["recipe"]] = export_gif(run, walk, Path(out_dir) / name, title=f"recipe: {row['recipe']}")
    return gifs



def architecture_gifs(rows: Sequence[dict], out_dir, *, chains: int = 48, steps: int = 60, every: int = 1,
                      eps: float = 0.01, noise: str = "uniform", seed: int = 0, scale: int = 1) -> dict:
    """One GIF per label from the first kept run of each (``keep_runs=True``), chains from ``noise``,
    pixels times ``scale`` (1 keeps a 48-chain, 31-frame GIF of 28x28 noise under 1 MB); named by
    :func:`render.gif_name` with ``_<label>`` appended (made file-safe). Returns {label: path}."""
    gifs = {}
    for label, run in kept_runs(rows).items():
        walk = sample_run(run, chains=chains, steps=steps, every=every, noise=noise, eps=eps, seed=seed,
                          recipe="paper")
        name = gif_name(run.config, chains, steps, eps, noise, extra=f"_{safe_name(label)}")
        gifs[label] = export_gif(run, walk, Path(out_dir) / name, scale=scale)
    return gifs
