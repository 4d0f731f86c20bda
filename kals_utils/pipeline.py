"""The one path a user's data takes: data -> fit -> sample, and a run saved and loaded.

Notebooks, the panel, the studies and the command line all call these functions, and this is the
only module that puts a recipe to work (its training objective in :func:`train_run`, its start
distribution in :func:`sample_run`), so every sampler and metric sees the same walk. Measuring a
run is :mod:`kals_utils.measures.evaluate`'s job. Headless: nothing here draws.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Data
from .device import check_memory, pick_device
from .errors import KalsError, check_int
from .model import ModelConfig, RunConfig, act_for_range, build_model, count_weights, model_device, train_bytes
from .precision import resolve_precision, say_precision_note
from .presets import CHAINS, EPOCHS, EPS, EVERY, LR, MIRROR, NOISE, PRECISION, RECIPE, SEED, STEPS
from .neighbours import spread
from .recipes import get_recipe, selection_rule, recipe_loss, recipe_target, resolve_sigma, sampler_scale
from .sample import NOISES, RESTART, SampleResult, data_start, kaleidoscope
from .train import TrainResult, check_in_range, fit


@dataclass
class Run:
    """A trained kaleidoscope: the model (best weights), its config, the fit report, the data."""

    model: nn.Module
    config: RunConfig
    result: TrainResult
    data: Data


def make_config(data: Data, depth: int, width: int, out_act: Optional[str] = None, *, arch: str = "mlp",
                arch_kw: Optional[dict] = None, **kw) -> RunConfig:
    """RunConfig for ``data``; ``out_act`` defaults to the one whose range is the data's range;
    ``arch`` (mlp, cnn, unet, transformer) and its settings ``arch_kw`` (patch, top_skip)."""
    net = ModelConfig(dim=data.dim, depth=depth, width=width, out_act=out_act or act_for_range(*data.value_range),
                      arch=arch, image_shape=data.image_shape if arch != "mlp" else None, **(arch_kw or {}))
    return RunConfig(model=net, value_range=data.value_range, image_shape=data.image_shape, dataset=data.name,
                     subset=data.subset, subset_seed=data.seed, **kw)


def train_run(data: Data, *, depth: int, width: int, arch: str = "mlp", arch_kw: Optional[dict] = None,
              epochs: int = EPOCHS, updates: Optional[int] = None, lr: float = LR,
              batch_size: Optional[int] = None, seed: int = SEED, device="auto", out_act: Optional[str] = None,
              recipe: str = RECIPE, precision: str = PRECISION, progress: bool = True, resume: Optional[dict] = None,
              model: Optional[nn.Module] = None, on_start: Optional[Callable[[], None]] = None,
              target: Optional[torch.Tensor] = None, note: Optional[Callable[[str], None]] = print, mirror: str = MIRROR,
              **fit_kw) -> Run:
    """Build an L x H model for ``data`` (weights from ``seed``) and fit it the way ``recipe`` says.

    arch: mlp (default), cnn, unet or transformer (``model.ARCH_HELP`` says what L and H mean in
    each); arch_kw: its settings, e.g. ``{"patch": 4}``.
    epochs / updates: the budget, in passes over the data or (``updates``, when given, wins) in
    optimizer updates: the same work on 100 images or 5,000 (``epochs = ceil(updates / batches per
    epoch)`` over the rows trained on).
    precision: fp32, bf16 or auto (:mod:`precision`; auto = bf16 where the device multiplies bf16 natively and the
    net is large enough to gain); what was used is stored in the config. ``bf16`` where it is not native gets one
    line (:func:`precision.precision_note`) passed to ``note`` (default print; None: say nothing).
    recipe: ``paper`` (plain MSE), ``improved`` (its own objective) or ``sequence`` (f(x_i) ~= x_(i+1),
    the data's rows in order as a loop); stored in the config, so sampling uses it too. target:
    the rows f(data.x) should reach (default: the recipe's — the data itself, or the next row). resume: a checkpoint's ``train_state`` to continue from. on_start: called
    once every setting has been checked (memory included), right before training. mirror: auto, on or off: the
    improved recipe on the images' mirrors too (:mod:`mirror`; ``auto`` says to ``note`` when it mirrors). ``fit_kw`` go to :func:`train.fit` (callback, should_stop)."""
    recipe_def = get_recipe(recipe)
    cfg = make_config(data, depth, width, out_act, arch=arch, arch_kw=arch_kw, seed=seed, lr=lr, epochs=epochs,
                      batch_size=batch_size, recipe=recipe_def.name)
    check_in_range(data.x, cfg.value_range)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    batch = len(data) if batch_size is None else min(check_int("batch size", batch_size, 1), len(data))
    check_memory(train_bytes(cfg.model, batch), dev, f"training an L={depth}, H={width} {arch} on D={data.dim}",
                 "lower the width H, the depth L or the batch size")
    model = (model or build_model(cfg.model, seed=seed)).to(dev)
    if on_start is not None:
        on_start()
    cfg.precision = resolve_precision(precision, device=dev, n_weights=count_weights(cfg.model))
    say_precision_note(precision, dev, note)
    sigma = resolve_sigma(recipe_def, spread(data.x) if recipe_def.sigma_rel else None)
    x_fit, stop = (data.x, None) if resume is not None else selection_rule(
        recipe_def, model, data.x, batch=batch, seed=seed, image_shape=cfg.image_shape, mirror=mirror if target is None else "off",
        note=note)
    target = recipe_target(recipe_def, x_fit) if target is None else target
    if updates is not None:
        epochs = epochs_for(check_int("updates", updates, 0), len(x_fit), batch_size)
        cfg.extra["updates"] = updates
    result = fit(model, x_fit, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress,
                 resume=resume, loss_fn=recipe_loss(recipe_def, sigma), precision=cfg.precision, target=target,
                 ema=recipe_def.ema, **(fit_kw if stop is None else stop.wrap(fit_kw)))
    if stop is not None:
        result = stop.finish(result, x_fit)
        cfg.extra.update(holdout=stop.held, mirror=stop.mirror[0], mirror_ratio=stop.mirror[1], stopped_at=result.best_epoch,
                         copy_baseline=stop.baseline, copy_line=stop.line, checks=len(stop.checks), burn=stop.burn,
                         sampler=stop.kept_sampler, collapse_line=stop.collapse)
    if sigma:
        cfg.extra["sigma"] = [float(v) for v in sigma]
    cfg.epochs = result.epochs_done
    return Run(model=model, config=cfg, result=result, data=data)


def epochs_for(updates: int, rows: int, batch_size: Optional[int]) -> int:
    """Epochs that make at least ``updates`` optimizer updates on ``rows`` rows in batches of
    ``batch_size`` (None: full batch, one update an epoch)."""
    per_epoch = 1 if batch_size is None else -(-rows // min(batch_size, rows))
    return -(-updates // per_epoch)


def sample_run(run: Run, *, chains: int = CHAINS, steps: int = STEPS, every: int = EVERY, noise: str = NOISE,
               eps: float = EPS, seed: int = SEED, record: Optional[int] = None, recipe: Optional[str] = None,
               note: Optional[Callable[[str], None]] = print, **kw) -> SampleResult:
    """Kaleidoscopic sampling (:func:`sample.kaleidoscope`) from a run's model, started the way ``recipe`` says
    (default: the run's). A recipe with its own start ignores ``noise``; ``start=`` wins over both. ``sampler=``
    (in ``kw``): default the one and the hidden burn-in its selection rule chose (:func:`selection.pick_burn`,
    :meth:`selection.SampleCheck.widen`), else the recipe's; moving samplers take :func:`run_scale`; ``scale=``, ``burn=`` win.
    ``precision=bf16`` where it is not native: one line to ``note``, as in :func:`train_run`."""
    recipe_def = get_recipe(recipe or run.config.recipe)
    if noise not in NOISES:
        raise KalsError(f"unknown start noise {noise!r}; choose uniform or normal")
    if recipe_def.start_kind == "data" and kw.get("start") is None:
        kw["start"] = data_start(run.data.x, check_int("chains", chains, 0), scale=recipe_def.start_scale, seed=seed,
                                 value_range=run.config.value_range)
    if kw.get("sampler") is None:  # the one its rule chose, or the recipe's (eps jitters the walk and restarts)
        kw["sampler"] = run.config.extra.get("sampler", recipe_def.sampler)
    if kw["sampler"] not in ("walk", "restart") and kw.get("scale") is None:
        kw["scale"] = run_scale(run, kw["sampler"])
    if kw["sampler"] in ("restart", "turn") and recipe_def.start_kind == "data" and kw.get("fresh") is None:
        kw["fresh"] = data_start(run.data.x, len(kw["start"]) * (steps // RESTART + 1), scale=recipe_def.start_scale,
                                 seed=seed + 1, value_range=run.config.value_range)
    if kw["sampler"] in ("restart", "turn") and "burn" in run.config.extra:  # the burn-in its rule chose
        kw.setdefault("burn", run.config.extra["burn"])
    say_precision_note(kw.get("precision", PRECISION), model_device(run.model), note)
    return kaleidoscope(run.model, chains=chains, steps=steps, every=every, noise=noise, eps=eps, seed=seed,
                        record=record, **kw)


def run_scale(run: Run, sampler: str = "dae") -> float:
    """The noise scale of a run's moving ``sampler`` (:func:`recipes.sampler_scale`: the top of its
    denoiser's training noise; the centre for walkjump); for a net trained without noise, that of
    the improved recipe on this run's data."""
    sigma = run.config.extra.get("sigma") or resolve_sigma("improved", spread(run.data.x))
    return sampler_scale(sigma, sampler)


def save_run(run: Run, path, *, keep_train_state: bool = True) -> Path:
    """Checkpoint a run (weights, config, training set, losses and, by default, the resume state)."""
    return save_checkpoint(path, run.model, run.config, train_data=run.data.x, losses=run.result.losses,
                           train_state=run.result.train_state if keep_train_state else None,
                           labels=run.data.labels)


def load_run(path, *, device="auto") -> Run:
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
