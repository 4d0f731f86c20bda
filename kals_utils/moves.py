"""How a chain moves beyond the paper's walk: the step rules of the samplers :func:`sample.kaleidoscope`
runs (issues #21, #30). Pure tensor functions of a chain's input ``z``, its output ``y = f(z)`` and
N(0, I) noise; the walk itself, the starts and the recording live in :mod:`sample`."""

import math

import torch

SETTLE = 5                       # applications of f after each kick of the settle sampler
RESTART = 10                     # steps between two restarts of a chain of the restart sampler (staggered over chains)
RESTART_BURN = 5                 # unrecorded applications of f to a restarted chain (its burn-in, not shown)
TURN = RESTART                   # steps of the turn sampler's quarter turn from one start to the next
ANNEAL_PERIOD = 10               # steps per cycle of the annealed sampler's noise (scale down to scale * ANNEAL_LOW)
ANNEAL_LOW = 0.5                 # the annealed sampler's lowest noise, as a fraction of ``scale``
LANGEVIN_RATE = 0.5              # Langevin step delta as a fraction of scale^2 (1 would be the DAE chain's size)
WALKJUMP_STEP = 0.5              # walk-jump: step delta in units of scale (Frey et al. 2023: 0.5 at sigma 1)
WALKJUMP_FRICTION = 1.0          # walk-jump: friction gamma per step (the velocity keeps exp(-gamma) of itself)
WALKJUMP_SHOW = 6                # walk-jump: applications of f from the noisy state to the frame shown (the jump)


def sampler_noise(sampler: str, scale: float, t: int) -> float:
    """The noise level of step ``t`` (1-based) of ``sampler`` with base ``scale``: constant for
    ``dae`` and ``langevin``; for ``annealed`` cycles of ANNEAL_PERIOD steps falling geometrically
    from ``scale`` to ``scale * ANNEAL_LOW`` (a kick that crosses basins, then steps that settle)."""
    if sampler != "annealed":
        return scale
    phase = ((t - 1) % ANNEAL_PERIOD) / max(1, ANNEAL_PERIOD - 1)
    return scale * ANNEAL_LOW ** phase


def next_state(sampler: str, z: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, scale: float,
               value_range) -> torch.Tensor:
    """The chain's next input from its input ``z``, its output ``y = f(z)`` and N(0, I) ``noise``.

    dae / settle / annealed: ``clip(y + scale * noise)`` — the denoising-autoencoder Markov chain
    (corrupt with the training noise, reconstruct with f; Bengio et al. 2013, arXiv 1305.6663);
    ``settle`` reconstructs with SETTLE applications of f (a short paper walk from the kick).
    langevin: a Langevin step on the score the denoiser implies, (f(z) - z) / scale^2 (Alain &
    Bengio 2014, arXiv 1211.4246): ``z + delta * score + sqrt(2 delta) * noise`` with
    delta = LANGEVIN_RATE * scale^2, clipped to the range."""
    lo, hi = value_range
    if sampler == "langevin":
        return (z + LANGEVIN_RATE * (y - z) + (2 * LANGEVIN_RATE) ** 0.5 * scale * noise).clamp_(lo, hi)
    return (y + scale * noise).clamp_(lo, hi)


def walkjump_step(z: torch.Tensor, v: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, scale: float,
                  value_range) -> tuple:
    """(next noisy state, next velocity): one step of underdamped Langevin dynamics on the noisy state
    ``z`` with the score the denoiser implies, (f(z) - z) / scale^2 (``y = f(z)``), in units of
    ``scale``: the integrator of Sachs et al. 2017 as in walk-jump sampling (Saremi & Hyvaerinen
    2019; Frey et al. 2023, github.com/Genentech/walk-jump), unit mass, step WALKJUMP_STEP, friction
    WALKJUMP_FRICTION; its two half drifts of ``z`` merged into one. ``noise`` is N(0, I)."""
    psi = (y - z) / scale                      # the score times scale: the force in units of scale
    keep = math.exp(-WALKJUMP_FRICTION)
    v = keep * (v + WALKJUMP_STEP / 2 * psi) + WALKJUMP_STEP / 2 * psi + math.sqrt(1 - keep ** 2) * noise
    return (z + WALKJUMP_STEP * scale * v).clamp_(*value_range), v


def turn_input(starts: torch.Tensor, n: int, t: int) -> torch.Tensor:
    """The turn sampler's input at step ``t`` for ``n`` chains: chain c's start turns about the centre
    (the mean of ``starts``) on quarter great-circle arcs, one every TURN steps, from its k-th start
    ``starts[k n + c]`` to its (k+1)-th (rows wrap around): ``centre + cos(a) (A - centre) + sin(a)
    (B - centre)``. Between two Gaussian starts with the same mean and covariance every point of such
    an arc is one too, so each frame is a fresh sample and the picture turns without a cut."""
    (k, phase), rows = divmod(t, TURN), torch.arange(n, device=starts.device)
    centre = starts.mean(dim=0)
    a, b = (starts[(j * n + rows) % len(starts)] - centre for j in (k, k + 1))
    angle = math.pi / 2 * phase / TURN
    return centre + math.cos(angle) * a + math.sin(angle) * b
