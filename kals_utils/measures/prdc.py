"""Sample metrics in a feature space: precision, recall, density, coverage; memorisation;
Fréchet distance; "real vs real" ceilings.

* :func:`prdc` — Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models" (ICML), as in their reference code (clovaai/generative-evaluation-prdc): every real
  sample gets a ball whose radius is the distance to its k-th nearest real neighbour (itself
  excluded), every fake sample likewise among the fakes. With N real and M fake samples:

  - precision = fraction of fakes inside at least one real ball (fidelity),
  - recall    = fraction of reals inside at least one fake ball (diversity),
  - density   = (1 / kM) Σ_fake Σ_real 1[fake inside the real ball] (fidelity; ≈ 1 when fakes
    are distributed like the reals, > 1 when they crowd into dense real regions),
  - coverage  = fraction of real balls that contain at least one fake (diversity).

  "Inside" is strict (distance < radius), as in the reference. Distances are plain Euclidean in
  whatever feature space the caller passes (pixels, a random CNN, a classifier: see ``features``).
* :func:`memorization` / :func:`memorized_fraction` (from :mod:`neighbours`, where the core's
  stopping rule uses them too) — a sample is a copy of a training sample when
  d(nearest) < ratio · d(second nearest), ratio 1/3 (Gu et al. 2025, "On memorization in diffusion
  models"; Favero et al. 2025).
* :func:`frechet_distance` — ||μa − μb||² + tr(Σa + Σb − 2 (Σa Σb)^½) of Gaussians fitted to two
  feature sets (FID when the features are Inception's; here whatever features are given).
* :func:`real_reference`, :func:`ceilings` — the real set to compare samples with, and what every
  metric reads for held-out real images against it (the best a generator can expect).

Distances are computed in float64 (after centring on the real mean) by one matrix product per
chunk of at most ``chunk`` entries (default 4M: 10K × 10K on a CPU stays within ~200 MB); ball radii
and the rare distances within rounding of a radius are recomputed from differences, so results do
not depend on rounding or chunking (copies of reals sit exactly on ball boundaries). Imports
torch only.
"""

from typing import Callable, Optional

import torch

from ..errors import KalsError, check_int
from ..neighbours import (MEMORIZED_RATIO, Memorization, _feats, _rows, _same_dim, _sqdist,  # noqa: F401 (re-exported)
                         memorization, memorized_fraction)

CHUNK = 2 ** 22          # distances per chunk (matrix entries): 32 MB in float64
REFINE_TOL = 1e-6        # relative; distances this close to a ball radius are recomputed exactly


def knn_radii(x: torch.Tensor, k: int, *, chunk: int = CHUNK) -> torch.Tensor:
    """Distance of every row of ``x`` (N, F) to its k-th nearest other row (itself excluded) -> (N,).

    Duplicates of a row count as neighbours at distance 0 (as in the reference implementation).
    """
    x = _feats(x, "features")
    n = len(x)
    k = check_int("k", k, 1)
    if k >= n:
        raise KalsError(f"k={k} needs more than {k} samples, got {n}; lower k or use more samples")
    sq = x.pow(2).sum(dim=1)
    kth = []
    rows = _rows(n, chunk)
    for i in range(0, n, rows):
        d2 = _sqdist(x[i:i + rows], x, sq)
        r = torch.arange(len(d2))
        d2[r, r + i] = float("inf")
        kth.append(d2.topk(k, dim=1, largest=False).indices[:, -1])
    return (x - x[torch.cat(kth)]).norm(dim=1)   # exact (difference-based) k-th distances


def _refine(d: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *radii) -> torch.Tensor:
    """Recompute exactly (from differences) the entries of d = dist(a, b) that lie within rounding
    of a radius they are compared with, so "inside" does not depend on the product's rounding
    (fakes that copy reals sit exactly on neighbours' ball boundaries). ``radii``: tensors that
    broadcast against d."""
    near = torch.zeros_like(d, dtype=torch.bool)
    for r in radii:
        near |= (d - r).abs() <= REFINE_TOL * r
    ii, jj = near.nonzero(as_tuple=True)
    for s in range(0, len(ii), 2 ** 16):
        i, j = ii[s:s + 2 ** 16], jj[s:s + 2 ** 16]
        d[i, j] = (a[i] - b[j]).norm(dim=1)
    return d


# ---------------------------------------------------------------- PRDC
def prdc(real, fake, *, k: int = 5, chunk: int = CHUNK, per_sample: bool = False) -> dict:
    """Precision, recall, density and coverage of ``fake`` (M, F) against ``real`` (N, F).

    Returns ``{"precision", "recall", "density", "coverage", "k", "n_real", "n_fake"}`` (floats /
    ints). Needs 1 <= k < N and k < M (each set's radii come from its own k-th neighbour).
    ``chunk``: distance-matrix entries computed at once (memory ≈ 8 bytes × a few × chunk).
    Naeem et al. use k = 5 with 10K samples each; with few samples the balls grow, and recall and
    coverage of a set against itself are 1 by construction, not a sign of quality.
    ``per_sample``: also ``"inside"``, a (M,) bool tensor: each fake inside some real ball.
    """
    real = _feats(real, "real features")
    fake = _feats(fake, "fake features")
    _same_dim(real, fake, "the fake features", "the real features")
    k = check_int("k", k, 1, " (the neighbour count of the PRDC balls)")
    n, m = len(real), len(fake)
    if k >= n or k >= m:
        raise KalsError(f"k={k} needs more than k real and more than k fake samples, got {n} real and {m} fake; "
                        f"lower k (below {min(n, m)}) or use more samples")
    mean = real.mean(dim=0)            # centring keeps the ||a||² - 2ab + ||b||² trick accurate
    real, fake = real - mean, fake - mean
    r_real = knn_radii(real, k, chunk=chunk)
    r_fake = knn_radii(fake, k, chunk=chunk)
    sq_real = real.pow(2).sum(dim=1)
    inside_any = torch.zeros(m, dtype=torch.bool)   # per fake: inside some real ball
    n_inside = torch.zeros(m, dtype=torch.float64)  # per fake: number of real balls containing it
    recalled = torch.zeros(n, dtype=torch.bool)     # per real: inside some fake ball
    nearest_fake = torch.full((n,), float("inf"), dtype=torch.float64)  # per real: nearest fake
    rows = _rows(n, chunk)
    for i in range(0, m, rows):
        f, rf = fake[i:i + rows], r_fake[i:i + rows, None]
        d = _refine(_sqdist(f, real, sq_real).sqrt_(), f, real, r_real[None, :], rf)  # (rows, N)
        in_real = d < r_real[None, :]
        inside_any[i:i + rows] = in_real.any(dim=1)
        n_inside[i:i + rows] = in_real.sum(dim=1)
        recalled |= (d < rf).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, d.min(dim=0).values)
    return {
        "precision": inside_any.double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": (n_inside.sum() / (k * m)).item(),
        "coverage": (nearest_fake < r_real).double().mean().item(),
        "k": k, "n_real": n, "n_fake": m,
    } | ({"inside": inside_any} if per_sample else {})


# ---------------------------------------------------------------- Fréchet distance
def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(feat_a, feat_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, F) and (M, F):
    ``||μa − μb||² + tr(Σa) + tr(Σb) − 2 tr((Σa^½ Σb Σa^½)^½)`` in float64.

    The trace of the matrix square root comes from the eigenvalues of the symmetric PSD matrix
    Σa^½ Σb Σa^½ (same spectrum as Σa Σb), so singular covariances (F > N) are fine. Each set
    needs >= 2 samples. Biased for small N (it grows as N shrinks): compare equal sizes only.
    """
    a = _feats(feat_a, "first feature set")
    b = _feats(feat_b, "second feature set")
    _same_dim(b, a, "the second feature set", "the first")
    if len(a) < 2 or len(b) < 2:
        raise KalsError(f"the Fréchet distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(dim=0), b.mean(dim=0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    root_a = _sqrtm_psd(cov_a)
    mid = root_a @ cov_b @ root_a
    tr_sqrt = torch.linalg.eigvalsh((mid + mid.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * tr_sqrt
    return max(fd.item(), 0.0)


# ---------------------------------------------------------------- reference sets and ceilings
def real_reference(train, n: int, *, seed: int = 0, return_indices: bool = False):
    """The real set that samples are compared with: ``n`` training samples drawn without
    replacement by a seeded ``torch.Generator`` (the global RNG is untouched), in increasing index
    order; the whole training set (in order) when ``n >= len(train)``.

    Use as many real as fake samples (Naeem et al. compare equal counts; PRDC values shift with
    the counts). ``return_indices``: also return the chosen indices (a LongTensor).
    """
    train = torch.as_tensor(train)
    n = check_int("n", n, 1, " (the size of the real reference set)")
    seed = check_int("seed", seed, 0)
    if n >= len(train):
        idx = torch.arange(len(train))
    else:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(train), generator=g)[:n].sort().values
    subset = train[idx]
    return (subset, idx) if return_indices else subset


def sample_metrics(samples, real, *, k: int = 5, features: Optional[Callable] = None, train=None,
                   ratio: float = MEMORIZED_RATIO, per_sample: bool = False) -> dict:
    """PRDC and Fréchet distance of ``samples`` against ``real`` in ``features`` space (a callable
    (N, D) -> (N, F); None = the data as they are), plus the memorised fraction of ``samples``
    against ``train`` (in data space; skipped when train is None)."""
    embed = features if features is not None else (lambda x: x)
    f_real, f_fake = embed(real), embed(samples)
    out = prdc(f_real, f_fake, k=k, per_sample=per_sample)
    out["frechet"] = frechet_distance(f_real, f_fake)
    if train is not None:
        out["memorized"] = memorized_fraction(samples, train, ratio=ratio)
    return out


def ceilings(train, heldout, *, k: int = 5, features: Optional[Callable] = None, n: Optional[int] = None,
             seed: int = 0, ratio: float = MEMORIZED_RATIO) -> dict:
    """What each metric reads for real images the model never saw: ``heldout`` (first ``n``, all by
    default) plays the fake set against ``real_reference(train, n, seed=seed)``, in ``features``
    space (callable (N, D) -> (N, F); None = data space), as in :func:`sample_metrics`.

    Print these beside the sample values: a generator of new images from the same distribution
    reads about these values (density near 1, memorised ≈ 0); one that copies its training images
    reads precision ≈ 1 (above the ceiling, since the copies are in the real set), memorised ≈ 1,
    and recall/coverage ≈ the share of the training set it reproduces.
    """
    heldout = torch.as_tensor(heldout)
    n = len(heldout) if n is None else min(check_int("n", n, 1), len(heldout))
    real = real_reference(train, n, seed=seed)
    return sample_metrics(heldout[:n], real, k=k, features=features, train=train, ratio=ratio)
