"""Measure a kaleidoscope: burn-in, nearest training neighbours, coverage, class bias, novelty,
Jacobian attractor stability, spurious fixed points, mixing (the corner loss is in
``experiments``).

Distances are RMS per coordinate (per pixel), ``||a - b|| / sqrt(D)``, on the data's own scale
(its ``value_range``), so one tolerance means the same for 1 or 784 dimensions; every result says
which tolerance it used. Functions take (N, D) tensors on any device, work in chunks, and return
CPU tensors / plain numbers. Imports torch only.
"""

import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from ..errors import KalsError, check_float, check_int
from ..model import model_device, residual, rms
from ..neighbours import CHUNK, _float2d, data_spread, nearest_neighbours, rms_distance  # noqa: F401 (re-exported)
from .collapse import collapse_measures
from .prdc import ceilings, knn_radii, memorized_fraction, prdc, real_reference, sample_metrics
from ..train import CONVERGED_TOL

TOL = CONVERGED_TOL        # RMS distance under which a sample counts as a copy of / converged to a point
BURN_TOL = 0.01            # mean RMS step size under which a walk counts as burnt in
EXACT_MAX_DIM = 64         # exact Jacobian eigenvalues up to this D; power iteration above
CURVE_STEPS = (5, 10)      # steps whose converged fraction the summary reports
ATTRACTOR_POINTS = 1000    # the Jacobian test looks at most at this many (seeded) training points
K = 5                      # neighbours of the precision/recall/density/coverage balls (Naeem et al. 2020)


def coverage(idx: torch.Tensor, n_train: int, mask: Optional[torch.Tensor] = None) -> float:
    """Distinct training points reached / min(#samples, n_train). ``mask`` (N,) bool: count only
    those samples (e.g. the converged ones; the denominator stays min(#samples, n_train))."""
    n = len(idx)
    if n == 0 or n_train == 0:
        return float("nan")
    hit = idx if mask is None else idx[mask]
    return len(torch.unique(hit)) / min(n, n_train)


@dataclass
class ClassBias:
    """Class histogram of the samples' nearest training points vs the training set's.

    sample, train: (C,) fractions; tv: total-variation distance 0.5 * sum |sample - train| in
    [0, 1]; top: the most over-represented class and its ratio sample / train.
    """

    sample: list
    train: list
    tv: float
    top: int
    top_ratio: float

    def rows(self, names=None) -> list:
        """One dict per class (for ``evaluate.format_rows``): class (``names[c]`` or c), samples, training set."""
        names = list(names) if names else list(range(len(self.train)))
        return [{"class": n, "samples": p, "training set": q} for n, p, q in zip(names, self.sample, self.train)]


def class_histogram(idx: torch.Tensor, labels, n_classes: Optional[int] = None) -> ClassBias:
    """Class bias of samples whose nearest training points are ``idx`` (N,), labels (M,) ints."""
    labels = torch.as_tensor(labels).long().cpu()
    k = int(n_classes or int(labels.max()) + 1)
    train = torch.bincount(labels, minlength=k).double()
    sample = torch.bincount(labels[idx.cpu().long()], minlength=k).double()
    train, sample = train / train.sum(), sample / max(1.0, float(sample.sum()))
    ratio = torch.where(train > 0, sample / train.clamp_min(1e-12), torch.zeros_like(train))
    top = int(ratio.argmax())
    return ClassBias(sample=sample.tolist(), train=train.tolist(), tv=0.5 * float((sample - train).abs().sum()),
                     top=top, top_ratio=float(ratio[top]))


@dataclass
class Novelty:
    """Are samples new points or copies? ``median_ratio`` = median sample NN distance / ``spread``
    (the median distance between a training point and its nearest other training point).

    ratio ~ 0: copies of training points; ~ 1: as far from the training set as the training points
    are from each other (new points on the data's scale, or blur); >> 1: off the data.
    copies: fraction of samples within ``tol`` of a training point.
    """

    spread: float
    median_ratio: float
    copies: float
    tol: float


def novelty(nn_dist: torch.Tensor, train, tol: float = TOL, spread: Optional[float] = None) -> Novelty:
    """Novelty of samples with nearest-neighbour RMS distances ``nn_dist`` (N,) to ``train`` (M, D)."""
    spread = data_spread(train) if spread is None else spread
    ratio = float(nn_dist.median()) / spread if spread and spread == spread and spread > 0 else float("nan")
    return Novelty(spread=spread, median_ratio=ratio, copies=float((nn_dist < tol).float().mean()), tol=tol)


# ---------------------------------------------------------------- burn-in
@dataclass
class BurnIn:
    """Mean RMS step size of the chains between recorded frames, and the burn-in estimate.

    steps: (F,) recorded step numbers; step_size: (F-1,) mean over chains of the RMS distance
    between successive recorded frames, divided by their step gap (frames every k-th step give the
    average move per step); burn_in: first recorded step from which the step size stays below
    ``tol`` (None: never within the walk).
    """

    steps: list
    step_size: list
    burn_in: Optional[int]
    tol: float


def burn_in(frames: torch.Tensor, steps=None, tol: float = BURN_TOL) -> BurnIn:
    """Burn-in of a walk from its frames (F, R, D) (``SampleResult.frames``, ``.steps``)."""
    frames = torch.as_tensor(frames).float()
    if frames.ndim != 3 or len(frames) < 2:
        raise KalsError(f"burn-in needs frames (F >= 2, R, D); got shape {tuple(frames.shape)}")
    steps = list(range(len(frames))) if steps is None else [int(s) for s in steps]
    if len(steps) != len(frames) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise KalsError(f"burn-in needs one increasing step number per frame; got {len(steps)} for {len(frames)} frames")
    gap = torch.tensor([b - a for a, b in zip(steps, steps[1:])], dtype=torch.float32)
    size = (frames[1:] - frames[:-1]).pow(2).mean(dim=2).sqrt().mean(dim=1).cpu() / gap
    above = (size >= tol).nonzero()
    first_ok = 0 if len(above) == 0 else int(above[-1]) + 1  # index into size; frame index is +1
    b = steps[first_ok] if first_ok < len(size) else None
    return BurnIn(steps=steps, step_size=size.tolist(), burn_in=b, tol=tol)


# ---------------------------------------------------------------- Jacobians and fixed points
def residual_rms(model: nn.Module, z) -> torch.Tensor:
    """RMS ||f(z) - z|| per row of ``z`` (N, D): 0 at a fixed point of f. Returns (N,) on the CPU."""
    return rms(residual(model, _float2d(z, "z"))).cpu()


def jacobians(model: nn.Module, x, chunk: int = 256) -> torch.Tensor:
    """Exact Jacobians of f at each row of ``x`` (N, D): (N, D, D), ``J[n, i, j] = d f_i / d x_j``.

    Uses ``torch.func.vmap(torch.func.jacrev(f))``; memory N*D*D, so meant for small D.
    """
    dev = model_device(model)
    x = _float2d(x, "x", dev)
    jac = torch.func.vmap(torch.func.jacrev(lambda z: model(z[None])[0]))
    return torch.cat([jac(x[i:i + chunk]).detach() for i in range(0, len(x), chunk)]).cpu()


def _unit(v: torch.Tensor) -> tuple:
    n = v.norm(dim=1, keepdim=True)
    return v / n.clamp_min(1e-30), n[:, 0]


def power_radius(model: nn.Module, x, iters: int = 100, seed: int = 0, chunk: int = CHUNK) -> torch.Tensor:
    """Estimate of the spectral radius of J_f at each row of ``x`` (N, D) by power iteration with
    Jacobian-vector products (``torch.func.jvp``; f acts row by row, so one batched jvp gives
    J_n v_n for every row at once).

    What it computes: the geometric mean of the growth factors ||J v_k|| / ||v_k|| over the second
    half of ``iters`` steps from a random start, i.e. ~ ||J^k v||^(1/k). For a generic start this
    tends to |lambda_max| whether the dominant eigenvalue is real or a complex pair, but it
    converges slowly when two eigenvalue magnitudes are close, and for a defective J (Jordan blocks)
    it over-estimates at finite k. Treat it as an estimate; :func:`spectral_norm` is a rigorous
    upper bound (rho <= ||J||_2).
    """
    dev = model_device(model)
    x = _float2d(x, "x", dev)
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    keep = max(1, iters // 2)
    for i in range(0, len(x), chunk):
        xc = x[i:i + chunk]
        v, _ = _unit(torch.randn(xc.shape, generator=g).to(dev))
        logs = []
        for _ in range(iters):
            jv = jvp(model, xc, v)
            v, growth = _unit(jv.detach())
            logs.append(growth.clamp_min(1e-30).log())
        out.append(torch.stack(logs[-keep:]).mean(dim=0).exp())
    return torch.cat(out).cpu()


def jvp(model: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """J_f(x) v per row (forward mode, ``torch.func.jvp``). torch registers its forward-mode
    decompositions with the deprecated ``torch.jit.script`` on first use; that FutureWarning is
    torch's own, not something a user can act on, so it is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        return torch.func.jvp(model, (x,), (v,))[1].detach()


def _vjp(model: nn.Module, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """u^T J_f(x) per row, by reverse-mode autograd."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xr), xr, grad_outputs=u)
    return g.detach()


def spectral_norm(model: nn.Module, x, iters: int = 50, seed: int = 0, chunk: int = CHUNK) -> torch.Tensor:
    """Largest singular value ||J_f||_2 at each row of ``x`` (N, D), by power iteration on J^T J
    (``torch.func.jvp`` then ``torch.func.vjp``). Always >= the spectral radius, so a point with
    norm < 1 is certainly a stable attractor (f is a local contraction there)."""
    dev = model_device(model)
    x = _float2d(x, "x", dev)
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for i in range(0, len(x), chunk):
        xc = x[i:i + chunk]
        v, _ = _unit(torch.randn(xc.shape, generator=g).to(dev))
        sigma = torch.zeros(len(xc), device=dev)
        for _ in range(iters):
            jv = jvp(model, xc, v)
            sigma = jv.detach().norm(dim=1)
            v, _ = _unit(_vjp(model, xc, jv.detach()))
        out.append(sigma)
    return torch.cat(out).cpu()


def spectral_radius(model: nn.Module, x, method: str = "auto", iters: int = 100, seed: int = 0) -> tuple:
    """Spectral radius of J_f at each row of ``x`` (N, D) -> ((N,) radii, method used).

    ``exact``: max |eigenvalue| of the exact Jacobian (``torch.linalg.eigvals``); ``power``:
    :func:`power_radius` (an estimate, see there); ``auto``: exact for D <= EXACT_MAX_DIM.
    """
    if method not in ("auto", "exact", "power"):
        raise KalsError(f"unknown Jacobian method {method!r}; choose auto, exact or power")
    dim = torch.as_tensor(x).reshape(len(x), -1).shape[1]
    if method == "exact" or (method == "auto" and dim <= EXACT_MAX_DIM):
        J = jacobians(model, x).double()
        return torch.linalg.eigvals(J).abs().max(dim=1).values.float(), "exact"
    return power_radius(model, x, iters=iters, seed=seed), "power"


@dataclass
class Attractors:
    """Which training points are stable attractors of f.

    radius (N,): spectral radius of J_f at each point (``method``: exact or power estimate);
    norm (N,): spectral norm (upper bound on radius), or None; residual (N,): RMS ||f(x) - x||;
    stable (N,) bool: fixed (residual < tol) and radius < 1. fraction = stable.mean().
    """

    radius: torch.Tensor
    residual: torch.Tensor
    stable: torch.Tensor
    fraction: float
    method: str
    tol: float
    norm: Optional[torch.Tensor] = None
    index: Optional[torch.Tensor] = None  # rows of the training set that were checked


def attractor_stability(model: nn.Module, train, *, tol: float = TOL, method: str = "auto",
                        max_points: Optional[int] = None, seed: int = 0, with_norm: bool = False,
                        iters: int = 100) -> Attractors:
    """Jacobian test (Radhakrishnan et al. 2020) at the training points ``train`` (N, D): a point is
    a stable attractor if it is a fixed point (RMS ||f(x)-x|| < tol) and rho(J_f(x)) < 1.
    ``max_points``: check a seeded random subset of at most that many points (large data sets)."""
    train = _float2d(train, "train")
    index = None
    if max_points is not None:
        max_points = check_int("max points (--max-train)", max_points, 1)
    if max_points is not None and len(train) > max_points:
        g = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(train), generator=g)[:max_points].sort().values
        train = train[index]
    radius, used = spectral_radius(model, train, method=method, iters=iters, seed=seed)
    res = residual_rms(model, train)
    stable = (res < tol) & (radius < 1)
    norm = spectral_norm(model, train, iters=max(20, iters // 2), seed=seed) if with_norm else None
    return Attractors(radius=radius, residual=res, stable=stable, fraction=float(stable.float().mean()),
                      method=used, tol=tol, norm=norm, index=index)


@dataclass
class SpuriousFixedPoints:
    """Chains that stopped (RMS ||f(z)-z|| < ``fixed_tol``) at least ``tol`` away from every
    training point.

    fraction: of all samples; centres (K, D): distinct spurious fixed points (samples grouped
    greedily within ``tol``); counts (K,): samples at each.
    """

    fraction: float
    centres: torch.Tensor
    counts: list
    tol: float
    fixed_tol: float = BURN_TOL


def spurious_fixed_points(model: nn.Module, samples, train, *, tol: float = TOL, fixed_tol: float = BURN_TOL,
                          nn_dist: Optional[torch.Tensor] = None,
                          novel: Optional[torch.Tensor] = None) -> SpuriousFixedPoints:
    """Find chains that stopped at a fixed point of f (they move less than ``fixed_tol`` per step)
    at least ``tol`` away from every training point. ``novel`` (N,) bool: samples inside the data
    manifold (a real k-NN ball); a stopped chain there is a new sample, not a spurious point."""
    samples = _float2d(samples, "samples")
    if nn_dist is None:
        nn_dist = nearest_neighbours(samples, train)[0]
    samples = samples.cpu()
    mask = (residual_rms(model, samples) < fixed_tol) & (nn_dist >= tol)
    if novel is not None:
        mask &= ~novel.cpu()
    pts = samples[mask]
    centres, counts = [], []
    while len(pts):
        near = rms_distance(pts, pts[:1].expand_as(pts)) < tol
        centres.append(pts[near].mean(dim=0))
        counts.append(int(near.sum()))
        pts = pts[~near]
    c = torch.stack(centres) if centres else torch.empty((0, samples.shape[1]))
    order = sorted(range(len(counts)), key=lambda k: -counts[k])
    return SpuriousFixedPoints(fraction=float(mask.float().mean()) if len(mask) else float("nan"),
                               centres=c[order] if len(order) else c, counts=[counts[k] for k in order], tol=tol,
                               fixed_tol=fixed_tol)


# ---------------------------------------------------------------- mixing
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


# ---------------------------------------------------------------- everything at once
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
    collapse: Optional[dict] = None   # distinct nearest images (standardised) and sharpness ratio (collapse.py)

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
    ev.collapse = collapse_measures(samples.cpu(), train.cpu(), image_shape)
    ev.sample, ev.ceiling = sample_quality(samples.cpu(), train.cpu(), k=k, features=features,
                                           feature_name=feature_name, heldout=heldout, seed=seed)
    if model is not None:
        _model_metrics(ev, model, samples, train, dist, method=method, max_points=max_points, seed=seed,
                       with_norm=with_norm, burn_tol=burn_tol)
    if frames is not None:
        ev.burn = burn_in(frames, steps, burn_tol)
        frames = torch.as_tensor(frames)
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


def nearest_pairs(samples, train, idx: torch.Tensor, k: int = 8) -> torch.Tensor:
    """(2k, D): the first k samples, each followed by its nearest training point, for a grid with
    two images per row (sample | nearest training image), e.g. ``render.grid_frames(.., nrow=2)``."""
    samples, train = _float2d(samples, "samples"), _float2d(train, "train")
    k = min(k, len(samples))
    return torch.stack([samples[:k], train[idx[:k].long().cpu()]], dim=1).reshape(2 * k, -1)
