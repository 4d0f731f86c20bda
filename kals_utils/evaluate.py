"""Measuring a run: :func:`evaluate_run` walks (or takes) a run's chains and hands them to
:func:`metrics.evaluate_samples`, in the feature space asked for, with the data set's held-out
split as the ceiling when its folder is given."""

from typing import Callable, Optional

import torch

from .data import HELD_OUT, LABELLED, Data, load_data
from .errors import KalsError, check_int
from .features import FEATURES, classifier_cache_path, embedder, load_or_train_classifier
from .metrics import ATTRACTOR_POINTS, BURN_TOL, K, TOL, Evaluation, evaluate_samples
from .model import RunConfig
from .pipeline import Run, sample_run
from .sample import SampleResult

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
