"""Nearest neighbours in RMS distance per coordinate, the 1/3 copy test, and the data's spread: the one scale every
data-derived setting takes (the ``improved`` recipe's noise, its sampler's steps) and every measure
reads distances against. Core: the recipes need it before a net is trained; the measures reuse it."""

from dataclasses import dataclass

import torch

from .errors import KalsError, check_float, check_int
from .model import rms

CHUNK = 1024               # samples per distance matrix product
PAIR_CHUNK = 2 ** 22       # distances per chunk (matrix entries) of the memorisation test: 32 MB in float64
MEMORIZED_RATIO = 1 / 3    # a copy: nearest training point closer than this times the second nearest (Gu et al. 2025)
SPREAD_EXACT = 4000        # data_spread on every point up to this many; above, from SPREAD_QUERIES of them
SPREAD_QUERIES = 2000
REAL_SPLITS = 5            # seeded splits of the training set averaged by real_at_ratio
REAL_MAX = 2000            # training images real_at_ratio uses at most (a seeded subset: two small searches)
FLAT = 1e-6                # standard deviation under which an image counts as flat (standardise only centres it)


def _float2d(x, what: str, device=None) -> torch.Tensor:
    """(N, D) float32 tensor (a plain one, not an inference-mode tensor) on ``device``."""
    x = torch.as_tensor(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise KalsError(f"{what} must be a 2D array (N, D); got shape {tuple(x.shape)}")
    return x.detach().to(device=device, dtype=torch.float32).clone()


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise RMS distance ``||a_i - b_i|| / sqrt(D)`` of two (N, D) tensors -> (N,)."""
    return rms(a - b)


# ---------------------------------------------------------------- nearest neighbours
def nearest_neighbours(samples, train, chunk: int = CHUNK, exclude_self: bool = False) -> tuple:
    """Nearest training point of every sample: (dist (N,), idx (N,)), dist RMS per coordinate.

    samples (N, D), train (M, D), on the device of ``train``. Squared distances come from one
    matrix product per chunk; the chosen neighbour's distance is then recomputed exactly, so copies
    read as 0 (not as rounding noise). ``exclude_self``: samples *are* train (leave-one-out).
    """
    train = _float2d(train, "train")
    samples = _float2d(samples, "samples", train.device)
    if samples.shape[1] != train.shape[1]:
        raise KalsError(f"samples have D={samples.shape[1]} but the training set has D={train.shape[1]}; "
                        "they must come from the same data set")
    if len(train) == 0 or (exclude_self and len(train) < 2):
        raise KalsError("nearest neighbours need at least one (two for leave-one-out) training points")
    sq_t = train.pow(2).sum(dim=1)
    chunk = max(1, min(chunk, 2 ** 24 // len(train)))  # at most 16M distances in memory at once
    dists, idxs = [], []
    for i in range(0, len(samples), chunk):
        s = samples[i:i + chunk]
        d2 = s.pow(2).sum(dim=1, keepdim=True) - 2 * s @ train.T + sq_t
        if exclude_self:
            rows = torch.arange(len(s), device=d2.device)
            d2[rows, rows + i] = float("inf")
        idx = d2.argmin(dim=1)
        dists.append(rms_distance(s, train[idx]))
        idxs.append(idx)
    return torch.cat(dists).cpu(), torch.cat(idxs).cpu()


def data_spread(train, chunk: int = CHUNK) -> float:
    """Median RMS distance from each training point to its nearest *other* training point (nan if N < 2)."""
    if len(train) < 2:
        return float("nan")
    return float(nearest_neighbours(train, train, chunk, exclude_self=True)[0].median())


def spread(x: torch.Tensor) -> float:
    """:func:`data_spread`; above SPREAD_EXACT points, estimated from SPREAD_QUERIES seeded points
    against all the others (O(N) instead of O(N^2))."""
    if len(x) <= SPREAD_EXACT:
        return data_spread(x)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    q = x[perm[:SPREAD_QUERIES]]  # nearest other point: among the other queries or among the rest
    d = torch.minimum(nearest_neighbours(q, q, exclude_self=True)[0], nearest_neighbours(q, x[perm[SPREAD_QUERIES:]])[0])
    return float(d.median())


# ---------------------------------------------------------------- the memorisation test (float64)
def _feats(x, what: str) -> torch.Tensor:
    """(N, F) float64 CPU tensor from anything tensor-like (1D input is N samples of 1 feature)."""
    x = torch.as_tensor(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise KalsError(f"{what} must be a 2D array (N, features); got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise KalsError(f"{what} contain NaN or infinite values; check the samples (a diverged chain?)")
    return x


def _same_dim(a: torch.Tensor, b: torch.Tensor, what_a: str, what_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise KalsError(f"{what_a} have {a.shape[1]} features but {what_b} have {b.shape[1]}; "
                        "embed both with the same feature extractor")


def _rows(n_cols: int, chunk: int) -> int:
    """Rows per chunk so that a (rows, n_cols) block holds about ``chunk`` entries (at least 1 row)."""
    return max(1, check_int("chunk", chunk, 1) // max(1, n_cols))


def _sqdist(a: torch.Tensor, b: torch.Tensor, sq_b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (len(a), len(b)), clamped at 0."""
    d2 = a.pow(2).sum(dim=1, keepdim=True) - 2 * a @ b.T + sq_b
    return d2.clamp_(min=0)


@dataclass
class Memorization:
    """Per-sample memorisation test: ``flags`` (N,) bool, ``nearest`` (N,) training index,
    ``d1`` / ``d2`` (N,) distances to the nearest / second-nearest training sample, and ``ratio``."""

    flags: torch.Tensor
    nearest: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor
    ratio: float

    @property
    def fraction(self) -> float:
        return self.flags.double().mean().item() if len(self.flags) else float("nan")

    @property
    def distinct(self) -> int:
        """How many different training samples were copied."""
        return len(torch.unique(self.nearest[self.flags]))


def memorization(samples, train, *, ratio: float = MEMORIZED_RATIO, chunk: int = PAIR_CHUNK) -> Memorization:
    """Which samples are copies: d(nearest training sample) < ratio · d(second nearest).

    Euclidean distances in the given space (use pixels: a copy is a copy of the image). The two
    distances are recomputed exactly from differences, so an exact copy reads d1 = 0. A training
    set with duplicates makes copies of them read as not memorised (d2 = 0 too).
    """
    train = _feats(train, "training samples")
    samples = _feats(samples, "samples")
    _same_dim(samples, train, "the samples", "the training samples")
    ratio = check_float("ratio", ratio, 0.0, strict=True)
    if len(train) < 2:
        raise KalsError(f"the memorisation test needs at least 2 training samples, got {len(train)}")
    mean = train.mean(dim=0)
    train, samples = train - mean, samples - mean
    sq = train.pow(2).sum(dim=1)
    idx, d = [torch.zeros((0, 2), dtype=torch.long)], [torch.zeros((0, 2), dtype=torch.float64)]
    rows = min(_rows(len(train), chunk), _rows(2 * train.shape[1], chunk))
    for i in range(0, len(samples), rows):
        s = samples[i:i + rows]
        top2 = _sqdist(s, train, sq).topk(2, dim=1, largest=False).indices
        idx.append(top2)
        d.append((s[:, None, :] - train[top2]).norm(dim=2))  # exact distances
    idx, d = torch.cat(idx), torch.cat(d)
    d, order = d.sort(dim=1)                                 # rounding may have swapped close pairs
    nearest = idx.gather(1, order)[:, 0]
    d1, d2 = d[:, 0], d[:, 1]
    return Memorization(flags=d1 < ratio * d2, nearest=nearest, d1=d1, d2=d2, ratio=ratio)


def standardise(x) -> torch.Tensor:
    """Every row minus its mean, over its standard deviation (flat rows are only centred): images
    with brightness and contrast taken out."""
    x = _float2d(x, "images")
    x = x - x.mean(dim=1, keepdim=True)
    sd = x.pow(2).mean(dim=1, keepdim=True).sqrt()
    return x / torch.where(sd > FLAT, sd, torch.ones_like(sd))


def distinct_nearest(samples, train) -> float:
    """Distinct nearest training images of the standardised samples / min(#samples, #train)."""
    samples, train = _float2d(samples, "samples"), _float2d(train, "train")
    if len(samples) == 0 or len(train) == 0:
        raise KalsError("distinct_nearest needs at least one sample and one training image")
    _, idx = nearest_neighbours(standardise(samples), standardise(train))
    return len(torch.unique(idx)) / min(len(samples), len(train))


def memorized_std_fraction(samples, train) -> float:
    """The 1/3-rule fraction (:func:`memorization`) on standardised images: copies at any brightness
    or contrast."""
    return memorization(standardise(samples), standardise(train)).fraction


def copied_fraction(samples, train) -> float:
    """The share of ``samples`` that copy a training image at any brightness or contrast: the larger
    of the 1/3-rule fractions in pixels and on standardised images. Iterating f can raise a copy's
    contrast until its pixel distances read "new" (issue #29: 100 faces, 6% in pixels, 60%
    standardised); the standardised test still sees the face."""
    return max(memorization(samples, train).fraction, memorized_std_fraction(samples, train))


def memorized_fraction(samples, train, *, ratio: float = MEMORIZED_RATIO) -> float:
    """Fraction of ``samples`` that are copies of a training sample (see :func:`memorization`)."""
    return memorization(samples, train, ratio=ratio).fraction


def real_at_ratio(train, n_samples: int, *, splits: int = REAL_SPLITS, seed: int = 0) -> dict:
    """What real images read at ``n_samples`` samples per len(``train``) training images:
    ``{"coverage_real", "distinct_real"}``, the pixel coverage (distinct nearest / min) and
    :func:`distinct_nearest` of held-out training images against the rest, split at the same ratio
    (held-out / rest = n_samples / n_train; at most REAL_MAX images), averaged over ``splits`` seeded
    splits. nan where a part would hold fewer than 2 images."""
    train = _float2d(train, "train")
    ratio = check_int("samples", n_samples, 1) / max(len(train), 1)
    g = torch.Generator().manual_seed(seed)
    if len(train) > REAL_MAX:
        train = train[torch.randperm(len(train), generator=g)[:REAL_MAX]]
    ref = round(len(train) / (1 + ratio))
    if min(ref, len(train) - ref) < 2:
        return {"coverage_real": float("nan"), "distinct_real": float("nan")}
    cov, dis = [], []
    for _ in range(check_int("splits", splits, 1)):
        order = torch.randperm(len(train), generator=g)
        rest, held = train[order[:ref]], train[order[ref:]]
        idx = nearest_neighbours(held, rest)[1]
        cov.append(len(torch.unique(idx)) / min(len(held), len(rest)))
        dis.append(distinct_nearest(held, rest))
    return {"coverage_real": sum(cov) / len(cov), "distinct_real": sum(dis) / len(dis)}
