"""A kaleidoscope that morphs (issue #30): the continuity figure on hand-made chains (cuts versus
slides), and the walk-jump sampler on four separated 2D points with the exact denoiser of their
mixture: its chains visit every point, in proportion to the weights, and slide (each frame moves
less than the spacing)."""

import math

import pytest
import torch
from torch import nn

from kals_utils import KalsError, ModelConfig, kaleidoscope
from kals_utils.measures.mixing import continuity, distinct_visits, frame_changes, nn_indices
from kals_utils.sample import SAMPLERS, walkjump_step

CORNERS = torch.tensor([[0.2, 0.2], [0.2, 0.8], [0.8, 0.2], [0.8, 0.8]])
WEIGHTS = torch.tensor([0.4, 0.2, 0.2, 0.2])
SIGMA = 0.15


class MixtureDenoiser(nn.Module):
    """The exact posterior mean E[x | x + sigma n = y] of a weighted mixture of points under Gaussian
    noise: the best denoiser there is, as a kals net (a ``config``, one frozen parameter)."""

    def __init__(self, points: torch.Tensor, weights: torch.Tensor, sigma: float):
        super().__init__()
        self.points = nn.Parameter(points.float(), requires_grad=False)
        self.log_w, self.sigma = weights.float().log(), sigma
        self.config = ModelConfig(dim=points.shape[1], depth=1, width=points.shape[1], out_act="sigmoid")

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        logits = self.log_w - torch.cdist(y.float(), self.points).pow(2) / (2 * self.sigma ** 2)
        return logits.softmax(dim=1) @ self.points


def _chains(cut: bool, chains: int = 50, steps: int = 40) -> torch.Tensor:
    """(steps + 1, chains, 2) hand-made walks between the corners: ``cut`` jumps to a random corner
    every step, a slide moves along the square's edges in 12 equal steps from corner to corner."""
    g = torch.Generator().manual_seed(0)
    if cut:
        idx = torch.randint(4, (steps + 1, chains), generator=g)
        return CORNERS[idx]
    ring = torch.cat([CORNERS[[0, 1, 3, 2, 0]]])                 # around the square
    t = torch.arange(steps + 1)[:, None] / 12.0 + torch.rand(chains, generator=g) * 4
    seg, frac = t.floor().long() % 4, (t - t.floor())[..., None]
    return ring[seg] * (1 - frac) + ring[seg + 1] * frac


def test_continuity_reads_cuts_and_slides():
    spread = 0.6 / math.sqrt(2)                                   # RMS distance between neighbouring corners
    cuts, slides = continuity(_chains(True), spread), continuity(_chains(False), spread)
    assert cuts >= 1.4 and slides < 1                              # a cut to the far corner reads sqrt(2)
    assert slides == pytest.approx(1 / 12, rel=1e-4)               # every step is 1/12 of an edge
    far = CORNERS[[0, 3]][torch.arange(41) % 2][:, None].repeat(1, 5, 1)   # 0 <-> the far corner, every step
    assert continuity(far, spread) == pytest.approx(math.sqrt(2))
    assert frame_changes(far).shape == (40, 5)
    with pytest.raises(KalsError, match="spread"):
        continuity(far, 0.0)
    with pytest.raises(KalsError, match="frames"):
        continuity(far[:1], spread)


def test_analytic_denoiser_is_the_posterior_mean():
    f = MixtureDenoiser(CORNERS, WEIGHTS, SIGMA)
    assert torch.allclose(f(CORNERS), CORNERS, atol=1e-3)         # each point (nearly) its own denoised self
    mid = f(torch.tensor([[0.5, 0.2]]))                            # halfway between the two bottom points
    assert mid[0].tolist() == pytest.approx([(0.4 * 0.2 + 0.2 * 0.8) / 0.6, 0.2], abs=1e-3)  # weights 2:1


def test_walkjump_step_is_the_integrator():
    """With no noise and no force the state drifts by step * scale * velocity, the velocity decays."""
    from kals_utils import sample
    z, v = torch.zeros(1, 2) + 0.5, torch.ones(1, 2)
    z2, v2 = walkjump_step(z.clone(), v, z, torch.zeros(1, 2), 0.1, (0.0, 1.0))
    keep = math.exp(-sample.WALKJUMP_FRICTION)
    assert torch.allclose(v2, keep * v) and torch.allclose(z2, 0.5 + sample.WALKJUMP_STEP * 0.1 * keep * v)


def test_walkjump_visits_every_point_in_proportion_and_slides():
    assert "walkjump" in SAMPLERS
    f = MixtureDenoiser(CORNERS, WEIGHTS, SIGMA)
    walk = kaleidoscope(f, chains=200, steps=500, sampler="walkjump", scale=SIGMA, seed=0,
                        start=CORNERS[torch.arange(200) % 4])
    idx = nn_indices(walk.frames[21:], CORNERS)
    assert (distinct_visits(idx) == 4).float().mean() > 0.9       # (almost) every chain sees every point
    freq = torch.bincount(idx.reshape(-1), minlength=4).float() / idx.numel()
    assert torch.allclose(freq, WEIGHTS, atol=0.03), freq          # the exact score samples the mixture
    # frames are f's outputs (never the noisy state): they slide; a posterior mean swings fast only
    # where the state crosses between two points (measured, seed 0: p95 0.136, p99 < 0.42, max 0.50)
    step, spacing = frame_changes(walk.frames[1:]).reshape(-1), 0.6 / math.sqrt(2)
    assert torch.quantile(step, 0.99) < spacing and torch.quantile(step, 0.95) < spacing / 3
    still = kaleidoscope(f, chains=200, steps=100, seed=0, start=walk.start)   # the paper's walk never leaves
    assert (distinct_visits(nn_indices(still.frames[21:], CORNERS)) == 1).all()


def test_walkjump_walks_at_the_centre_of_the_training_noise():
    from kals_utils.recipes import sampler_scale
    assert sampler_scale((0.5, 2.0), "walkjump") == pytest.approx(1.0)   # sqrt(0.5 * 2)
    assert sampler_scale((0.5, 2.0)) == 2.0 and sampler_scale(()) is None  # the DAE chain: the top
