"""Named recipes: how to train ``f`` and where its chains start. Definitions only; the one place
a recipe is put to work is :mod:`kals_utils.pipeline`.

``paper`` (the default) is the paper's procedure exactly: plain MSE ``f(x) ~= x`` on the clean
data, Adam, start noise as asked (uniform by default), constant zero-mean jitter ``eps``.

``improved`` changes two things, both needed (the ablation and the measurements are on the docs'
Results page, docs/results/recipes.md):

- **Denoising training**: ``f(clip(x + sigma * n)) ~= x`` with the clean ``x`` as target,
  ``n`` ~ N(0, I), ``sigma`` log-uniform in [0.6, 1.2] per training row (data scale), no clean-data
  term (it made more copies). The noise range was [0.2, 0.8] until the field's metrics showed that
  it memorises; the frontier study (``experiments.recipe_frontier``) moved it to [0.6, 1.2].
- **Start noise with the data's covariance** (:func:`sample.data_start`, deviations x1.3): uniform
  noise lies nearest a few blob-like images, so the paper's chains pile onto one or two classes;
  these starts look like coarse, varied images of every class.

``sequence`` stores an ordered set as a loop instead of as fixed points: plain MSE with the
target ``f(x_i) ~= x_((i+1) mod n)`` (Radhakrishnan, Belkin, Uhler, PNAS 2020,
https://doi.org/10.1073/pnas.2005013117), so iterating f from any start that falls onto the loop
replays the sequence. The order is the data's: the points as given, a folder's sorted file names.

Tried and dropped (see the Results page): annealed jitter, a Jacobian contraction penalty, per-pixel
mean/std starts, chain restarts.
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from .errors import KalsError


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

    def __post_init__(self):
        if self.sigma and not (len(self.sigma) == 2 and 0 < self.sigma[0] <= self.sigma[1]):
            raise KalsError(f"recipe {self.name}: sigma must be (sigma_min, sigma_max) with 0 < min <= max")
        if self.start_kind not in (None, "data"):
            raise KalsError(f"recipe {self.name}: start_kind must be None or 'data', not {self.start_kind!r}")
        if self.target not in TARGETS:
            raise KalsError(f"recipe {self.name}: target must be one of {', '.join(TARGETS)}, not {self.target!r}")


PAPER = Recipe("paper", "the paper: MSE on clean data, Adam, start noise as given, constant eps")
IMPROVED = Recipe("improved", "denoising training (sigma 0.6..1.2) + start noise with the data's covariance (x1.3)",
                  sigma=(0.6, 1.2), start_kind="data", start_scale=1.3)
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


def recipe_loss(recipe) -> Optional[Callable]:
    """The objective ``loss_fn(model, xb, generator)`` for :func:`train.fit`, or None for plain MSE:
    mean of (f(x~) - x)^2 with the clean x as target, noise drawn from fit's per-epoch generator."""
    recipe = get_recipe(recipe)
    if not recipe.sigma:
        return None

    def loss_fn(model: nn.Module, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        noisy = noisy_inputs(xb, recipe.sigma, gen, model.config.value_range)
        return ((model(noisy).float() - xb) ** 2).mean()
    return loss_fn


def recipe_target(recipe, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The rows f(x) is trained to reach under ``recipe``: None for the identity (``train.fit``'s
    default), or x shifted one row up, ``x[(i + 1) % n]``, for a stored sequence."""
    return None if get_recipe(recipe).target == "self" else torch.roll(x, -1, dims=0)
