"""How a walk's chains move between training points: attractor hops (:func:`transition_counts`),
distinct visits and class changes, the autocorrelation time of the nearest-neighbour index, the
frame-to-frame continuity, and precision and coverage frame by frame (issue #21). The study that
runs the samplers against one another is :mod:`kals_utils.studies.mixing`."""

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import KalsError, check_float
from ..neighbours import CHUNK, _float2d, nearest_neighbours
from .metrics import K, TOL
from .prdc import knn_radii, memorized_fraction, prdc, real_reference


@dataclass
class Mixing:
    """How chains move between attractors (training points) during a walk.

    counts (K, K): hops from attractor i to attractor j (i != j) between successive visits (frames
    more than ``tol`` from every training point are "in between" and skipped); hops (R,): hops per
    chain; visited (R,): distinct attractors each chain visited; occupancy (K,): fraction of the
    attributed frame-states at each attractor; unassigned: fraction of frame-states in between;
    hop_rate: hops per chain per step after ``burn``.
    """

    counts: torch.Tensor
    hops: torch.Tensor
    visited: torch.Tensor
    occupancy: torch.Tensor
    unassigned: float
    hop_rate: float
    tol: float


def transition_counts(frames, train, steps=None, tol: float = TOL, burn: int = 0) -> Mixing:
    """Attractor hops of a walk: frames (F, R, D) (every step recorded is best), train (K, D).

    ``burn``: ignore recorded steps < burn; make it cover the burn-in, else a chain that lingers
    near one point and then drifts to another (possible even with eps = 0) counts as a hop.
    ``steps``: the frames' step numbers (default 0..F-1).
    """
    frames = torch.as_tensor(frames).float()
    if frames.ndim != 3:
        raise KalsError(f"mixing needs frames (F, R, D); got shape {tuple(frames.shape)}")
    steps = list(range(len(frames))) if steps is None else [int(s) for s in steps]
    keep = [k for k, s in enumerate(steps) if s >= burn]
    frames = frames[keep]
    f, r, d = frames.shape
    k = len(train)
    dist, idx = nearest_neighbours(frames.reshape(f * r, d), train)
    state = torch.where(dist < tol, idx, torch.full_like(idx, -1)).reshape(f, r)
    counts = torch.zeros((k, k), dtype=torch.long)
    hops = torch.zeros(r, dtype=torch.long)
    visited = torch.zeros(r, dtype=torch.long)
    for c in range(r):
        seq = state[:, c]
        seq = seq[seq >= 0]
        visited[c] = len(torch.unique(seq))
        if len(seq) > 1:
            change = seq[1:] != seq[:-1]
            src, dst = seq[:-1][change], seq[1:][change]
            counts.index_put_((src, dst), torch.ones_like(src), accumulate=True)
            hops[c] = int(change.sum())
    assigned = state[state >= 0]
    occupancy = torch.bincount(assigned, minlength=k).double() / max(1, len(assigned))
    span = (steps[keep[-1]] - steps[keep[0]]) if len(keep) > 1 else 0
    return Mixing(counts=counts, hops=hops, visited=visited, occupancy=occupancy.float(),
                  unassigned=float((state < 0).float().mean()), hop_rate=float(hops.sum()) / max(1, r * span), tol=tol)


# ---------------------------------------------------------------- mixing of a walk, frame by frame (issue #21)
IAT_WINDOW = 5.0   # Sokal's automatic window: sum autocorrelations up to the first lag M >= IAT_WINDOW * tau(M)


def nn_indices(frames, train) -> torch.Tensor:
    """(F, R) index of the nearest training point of every recorded state of a walk (F, R, D)."""
    frames = torch.as_tensor(frames).float()
    if frames.ndim != 3:
        raise KalsError(f"a walk's frames must be (F, R, D); got shape {tuple(frames.shape)}")
    return nearest_neighbours(frames.reshape(-1, frames.shape[-1]), train)[1].reshape(frames.shape[:2])


def distinct_visits(idx: torch.Tensor) -> torch.Tensor:
    """(R,) distinct training points each chain's nearest neighbour took over the frames of ``idx`` (F, R)."""
    return torch.tensor([len(torch.unique(idx[:, c])) for c in range(idx.shape[1])], dtype=torch.long)


def class_changes(idx: torch.Tensor, labels) -> torch.Tensor:
    """(R,) bool: the chain's nearest training point changed class (its label) at least once over the
    frames of ``idx`` (F, R)."""
    lab = torch.as_tensor(labels).long().cpu()[idx.long().cpu()]
    return (lab != lab[:1]).any(dim=0)


def autocorrelation(idx: torch.Tensor, max_lag: Optional[int] = None) -> torch.Tensor:
    """rho(0..max_lag) of the one-hot nearest-neighbour state e_{idx_t} of chains ``idx`` (F, R).

    For the one-hot process, ``E[<e_s, e_{s+k}>]`` = P(same neighbour k steps apart) and the mean
    vector is the occupancy p (pooled over chains and frames), so the normalised autocovariance
    summed over coordinates is rho(k) = (P(idx_t = idx_{t+k}) - sum p^2) / (1 - sum p^2): 0 for
    independent draws from p, 1 for a chain that never moves. Chains that all sit on one point
    (sum p^2 = 1) read 1 at every lag."""
    idx = torch.as_tensor(idx).long().cpu()
    f = idx.shape[0]
    max_lag = f - 1 if max_lag is None else min(int(max_lag), f - 1)
    p = torch.bincount(idx.reshape(-1)).double() / idx.numel()
    base = float(p.pow(2).sum())
    same = torch.tensor([1.0] + [float((idx[k:] == idx[:-k]).double().mean()) for k in range(1, max_lag + 1)])
    if base >= 1 - 1e-12:
        return torch.ones(max_lag + 1, dtype=torch.float64)
    return ((same - base) / (1 - base)).double()


def autocorrelation_time(idx: torch.Tensor, *, window: float = IAT_WINDOW) -> tuple:
    """(tau, censored): integrated autocorrelation time tau = 1 + 2 sum_{k=1..M} rho(k) of the
    chains' nearest-neighbour index (:func:`autocorrelation`), M by Sokal's automatic window (the
    first M with M >= window * tau(M); Sokal 1997, Madras & Sokal 1988), lags up to F // 2.

    tau is in steps between frames: 1 for chains that draw a fresh neighbour every frame, (1+q)/(1-q)
    for chains that keep theirs with probability q per frame. ``censored`` is True when no lag up to
    F // 2 met the window: tau is then a lower bound (the walk is too short to see it mix)."""
    idx = torch.as_tensor(idx)
    if idx.ndim != 2 or idx.shape[0] < 4:
        raise KalsError(f"the autocorrelation time needs at least 4 frames of (F, R) indices; got {tuple(idx.shape)}")
    rho = autocorrelation(idx, idx.shape[0] // 2)
    tau = 1.0
    for m in range(1, len(rho)):
        tau += 2 * float(rho[m])
        if m >= window * tau:
            return tau, False
    return tau, True


CONTINUITY_Q = 0.95   # the quantile of frame-to-frame changes the continuity figure reports


def frame_changes(frames) -> torch.Tensor:
    """(F - 1, R) RMS change of every chain between consecutive recorded frames of a walk (F, R, D)."""
    frames = torch.as_tensor(frames).float()
    if frames.ndim != 3 or len(frames) < 2:
        raise KalsError(f"frame changes need a walk's frames (F >= 2, R, D); got shape {tuple(frames.shape)}")
    return (frames[1:] - frames[:-1]).pow(2).mean(dim=-1).sqrt()


def continuity(frames, spread: float, *, q: float = CONTINUITY_Q) -> float:
    """The ``q`` quantile (default the 95th percentile), over chains and steps, of the RMS change
    between consecutive recorded frames (:func:`frame_changes`), in units of the data's ``spread``
    (median nearest-neighbour RMS distance, :func:`data_spread`). A chain that cuts from one image to
    another far one reads about 2 or more; one that morphs reads a fraction of 1."""
    spread = check_float("the data's spread (needs 2 distinct training points)", spread, 0.0, strict=True)
    return float(torch.quantile(frame_changes(frames).reshape(-1).double(), q)) / spread


def pooled_coverage(samples, train, *, k: int = K, features=None, chunk: int = CHUNK) -> dict:
    """PRDC precision and coverage (Naeem et al. 2020) of many ``samples`` (e.g. every chain over the
    last 50 steps) against the *whole* training set as the real set, k-NN balls of the training
    points among themselves. Cheaper than :func:`prdc.prdc` for many samples (no sample balls, so no
    recall or density). ``features``: embedding callable or None for the data themselves."""
    embed = features if features is not None else (lambda v: v)
    real, fake = (torch.as_tensor(embed(_float2d(v, what))).double() for v, what in ((train, "train"), (samples, "samples")))
    mean = real.mean(dim=0)
    real, fake = real - mean, fake - mean
    radii = knn_radii(real, k)
    sq = real.pow(2).sum(dim=1)
    nearest_fake = torch.full((len(real),), float("inf"), dtype=torch.float64)
    inside = []
    rows = max(1, chunk // max(1, len(real)))
    for i in range(0, len(fake), rows):
        f = fake[i:i + rows]
        d = (f.pow(2).sum(dim=1, keepdim=True) - 2 * f @ real.T + sq).clamp_(min=0).sqrt_()
        inside.append((d < radii).any(dim=1))
        nearest_fake = torch.minimum(nearest_fake, d.min(dim=0).values)
    return {"precision": float(torch.cat(inside).double().mean()), "coverage": float((nearest_fake < radii).double().mean()),
            "k": k, "n_real": len(real), "n_fake": len(fake)}


def framewise_quality(frames, train, *, k: int = K, features=None, seed: int = 0) -> dict:
    """Per recorded frame of a walk (F, R, D): PRDC precision and coverage of its R states against a
    seeded subset of R training points (:func:`sample_quality`'s convention, no Fréchet distance) in
    ``features`` space, and the memorised fraction (pixels). Returns lists ``precision``,
    ``coverage``, ``memorized``."""
    frames = torch.as_tensor(frames).float().cpu()
    train = _float2d(train, "train").cpu()
    embed = features if features is not None else (lambda v: v)
    real = embed(real_reference(train, frames.shape[1], seed=seed))
    if min(len(real), frames.shape[1]) <= k:
        raise KalsError(f"frame-wise quality needs more than k={k} chains and training points")
    out = {"precision": [], "coverage": [], "memorized": []}
    for fr in frames:
        q = prdc(real, embed(fr), k=k)
        out["precision"].append(q["precision"])
        out["coverage"].append(q["coverage"])
        out["memorized"].append(memorized_fraction(fr, train))
    return out
