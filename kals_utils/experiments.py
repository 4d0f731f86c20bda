"""Experiment loops the notebooks run (so no notebook cell holds a loop of its own).

- :func:`corner_loss_vs_points`: the paper's "loss at the corners of the cube vs number of training
  points" (n uniform points in [0, 1]^d, L=7, H=50, 10,000 Adam steps of batch min(1000, n)).
- :func:`train_with_reconstructions`: :func:`pipeline.train_run` that also keeps f(x) of a few
  training images at log-spaced epochs, to show what the net has learnt so far.
"""

import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .data import Data
from .errors import KalsError, check_int
from .models import build_mlp
from .pipeline import make_config, train_run

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


@torch.no_grad()
def corner_loss(model, value_range=(0.0, 1.0)) -> float:
    """max over the cube's corners c of ||c - f(c)||² / d (the paper's metric; 0 = f fixes them)."""
    from .models import config_of, model_device
    c = cube_corners(config_of(model).dim, value_range).to(model_device(model))
    return float(((model(c) - c) ** 2).mean(dim=1).max())


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


def corner_loss_vs_points(ns: Sequence[int] = PAPER_NS, dims: Sequence[int] = (2, 4), depth: int = 7,
                          width: int = 50, steps: int = 10_000, lr: float = 1e-3, max_batch: int = 1000,
                          seed: int = 0, device="auto", progress: bool = True) -> list:
    """Train one L x H sigmoid net per (dim, n) on n points uniform in [0, 1]^dim and measure its
    :func:`corner_loss`. ``steps`` Adam steps of batch min(max_batch, n) (rounded up to whole
    epochs). The points and the weights come from ``seed``. Returns a list of :class:`CornerPoint`.
    """
    from .metrics import attractor_stability
    steps = check_int("steps", steps, 1)
    out = []
    for dim in dims:
        for n in ns:
            n = check_int("n", n, 1)
            g = torch.Generator().manual_seed(seed * 100_003 + dim * 10_007 + n)
            data = Data(x=torch.rand(n, dim, generator=g), value_range=(0.0, 1.0), name=f"uniform{dim}d")
            batch = min(max_batch, n)
            epochs = math.ceil(steps / math.ceil(n / batch))
            t0 = time.perf_counter()
            run = train_run(data, depth, width, epochs=epochs, lr=lr, batch_size=None if batch == n else batch,
                            seed=seed, device=device, progress=progress)
            out.append(CornerPoint(dim=dim, n=n, corner_loss=corner_loss(run.model), train_loss=run.result.best_loss,
                                   steps=epochs * math.ceil(n / batch), seconds=time.perf_counter() - t0,
                                   attractor_fraction=attractor_stability(run.model, data.x).fraction))
    return out


def corner_table(points: Sequence[CornerPoint]) -> str:
    """A plain-text table of corner-experiment results, with the paper's value where it gives one."""
    lines = [f"{'d':>2} {'n':>5} {'corner loss':>12} {'paper':>7} {'train loss':>11} {'steps':>6} {'time':>7} "
             f"{'attractors':>10}"]
    for p in points:
        ref = PAPER_CORNER_LOSS.get(p.dim, {}).get(p.n)
        lines.append(f"{p.dim:>2} {p.n:>5} {p.corner_loss:>12.4f} {'' if ref is None else f'{ref:.3f}':>7} "
                     f"{p.train_loss:>11.2e} {p.steps:>6} {p.seconds:>6.1f}s {p.attractor_fraction:>10.2f}")
    return "\n".join(lines)


@dataclass
class Reconstructions:
    """f(x) of ``originals`` (K, D) after each of ``epochs``; ``images`` (S, K, D). Epoch 0 is the
    untrained net; the last row is the best weights (found at epoch ``epochs[-1]``)."""

    originals: torch.Tensor
    epochs: list
    images: torch.Tensor


def snapshot_epochs(epochs: int, count: int) -> list:
    """About ``count`` log-spaced epochs in [1, epochs] (always including 1 and ``epochs``)."""
    if epochs < 1:
        return []
    return sorted({int(round(e)) for e in np.geomspace(1, epochs, max(2, count))})


def train_with_reconstructions(data: Data, depth: int, width: int, epochs: int = 2000, lr: float = 1e-3,
                               batch_size: Optional[int] = None, seed: int = 0, device="auto",
                               show: int = 8, snapshots: int = 6, **train_kw) -> tuple:
    """:func:`pipeline.train_run` that also records f(x) of the first ``show`` training images before
    training and after about ``snapshots`` log-spaced epochs. Returns (Run, Reconstructions); the
    last row is the returned run's model (its best weights)."""
    from .device import pick_device
    cfg = make_config(data, depth, width, train_kw.pop("out_act", None))
    dev = pick_device(device) if not isinstance(device, torch.device) else device
    model = build_mlp(cfg.model, seed=seed).to(dev)
    x_show = data.x[:show].to(dev)
    at = set(snapshot_epochs(epochs, snapshots)[:-1])
    rows, done = [], []

    @torch.no_grad()
    def keep(epoch_done):
        done.append(epoch_done)
        rows.append(model(x_show).cpu())

    keep(0)
    user_cb = train_kw.pop("callback", None)

    def callback(epoch, loss):
        if epoch + 1 in at:
            keep(epoch + 1)
        if user_cb is not None:
            user_cb(epoch, loss)

    run = train_run(data, depth, width, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=dev,
                    model=model, callback=callback, out_act=cfg.out_act, **train_kw)
    keep(run.result.best_epoch)
    return run, Reconstructions(originals=data.x[:show].cpu(), epochs=done, images=torch.stack(rows))
