"""Measuring a run: :func:`evaluate_run` walks (or takes) a run's chains and hands them to
:func:`metrics.evaluate_samples`, in the feature space asked for, with the data set's held-out
split as the ceiling when its folder is given; :func:`evaluate_npz` does the same for a samples
file written by :func:`save_samples` (``sample --save-samples``)."""

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..data import HELD_OUT, LABELLED, Data, load_data
from ..errors import KalsError, check_int
from .features import FEATURES, classifier_cache_path, embedder, load_or_train_classifier
from .metrics import ATTRACTOR_POINTS, BURN_TOL, K, TOL, Evaluation, evaluate_samples
from ..files import atomic_path
from ..model import ModelConfig, RunConfig, act_for_range
from ..pipeline import Run, load_run, sample_run
from ..sample import SampleResult

RECORD = 256               # chains recorded by evaluate_run's own walk, for the burn-in curve
CLASSIFIER_TRAIN = 10_000  # labelled training images (seeded subset) for the feature classifier


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
                 log: Optional[Callable] = None) -> Evaluation:
    """Metrics of a saved ``.npz``; with ``checkpoint`` also attractor stability, spurious fixed points
    and the burn-in curve (the walk is re-run through :func:`pipeline.sample_run` from the saved start
    noise, with the saved steps, jitter and seed), and with ``data_root`` the ceilings of the sample
    metrics from the data set's held-out split (and the classifier features)."""
    s = load_samples(samples_path)
    config = RunConfig(model=ModelConfig(dim=s["train"].shape[1], depth=1, width=1,
                                         out_act=act_for_range(*s["value_range"])),
                       value_range=s["value_range"], image_shape=s["image_shape"], dataset="samples")
    model = walk = None
    if checkpoint is not None:
        run = load_run(checkpoint, device=device)
        if tuple(run.data.x.shape) != tuple(s["train"].shape):
            raise KalsError(f"{samples_path} was not sampled from {checkpoint}: its training set is "
                            f"{tuple(s['train'].shape)}, the checkpoint's {tuple(run.data.x.shape)}")
        model, config = run.model, run.config
        if s["start"] is not None and s["steps"]:
            walk = sample_run(run, steps=s["steps"], eps=s["eps"], jitter=s["jitter"], seed=s["seed"],
                              start=s["start"], record=min(len(s["start"]), RECORD), sampler=s["sampler"],
                              scale=s["scale"])
    return _measure(s["samples"], s["train"], config, labels=s["labels"], model=model, walk=walk, tol=tol,
                    burn_tol=burn_tol, method=method, max_points=max_points, with_norm=with_norm, seed=seed, k=k,
                    features=features, data_root=data_root, log=log)


def _measure(samples, train, config: RunConfig, *, labels, model, walk: Optional[SampleResult], features: str,
             data_root, seed: int, log, **opts) -> Evaluation:
    """The one measuring step behind evaluate_run and evaluate_npz: the feature space, the held-out
    ceiling and every metric of ``samples`` against ``train``."""
    embed = feature_space(config, features, data_root=data_root, log=log)
    heldout = heldout_images(config, len(samples), data_root=data_root, seed=seed)
    return evaluate_samples(samples, train, labels=labels, model=model, frames=None if walk is None else walk.frames,
                            steps=None if walk is None else walk.steps, value_range=config.value_range, seed=seed,
                            features=embed, feature_name=features, heldout=heldout,
                            image_shape=config.image_shape, **opts)
