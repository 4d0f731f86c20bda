"""Jacobians and fixed points of f: exact or power-iteration spectral radius and norm of J_f, which
training points are stable attractors (Radhakrishnan et al. 2020), and the spurious fixed points a
walk stops at far from every training point. RMS distances as in :mod:`.metrics`."""

import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..errors import KalsError, check_int
from ..model import model_device, residual, rms
from ..neighbours import CHUNK, _float2d, nearest_neighbours, rms_distance
from .metrics import BURN_TOL, TOL

EXACT_MAX_DIM = 64         # exact Jacobian eigenvalues up to this D; power iteration above
ATTRACTOR_POINTS = 1000    # the Jacobian test looks at most at this many (seeded) training points


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
