"""Basins of attraction: which start ends where under ``z <- f(z)``, stored sequences, capacity.

The paper's claim is about whole regions: a net trained to be the identity on a few points maps
every start near one of them onto it (over-generalisation). A *basin map* makes that literal: every
start on a fine grid over the 1D/2D range is iterated ``steps`` times (all of them at once, in
chunks) and labelled by the training point it ends at (within ``tol`` RMS, both at the last step
and one step later, so a chain that only passes a point on a cycle does not count), by a spurious
fixed point (it stopped, ``|f(z) - z| < fixed_tol``, away from every training point), or as
*unsettled* (still moving: a cycle or a slow drift). The area fractions of all basins sum to 1.

For images a map cannot be drawn, so :func:`basin_statistics` gives, per training image, the
share of random starts that end on it, beside its class and its distance to its neighbours.
:func:`capacity` is the share of training points that are stable attractors (the Jacobian test of
Radhakrishnan, Belkin, Uhler, PNAS 2020, https://doi.org/10.1073/pnas.2005013117, via
:func:`attractors.attractor_stability`), and :func:`sequence_replay` measures how well a net trained
with the ``sequence`` recipe (f(x_i) ~= x_(i+1 mod n)) plays its loop. Headless; imports only the
core and :mod:`metrics`.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..errors import KalsError, check_float, check_int
from .metrics import BURN_TOL, TOL, nearest_neighbours
from .attractors import attractor_stability
from ..model import config_of, model_device, rms
from ..sample import start_noise

GRID_1D = 1024         # starts of a 1D basin map
GRID_2D = 256          # starts per side of a 2D basin map (256 x 256 = 65,536 starts)
BASIN_STEPS = 200      # applications of f before a start is labelled
FROZEN = 1e-6          # a chain whose RMS step is below this has stopped: it is not iterated further
CHUNK = 16_384         # chains per forward pass
MAX_SPURIOUS = 64      # distinct spurious fixed points kept apart; farther ones join the nearest
UNSETTLED = -1         # label of a start whose chain is still moving after ``steps``
STAT_CHAINS = 1000     # random starts of the image basin statistics
NEIGHBOURS = 5         # neighbours whose mean distance describes a training image's surroundings
REPLAY_CHAINS = 256    # random starts of the sequence replay test
REPLAY_BURN = 100      # steps before a random start must be on the loop


# ---------------------------------------------------------------- iterating and labelling
def _float2d(x, what: str, device=None) -> torch.Tensor:
    """(N, D) float32 copy of ``x`` on ``device`` ((N,) is read as N points in 1D)."""
    x = torch.as_tensor(x)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2:
        raise KalsError(f"{what} must be a 2D array (N, D); got shape {tuple(x.shape)}")
    return x.detach().to(device=device, dtype=torch.float32).clone()


@torch.no_grad()
def iterate(model: nn.Module, z, *, steps: int = BASIN_STEPS, chunk: int = CHUNK) -> torch.Tensor:
    """``z`` (N, D) after ``steps`` applications of ``model``, every row at once (in chunks), on the
    CPU. A row whose last step moved it less than :data:`FROZEN` (RMS) is left where it is: it has
    stopped, and iterating it further would change nothing that a label can see."""
    steps = check_int("steps", steps, 0)
    dev = model_device(model)
    z = _float2d(z, "starts", dev)
    active = torch.arange(len(z), device=dev)
    for _ in range(steps):
        if not len(active):
            break
        cur = z[active]
        nxt = torch.cat([model(cur[i:i + chunk]) for i in range(0, len(cur), chunk)]).float()
        z[active] = nxt
        active = active[rms(nxt - cur) >= FROZEN]
    return z.cpu()


def _group(points: torch.Tensor, tol: float) -> tuple:
    """Greedy grouping of ``points`` (M, D) within ``tol`` RMS: (centres (S, D), assignment (M,)),
    largest group first; after :data:`MAX_SPURIOUS` groups the rest join their nearest centre."""
    assign = torch.full((len(points),), -1, dtype=torch.long)
    centres = []
    left = torch.arange(len(points))
    while len(left) and len(centres) < MAX_SPURIOUS:
        near = rms(points[left] - points[left[0]]) < tol
        assign[left[near]] = len(centres)
        centres.append(points[left[near]].mean(dim=0))
        left = left[~near]
    if not centres:
        return torch.empty((0, points.shape[1])), assign
    c = torch.stack(centres)
    if len(left):
        assign[left] = nearest_neighbours(points[left], c)[1]
    counts = torch.bincount(assign, minlength=len(c))
    order = torch.argsort(counts, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return c[order], rank[assign]


@torch.no_grad()
def label_ends(model: nn.Module, final, train, *, tol: float = TOL, fixed_tol: float = BURN_TOL) -> tuple:
    """Label chain end states ``final`` (N, D) against ``train`` (K, D): (labels (N,), spurious
    centres (S, D)). Label i < K: within ``tol`` of training point i now and after one more step;
    K + j: stopped (RMS step < ``fixed_tol``) at spurious fixed point j; :data:`UNSETTLED`: neither."""
    train = _float2d(train, "train")
    final = _float2d(final, "final states")
    nxt = iterate(model, final, steps=1)
    d_now, i_now = nearest_neighbours(final, train)
    d_next, i_next = nearest_neighbours(nxt, train)
    at_point = (d_now < tol) & (d_next < tol) & (i_now == i_next)
    stopped = ~at_point & (rms(nxt - final) < fixed_tol)
    labels = torch.where(at_point, i_now, torch.full_like(i_now, UNSETTLED))
    centres, assign = _group(final[stopped], tol)
    labels[stopped] = len(train) + assign
    return labels, centres


def _fractions(labels: torch.Tensor, n_labels: int) -> torch.Tensor:
    """(n_labels + 1,) shares of each label, unsettled last; they sum to 1."""
    shifted = torch.where(labels == UNSETTLED, torch.full_like(labels, n_labels), labels)
    counts = torch.bincount(shifted.reshape(-1), minlength=n_labels + 1).double()
    return counts / max(1.0, float(counts.sum()))


# ---------------------------------------------------------------- 1D / 2D basin maps
@dataclass
class BasinMap:
    """Where every start of a grid over a 1D/2D range ends.

    axes: per dimension the (G,) start coordinates (cell centres, so a share of starts is a share of
    the area); labels: (G,) in 1D, (G, G) in 2D with rows along z2 and columns along z1 (``imshow``
    with ``origin="lower"``): i < K training point i, K + j spurious fixed point j, -1 unsettled;
    fractions: (K + S + 1,) area shares in that order, unsettled last, summing to 1; radius: (K,)
    spectral radius of the Jacobian at each training point; stable: (K,) fixed point with radius < 1.
    """

    axes: list
    labels: torch.Tensor
    train: torch.Tensor
    spurious: torch.Tensor
    fractions: torch.Tensor
    radius: torch.Tensor
    stable: torch.Tensor
    steps: int
    tol: float
    fixed_tol: float
    value_range: tuple

    @property
    def dim(self) -> int:
        return len(self.axes)

    def attractors(self) -> list:
        """One dict per basin: kind (train | spurious | unsettled), index, location, fraction."""
        k, out = len(self.train), []
        for i in range(k):
            out.append({"kind": "train", "index": i, "location": self.train[i].tolist(),
                        "fraction": float(self.fractions[i]), "radius": float(self.radius[i]),
                        "stable": bool(self.stable[i])})
        for j, c in enumerate(self.spurious):
            out.append({"kind": "spurious", "index": j, "location": c.tolist(), "fraction": float(self.fractions[k + j])})
        out.append({"kind": "unsettled", "index": None, "location": None, "fraction": float(self.fractions[-1])})
        return out

    def intervals(self) -> list:
        """1D only: the map as (lo, hi, label) runs of equal label, left to right."""
        if self.dim != 1:
            raise KalsError("intervals are for 1D basin maps")
        xs, lab = self.axes[0], self.labels
        half = (xs[1] - xs[0]) / 2 if len(xs) > 1 else torch.tensor(0.0)
        cuts = [0] + [i for i in range(1, len(lab)) if lab[i] != lab[i - 1]] + [len(lab)]
        return [(float(xs[a] - half), float(xs[b - 1] + half), int(lab[a])) for a, b in zip(cuts[:-1], cuts[1:])]

    def to_json(self) -> dict:
        return {"dim": self.dim, "grid": len(self.axes[0]), "starts": int(self.labels.numel()), "steps": self.steps,
                "tol": self.tol, "fixed_tol": self.fixed_tol, "value_range": list(self.value_range),
                "attractors": self.attractors(), "fraction_sum": float(self.fractions.sum())}


def grid_starts(value_range, dim: int, n: int) -> tuple:
    """(axes, starts): ``n`` cell centres per dimension over ``value_range`` and the (n^dim, dim)
    grid of starts (2D: z1 varies fastest, so ``reshape(n, n)`` puts z2 along the rows)."""
    lo, hi = value_range
    ax = lo + (torch.arange(n, dtype=torch.float32) + 0.5) * (hi - lo) / n
    if dim == 1:
        return [ax], ax[:, None]
    z2, z1 = torch.meshgrid(ax, ax, indexing="ij")
    return [ax, ax], torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


def basin_map(model: nn.Module, train, *, grid: Optional[int] = None, steps: int = BASIN_STEPS, tol: float = TOL,
              fixed_tol: float = BURN_TOL) -> BasinMap:
    """The basin map of a 1D or 2D net over its whole output range: ``grid`` starts (1D, default
    :data:`GRID_1D`) or ``grid`` x ``grid`` (2D, default :data:`GRID_2D`), each iterated ``steps``
    times and labelled by :func:`label_ends`."""
    cfg = config_of(model)
    if cfg.dim not in (1, 2):
        raise KalsError(f"basin maps are drawn for 1D and 2D nets; this one has D={cfg.dim} — for images use "
                        "basins.basin_statistics")
    grid = check_int("grid", grid if grid is not None else (GRID_1D if cfg.dim == 1 else GRID_2D), 2)
    tol = check_float("tol", tol, 0.0, strict=True)
    fixed_tol = check_float("fixed tol", fixed_tol, 0.0, strict=True)
    train = _float2d(train, "train").cpu()
    axes, starts = grid_starts(cfg.value_range, cfg.dim, grid)
    labels, spurious = label_ends(model, iterate(model, starts, steps=steps), train, tol=tol, fixed_tol=fixed_tol)
    att = attractor_stability(model, train, tol=tol)
    shape = (grid,) * cfg.dim
    return BasinMap(axes=axes, labels=labels.reshape(shape), train=train, spurious=spurious,
                    fractions=_fractions(labels, len(train) + len(spurious)), radius=att.radius, stable=att.stable,
                    steps=steps, tol=tol,
                    fixed_tol=fixed_tol, value_range=tuple(cfg.value_range))


# ---------------------------------------------------------------- images: basin statistics
@dataclass
class BasinStats:
    """Basins of training images, from random starts.

    fraction (K,): share of the starts that end on each training image; spurious / unsettled: the
    shares that stopped elsewhere / never stopped; nn_dist (K,): RMS distance of each image to its
    nearest other training image; knn_dist (K,): mean distance to its ``k`` nearest; classes (K,)
    or None; by_class: {class: share of all starts ending on an image of that class}; rank_nn:
    Spearman correlation of basin size with nn_dist (positive: isolated images pull more).
    """

    fraction: torch.Tensor
    spurious: float
    unsettled: float
    nn_dist: torch.Tensor
    knn_dist: torch.Tensor
    classes: Optional[torch.Tensor]
    by_class: dict
    rank_nn: float
    chains: int
    steps: int
    tol: float
    noise: str
    k: int = NEIGHBOURS
    spurious_points: int = 0

    def to_json(self) -> dict:
        return {"chains": self.chains, "steps": self.steps, "tol": self.tol, "noise": self.noise, "k": self.k,
                "fraction": self.fraction.tolist(), "spurious": self.spurious, "unsettled": self.unsettled,
                "spurious_points": self.spurious_points, "nn_dist": self.nn_dist.tolist(),
                "knn_dist": self.knn_dist.tolist(), "by_class": {str(c): v for c, v in self.by_class.items()},
                "classes": None if self.classes is None else self.classes.tolist(), "rank_nn": self.rank_nn,
                "reached": int((self.fraction > 0).sum()), "n_train": len(self.fraction)}


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 0..N-1 of ``v`` (N,), ties given their mean rank."""
    order = torch.argsort(v, stable=True)
    r = torch.empty(len(v), dtype=torch.float64)
    r[order] = torch.arange(len(v), dtype=torch.float64)
    for val in torch.unique(v):
        tie = v == val
        if int(tie.sum()) > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    """Spearman rank correlation of two (N,) tensors (nan when either is constant)."""
    ra, rb = _ranks(torch.as_tensor(a).double()), _ranks(torch.as_tensor(b).double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


def neighbour_distances(train, k: int = NEIGHBOURS) -> tuple:
    """(nn (K,), knn (K,)): RMS distance of each row of ``train`` to its nearest other row, and the mean
    over its ``k`` nearest others."""
    train = _float2d(train, "train").cpu()
    if len(train) < 2:
        raise KalsError("neighbour distances need at least two training points")
    d = torch.cdist(train.double(), train.double()) / train.shape[1] ** 0.5
    d.fill_diagonal_(float("inf"))
    near = d.topk(min(k, len(train) - 1), largest=False).values
    return near[:, 0].float(), near.mean(dim=1).float()


def basin_statistics(model: nn.Module, train, *, labels=None, starts=None, chains: int = STAT_CHAINS,
                     noise: str = "uniform", steps: int = BASIN_STEPS, seed: int = 0, tol: float = TOL,
                     fixed_tol: float = BURN_TOL, k: int = NEIGHBOURS) -> BasinStats:
    """Basin sizes of the training images ``train`` (K, D): ``chains`` random starts (``noise``
    over the range, seeded; or ``starts``) are iterated ``steps`` times and labelled
    (:func:`label_ends`); each image's share of them is set beside its class (``labels``) and its
    distances to its neighbours."""
    cfg = config_of(model)
    train = _float2d(train, "train").cpu()
    given = starts is not None
    if not given:
        starts = start_noise(check_int("chains", chains, 1), cfg.dim, noise, cfg.value_range, seed)
    lab, centres = label_ends(model, iterate(model, starts, steps=steps), train, tol=tol, fixed_tol=fixed_tol)
    fr = _fractions(lab, len(train) + len(centres))
    per_image = fr[:len(train)].float()
    nn_d, knn_d = neighbour_distances(train, k)
    classes = None if labels is None else torch.as_tensor(labels).long().cpu()
    by_class = {} if classes is None else {int(c): float(per_image[classes == c].sum()) for c in torch.unique(classes)}
    return BasinStats(fraction=per_image, spurious=float(fr[len(train):-1].sum()), unsettled=float(fr[-1]),
                      nn_dist=nn_d, knn_dist=knn_d, classes=classes, by_class=by_class,
                      rank_nn=spearman(per_image, nn_d), chains=len(lab), steps=steps, tol=tol,
                      noise="given" if given else noise, k=k,
                      spurious_points=len(centres))


# ---------------------------------------------------------------- capacity
@dataclass
class Capacity:
    """How much of its training set a net holds: ``fixed`` = share of training points reproduced
    (RMS |f(x) - x| < tol), ``attractors`` = share that are also stable (Jacobian spectral radius
    < 1); radius_median over the points."""

    n: int
    fixed: float
    attractors: float
    radius_median: float
    tol: float
    method: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


def capacity(model: nn.Module, train, *, tol: float = TOL, method: str = "auto", seed: int = 0) -> Capacity:
    """The share of ``train`` (N, D) that ``model`` holds as fixed points and as stable attractors
    (:func:`attractors.attractor_stability`, exact eigenvalues for D <= 64)."""
    a = attractor_stability(model, train, tol=tol, method=method, seed=seed)
    return Capacity(n=len(a.radius), fixed=float((a.residual < tol).float().mean()), attractors=a.fraction,
                    radius_median=float(a.radius.median()), tol=tol, method=a.method)


# ---------------------------------------------------------------- stored sequences
@dataclass
class Replay:
    """How well ``f`` plays the loop x_0 -> x_1 -> ... -> x_(n-1) -> x_0.

    one_step: share of i with f(x_i) at x_(i+1) (within ``tol`` and nearer it than any other point);
    from_points: share of starts x_i whose next n states are x_(i+1), ..., x_(i+n) in turn;
    from_random: share of random starts that, after ``burn`` steps, sit on some x_j and then follow the
    loop for n steps without a miss; max_error: largest RMS |f(x_i) - x_(i+1)|; random_dist: median
    RMS distance of the random chains (after ``burn``) to their nearest point — near 0 when the loop's
    points attract, larger when the chains run round a nearby loop (e.g. a whole circle that f rotates).
    """

    n: int
    one_step: float
    from_points: float
    from_random: float
    max_error: float
    tol: float
    burn: int
    chains: int
    random_dist: float = float("nan")

    @property
    def replays(self) -> bool:
        """Every point plays the whole loop without error."""
        return self.from_points == 1.0

    def to_json(self) -> dict:
        return {**self.__dict__, "replays": self.replays}


@torch.no_grad()
def _follows(model: nn.Module, z: torch.Tensor, seq: torch.Tensor, tol: float) -> torch.Tensor:
    """(N,) bool: the chain from each row of ``z`` sits on some x_j and then visits x_(j+1), ...,
    x_(j+n) (mod n) in turn, every state within ``tol`` of the point it should be at and nearest to it."""
    n = len(seq)
    d, idx = nearest_neighbours(z, seq)
    ok, want = d < tol, idx
    for _ in range(n):
        z = iterate(model, z, steps=1)
        want = (want + 1) % n
        d, idx = nearest_neighbours(z, seq)
        ok &= (d < tol) & (idx == want)
    return ok


def sequence_replay(model: nn.Module, seq, *, tol: float = TOL, chains: int = REPLAY_CHAINS,
                    burn: int = REPLAY_BURN, noise: str = "uniform", seed: int = 0) -> Replay:
    """Measure the stored loop of ``seq`` (n, D), the ordered training set of a ``sequence`` net:
    from the points themselves and from ``chains`` random starts after ``burn`` steps."""
    cfg = config_of(model)
    seq = _float2d(seq, "sequence").cpu()
    if len(seq) < 2:
        raise KalsError("a sequence needs at least two points")
    err = rms(iterate(model, seq, steps=1) - torch.roll(seq, -1, dims=0))
    d, idx = nearest_neighbours(iterate(model, seq, steps=1), seq)
    one = (d < tol) & (idx == (torch.arange(len(seq)) + 1) % len(seq))
    starts = start_noise(check_int("chains", chains, 1), cfg.dim, noise, cfg.value_range, seed)
    burnt = iterate(model, starts, steps=burn)
    rand = _follows(model, burnt, seq, tol)
    return Replay(n=len(seq), one_step=float(one.float().mean()),
                  from_points=float(_follows(model, seq, seq, tol).float().mean()),
                  from_random=float(rand.float().mean()), max_error=float(err.max()), tol=tol, burn=burn,
                  chains=len(starts), random_dist=float(nearest_neighbours(burnt, seq)[0].median()))
