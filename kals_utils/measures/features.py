"""Feature spaces for the sample metrics in ``prdc``: the pixels, a fixed random CNN, or a small
classifier that kals trains itself on the labelled training split (never downloaded weights).

* ``pixels`` — the flat data as they are (Euclidean distance on pixels).
* ``randcnn`` — a randomly initialised CNN with weights from a fixed seed (Naeem et al. 2020 advise
  random embeddings for data far from ImageNet): three 3×3 conv + ReLU layers (32, 64, 32
  channels, He-normal weights, no biases) with 2×2 average pooling while the map is at least 8
  pixels on a side, adaptive average pooling to 4×4, flatten, L2-normalise: 512 features for grey
  or colour images of any size >= 8×8. The 4×4 layout and the normalisation were chosen on
  Fashion-MNIST: a global average, or unnormalised features, let uniform noise land next to
  high-contrast texture images (a striped sweater) and read precision ≈ 1 for most seeds; with
  them, noise reads precision 0 for most seeds, but not all (precision trusts the k-NN ball of
  any real outlier; read density beside it, as Naeem et al. advise).
* ``classifier`` — the 128-d penultimate layer of :class:`Classifier`, trained by
  :func:`train_classifier` (Adam, 3 epochs: ~87% test accuracy from 10K Fashion-MNIST images, half
  a minute to a few minutes on 2 CPU cores), cached by :func:`load_or_train_classifier` with its
  test accuracy. The same model gives :func:`recognisable_fraction` (max softmax >= 0.9) and
  :func:`class_histogram`.

Every network sees images mapped from their ``value_range`` to [-1, 1], so the same images in
(0, 1) or (-1, 1) embed the same. No function here touches the global RNG or the network.
"""

import math
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import KalsError, check_int
from ..files import atomic_torch_save

FEATURES = ("pixels", "randcnn", "classifier")
MIN_SIDE = 8
BATCH = 256
CACHE_VERSION = 4
RECOGNISABLE = 0.9
OUTLIER_WEIGHT = 0.5     # Hendrycks et al. 2019


# ---------------------------------------------------------------- inputs
def _images(x, image_shape, kind: str) -> torch.Tensor:
    """Flat (N, D) data -> (N, C, H, W) float32 CPU, checking that they are images big enough."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if image_shape is None or len(tuple(image_shape)) != 3:
        raise KalsError(f"{kind} needs images; use pixels (these data have no image shape (C, H, W))")
    c, h, w = (int(v) for v in image_shape)
    if min(h, w) < MIN_SIDE:
        raise KalsError(f"{kind} needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, got {h}x{w}; use pixels")
    if x.ndim != 2 or x.shape[1] != c * h * w:
        raise KalsError(f"data of shape {tuple(x.shape)} do not match image shape {(c, h, w)}: "
                        f"expected (N, {c * h * w})")
    return x.reshape(len(x), c, h, w)


def _unit(x: torch.Tensor, value_range) -> torch.Tensor:
    """Map ``value_range`` onto [-1, 1]."""
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise KalsError(f"value_range must be (low, high) with high > low, got {tuple(value_range)}")
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def _he_normal(shape, fan_in: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)


@torch.no_grad()
def _batched(fn: Callable, x: torch.Tensor, batch: int = BATCH) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else fn(x[:0])


# ---------------------------------------------------------------- random CNN
class RandomCNN(nn.Module):
    """Fixed random conv net: 3 × (conv3×3 + ReLU [+ avg pool 2]), adaptive avg pool 4×4, flatten,
    L2-normalise -> 512 features."""

    widths = (32, 64, 32)
    grid = 4

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))   # own generator: the global RNG is untouched
        c_in = int(channels)
        for i, c_out in enumerate(self.widths):        # He-normal weights, no biases
            self.register_buffer(f"w{i}", _he_normal((c_out, c_in, 3, 3), c_in * 9, g))
            c_in = c_out
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(len(self.widths)):
            x = F.relu(F.conv2d(x, getattr(self, f"w{i}"), padding=1))
            if min(x.shape[-2:]) >= MIN_SIDE:
                x = F.avg_pool2d(x, 2)
        return F.normalize(F.adaptive_avg_pool2d(x, self.grid).flatten(1), dim=1)


_RANDCNN = {}


def random_cnn(channels: int, seed: int = 0) -> RandomCNN:
    """The random CNN for ``channels`` input channels and ``seed`` (built once, then reused)."""
    key = (int(channels), int(seed))
    if key not in _RANDCNN:
        _RANDCNN[key] = RandomCNN(*key)
    return _RANDCNN[key]


# ---------------------------------------------------------------- classifier
class Classifier(nn.Module):
    """Small CNN classifier: conv 32 + ReLU + max pool 2, conv 64 + ReLU + max pool 2, flatten,
    linear 128 + ReLU (the embedding), linear -> classes + 1 (the last logit is the "outlier"
    class of :func:`train_classifier`'s outlier exposure). Takes images in [-1, 1];
    ``value_range`` records the range of the data it was trained on (the default for callers)."""

    def __init__(self, image_shape, n_classes: int, value_range=(0.0, 1.0)):
        super().__init__()
        self.image_shape = tuple(int(v) for v in image_shape)
        self.n_classes = int(n_classes)
        self.value_range = tuple(float(v) for v in value_range)
        c, h, w = self.image_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 128), nn.ReLU())
        self.head = nn.Linear(128, self.n_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _build_classifier(image_shape, n_classes, value_range, seed) -> Classifier:
    with torch.random.fork_rng(devices=[]):   # default init, seeded, global RNG restored after
        torch.manual_seed(int(seed))
        return Classifier(image_shape, n_classes, value_range)


def _prepare(model: Classifier, x, value_range) -> torch.Tensor:
    vr = model.value_range if value_range is None else value_range
    return _unit(_images(x, model.image_shape, "the classifier"), vr)


@torch.no_grad()
def predict_proba(model: Classifier, x, *, value_range=None) -> torch.Tensor:
    """Class probabilities (N, classes) of flat images ``x`` in ``value_range`` (default: the range
    the classifier was trained on): the softmax over the classes and the outlier class, without the
    outlier column (so a row sums to 1 minus the outlier probability)."""
    model.eval()
    return _batched(lambda b: model(b).softmax(dim=1)[:, :model.n_classes], _prepare(model, x, value_range))


def accuracy(model: Classifier, x, labels, *, value_range=None) -> float:
    """Fraction of ``x`` whose predicted class is ``labels``."""
    labels = torch.as_tensor(labels).long().cpu()
    if len(labels) == 0:
        return float("nan")
    return (predict_proba(model, x, value_range=value_range).argmax(dim=1) == labels).double().mean().item()


def recognisable_fraction(model: Classifier, x, *, threshold: float = RECOGNISABLE, value_range=None) -> float:
    """Fraction of images the classifier is sure about: max class probability >= ``threshold``."""
    if len(x) == 0:
        return float("nan")
    return (predict_proba(model, x, value_range=value_range).max(dim=1).values >= threshold).double().mean().item()


def class_histogram(model: Classifier, x, *, value_range=None, threshold: Optional[float] = None) -> torch.Tensor:
    """Counts (classes,) of predicted classes; with ``threshold`` only images whose max softmax
    reaches it are counted."""
    p = predict_proba(model, x, value_range=value_range)
    conf, cls = p.max(dim=1)
    if threshold is not None:
        cls = cls[conf >= threshold]
    return torch.bincount(cls, minlength=model.n_classes)


def outliers(imgs: torch.Tensor, labels: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` unrecognisable images in [-1, 1] like ``imgs`` (B, C, H, W): a third uniform noise, a
    third smooth noise (box-blurred, stretched to [-1, 1]), a third 50/50 blends of two images of
    different classes (pairs of the same class are dropped)."""
    shape = imgs.shape[1:]
    n_noise = n // 3
    noise = torch.rand((n_noise, *shape), generator=g) * 2 - 1
    smooth = F.avg_pool2d(torch.rand((n_noise, *shape), generator=g), 5, stride=1, padding=2,
                          count_include_pad=False)
    lo = smooth.amin(dim=(1, 2, 3), keepdim=True)
    hi = smooth.amax(dim=(1, 2, 3), keepdim=True)
    smooth = (smooth - lo) / (hi - lo).clamp(min=1e-6) * 2 - 1
    i = torch.randint(0, len(imgs), (n - 2 * n_noise,), generator=g)
    j = torch.randint(0, len(imgs), (n - 2 * n_noise,), generator=g)
    keep = labels[i] != labels[j]
    blends = (imgs[i[keep]] + imgs[j[keep]]) / 2
    return torch.cat([noise, smooth, blends])


def train_classifier(x, labels, *, image_shape, x_test=None, labels_test=None, value_range=(0.0, 1.0),
                     epochs: int = 3, seed: int = 0, batch_size: int = 64, lr: float = 2e-3,
                     outlier_weight: float = OUTLIER_WEIGHT, log: Optional[Callable] = None):
    """Train a :class:`Classifier` on flat images ``x`` (N, D) in ``value_range`` with integer
    ``labels`` (N,): Adam, cross-entropy, ``epochs`` passes in seeded random order, on the CPU.

    Outlier exposure (after Hendrycks et al. 2019, "Deep anomaly detection with outlier exposure"):
    each batch also gets half as many :func:`outliers` (noise, smooth noise, blends of two
    classes) labelled with an extra "outlier" class, weighted ``outlier_weight`` (0: off).
    Without it the net is sure (max softmax >= 0.9) about most uniform noise, which would make
    :func:`recognisable_fraction` count noise-like samples as recognisable. An extra class rather
    than Hendrycks' uniform target: with the uniform target noise embeds where the ambiguous real
    images do, and PRDC in classifier features then reads noise as real (precision ≈ 1).

    Returns ``(model, test_acc)``; test_acc is measured on ``x_test`` / ``labels_test`` (NaN when
    not given). Seeded (its own generator; the global RNG is restored), so a rerun gives the same net.
    """
    imgs = _unit(_images(x, image_shape, "the classifier"), value_range)
    labels = torch.as_tensor(labels).long().cpu().reshape(-1)
    if len(labels) != len(imgs):
        raise KalsError(f"{len(imgs)} images but {len(labels)} labels; give one label per image")
    if len(imgs) == 0:
        raise KalsError("the classifier needs labelled training images; got none")
    if labels.min() < 0:
        raise KalsError("labels must be class indices >= 0")
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch size", batch_size, 1)
    n_classes = int(labels.max()) + 1
    if labels_test is not None:
        n_classes = max(n_classes, int(torch.as_tensor(labels_test).max()) + 1)
    model = _build_classifier(image_shape, n_classes, value_range, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(int(seed))
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(imgs), generator=g)
        total = 0.0
        for i in range(0, len(imgs), batch_size):
            b = order[i:i + batch_size]
            loss = F.cross_entropy(model(imgs[b]), labels[b])
            if outlier_weight > 0 and len(b) >= 2:
                out = outliers(imgs[b], labels[b], max(3, len(b) // 2), g)
                target = torch.full((len(out),), n_classes, dtype=torch.long)
                loss = loss + outlier_weight * F.cross_entropy(model(out), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        if log:
            log(f"classifier epoch {epoch + 1}/{epochs}: loss {total / len(imgs):.4f}")
    model.eval().requires_grad_(False)
    test_acc = float("nan")
    if x_test is not None and labels_test is not None:
        test_acc = accuracy(model, x_test, labels_test, value_range=value_range)
    return model, test_acc


# ---------------------------------------------------------------- cache
def classifier_cache_path(data_root, dataset: str, image_shape) -> Path:
    """``<data_root>/kals_cache/classifier_<dataset>_<C>x<H>x<W>.pt``."""
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(dataset))
    shape = "x".join(str(int(v)) for v in image_shape)
    return Path(data_root).expanduser() / "kals_cache" / f"classifier_{name}_{shape}.pt"


def _load_cached(path: Path, want: dict):
    """(model, meta) from the cache, or (None, reason) when missing, unreadable or for other settings."""
    if not path.is_file():
        return None, "no cache"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = dict(blob["meta"])
        for key, value in want.items():
            if meta.get(key) != value:
                return None, f"cached for {key}={meta.get(key)!r}, wanted {value!r}"
        model = Classifier(meta["image_shape"], meta["n_classes"], meta["value_range"])
        model.load_state_dict(blob["state_dict"])
    except Exception as e:  # corrupt, truncated or foreign file: retrain and overwrite it
        return None, f"unreadable ({type(e).__name__}: {str(e)[:120]})"
    return model.eval().requires_grad_(False), meta


def load_or_train_classifier(cache_path, x, labels, *, image_shape, x_test=None, labels_test=None,
                             value_range=(0.0, 1.0), epochs: int = 3, seed: int = 0,
                             outlier_weight: float = OUTLIER_WEIGHT, retrain: bool = False,
                             log: Optional[Callable] = print):
    """The classifier from ``cache_path`` if it was trained with these settings (image shape,
    classes, value range, epochs, seed, outlier weight, training/test counts), else train it with
    :func:`train_classifier` and save ``{"state_dict", "meta"}`` there (atomically). A missing,
    corrupt or mismatching cache is retrained and overwritten. Loading uses
    ``torch.load(weights_only=True)``. Returns ``(model, meta)``; ``meta`` holds ``test_acc``,
    ``train_seconds``, the settings and ``cached`` (True when loaded).
    """
    path = Path(cache_path).expanduser()
    labels = torch.as_tensor(labels).long().cpu().reshape(-1)
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    if labels_test is not None and len(labels_test):
        n_classes = max(n_classes, int(torch.as_tensor(labels_test).max()) + 1)
    want = {"version": CACHE_VERSION, "image_shape": [int(v) for v in image_shape], "n_classes": n_classes,
            "value_range": [float(v) for v in value_range], "epochs": int(epochs), "seed": int(seed),
            "outlier_weight": float(outlier_weight),
            "n_train": len(labels), "n_test": 0 if labels_test is None else len(labels_test)}
    if not retrain:
        model, meta = _load_cached(path, want)
        if model is not None:
            meta["cached"] = True
            if log:
                log(f"classifier loaded from {path} (test accuracy {meta['test_acc']:.3f})")
            return model, meta
        if log and meta != "no cache":
            log(f"classifier cache {path} {meta}; retraining")
    start = time.perf_counter()
    model, test_acc = train_classifier(x, labels, image_shape=image_shape, x_test=x_test, labels_test=labels_test,
                                       value_range=value_range, epochs=epochs, seed=seed,
                                       outlier_weight=outlier_weight, log=log)
    meta = dict(want, test_acc=float(test_acc), train_seconds=round(time.perf_counter() - start, 2))
    try:
        atomic_torch_save({"state_dict": model.state_dict(), "meta": meta}, path)
        where = f"saved to {path}"
    except KalsError as e:  # a read-only data folder: keep going without a cache
        where = f"not cached ({e})"
    if log:
        log(f"classifier trained in {meta['train_seconds']:.1f} s, test accuracy {test_acc:.3f}; {where}")
    return model, dict(meta, cached=False)


# ---------------------------------------------------------------- embedding
def embed(x, *, kind: str, image_shape=None, value_range=(0.0, 1.0), classifier: Optional[Classifier] = None,
          seed: int = 0) -> torch.Tensor:
    """Features (N, F) float32 on the CPU of flat data ``x`` (N, D) in ``value_range``.

    ``kind``: ``pixels`` (x itself, F = D), ``randcnn`` (F = 512, weights from ``seed``) or
    ``classifier`` (F = 128, needs ``classifier`` from :func:`load_or_train_classifier`).
    """
    if kind not in FEATURES:
        raise KalsError(f"unknown feature space {kind!r}; choose one of {', '.join(FEATURES)}")
    if kind == "pixels":
        x = torch.as_tensor(x).detach().to("cpu", torch.float32)
        return x[:, None] if x.ndim == 1 else x
    if kind == "randcnn":
        imgs = _unit(_images(x, image_shape, "randcnn"), value_range)
        return _batched(random_cnn(imgs.shape[1], seed), imgs)
    if classifier is None:
        raise KalsError("classifier features need a trained classifier; get one with load_or_train_classifier "
                        "(or use randcnn / pixels)")
    if image_shape is not None and tuple(int(v) for v in image_shape) != classifier.image_shape:
        raise KalsError(f"the classifier was trained on images of shape {classifier.image_shape}, "
                        f"these are {tuple(image_shape)}; train one for this shape")
    classifier.eval()
    return _batched(classifier.body, _prepare(classifier, x, value_range))


def embedder(kind: str, *, image_shape=None, value_range=(0.0, 1.0), classifier: Optional[Classifier] = None,
             seed: int = 0) -> Callable:
    """``x -> embed(x, kind=kind, ...)`` with these settings: the ``features`` argument of
    ``prdc.ceilings`` / ``prdc.sample_metrics``. Checks the settings now (not at the first call)."""
    if kind not in FEATURES:
        raise KalsError(f"unknown feature space {kind!r}; choose one of {', '.join(FEATURES)}")
    if kind == "randcnn":
        _images(torch.zeros(0, 0 if image_shape is None else math.prod(image_shape)), image_shape, "randcnn")
    if kind == "classifier" and classifier is None:
        raise KalsError("classifier features need a trained classifier; get one with load_or_train_classifier "
                        "(or use randcnn / pixels)")
    return lambda x: embed(x, kind=kind, image_shape=image_shape, value_range=value_range,
                           classifier=classifier, seed=seed)
