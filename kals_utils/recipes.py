"""Named recipes: how to train ``f`` and how to sample from it.

``paper`` (the default) is the paper's procedure exactly: plain MSE ``f(x) ~= x`` on the clean
data, Adam, start noise as asked (uniform by default), constant zero-mean jitter ``eps``.

``improved`` changes two things, both needed (ablation on real Fashion-MNIST 16x16, 300 images,
L=10, H=256, 3000 epochs at lr 1e-3, 300 chains x 100 steps, eps 0.01, seed 0; class-histogram
TV / coverage / median NN distance / copies):

    paper training, uniform start          0.41 / 0.13 / 0.118 / 0.23   (= the paper recipe)
    paper training, data-covariance start  0.20 / 0.19 / 0.116 / 0.14
    denoising,      uniform start          0.34 / 0.26 / 0.069 / 0.15
    denoising,      data-covariance start  0.14 / 0.40 / 0.078 / 0.02   (= improved)

- **Denoising training**: ``f(clip(x + sigma * n)) ~= x`` with the clean ``x`` as target,
  ``n`` ~ N(0, I), ``sigma`` log-uniform in [0.2, 0.8] per training row (data scale), no clean-data
  term. Every training image gets a basin of its own: more of them are reached, and sharper. With
  an extra clean-MSE term the net memorises more: 0.17-0.22 of the samples were copies (within
  0.05 of a training image) instead of 0.01-0.02, at twice the training cost.
- **Start noise with the data's covariance**: chains start at ``mean + 1.3 * w @ (X - mean) /
  sqrt(N - 1)``, ``w`` ~ N(0, I_N): a Gaussian with the training set's mean and (1.3x widened)
  covariance, clipped to the range. Uniform noise lies nearest a few blob-like images, so the
  paper's chains pile onto one or two classes (sandals, bags); these starts look like coarse,
  varied images of every class. Per-pixel mean and std alone are worse than uniform (TV 0.76-0.77
  vs 0.48-0.66, on nets trained at lr 1e-4): every chain starts near the mean image.

Measured and dropped (seed 0, same data): annealed between-step noise (eps from 0.3-0.8 down to
0.01, uniform or normal jitter: TV changed by -0.01 to +0.12, mostly worse, once the start is
good); a contraction penalty (E||J v||^2 through a Jacobian-vector product, weight 0.01: alone
worse than denoising, on top of it within the seed-to-seed spread, at twice the training time);
restarts of chains that stall off the data (with ``improved`` no chain ended farther than the
data spread, 0.23, from every training image: nothing to restart). Annealing and the penalty
stay available as :class:`Recipe` fields for experiments.
"""

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .device import check_memory
from .errors import KalsError, check_float, check_int
from .models import config_of
from .sample import JITTERS, SampleResult, kaleidoscope


@dataclass(frozen=True)
class Recipe:
    """A training objective plus a way to sample. Defaults are the paper's procedure.

    Training: ``noise`` (sigma_min, sigma_max): add a denoising term, sigma log-uniform per row
    (RMS per coordinate, data scale); ``clean_weight``: weight of the plain MSE on clean data;
    ``contraction``: weight of E ||J_f(x~) v||^2 (unit random v, one Jacobian-vector product) at
    ``x~ = clip(x + contraction_sigma * n)``.
    Sampling: ``start`` None (the caller's ``noise``) or ``"data"`` (Gaussian with the training set's
    mean and covariance, times ``start_scale``); ``eps_start``: anneal the jitter geometrically from
    ``eps_start`` down to the caller's eps over the first ``anneal_frac`` of the steps, with
    ``jitter`` noise.
    """

    name: str
    summary: str = ""
    noise: tuple = ()
    clean_weight: float = 1.0
    contraction: float = 0.0
    contraction_sigma: float = 0.0
    start: Optional[str] = None
    start_scale: float = 1.0
    eps_start: Optional[float] = None
    anneal_frac: float = 0.8
    jitter: str = "uniform"

    def __post_init__(self):
        if self.noise and not (len(self.noise) == 2 and 0 < self.noise[0] <= self.noise[1]):
            raise KalsError(f"recipe {self.name}: noise must be (sigma_min, sigma_max) with 0 < min <= max")
        if self.start not in (None, "data"):
            raise KalsError(f"recipe {self.name}: start must be None or 'data', not {self.start!r}")
        if self.jitter not in JITTERS:
            raise KalsError(f"recipe {self.name}: jitter must be uniform or normal")

    @property
    def plain(self) -> bool:
        """True when training is the plain MSE on clean data (no custom objective)."""
        return not self.noise and not self.contraction and self.clean_weight == 1.0


PAPER = Recipe("paper", "the paper: MSE on clean data, Adam, start noise as given, constant eps")
IMPROVED = Recipe("improved", "denoising training (sigma 0.2..0.8) + start noise with the data's covariance (x1.3)",
                  noise=(0.2, 0.8), clean_weight=0.0, start="data", start_scale=1.3)
RECIPES = {r.name: r for r in (PAPER, IMPROVED)}


def get_recipe(recipe) -> Recipe:
    """A :class:`Recipe` from its name (``paper``, ``improved``) or the recipe itself."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise KalsError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[recipe]


# ---------------------------------------------------------------- training
def noisy_inputs(x: torch.Tensor, sigma_range, gen: torch.Generator, value_range) -> tuple:
    """(clip(x + sigma * n), sigma): ``sigma`` (N, 1) log-uniform in ``sigma_range``, ``n`` ~ N(0, I)."""
    lo, hi = value_range
    a, b = math.log(sigma_range[0]), math.log(sigma_range[1])
    sigma = (a + (b - a) * torch.rand((len(x), 1), generator=gen)).exp().to(x.device)
    n = torch.randn(x.shape, generator=gen).to(x.device)
    return (x + sigma * n).clamp(lo, hi), sigma


def recipe_loss(recipe) -> Optional[Callable]:
    """The objective ``loss_fn(model, xb, generator)`` for :func:`train.fit`, or None for plain MSE.

    Denoising term: mean of (f(x~) - x)^2 with the clean x as target; noise drawn from the
    generator fit seeds per epoch, so runs are reproducible.
    """
    recipe = get_recipe(recipe)
    if recipe.plain:
        return None

    def loss_fn(model: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        vr = config_of(model).value_range
        loss = recipe.clean_weight * ((model(xb) - xb) ** 2).mean() if recipe.clean_weight else 0.0
        if recipe.noise:
            noisy, _ = noisy_inputs(xb, recipe.noise, gen, vr)
            loss = loss + ((model(noisy) - xb) ** 2).mean()
        if recipe.contraction:
            z = xb
            if recipe.contraction_sigma:
                z, _ = noisy_inputs(xb, (recipe.contraction_sigma,) * 2, gen, vr)
            v = torch.randn(xb.shape, generator=gen).to(xb.device)
            v = v / v.norm(dim=1, keepdim=True)
            _, jv = torch.func.jvp(model, (z,), (v,))
            loss = loss + recipe.contraction * jv.pow(2).sum(dim=1).mean()
        return loss
    return loss_fn


# ---------------------------------------------------------------- sampling
def eps_schedule(recipe, steps: int, eps: float) -> Optional[list]:
    """Per-step jitter: geometric from ``eps_start`` down to ``eps`` over the first ``anneal_frac``
    of the steps, then ``eps``; None (constant ``eps``) when the recipe does not anneal."""
    recipe = get_recipe(recipe)
    if recipe.eps_start is None:
        return None
    n = max(1, int(round(recipe.anneal_frac * steps)))
    end = max(eps, 1e-4)
    return [recipe.eps_start * (end / recipe.eps_start) ** (t / n) if t < n else float(eps) for t in range(steps)]


def data_start(train: torch.Tensor, chains: int, scale: float = 1.0, seed: int = 0,
               value_range=(0.0, 1.0)) -> torch.Tensor:
    """(chains, D) start points from a Gaussian with the mean and covariance of ``train`` (N, D),
    deviations times ``scale``, clipped to ``value_range``: ``mean + scale * w @ (X - mean) /
    sqrt(N - 1)``, ``w`` ~ N(0, I_N) (exact covariance, rank <= N - 1, no eigendecomposition)."""
    chains = check_int("chains", chains, 0)
    scale = check_float("start scale", scale, 0.0)
    train = train.detach().float().cpu()
    if len(train) < 2:
        raise KalsError("the data-covariance start needs at least 2 training points; use the paper recipe")
    check_memory(4 * chains * (len(train) + 2 * train.shape[1]), "cpu", f"the data-covariance start of {chains} chains",
                 "lower the number of chains")
    g = torch.Generator().manual_seed(seed)
    mean = train.mean(dim=0)
    w = torch.randn(chains, len(train), generator=g)
    return (mean + scale * (w @ (train - mean)) / math.sqrt(len(train) - 1)).clamp_(*value_range)


def sample_with(recipe, model: nn.Module, train: torch.Tensor, chains: int = 100, steps: int = 100,
                every: int = 1, noise: str = "uniform", eps: float = 0.0, seed: int = 0,
                record: Optional[int] = None, **kw) -> SampleResult:
    """Kaleidoscopic sampling the way ``recipe`` says (see :func:`sample.kaleidoscope`).

    train (N, D): the training set (the ``data`` start needs its mean and covariance). For ``paper``
    this is exactly ``kaleidoscope(model, chains, steps, every, noise, eps, seed=seed, ...)``; a recipe
    with its own start ignores ``noise`` (an explicit ``start=`` tensor still wins).
    """
    recipe = get_recipe(recipe)
    if recipe.start == "data" and kw.get("start") is None:
        kw["start"] = data_start(train, chains, recipe.start_scale, seed, config_of(model).value_range)
    if recipe.eps_start is not None and kw.get("eps_schedule") is None:
        kw["eps_schedule"] = eps_schedule(recipe, steps, eps)
        kw.setdefault("jitter", recipe.jitter)
    return kaleidoscope(model, chains=chains, steps=steps, every=every, noise=noise, eps=eps, seed=seed,
                        record=record, **kw)


# ---------------------------------------------------------------- comparison
COMPARE_KEYS = ("class_tv", "coverage", "median_nn", "copies", "converged", "spurious", "attractor_fraction",
                "burn_in")
# The targets (measured with 300 chains x 100 steps): key -> (direction, bound).
TARGETS = {"class_tv": ("<=", 0.2), "coverage": (">=", 0.3), "median_nn": ("<=", 0.2), "copies": ("<=", 0.2)}


def meets(row: dict) -> str:
    """The targets a result row misses, e.g. ``"coverage"``, or ``"all"`` when it meets every one."""
    miss = [k for k, (op, bound) in TARGETS.items() if row.get(k) is not None
            and not (row[k] <= bound if op == "<=" else row[k] >= bound)]
    return "all" if not miss else "misses " + ", ".join(miss)


def compare(data, recipes: Sequence = ("paper", "improved"), seeds: Sequence[int] = (0, 1, 2), depth: int = 10,
            width: int = 256, epochs: int = 3000, lr: float = 1e-3, batch_size: Optional[int] = None,
            chains: int = 300, steps: int = 100, eps: float = 0.01, noise: str = "uniform", device="auto",
            max_points: Optional[int] = 100, keep_runs: bool = False, progress: bool = False, log=None) -> list:
    """Train and sample every recipe on ``data`` for every seed with the same budget (L, H, epochs,
    lr, batch) and measure the samples with :func:`evaluate.evaluate_run`.

    Returns one dict per (recipe, seed): data, image (e.g. "1x16x16"), n, recipe, seed, depth, width,
    epochs, lr, loss (best clean training MSE), the :data:`COMPARE_KEYS` metrics (``class_tv`` only
    for labelled data), targets (:func:`meets`), seconds; with ``keep_runs`` also ``run`` (the
    :class:`pipeline.Run`) and ``samples`` (its SampleResult) for GIFs and nearest-neighbour grids.
    Mean and spread over seeds: ``sweep.summarise(rows, by=("data", "image", "recipe"))``.
    ``log``: e.g. ``print``, called with one line per finished run.
    """
    from .evaluate import RECORD, evaluate_run
    from .pipeline import sample_run, train_run
    rows = []
    for name in recipes:
        recipe = get_recipe(name)
        for seed in seeds:
            t0 = time.perf_counter()
            run = train_run(data, depth, width, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            device=device, progress=progress, recipe=recipe)
            res = sample_run(run, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed,
                             record=min(chains, RECORD), recipe=recipe)
            s = evaluate_run(run, result=res, seed=seed, max_points=max_points).summary()
            row = {"data": data.name, "image": "x".join(map(str, data.image_shape or (data.dim,))), "n": len(data),
                   "recipe": recipe.name, "seed": seed, "depth": depth, "width": width, "epochs": epochs, "lr": lr,
                   "loss": run.result.best_loss}
            row.update({k: s.get(k) for k in COMPARE_KEYS})
            row["targets"] = meets(row)
            row["seconds"] = time.perf_counter() - t0
            if keep_runs:
                row["run"], row["samples"] = run, res
            rows.append(row)
            if log is not None:
                log(f"{data.name} {row['image']} {recipe.name} seed={seed}: " + ", ".join(
                    f"{k}={row[k]:.3g}" for k in ("class_tv", "coverage", "median_nn", "copies")
                    if row.get(k) is not None) + f" ({row['seconds']:.0f}s)")
    return rows


def comparison_gifs(rows: Sequence[dict], out_dir, chains: int = 48, steps: int = 100, every: int = 2,
                    eps: float = 0.01, seed: int = 0) -> dict:
    """One GIF per recipe from the first kept run of each in ``rows`` (``compare(..., keep_runs=True)``),
    written to ``out_dir``; returns {recipe name: path}."""
    from pathlib import Path
    from .pipeline import export_gif, gif_name, sample_run
    gifs = {}
    for row in rows:
        if row["recipe"] in gifs or "run" not in row:
            continue
        run = row["run"]
        walk = sample_run(run, chains=chains, steps=steps, every=every, eps=eps, seed=seed)
        name = gif_name(run.config, chains, steps, eps, "start", extra=f"_{row['recipe']}")
        gifs[row["recipe"]] = export_gif(run, walk, Path(out_dir) / name)
    return gifs


def nearest_image_pairs(rows: Sequence[dict], train: torch.Tensor, k: int = 16) -> dict:
    """{recipe: (2k, D) tensor}: k final samples of the first kept run of each recipe, each followed by
    its nearest training image (for ``plots.plot_images``)."""
    from .metrics import nearest_neighbours, nearest_pairs
    pairs = {}
    for row in rows:
        if row["recipe"] in pairs or "samples" not in row:
            continue
        final = row["samples"].final
        _, idx = nearest_neighbours(final, train)
        pairs[row["recipe"]] = nearest_pairs(final, train, idx, k=k)
    return pairs
