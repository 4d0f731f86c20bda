"""Kaleidoscopic sampling: freeze ``f``, start from noise, iterate ``z <- f(z)``.

With ``eps > 0`` each step is ``y_t = f(x_{t-1})``, ``x_t = clip(y_t + eps * xi_t)`` with zero-mean ``xi``
(uniform on [-1, 1] or standard normal). The states ``y_t`` (after f, never after the jitter) are what is
returned and recorded. Start distributions live here too: uniform or clipped normal noise over the range
(:func:`start_noise`), or a Gaussian with the training set's mean and covariance (:func:`data_start`).
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .device import check_memory, threads_for
from .data import quantize
from .errors import KalsError, check_float, check_int
from .model import activations, config_of, model_device, n_weights
from .precision import autocast, resolve_precision
from .presets import CHAINS, EPS, EVERY, JITTER, NOISE, PRECISION, SEED, STEPS
from .moves import (ANNEAL_LOW, ANNEAL_PERIOD, LANGEVIN_RATE, RESTART, RESTART_BURN, SETTLE, TURN,  # noqa: F401
                    WALKJUMP_FRICTION, WALKJUMP_SHOW, WALKJUMP_STEP, next_state, sampler_noise, turn_input,
                    walkjump_step)

NOISES = ("uniform", "normal")   # start noise and between-step jitter: uniform on the range / [-1, 1], or normal
# walk: the paper's z <- f(z) (+ eps jitter); dae .. restart: issue #21; walkjump: issue #30; turn: issue #29
SAMPLERS = ("walk", "dae", "settle", "langevin", "annealed", "restart", "walkjump", "turn")


@dataclass
class SampleResult:
    """Output of :func:`kaleidoscope` (all on the CPU).

    start: (N, D) start states; final: (N, D) states after the last step; frames: (F, R, D) recorded
    states of the first R chains at ``steps`` (F step numbers, 0 = the start), float32 in
    ``value_range`` or uint8 0..255 (``frame_dtype``).
    """

    start: torch.Tensor
    final: torch.Tensor
    frames: torch.Tensor
    steps: list
    value_range: tuple
    sampler: str = "walk"            # how the chains moved (SAMPLERS) ...
    scale: Optional[float] = None    # ... and the sampler's noise scale, if it has one


def _generator(device: torch.device, seed: int) -> torch.Generator:
    try:
        g = torch.Generator(device=device)
    except RuntimeError:  # a backend without device generators
        g = torch.Generator()
    g.manual_seed(seed)
    return g


def _noise(shape, kind: str, gen: torch.Generator, device) -> torch.Tensor:
    """Zero-mean noise of ``kind`` ('uniform' on [-1,1] or 'normal' N(0,1)), drawn with ``gen``."""
    if kind == "uniform":
        z = torch.rand(shape, generator=gen, device=gen.device) * 2 - 1
    else:
        z = torch.randn(shape, generator=gen, device=gen.device)
    return z.to(device)


def start_noise(n: int, dim: int, kind: str = "uniform", value_range=(0.0, 1.0), seed: int = 0,
                device="cpu") -> torch.Tensor:
    """(n, dim) start points: ``uniform`` over the range, or ``normal`` N(mid, half-width) clipped.

    For [0, 1] the normal is the paper's N(0.5, 0.5); for [-1, 1] it is N(0, 1). Clipping puts about
    16% of the values of a clipped normal exactly on each bound; that is the paper's choice.
    """
    if kind not in NOISES:
        raise KalsError(f"unknown start noise {kind!r}; choose uniform or normal")
    lo, hi = value_range
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    device = torch.device(device)
    return (mid + half * _noise((n, dim), kind, _generator(device, seed), device)).clamp_(lo, hi)


def data_start(train: torch.Tensor, chains: int, *, scale: float = 1.0, seed: int = 0,
               value_range=(0.0, 1.0)) -> torch.Tensor:
    """(chains, D) start points from a Gaussian with the mean and covariance of ``train`` (N, D),
    deviations times ``scale``, clipped to ``value_range``: ``mean + scale * w @ (X - mean) /
    sqrt(N - 1)``, ``w`` ~ N(0, I_N) (exact covariance, rank <= N - 1, no eigendecomposition)."""
    chains = check_int("chains", chains, 0)
    scale = check_float("start scale", scale, 0.0)
    train = train.detach().float().cpu()
    if len(train) < 2:
        raise KalsError("the data-covariance start needs at least 2 training points; use the paper recipe")
    check_memory(4 * chains * (len(train) + 2 * train.shape[1]), "cpu",
                 f"the data-covariance start of {chains} chains", "lower the number of chains")
    g = torch.Generator().manual_seed(seed)
    mean = train.mean(dim=0)
    w = torch.randn(chains, len(train), generator=g)
    return (mean + scale * (w @ (train - mean)) / math.sqrt(len(train) - 1)).clamp_(*value_range)


def walk_bytes(cfg, chains: int, record: int, n_frames: int, frame_itemsize: int) -> int:
    """Rough memory of a walk: the chain states (start, z, f(z), jitter) and a forward pass's
    activations per chain, plus the recorded frames."""
    return 4 * chains * (4 * cfg.dim + activations(cfg)) + n_frames * record * cfg.dim * frame_itemsize


def recorded_steps(steps: int, every: int) -> list:
    """The step numbers a walk records: 0, every, 2*every, ..., and always the last step."""
    return list(range(0, steps + 1, every)) + ([steps] if steps % every else [])


@torch.inference_mode()
def kaleidoscope(model: nn.Module, *, chains: int = CHAINS, steps: int = STEPS, every: int = EVERY,
                 noise: str = NOISE, eps: float = EPS, jitter: str = JITTER, seed: int = SEED,
                 record: Optional[int] = None, start: Optional[torch.Tensor] = None,
                 frame_dtype: torch.dtype = torch.float32, precision: str = PRECISION, sampler: str = "walk",
                 scale: Optional[float] = None, fresh: Optional[torch.Tensor] = None,
                 burn: int = RESTART_BURN) -> SampleResult:
    """Run ``chains`` Markov chains of ``steps`` applications of the frozen ``model``.

    noise: start distribution (see :func:`start_noise`), ignored if ``start`` (N, D) is given.
    eps, jitter: between-step noise ``eps * xi``, xi zero-mean uniform[-1,1] or N(0,1).
    every: record every k-th state (step 0 = start and the final step are always recorded).
    record: how many chains to record (the first ones; default all) — frames take F*R*D values.
    frame_dtype: ``torch.uint8`` stores frames quantised to 0..255 over the value range (4x less memory,
    GIF-ready); float32 keeps them exact (for metrics). precision: ``fp32`` | ``bf16`` | ``auto``
    (:mod:`precision`): f runs under bf16 autocast; the chain state (start, jitter, clipping, frames) stays fp32.
    sampler: ``walk`` (the paper's ``z <- f(z)``, plus ``eps`` jitter); ``dae``, ``settle``, ``langevin``,
    ``annealed`` (:func:`next_state`, noise ``scale``: RMS per coordinate, tie it to the denoiser's training
    noise); ``restart``: the walk, chain c restarted at the steps t with (t + c) % RESTART == 0 from the next
    row of ``fresh`` (M, D) (default: fresh ``noise`` starts) after ``burn`` unrecorded steps (its burn-in; a
    run's own: :func:`pipeline.sample_run`); ``walkjump``: underdamped Langevin on a noisy state started at
    ``start + scale * N(0, I)`` (:func:`walkjump_step`), f of it shown and never fed back; ``turn``: f applied
    ``burn`` + 1 times to a start that turns smoothly through ``fresh`` (:func:`moves.turn_input`).
    Frames are always f's outputs, never noisy inputs."""
    cfg = config_of(model)
    lo, hi = cfg.value_range
    steps, every, burn = check_int("steps", steps, 0), check_int("every", every, 1), check_int("burn", burn, 0)
    eps = check_float("eps", eps, 0.0)
    if jitter not in NOISES:
        raise KalsError(f"unknown jitter {jitter!r}; choose uniform or normal")
    if frame_dtype not in (torch.float32, torch.uint8):
        raise KalsError("frame_dtype must be torch.float32 or torch.uint8")
    scale = _checked_sampler(sampler, scale)
    device = model_device(model)
    precision = resolve_precision(precision, device=device, n_weights=n_weights(model))
    n = check_int("chains", chains, 0) if start is None else len(start)
    r = n if record is None else min(check_int("record", record, 0), n)
    n_rec = steps // every + 1 + (1 if steps % every else 0)
    check_memory(walk_bytes(cfg, n, r, n_rec, frame_dtype.itemsize), device,
                 f"sampling {n} chains x {steps} steps ({r} recorded at {n_rec} steps)",
                 "lower the number of chains, the recorded chains, or record every k-th step")
    z = start_noise(n, cfg.dim, noise, (lo, hi), seed, device) if start is None else _checked_start(start, cfg, device)
    rec_steps = recorded_steps(steps, every)
    frames = torch.empty((len(rec_steps), r, cfg.dim), device=device, dtype=frame_dtype)
    keep = (lambda v: quantize(v, (lo, hi))) if frame_dtype == torch.uint8 else (lambda v: v)
    gen = _generator(device, seed + 1)  # jitter stream, separate from the start noise
    was_training = model.training
    model.eval()
    start_z, y, k = z.clone(), z, 1
    frames[0] = keep(z[:r])
    z, velocity, fresh = _first_input(sampler, model, z, fresh, gen=gen, scale=scale, burn=burn, steps=steps,
                                      noise=noise, seed=seed, precision=precision)
    with threads_for(model):
        for t in range(1, steps + 1):
            with autocast(precision, device):
                y = model(z).float()  # the state stays fp32 under bf16
                for _ in range(SETTLE - 1 if sampler == "settle" else 0):
                    y = model(y).float()
            if k < len(rec_steps) and rec_steps[k] == t:
                frames[k] = keep(_shown(model, y[:r], precision, device) if sampler == "walkjump" else y[:r])
                k += 1
            if t < steps:
                z, velocity = _next_z(sampler, model, z, y, velocity, t, gen=gen, eps=eps, jitter=jitter,
                                      scale=scale, fresh=fresh, noise=noise, seed=seed, precision=precision, burn=burn)
        y = _shown(model, y, precision, device) if sampler == "walkjump" else y
    model.train(was_training)
    return SampleResult(start=start_z.cpu(), final=y.cpu(), frames=frames.cpu(), steps=rec_steps,
                        value_range=(lo, hi), sampler=sampler, scale=scale)


def _first_input(sampler: str, model: nn.Module, z, fresh, *, gen, scale, burn: int, steps: int, noise: str,
                 seed: int, precision: str) -> tuple:
    """(first input, velocity, fresh): walk-jump starts one noise draw away, at rest; the turn sampler
    from f applied ``burn`` times to the start, turning through the start and then ``fresh``."""
    lo, hi = config_of(model).value_range
    if sampler == "walkjump":  # the chain lives in the noisy space
        return (z + scale * _noise(z.shape, "normal", gen, z.device)).clamp_(lo, hi), torch.zeros_like(z), fresh
    if sampler == "turn":
        more = start_noise(len(z) * (steps // TURN + 1), z.shape[1], noise, (lo, hi), seed + 1, z.device) \
            if fresh is None else fresh.to(z.device)
        return _burned(model, z, burn, precision, z.device), None, torch.cat([z, more])
    return z, None, fresh


def _next_z(sampler: str, model: nn.Module, z, y, velocity, t: int, *, gen, eps: float, jitter: str, scale,
            fresh, noise: str, seed: int, precision: str, burn: int) -> tuple:
    """(next input, velocity) of every chain after step ``t`` (< steps), from its input ``z`` and ``y = f(z)``."""
    lo, hi = config_of(model).value_range
    device = y.device
    if sampler == "walkjump":  # walk on the noisy z; f(z) is shown, never fed back
        return walkjump_step(z, velocity, y, _noise(y.shape, "normal", gen, device), scale, (lo, hi))
    if sampler == "restart":  # the walk (with its jitter), some chains restarted
        walked = (y + eps * _noise(y.shape, jitter, gen, device)).clamp_(lo, hi) if eps > 0 else y
        z, rows = _restarted(walked, t, fresh, noise, (lo, hi), seed)
        if len(rows):
            z[rows] = _burned(model, z[rows], burn, precision, device)
        return z, velocity
    if sampler == "turn":
        return _burned(model, turn_input(fresh, len(y), t).clamp_(lo, hi), burn, precision, device), velocity
    if sampler != "walk":
        return next_state(sampler, z, y, _noise(y.shape, "normal", gen, device), sampler_noise(sampler, scale, t),
                          (lo, hi)), velocity
    return ((y + eps * _noise(y.shape, jitter, gen, device)).clamp_(lo, hi) if eps > 0 else y), velocity  # the paper's


def _burned(model: nn.Module, z: torch.Tensor, burn: int, precision: str, device) -> torch.Tensor:
    """``z`` after ``burn`` applications of f (a hidden burn-in)."""
    with autocast(precision, device):
        for _ in range(burn):
            z = model(z).float()
    return z


def _shown(model: nn.Module, y: torch.Tensor, precision: str, device) -> torch.Tensor:
    """The walk-jump frame of f(z) = ``y``: WALKJUMP_SHOW - 1 further applications of f (display only).
    One application returns f's posterior mean, a blur; a few more sharpen it (an annealed denoise:
    each output is a less noisy input). Measured (issue #30, Fashion-MNIST 28x28, seed 0, scale 0.92):
    1 / 3 / 6 applications read classifier coverage 0.19 / 0.36 / 0.43, continuity 0.30 / 0.51 / 0.86."""
    with autocast(precision, device):
        for _ in range(WALKJUMP_SHOW - 1):
            y = model(y).float()
    return y


def _checked_sampler(sampler: str, scale: Optional[float]) -> Optional[float]:
    """The sampler's noise scale, checked (None for the walk and restarts, which need none)."""
    if sampler not in SAMPLERS:
        raise KalsError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sampler in ("walk", "restart", "turn"):
        return scale
    if scale is None:
        raise KalsError(f"the {sampler} sampler needs a noise scale (e.g. the denoiser's training noise)")
    return check_float("sampler scale", scale, 0.0)


def _restarted(y: torch.Tensor, t: int, fresh: Optional[torch.Tensor], noise: str, value_range, seed: int):
    """(inputs, restarted rows): y, except for the chains whose turn it is at step t, which take
    the next unused rows of ``fresh`` (or fresh ``noise`` starts seeded by t)."""
    rows = ((torch.arange(len(y), device=y.device) + t) % RESTART == 0).nonzero()[:, 0]
    if len(rows) == 0:
        return y, rows
    if fresh is None:
        new = start_noise(len(rows), y.shape[1], noise, value_range, seed + 7919 * t, y.device)
    else:
        first = (t * len(y)) // RESTART
        new = fresh[(first + torch.arange(len(rows))) % len(fresh)].to(y.device)
    z = y.clone()
    z[rows] = new
    return z, rows


def _checked_start(start: torch.Tensor, cfg, device) -> torch.Tensor:
    z = torch.as_tensor(start).to(device=device, dtype=torch.float32)
    if z.ndim != 2 or z.shape[1] != cfg.dim:
        raise KalsError(f"start has shape {tuple(z.shape)}; expected (chains, {cfg.dim})")
    if not torch.isfinite(z).all():
        raise KalsError("start contains NaN or inf values")
    return z.clamp(*cfg.value_range)
