"""Named recipes: how to train ``f``, when to stop, where its chains start and how they move. The
definitions, and the small pieces that turn one into a training objective and a stopping rule; the
one place a recipe is put to work is :mod:`kals_utils.pipeline`.

``paper`` (the default) is the paper's procedure exactly: plain MSE ``f(x) ~= x`` on the clean
data, Adam, start noise as asked (uniform by default), constant zero-mean jitter ``eps``.

``improved`` changes two things, both needed (the ablation and the measurements are on the docs'
Results page, docs/results/recipes.md):

- **Denoising training**: ``f(clip(x + sigma * n)) ~= x`` with the clean ``x`` as target,
  ``n`` ~ N(0, I), ``sigma`` log-uniform in [0.6, 1.2] per training row (data scale), no clean-data
  term (it made more copies). The noise range was [0.2, 0.8] until the field's metrics showed that
  it memorises; the frontier study (``studies.recipe_frontier``) moved it to [0.6, 1.2].
- **Start noise with the data's covariance** (:func:`sample.data_start`, deviations x1.3): uniform
  noise lies nearest a few blob-like images, so the paper's chains pile onto one or two classes;
  these starts look like coarse, varied images of every class.

``sequence`` stores an ordered set as a loop instead of as fixed points: plain MSE with the
target ``f(x_i) ~= x_((i+1) mod n)`` (Radhakrishnan, Belkin, Uhler, PNAS 2020,
https://doi.org/10.1073/pnas.2005013117), so iterating f from any start that falls onto the loop
replays the sequence. The order is the data's: the points as given, a folder's sorted file names.

Tried and dropped (see the Results page): annealed jitter, a Jacobian contraction penalty, per-pixel
mean/std starts, chain restarts. Tried and left as an option (``ema``, off in ``improved``; Results →
selection): a moving average of the weights (:class:`ema.Ema`) — more varied samples on digits and faces,
blurrier ones on colour photos and a higher Fréchet distance on Fashion-MNIST.
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from .errors import KalsError
from .mirror import auto_note, mirrored, use_mirror
from .selection import SampleCheck

HOLDOUT_MIN = 10      # held-out images the copying baseline needs at least (below: baseline 0, all rows trained on)


TARGETS = ("self", "next")  # what f(x_i) is trained to reach: x_i itself, or the next row x_(i+1 mod n)


@dataclass(frozen=True)
class Recipe:
    """A training objective plus a start distribution. Defaults are the paper's procedure.

    sigma: (sigma_min, sigma_max) trains f as a denoiser, sigma log-uniform per row (RMS per
    coordinate, data scale); () is plain MSE on the clean data. start_kind: None (the caller's start
    noise) or ``"data"`` (Gaussian with the training set's mean and covariance, times start_scale).
    target: what f(x_i) should reach: ``"self"`` (x_i, the paper) or ``"next"`` (x_(i+1 mod n), a
    stored sequence).
    """

    name: str
    summary: str = ""
    sigma: tuple = ()
    start_kind: Optional[str] = None
    start_scale: float = 1.0
    target: str = "self"
    sigma_rel: tuple = ()      # (a, b): sigma = (a, b) x the data's spread (median RMS NN distance); wins over sigma
    holdout: float = 0.0       # fraction of the training set held out for the stopping rule (0: none)
    sampler: str = "walk"      # the sampler a walk of this recipe uses by default (sample.SAMPLERS)
    ema: float = 0.0           # gamma of the weights' moving average the run checks and keeps (ema.Ema; 0: none)

    def __post_init__(self):
        if self.sigma and not (len(self.sigma) == 2 and 0 < self.sigma[0] <= self.sigma[1]):
            raise KalsError(f"recipe {self.name}: sigma must be (sigma_min, sigma_max) with 0 < min <= max")
        if self.sigma_rel and not (len(self.sigma_rel) == 2 and 0 < self.sigma_rel[0] <= self.sigma_rel[1]):
            raise KalsError(f"recipe {self.name}: sigma_rel must be (a, b) with 0 < a <= b")
        if self.start_kind not in (None, "data"):
            raise KalsError(f"recipe {self.name}: start_kind must be None or 'data', not {self.start_kind!r}")
        if self.target not in TARGETS:
            raise KalsError(f"recipe {self.name}: target must be one of {', '.join(TARGETS)}, not {self.target!r}")


PAPER = Recipe("paper", "the paper: MSE on clean data, Adam, start noise as given, constant eps")
IMPROVED = Recipe("improved", "denoising training (sigma 2..4 x the data's spread, early stopping on a held-out "
                  "tenth) + start noise with the data's covariance (x1.3) + chains restarted every 10 steps "
                  "(turned, where its walks collapse)",
                  sigma_rel=(2.0, 4.0), holdout=0.1, start_kind="data", start_scale=1.3, sampler="restart")
SEQUENCE = Recipe("sequence", "f(x_i) = x_(i+1 mod n): the ordered training set replayed as a loop", target="next")
RECIPES = {r.name: r for r in (PAPER, IMPROVED, SEQUENCE)}


def get_recipe(recipe) -> Recipe:
    """A :class:`Recipe` from its name (``paper``, ``improved``, ``sequence``) or the recipe itself."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise KalsError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[recipe]


def start_label(recipe, noise: str) -> str:
    """What a walk of ``recipe`` starts from, for file names: the start noise, or ``data``."""
    return "data" if get_recipe(recipe).start_kind == "data" else noise


def noisy_inputs(x: torch.Tensor, sigma_range, gen: torch.Generator, value_range) -> torch.Tensor:
    """clip(x + sigma * n): ``sigma`` (N, 1) log-uniform in ``sigma_range``, ``n`` ~ N(0, I)."""
    a, b = math.log(sigma_range[0]), math.log(sigma_range[1])
    sigma = (a + (b - a) * torch.rand((len(x), 1), generator=gen)).exp().to(x.device)
    return (x + sigma * torch.randn(x.shape, generator=gen).to(x.device)).clamp(*value_range)


def denoises(recipe) -> bool:
    """Does ``recipe`` train f as a denoiser?"""
    recipe = get_recipe(recipe)
    return bool(recipe.sigma or recipe.sigma_rel)


def resolve_sigma(recipe, spread: Optional[float] = None) -> tuple:
    """The recipe's denoising noise range (sigma_min, sigma_max) on the data's scale: ``sigma_rel``
    times ``spread`` (the median RMS distance between a training point and its nearest other one,
    :func:`metrics.data_spread`) when the recipe takes it from the data, else ``sigma``; () for none."""
    recipe = get_recipe(recipe)
    if not recipe.sigma_rel:
        return tuple(recipe.sigma)
    if spread is None or not math.isfinite(spread) or spread <= 0:
        raise KalsError(f"recipe {recipe.name} takes its noise from the data's spread, which needs at least 2 "
                        "distinct training points; use the paper recipe")
    return (recipe.sigma_rel[0] * spread, recipe.sigma_rel[1] * spread)


def sampler_scale(sigma, sampler: str = "dae") -> Optional[float]:
    """The noise of a denoiser's Markov chain: the top of its training noise, sigma_max (a corruption
    the net learnt to undo; Bengio et al. 2013). Measured (issue #21, Fashion-MNIST 1,000 images
    28x28, 200 chains x 100 steps): the centre sqrt(sigma_min * sigma_max) visited 9.3 training
    images per chain at pixel precision 0.87, 1.3x the centre 17.6 at 0.93. The ``walkjump``
    sampler walks at the centre (issue #30, seed 0: at 1.1x the centre and above its frames cut
    more, continuity 1.2-1.6 spreads; at sigma_min its chains stay put, 6 images per chain). None
    without noise."""
    if not sigma:
        return None
    return math.sqrt(sigma[0] * sigma[1]) if sampler == "walkjump" else float(sigma[1])


def recipe_loss(recipe, sigma: Optional[tuple] = None) -> Optional[Callable]:
    """The objective ``loss_fn(model, xb, generator)`` for :func:`train.fit`, or None for plain MSE:
    mean of (f(x~) - x)^2 with the clean x as target, noise drawn from fit's per-epoch generator.
    ``sigma``: the noise range (:func:`resolve_sigma`); default the recipe's fixed ``sigma``."""
    recipe = get_recipe(recipe)
    sigma = tuple(sigma or recipe.sigma)
    if not sigma:
        return None

    def loss_fn(model: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        noisy = noisy_inputs(xb, sigma, gen, model.config.value_range)
        return ((model(noisy).float() - xb) ** 2).mean()
    return loss_fn


def recipe_target(recipe, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The rows f(x) is trained to reach under ``recipe``: None for the identity (``train.fit``'s
    default), or x shifted one row up, ``x[(i + 1) % n]``, for a stored sequence."""
    return None if get_recipe(recipe).target == "self" else torch.roll(x, -1, dims=0)


def split_holdout(n: int, fraction: float, seed: int = 0) -> tuple:
    """(train rows, held-out rows) of a seeded split of n rows; no held-out rows when the
    fraction leaves fewer than HOLDOUT_MIN of them (or fewer than 2 to train on)."""
    k = int(round(n * fraction))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if k < HOLDOUT_MIN or n - k < 2:
        return perm.sort().values, perm[:0]
    return perm[k:].sort().values, perm[:k].sort().values


def selects(recipe) -> bool:
    """Does ``recipe`` keep its weights by the selection rule (a denoiser with a held-out share)?"""
    recipe = get_recipe(recipe)
    return denoises(recipe) and recipe.holdout > 0


def selection_rule(recipe, model: nn.Module, x: torch.Tensor, *, batch: int, seed: int,
                   image_shape: Optional[tuple] = None, mirror: str = "off",
                   note: Optional[Callable[[str], None]] = None) -> tuple:
    """(rows to train on, :class:`selection.SampleCheck` or None): a denoising recipe with ``holdout``
    > 0 keeps a seeded share of ``x`` apart (its copying baseline; none below HOLDOUT_MIN rows) and
    chooses its weights by the check walk; every other recipe trains on all of ``x`` to the end.
    ``mirror`` (auto, on, off; such a recipe only, :func:`mirror.use_mirror`): the rows trained on, and checked
    for copies, are the kept images and their mirrors (the held-out images' mirrors are not trained on); the
    rule's ``mirror`` says (mirrored?, mirror ratio) and ``held`` how many rows it held out; ``note`` hears when
    ``auto`` mirrors (:func:`mirror.auto_note`)."""
    recipe = get_recipe(recipe)
    if not selects(recipe):
        return x, None
    keep, held = split_holdout(len(x), recipe.holdout, seed)
    x_fit = x[keep] if len(held) else x
    flip = use_mirror(mirror, x, image_shape)
    x_fit = torch.cat([x_fit, mirrored(x_fit, image_shape)]) if flip[0] else x_fit
    if flip[0] and mirror == "auto" and note is not None:
        note(auto_note(flip[1]))
    steps = -(-len(x_fit) // min(batch, len(x_fit)))
    rule = SampleCheck(model, x_fit, x[held] if len(held) else None, steps_per_epoch=steps,
                       start_scale=recipe.start_scale, seed=seed, sampler=recipe.sampler, image_shape=image_shape)
    rule.mirror, rule.held = flip, len(held)
    return x_fit, rule
