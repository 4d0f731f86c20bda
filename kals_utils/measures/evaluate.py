"""Measuring a run, everything at once: :func:`evaluate_samples` gathers every measure of a set of
final samples (:mod:`.metrics`, :mod:`.attractors`, :mod:`.prdc`, :mod:`.collapse`) into one
:class:`Evaluation`; :func:`evaluate_run` walks (or takes) a run's chains and hands them to it, in
the feature space asked for, with the data set's held-out split as the ceiling when its folder is
given; :func:`evaluate_npz` does the same for a samples file written by :func:`save_samples`
(``sample --save-samples``)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..data import HELD_OUT, LABELLED, Data, load_data
from ..errors import KalsError, check_float, check_int
from ..files import atomic_path
from ..model import ModelConfig, RunConfig, act_for_range, model_device
from ..neighbours import _float2d, nearest_neighbours
from ..pipeline import Run, load_run, sample_run
from ..sample import SampleResult
from .collapse import collapse_measures, real_at_ratio
from .prdc import ceilings, real_reference, sample_metrics
from .features import FEATURES, classifier_cache_path, embedder, load_or_train_classifier
from .metrics import BURN_TOL, K, TOL, BurnIn, ClassBias, Novelty, burn_in, class_histogram, coverage, novelty
from .attractors import (ATTRACTOR_POINTS, Attractors, SpuriousFixedPoints, attractor_stability, residual_rms,
                         spurious_fixed_points)

RECORD = 256               # chains recorded by evaluate_run's own walk, for the burn-in curve
CLASSIFIER_TRAIN = 10_000  # labelled training images (seeded subset) for the feature classifier
CURVE_STEPS = (5, 10)      # steps whose converged fraction the summary reports


@dataclass
class Evaluation:
    """All metrics for one set of final samples (see :func:`evaluate_samples`).

    nn_dist, nn_idx: (N,) per sample; converged: fraction with nn_dist < tol; coverage: distinct
    nearest training points / min(N, M); coverage_converged: the same counting converged samples
    only; median_nn: median nn_dist; value_range: the data's scale for every distance.
    """

    n_samples: int
    n_train: int
    dim: int
    tol: float
    value_range: tuple
    converged: float
    coverage: float
    coverage_converged: float
    median_nn: float
    novelty: Novelty
    nn_dist: torch.Tensor = field(repr=False)
    nn_idx: torch.Tensor = field(repr=False)
    classes: Optional[ClassBias] = None
    attractors: Optional[Attractors] = field(default=None, repr=False)
    spurious: Optional[SpuriousFixedPoints] = field(default=None, repr=False)
    burn: Optional[BurnIn] = field(default=None, repr=False)
    convergence: Optional[list] = field(default=None, repr=False)  # converged fraction per recorded step
    sample: Optional[dict] = None     # precision/recall/density/coverage, frechet, memorized, features, k, real
    ceiling: Optional[dict] = None    # the same for held-out real images (the best a generator can read)
    visited: Optional[torch.Tensor] = field(default=None, repr=False)  # per recorded chain: distinct NN images
    collapse: Optional[dict] = None   # distinct nearest images, sharpness ratio, what real images read (collapse.py)

    def summary(self) -> dict:
        """Flat dict of numbers (JSON-ready)."""
        out = {"samples": self.n_samples, "train": self.n_train, "dim": self.dim, "tol": self.tol,
               "value_range": list(self.value_range), "converged": self.converged, "coverage": self.coverage,
               "coverage_converged": self.coverage_converged, "median_nn": self.median_nn,
               "mean_nn": float(self.nn_dist.mean()), "spread": self.novelty.spread,
               "novelty": self.novelty.median_ratio, "copies": self.novelty.copies}
        if self.classes is not None:
            out.update(class_tv=self.classes.tv, class_top=self.classes.top, class_top_ratio=self.classes.top_ratio,
                       class_hist=self.classes.sample, class_hist_train=self.classes.train)
        if self.attractors is not None:
            a = self.attractors
            out.update(attractor_fraction=a.fraction, attractors_checked=len(a.radius), jacobian=a.method,
                       radius_median=float(a.radius.median()), radius_max=float(a.radius.max()),
                       train_fixed=float((a.residual < a.tol).float().mean()))
            if a.norm is not None:
                out.update(norm_median=float(a.norm.median()), norm_max=float(a.norm.max()))
        if self.sample is not None:
            keys = ("precision", "recall", "density", "coverage", "k", "features", "real", "frechet")
            out["prdc"] = {key: self.sample.get(key) for key in keys}
            out["memorized"] = self.sample["memorized"]
            if self.ceiling is not None:
                out["prdc_ceiling"] = {key: self.ceiling.get(key) for key in keys + ("memorized", "n_real")}
        if self.collapse is not None:
            out.update(self.collapse)
        if self.spurious is not None:
            out.update(spurious=self.spurious.fraction, spurious_points=len(self.spurious.counts))
            if self.sample is not None:
                out["novel_fixed"] = self.sample["novel_fixed"]
        if self.visited is not None:
            out.update(visited_mean=float(self.visited.float().mean()), visited_max=int(self.visited.max()))
        if self.burn is not None:
            out.update(burn_in=self.burn.burn_in, burn_tol=self.burn.tol, final_step_size=self.burn.step_size[-1])
            for t in CURVE_STEPS:
                if t in self.burn.steps and self.convergence is not None:
                    out[f"converged_at_{t}"] = self.convergence[self.burn.steps.index(t)]
        return out


def sample_quality(samples, train, *, k: int = K, features=None, feature_name: str = "pixels", heldout=None,
                   seed: int = 0) -> tuple:
    """(sample, ceiling): precision, recall, density, coverage (Naeem et al. 2020, k-NN balls in the
    ``features`` space: a callable (N, D) -> (N, F), None = the data themselves), Fréchet distance
    and the memorised fraction (nearest training image closer than 1/3 of the second nearest) of
    ``samples``; the real set is a seeded subset of ``train`` the size of the sample set (or all of
    it). ``ceiling``: the same for ``heldout`` real images (None without them). ``sample`` is None
    when the sets are too small for k (k must be below both counts)."""
    real = real_reference(train, len(samples), seed=seed)
    if min(len(real), len(samples)) <= k or len(train) < 2:
        return None, None
    what = f"the training set ({len(train)})" if len(real) == len(train) else \
        f"a random subset of {len(real)} training images (seed {seed})"
    sample = sample_metrics(samples, real, k=k, features=features, train=train, per_sample=True)
    sample.update(features=feature_name, real=what)
    ceiling = None
    if heldout is not None and min(len(heldout), len(samples)) > k:
        ceiling = ceilings(train, heldout, k=k, features=features, n=min(len(heldout), len(samples)), seed=seed)
        ceiling.update(features=feature_name, real=f"{ceiling['n_fake']} held-out images vs {what}")
    return sample, ceiling


def evaluate_samples(samples, train, *, labels=None, model: Optional[nn.Module] = None, frames=None, steps=None,
                     tol: float = TOL, burn_tol: float = BURN_TOL, value_range=(0.0, 1.0), method: str = "auto",
                     max_points: Optional[int] = ATTRACTOR_POINTS, with_norm: bool = False, seed: int = 0,
                     k: int = K, features=None, feature_name: str = "pixels", heldout=None,
                     image_shape: Optional[tuple] = None) -> Evaluation:
    """Every metric for final ``samples`` (N, D) against ``train`` (M, D) in ``value_range``.

    labels (M,): class labels of the training set (class histogram). model: f, for attractor
    stability of (at most ``max_points``) training points and spurious fixed points. frames, steps:
    the recorded walk (F, R, D), for the burn-in curve, the converged fraction per recorded step and
    the distinct training images each chain visits. k, features, feature_name, heldout: the sample
    metrics and their ceilings (:func:`sample_quality`). image_shape: (C, H, W) of image data, for
    the sharpness ratio of :func:`collapse.collapse_measures` (without it, rows count as 1-pixel-high images).
    """
    tol = check_float("tolerance", tol, 0.0, strict=True)
    dev = model_device(model) if model is not None else None
    train = _float2d(train, "train", dev)
    samples = _float2d(samples, "samples", dev)
    if len(samples) == 0:
        raise KalsError("no samples to evaluate; sample at least one chain")
    dist, idx = nearest_neighbours(samples, train)
    conv = dist < tol
    ev = Evaluation(n_samples=len(samples), n_train=len(train), dim=train.shape[1], tol=tol,
                    value_range=tuple(float(v) for v in value_range), converged=float(conv.float().mean()),
                    coverage=coverage(idx, len(train)), coverage_converged=coverage(idx, len(train), conv),
                    median_nn=float(dist.median()), novelty=novelty(dist, train, tol), nn_dist=dist, nn_idx=idx)
    if labels is not None and len(labels):
        labels = torch.as_tensor(labels)
        if len(labels) != len(train):
            raise KalsError(f"{len(labels)} labels for {len(train)} training points; they must match")
        ev.classes = class_histogram(idx, labels)
    ev.collapse = {**collapse_measures(samples.cpu(), train.cpu(), image_shape),
                   **real_at_ratio(train.cpu(), len(samples), seed=seed)}
    ev.sample, ev.ceiling = sample_quality(samples.cpu(), train.cpu(), k=k, features=features,
                                           feature_name=feature_name, heldout=heldout, seed=seed)
    if model is not None:
        _model_metrics(ev, model, samples, train, dist, method=method, max_points=max_points, seed=seed,
                       with_norm=with_norm, burn_tol=burn_tol)
    frames = None if frames is None else torch.as_tensor(frames)
    if frames is not None and frames.numel():  # a walk sampled with record=0 keeps no frames
        ev.burn = burn_in(frames, steps, burn_tol)
        d_all, i_all = nearest_neighbours(frames.reshape(-1, frames.shape[-1]), train)
        ev.convergence = (d_all.reshape(frames.shape[:2]) < tol).float().mean(dim=1).tolist()
        walk = i_all.reshape(frames.shape[:2])[1:]  # the states after f, step 1 on
        ev.visited = torch.tensor([len(torch.unique(walk[:, c])) for c in range(walk.shape[1])]) \
            if len(walk) else None
    return ev


def _model_metrics(ev: Evaluation, model, samples, train, dist, *, method, max_points, seed, with_norm, burn_tol):
    """Attractor stability of the training points and spurious fixed points (novel ones apart)."""
    ev.attractors = attractor_stability(model, train, tol=ev.tol, method=method, max_points=max_points, seed=seed,
                                        with_norm=with_norm)
    novel = ev.sample["inside"] if ev.sample is not None else None
    ev.spurious = spurious_fixed_points(model, samples, train, tol=ev.tol, fixed_tol=burn_tol, nn_dist=dist,
                                        novel=novel)
    if novel is not None:
        stopped_far = (residual_rms(model, samples) < burn_tol) & (dist >= ev.tol)
        ev.sample["novel_fixed"] = float((stopped_far & novel).float().mean())


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
    return _measure(walk.final, run.data.x, run.config, labels=run.data.labels, model=run.model, walk=walk,
                    tol=tol, burn_tol=burn_tol, method=method, max_points=max_points, with_norm=with_norm, seed=seed,
                    k=k, features=features, data_root=data_root, log=log)


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
    model = classifier_for(config, data_root=data_root, log=log)
    return embedder("classifier", image_shape=config.image_shape, value_range=config.value_range, classifier=model)


def classifier_for(config: RunConfig, *, data_root, log: Optional[Callable] = None):
    """The ``classifier`` feature space's net for the run's data set: trained by kals on a seeded
    CLASSIFIER_TRAIN-image subset of its labelled training split, cached under ``data_root/kals_cache``."""
    if config.dataset not in LABELLED or data_root is None:
        raise KalsError(f"classifier features need a labelled data set ({', '.join(LABELLED)}) and its folder "
                        f"(data root); this run is {config.dataset}. Use features randcnn or pixels")
    train, test = (_data_like(config, data_root, train=t, subset=None) for t in (True, False))
    keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:CLASSIFIER_TRAIN]
    model, meta = load_or_train_classifier(classifier_cache_path(data_root, config.dataset, config.image_shape),
                                           train.x[keep], train.labels[keep], image_shape=config.image_shape, x_test=test.x,
                                           labels_test=test.labels, value_range=config.value_range, log=log)
    return model


# ---------------------------------------------------------------- the samples file
def save_samples(path, run, res, *, steps: int, eps: float, seed: int, noise: str, recipe: str,
                 jitter: str = "uniform") -> Path:
    """Write final samples, start states, the training set (and labels) and the walk's settings to
    ``path`` (.npz): everything ``evaluate`` needs, with or without the checkpoint."""
    extra = {} if run.data.labels is None else {"labels": run.data.labels.numpy()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, samples=res.final.numpy(), train=run.data.x.cpu().numpy(),
                            start=res.start.numpy(), value_range=np.array(run.config.value_range),
                            image_shape=np.array(run.config.image_shape or ()), steps=steps,
                            eps=eps, jitter=jitter, seed=seed, noise=noise, recipe=recipe, sampler=res.sampler,
                            scale=np.nan if res.scale is None else res.scale, **extra)
    return Path(path)


def load_samples(path) -> dict:
    """Read a ``sample --save-samples`` file: samples, train, start, value_range, image_shape, steps,
    eps, labels (or None), seed (0 if absent)."""
    path = Path(path)
    if not path.is_file():
        raise KalsError(f"samples file {path} not found; write one with `python -m kals_utils sample "
                        f"--checkpoint CKPT --save-samples {path}`")
    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)
    except (OSError, ValueError) as e:
        raise KalsError(f"{path} is not a readable .npz file ({type(e).__name__}); write it with sample --save-samples") from None
    missing = {"samples", "train"} - keys
    if missing:
        raise KalsError(f"{path} lacks {sorted(missing)}; write it with `python -m kals_utils sample --save-samples`")
    shape = tuple(int(v) for v in z["image_shape"]) if "image_shape" in keys else ()
    return {"samples": torch.from_numpy(z["samples"]).float(), "train": torch.from_numpy(z["train"]).float(),
            "start": torch.from_numpy(z["start"]).float() if "start" in keys else None,
            "value_range": tuple(float(v) for v in z["value_range"]) if "value_range" in keys else (0.0, 1.0),
            "image_shape": shape or None, "steps": int(z["steps"]) if "steps" in keys else None,
            "eps": float(z["eps"]) if "eps" in keys else 0.0,
            "jitter": str(z["jitter"]) if "jitter" in keys else "uniform",
            "labels": torch.from_numpy(z["labels"]) if "labels" in keys else None,
            "seed": int(z["seed"]) if "seed" in keys else 0,
            "sampler": str(z["sampler"]) if "sampler" in keys else "walk",
            "scale": float(z["scale"]) if "scale" in keys and np.isfinite(z["scale"]) else None}


def evaluate_npz(samples_path, checkpoint=None, *, device="auto", tol: float = TOL, burn_tol: float = BURN_TOL,
                 method: str = "auto", max_points: Optional[int] = ATTRACTOR_POINTS, with_norm: bool = True,
                 seed: int = 0, k: int = K, features: str = "pixels", data_root=None,
                 log: Optional[Callable] = None, on_start: Optional[Callable] = None) -> Evaluation:
    """Metrics of a saved ``.npz``; with ``checkpoint`` also attractor stability, spurious fixed points
    and the burn-in curve (the walk is re-run through :func:`pipeline.sample_run` from the saved start
    noise, with the saved steps, jitter and seed), and with ``data_root`` the ceilings of the sample
    metrics from the data set's held-out split (and the classifier features). ``on_start``: called once the
    files, the features and the ceilings are read and checked, before the measuring."""
    s = load_samples(samples_path)
    config = RunConfig(model=ModelConfig(dim=s["train"].shape[1], depth=1, width=1,
                                         out_act=act_for_range(*s["value_range"])),
                       value_range=s["value_range"], image_shape=s["image_shape"], dataset="samples")
    model = walk = run = None
    if checkpoint is not None:
        run = load_run(checkpoint, device=device)
        if tuple(run.data.x.shape) != tuple(s["train"].shape):
            raise KalsError(f"{samples_path} was not sampled from {checkpoint}: its training set is "
                            f"{tuple(s['train'].shape)}, the checkpoint's {tuple(run.data.x.shape)}")
    if run is not None:
        model, config = run.model, run.config
        if s["start"] is not None and s["steps"]:
            walk = sample_run(run, steps=s["steps"], eps=s["eps"], jitter=s["jitter"], seed=s["seed"],
                              start=s["start"], record=min(len(s["start"]), RECORD), sampler=s["sampler"],
                              scale=s["scale"])
    return _measure(s["samples"], s["train"], config, labels=s["labels"], model=model, walk=walk, tol=tol,
                    burn_tol=burn_tol, method=method, max_points=max_points, with_norm=with_norm, seed=seed, k=k,
                    features=features, data_root=data_root, log=log, on_start=on_start)


def _measure(samples, train, config: RunConfig, *, labels, model, walk: Optional[SampleResult], features: str,
             data_root, seed: int, log, on_start: Optional[Callable] = None, **opts) -> Evaluation:
    """The one measuring step behind evaluate_run and evaluate_npz: the feature space, the held-out
    ceiling and every metric of ``samples`` against ``train``."""
    embed = feature_space(config, features, data_root=data_root, log=log)
    heldout = heldout_images(config, len(samples), data_root=data_root, seed=seed)
    if on_start is not None:
        on_start()
    return evaluate_samples(samples, train, labels=labels, model=model, frames=None if walk is None else walk.frames,
                            steps=None if walk is None else walk.steps, value_range=config.value_range, seed=seed,
                            features=embed, feature_name=features, heldout=heldout,
                            image_shape=config.image_shape, **opts)
