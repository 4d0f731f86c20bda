"""Nearest neighbours in RMS distance per coordinate, and the data's spread: the one scale every
data-derived setting takes (the ``improved`` recipe's noise, its sampler's steps) and every measure
reads distances against. Core: the recipes need it before a net is trained; the measures reuse it."""

import torch

from .errors import KalsError
from .model import rms

CHUNK = 1024               # samples per distance matrix product
SPREAD_EXACT = 4000        # data_spread on every point up to this many; above, from SPREAD_QUERIES of them
SPREAD_QUERIES = 2000


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
