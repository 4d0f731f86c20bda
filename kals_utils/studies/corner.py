"""The paper's corner experiment: loss at the corners of the cube [0, 1]^d against the number of
training points n (arXiv 2402.11793: n uniform points, L=7, H=50, 10,000 Adam steps of batch
min(1000, n)). More data -> f closer to the identity -> weaker attraction."""

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from ..data import Data
from ..errors import KalsError, check_int
from ..measures.attractors import attractor_stability
from ..model import config_of, residual
from .ensemble import train_many


PAPER_NS = (1, 2, 4, 8, 32, 64, 128, 256, 512, 1024, 2048)
# The paper's corner losses (arXiv 2402.11793, figure "loss at the corners"), for comparison.
PAPER_CORNER_LOSS = {
    2: {1: 0.52, 2: 0.43, 4: 0.24, 8: 0.17, 32: 0.005},
    4: {1: 0.44, 2: 0.57, 4: 0.44, 8: 0.28, 32: 0.058, 64: 0.037, 128: 0.036, 256: 0.010, 512: 0.009,
        1024: 0.005, 2048: 0.005},
}


def cube_corners(dim: int, value_range=(0.0, 1.0)) -> torch.Tensor:
    """The 2^dim corners of the cube [lo, hi]^dim as a (2^dim, dim) tensor (dim <= 16)."""
    dim = check_int("dim", dim, 1)
    if dim > 16:
        raise KalsError(f"a {dim}-cube has 2^{dim} corners; use dim <= 16")
    lo, hi = value_range
    bits = (torch.arange(2 ** dim)[:, None] >> torch.arange(dim)) & 1
    return lo + (hi - lo) * bits.float()


def corner_loss(model, value_range=(0.0, 1.0)) -> float:
    """max over the cube's corners c of ||c - f(c)||² / d (the paper's metric; 0 = f fixes them)."""
    c = cube_corners(config_of(model).dim, value_range)
    return float(residual(model, c).pow(2).mean(dim=1).max())


@dataclass
class CornerPoint:
    """One run of the corner experiment: ``n`` uniform points in [0, 1]^``dim``."""

    dim: int
    n: int
    corner_loss: float
    train_loss: float
    steps: int
    seconds: float
    attractor_fraction: float = float("nan")  # training points that are stable attractors (metrics)


def corner_loss_vs_points(*, ns: Sequence[int] = PAPER_NS, dims: Sequence[int] = (2, 4), depth: int = 7,
                          width: int = 50, steps: int = 10_000, lr: float = 1e-3, max_batch: int = 1000,
                          seed: int = 0, device="auto", progress: bool = True) -> list:
    """Train one L x H sigmoid net per (dim, n) on n points uniform in [0, 1]^dim (all together:
    :func:`pipeline.train_many`) and measure its
    :func:`corner_loss`. ``steps`` Adam steps of batch min(max_batch, n) (rounded up to whole
    epochs). The points and the weights come from ``seed``. Returns a list of :class:`CornerPoint`.
    """
    steps = check_int("steps", steps, 1)
    cases = [(dim, check_int("n", n, 1)) for dim in dims for n in ns]
    datas, batches, epochs = [], [], []
    for dim, n in cases:
        g = torch.Generator().manual_seed(seed * 100_003 + dim * 10_007 + n)
        datas.append(Data(x=torch.rand(n, dim, generator=g), value_range=(0.0, 1.0), name=f"uniform{dim}d"))
        batches.append(None if min(max_batch, n) == n else max_batch)
        epochs.append(math.ceil(steps / math.ceil(n / min(max_batch, n))))
    t0 = time.perf_counter()  # all nets at once (ensemble.fit_many): the time is shared out evenly
    runs = train_many(datas, depths=depth, width=width, seeds=seed, epochs=epochs, lr=lr, batch_sizes=batches,
                      device=device, progress=progress)
    seconds = (time.perf_counter() - t0) / len(runs)
    return [CornerPoint(dim=dim, n=n, corner_loss=corner_loss(run.model), train_loss=run.result.best_loss,
                        steps=e * math.ceil(n / min(max_batch, n)), seconds=seconds,
                        attractor_fraction=attractor_stability(run.model, run.data.x).fraction)
            for (dim, n), run, e in zip(cases, runs, epochs)]


def corner_table(points: Sequence[CornerPoint]) -> str:
    """A plain-text table of corner-experiment results, with the paper's value where it gives one."""
    lines = [f"{'d':>2} {'n':>5} {'corner loss':>12} {'paper':>7} {'train loss':>11} {'steps':>6} {'attractors':>10}"]
    for p in points:
        ref = PAPER_CORNER_LOSS.get(p.dim, {}).get(p.n)
        lines.append(f"{p.dim:>2} {p.n:>5} {p.corner_loss:>12.4f} {'' if ref is None else f'{ref:.3f}':>7} "
                     f"{p.train_loss:>11.2e} {p.steps:>6} {p.attractor_fraction:>10.2f}")
    return "\n".join(lines)
