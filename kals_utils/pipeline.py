"""The one path a user's data takes: data -> fit -> sample -> evaluate, and a run saved and loaded.

Notebooks, the widget panel, the experiments and the command line all call these functions, and
this is the only module that puts a recipe to work (its training objective in :func:`train_run`,
its start distribution in :func:`sample_run`), so every sampler and metric sees the same walk.
Headless: nothing here draws.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import HELD_OUT, LABELLED, Data, load_data
from .device import check_memory, pick_device
from .ensemble import fit_many
from .errors import KalsError, check_int
from .features import FEATURES, classifier_cache_path, embedder, load_or_train_classifier
from .metrics import ATTRACTOR_POINTS, BURN_TOL, K, TOL, Evaluation, data_spread, evaluate_samples, nearest_neighbours
from .model import ModelConfig, RunConfig, act_for_range, build_model, count_weights, train_bytes
from .precision import resolve_precision
from .recipes import HeldoutStop, denoises, get_recipe, recipe_loss, resolve_sigma, sampler_scale, split_holdout
from .sample import CHAINS, NOISES, RESTART, STEPS, SampleResult, data_start, kaleidoscope
from .train import EPOCHS, LR, TrainResult, check_in_range, diagnose, fit, full_loss

SPREAD_EXACT = 4000        # data_spread on every point up to this many; above, from SPREAD_QUERIES of them
SPREAD_QUERIES = 2000
RECORD = 256               # chains recorded by evaluate_run's own walk, for the burn-in curve
CLASSIFIER_TRAIN = 10_000  # labelled training images (seeded subset) for the feature classifier


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
              epochs: int = EPOCHS, lr: float = LR,
              batch_size: Optional[int] = None, seed: int = 0, device="auto", out_act: Optional[str] = None,
              recipe: str = "paper", precision: str = "fp32", progress: bool = True, resume: Optional[dict] = None,
              model: Optional[nn.Module] = None, on_start: Optional[Callable[[], None]] = None, **fit_kw) -> Run:
    """Build an L x H model for ``data`` (weights from ``seed``) and fit it the way ``recipe`` says.

    arch: mlp (default), cnn, unet or transformer (``model.ARCH_HELP`` says what L and H mean in
    each); arch_kw: its settings, e.g. ``{"patch": 4}``.
    precision: fp32, bf16 or auto (:mod:`precision`; auto = bf16 where the device multiplies bf16
    natively and the net is large enough to gain); what was used is stored in the config.
    recipe: ``paper`` (plain MSE) or ``improved`` (its own objective); stored in the config, so
    sampling uses it too. resume: a checkpoint's ``train_state`` to continue from. on_start: called
    once every setting has been checked (memory included), right before training. ``fit_kw`` go to
    :func:`train.fit` (callback, should_stop).
    """
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
    sigma = resolve_sigma(recipe_def, spread(data.x) if recipe_def.sigma_rel else None)
    x_fit, stop = data.x, None
    if denoises(recipe_def) and recipe_def.holdout > 0 and resume is None:
        keep, held = split_holdout(len(data), recipe_def.holdout, seed)
        if len(held):
            x_fit = data.x[keep]
            stop = HeldoutStop(model, data.x[held], sigma, steps_per_epoch=-(-len(keep) // min(batch, len(keep))),
                               seed=seed)
            fit_kw = _with_stop(fit_kw, stop)
    result = fit(model, x_fit, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress,
                 resume=resume, loss_fn=recipe_loss(recipe_def, sigma), precision=cfg.precision, **fit_kw)
    if stop is not None:
        result = _stopped(result, stop, x_fit)
        cfg.extra.update(holdout=len(data) - len(x_fit), stopped_at=result.best_epoch)
    if sigma:
        cfg.extra["sigma"] = [float(v) for v in sigma]
    cfg.epochs = result.epochs_done
    return Run(model=model, config=cfg, result=result, data=data)


def spread(x: torch.Tensor) -> float:
    """The data's spread (:func:`metrics.data_spread`); above SPREAD_EXACT points, estimated from
    SPREAD_QUERIES seeded points against all the others (O(N) instead of O(N^2))."""
    if len(x) <= SPREAD_EXACT:
        return data_spread(x)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    q = x[perm[:SPREAD_QUERIES]]  # nearest other point: among the other queries or among the rest
    d = torch.minimum(nearest_neighbours(q, q, exclude_self=True)[0], nearest_neighbours(q, x[perm[SPREAD_QUERIES:]])[0])
    return float(d.median())


def _with_stop(fit_kw: dict, stop: HeldoutStop) -> dict:
    """fit options with the stopping rule's callback and stop test chained after the caller's own."""
    user_cb, user_stop = fit_kw.get("callback"), fit_kw.get("should_stop")

    def callback(epoch, loss):
        if user_cb is not None:
            user_cb(epoch, loss)
        stop.callback(epoch, loss)
    return dict(fit_kw, callback=callback,
                should_stop=lambda: stop.should_stop() or (user_stop is not None and user_stop()))


def _stopped(result: TrainResult, stop: HeldoutStop, x: torch.Tensor) -> TrainResult:
    """The fit's result with the weights the stopping rule chose (lowest held-out denoising loss)."""
    if not stop.restore():
        return result
    model = result.model
    status, message, learnt = diagnose(model, x)
    note = (f"kept the weights of epoch {stop.best_epoch} (lowest denoising loss on {len(stop.clean) // 4} "
            f"held-out images, {stop.best:.4g})")
    if result.status in ("interrupted", "diverged") and not stop.should_stop():
        status, message = result.status, result.message  # the user's Ctrl-C or a NaN, not the rule
    result.train_state["best_state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    result.model.eval()
    result.status, result.learnt, result.best_epoch = status, learnt, stop.best_epoch
    result.best_loss = full_loss(model, x)
    result.message = "; ".join(m for m in (note, message) if m)
    return result


def train_many(datas, *, depths, width: int, seeds, epochs, lr: float = LR, batch_sizes=None, device="cpu",
               out_act: Optional[str] = None, progress: bool = False) -> list:
    """Many small plain-MSE MLPs trained together (:func:`ensemble.fit_many`: stacked weights, one
    Adam; the results equal one :func:`train_run` each up to float rounding) — for sweeps and the
    corner experiment. ``datas``, ``depths``, ``seeds``, ``epochs``, ``batch_sizes``: one per net
    (or one for all). Returns one :class:`Run` per net, in order."""
    n = max(len(v) if isinstance(v, (list, tuple)) else 1 for v in (datas, depths, seeds, epochs, batch_sizes))
    each = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * n  # noqa: E731
    datas, depths, seeds, epochs, batch_sizes = map(each, (datas, depths, seeds, epochs, batch_sizes))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    cfgs = [make_config(d, depth, width, out_act, seed=s, lr=lr, epochs=e, batch_size=b)
            for d, depth, s, e, b in zip(datas, depths, seeds, epochs, batch_sizes)]
    results = fit_many([c.model for c in cfgs], [d.x for d in datas], epochs=epochs, lr=lr,
                       batch_sizes=batch_sizes, seeds=seeds, progress=progress, device=dev)
    return [Run(model=r.model, config=c, result=r, data=d) for r, c, d in zip(results, cfgs, datas)]


def sample_run(run: Run, *, chains: int = CHAINS, steps: int = STEPS, every: int = 1, noise: str = "uniform",
               eps: float = 0.0, seed: int = 0, record: Optional[int] = None, recipe: Optional[str] = None,
               **kw) -> SampleResult:
    """Kaleidoscopic sampling (:func:`sample.kaleidoscope`) from a run's model, started the way
    ``recipe`` says (default: the recipe the run was trained with). A recipe with its own start
    ignores ``noise``; an explicit ``start=`` tensor wins over both. ``sampler=`` (in ``kw``):
    default the recipe's (``improved``: the DAE chain at the run's :func:`run_scale`), ``walk``
    whenever ``eps`` > 0; ``scale=`` overrides the run's noise scale."""
    recipe_def = get_recipe(recipe or run.config.recipe)
    if noise not in NOISES:
        raise KalsError(f"unknown start noise {noise!r}; choose uniform or normal")
    if recipe_def.start_kind == "data" and kw.get("start") is None:
        kw["start"] = data_start(run.data.x, check_int("chains", chains, 0), scale=recipe_def.start_scale, seed=seed,
                                 value_range=run.config.value_range)
    if kw.get("sampler") is None:  # the recipe's own sampler; an explicit eps asks for the paper's jittered walk
        kw["sampler"] = recipe_def.sampler if eps == 0 else "walk"
    if kw["sampler"] not in ("walk", "restart") and kw.get("scale") is None:
        kw["scale"] = run_scale(run)
    if kw["sampler"] == "restart" and recipe_def.start_kind == "data" and kw.get("fresh") is None:
        kw["fresh"] = data_start(run.data.x, chains * (steps // RESTART + 1), scale=recipe_def.start_scale,
                                 seed=seed + 1, value_range=run.config.value_range)
    return kaleidoscope(run.model, chains=chains, steps=steps, every=every, noise=noise, eps=eps, seed=seed,
                        record=record, **kw)


def run_scale(run: Run) -> float:
    """The noise scale of a run's moving samplers: the centre of its denoiser's training noise
    (:func:`recipes.sampler_scale`); for a net trained without noise, that of the improved recipe
    on this run's data."""
    sigma = run.config.extra.get("sigma") or resolve_sigma("improved", spread(run.data.x))
    return sampler_scale(sigma)


def evaluate_run(run: Run, walk: Optional[SampleResult] = None, *, chains: int = 300, steps: int = 100,
                 noise: str = "uniform", eps: float = 0.0, seed: int = 0, tol: float = TOL,
                 burn_tol: float = BURN_TOL, method: str = "auto", max_points: Optional[int] = ATTRACTOR_POINTS,
                 with_norm: bool = False, k: int = K, features: str = "pixels", data_root=None,
                 log: Optional[Callable] = None) -> Evaluation:
    """Metrics of a run's samples: ``walk`` or, if None, a fresh :func:`sample_run` walk of
    ``chains`` x ``steps`` (the run's own recipe; the first RECORD chains recorded for the burn-in).
    features: the space of the sample metrics (:data:`features.FEATURES`); with ``data_root`` the
    data set's held-out split gives each metric's ceiling (and trains the ``classifier``)."""
    if walk is None:
        walk = sample_run(run, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed,
                          record=min(check_int("chains", chains, 0), RECORD))
    embed = feature_space(run.config, features, data_root=data_root, log=log)
    heldout = heldout_images(run.config, len(walk.final), data_root=data_root, seed=seed)
    return evaluate_samples(walk.final, run.data.x, labels=run.data.labels, model=run.model,
                            frames=walk.frames, steps=walk.steps, tol=tol, burn_tol=burn_tol,
                            value_range=run.config.value_range, method=method, max_points=max_points,
                            with_norm=with_norm, seed=seed, k=k, features=embed, feature_name=features,
                            heldout=heldout)


def _data_like(config: RunConfig, data_root, *, train: bool, subset: Optional[int], seed: int = 0) -> Data:
    """The run's data set again (its training or held-out split) from ``data_root``."""
    size = config.image_shape[-1] if config.image_shape and config.image_shape[-1] != 28 else None
    return load_data(config.dataset, root=data_root, subset=subset, seed=seed, value_range=config.value_range,
                     image_size=size, train=train)


def heldout_images(config: RunConfig, n: int, *, data_root=None, seed: int = 0) -> Optional[torch.Tensor]:
    """``n`` seeded held-out (test-split) images of the run's data set, or None when there is no
    ``data_root`` or the data set has no held-out split kals can read."""
    if data_root is None or config.dataset not in HELD_OUT:
        return None
    test = _data_like(config, data_root, train=False, subset=None)
    return test.x[torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n]]


def feature_space(config: RunConfig, kind: str, *, data_root=None, log: Optional[Callable] = None):
    """The embedding of the sample metrics: None for ``pixels``; a fixed random CNN for ``randcnn``;
    for ``classifier``, a small CNN trained by kals on the labelled training split of the run's
    data set (tested on its test split; cached under ``data_root/kals_cache``; no downloaded weights)."""
    if kind not in FEATURES:
        raise KalsError(f"unknown feature space {kind!r}; choose one of {', '.join(FEATURES)}")
    if kind == "pixels":
        return None
    if kind == "randcnn":
        return embedder("randcnn", image_shape=config.image_shape, value_range=config.value_range)
    if config.dataset not in LABELLED or data_root is None:
        raise KalsError(f"classifier features need a labelled data set ({', '.join(LABELLED)}) and its folder "
                        f"(data root); this run is {config.dataset}. Use features randcnn or pixels")
    train, test = (_data_like(config, data_root, train=t, subset=None) for t in (True, False))
    keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:CLASSIFIER_TRAIN]
    model, meta = load_or_train_classifier(classifier_cache_path(data_root, config.dataset, config.image_shape),
                                           train.x[keep], train.labels[keep], image_shape=config.image_shape, x_test=test.x,
                                           labels_test=test.labels, value_range=config.value_range, log=log)
    return embedder("classifier", image_shape=config.image_shape, value_range=config.value_range, classifier=model)


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
