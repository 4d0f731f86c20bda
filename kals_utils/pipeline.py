"""The one path a user's data takes: data -> fit -> sample -> frames/GIF.

Notebooks, the widget panel and the command line all call these functions, so the steps are
written once. Everything is headless; matplotlib is imported only to draw 1D/2D walks.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .checkpoint import KalsConfig, load_checkpoint, save_checkpoint
from .data import Data
from .device import check_memory, pick_device
from .errors import KalsError, check_int
from .models import act_for_range, build_mlp, train_bytes
from .recipes import get_recipe, recipe_loss, sample_with
from .render import grid_frames, save_gif
from .sample import SampleResult
from .train import TrainResult, check_in_range, fit

GIF_CHAINS = 48  # chains shown in an image GIF (a 8x6 grid)
GIF_SCALE, GIF_FPS, GIF_HOLD_LAST = 2, 8.0, 4  # pixel upscaling, frames per second, extra frame-times on the last


@dataclass
class Run:
    """A trained kaleidoscope: the model (best weights), its config, the fit report, the data."""

    model: nn.Module
    config: KalsConfig
    result: TrainResult
    data: Data


def make_config(data: Data, depth: int, width: int, out_act: Optional[str] = None, **kw) -> KalsConfig:
    """KalsConfig for ``data``; ``out_act`` defaults to the one whose range is the data's range."""
    out_act = out_act or act_for_range(*data.value_range)
    cfg = KalsConfig(dim=data.dim, depth=depth, width=width, out_act=out_act,
                     value_range=data.value_range, image_shape=data.image_shape, dataset=data.name,
                     subset=data.subset, subset_seed=data.seed, **kw)
    cfg.model  # validates depth, width, out_act
    return cfg


def train_run(data: Data, depth: int, width: int, epochs: int = 2000, lr: float = 1e-3,
              batch_size: Optional[int] = None, seed: int = 0, device="auto", out_act: Optional[str] = None,
              progress: bool = True, resume: Optional[dict] = None, model: Optional[nn.Module] = None,
              recipe: str = "paper", on_start: Optional[Callable[[], None]] = None, **fit_kw) -> Run:
    """Build an L x H model for ``data`` (weights from ``seed``) and fit it; returns a :class:`Run`.

    ``recipe``: a name from :data:`recipes.RECIPES` (``paper``: plain MSE; ``improved``: its own
    training objective); it is stored in the config, so sampling uses it too. ``resume``: a
    checkpoint's ``train_state`` to continue from. ``fit_kw`` go to :func:`train.fit` (callback,
    should_stop, loss_fn — an explicit ``loss_fn`` replaces the recipe's objective).
    """
    rec = get_recipe(recipe)
    cfg = make_config(data, depth, width, out_act, seed=seed, lr=lr, epochs=epochs, batch_size=batch_size,
                      recipe=rec.name)
    check_in_range(data.x, cfg.value_range)
    fit_kw.setdefault("loss_fn", recipe_loss(rec))
    dev = pick_device(device) if not isinstance(device, torch.device) else device
    batch = len(data) if batch_size is None else min(check_int("batch size", batch_size, 1), len(data))
    check_memory(train_bytes(cfg.model, batch), dev, f"training an L={depth}, H={width} net on D={data.dim}",
                 "lower the width H, the depth L or the batch size")
    model = (model or build_mlp(cfg.model, seed=seed)).to(dev)
    if on_start is not None:  # every setting has been checked: e.g. print a banner
        on_start()
    result = fit(model, data.x, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                 progress=progress, resume=resume, **fit_kw)
    cfg.epochs = result.epochs_done
    return Run(model=model, config=cfg, result=result, data=data)


def save_run(run: Run, path, keep_train_state: bool = True) -> Path:
    """Checkpoint a run (weights, config, training set, losses and, by default, the resume state)."""
    return save_checkpoint(path, run.model, run.config, train_data=run.data.x, losses=run.result.losses,
                           train_state=run.result.train_state if keep_train_state else None,
                           labels=run.data.labels)


def load_run(path, device="auto") -> Run:
    """Load a checkpoint back into a :class:`Run` (training set from the checkpoint)."""
    ck = load_checkpoint(path, device=pick_device(device))
    cfg = ck.config
    if ck.train_data is None:
        raise KalsError(f"checkpoint {path} holds no training data; re-save it with kals")
    data = Data(x=ck.train_data, value_range=cfg.value_range, name=cfg.dataset, image_shape=cfg.image_shape,
                labels=ck.labels, subset=cfg.subset, seed=cfg.subset_seed)
    result = TrainResult(model=ck.model, losses=ck.losses, best_loss=min(ck.losses, default=float("nan")),
                         best_epoch=0, epochs_done=cfg.epochs, train_state=ck.train_state or {},
                         n_train=len(data))
    return Run(model=ck.model, config=cfg, result=result, data=data)


def sample_run(run: Run, chains: int = 100, steps: int = 100, every: int = 1, noise: str = "uniform",
               eps: float = 0.0, seed: int = 0, record: Optional[int] = None, recipe: Optional[str] = None,
               **kw) -> SampleResult:
    """Kaleidoscopic sampling from a run's model (see :func:`sample.kaleidoscope`), the way
    ``recipe`` says (default: the recipe the run was trained with, ``run.config.recipe``)."""
    return sample_with(get_recipe(recipe or run.config.recipe), run.model, run.data.x, chains=chains,
                       steps=steps, every=every, noise=noise, eps=eps, seed=seed, record=record, **kw)


def frames_of(run: Run, result: SampleResult, nrow: Optional[int] = None, scale: int = 1,
              title: str = "kaleidoscope") -> np.ndarray:
    """uint8 frames of a walk: an image grid per recorded step, or a 1D/2D plot per step."""
    if run.config.image_shape is not None:
        n = min(len(result.frames[0]), GIF_CHAINS) if nrow is None else len(result.frames[0])
        return grid_frames(result.frames[:, :n], run.config.image_shape, run.config.value_range,
                           nrow=nrow or 8, scale=scale)
    from .plots import walk_frames
    return walk_frames(run.model, run.data.x, result, title=title)


def export_gif(run: Run, result: SampleResult, path, fps: float = GIF_FPS, scale: int = GIF_SCALE,
               hold_last: int = GIF_HOLD_LAST, title: str = "kaleidoscope") -> Path:
    """Write the walk of ``result`` as a GIF (image grids, or 1D/2D plots). Returns the path."""
    frames = frames_of(run, result, scale=scale, title=title)
    return save_gif(frames, path, fps=fps, hold_last=hold_last)


def gif_name(config: KalsConfig, chains: int, steps: int, eps: float, noise: str, extra: str = "") -> str:
    """A file name that says the data set and the settings, e.g. ``mnist_L10_H500_c48_T300_eps0.01_uniform.gif``."""
    ds = config.dataset.replace("folder:", "folder-").replace("/", "_").strip("_")
    return f"{ds}_L{config.depth}_H{config.width}_c{chains}_T{steps}_eps{eps:g}_{noise}{extra}.gif"
