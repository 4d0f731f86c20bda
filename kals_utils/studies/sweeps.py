"""Studies of one knob at a time: f(x) of a few training images during training
(:func:`train_with_reconstructions`), every depth with the same budget (:func:`depth_sweep`), and
how often chains hop between attractors as the jitter grows (:func:`mixing_sweep`), and whether
walks of the moving samplers cut or slide between them (:func:`walk_moves`)."""

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..data import Data
from ..device import pick_device
from ..measures.evaluate import evaluate_run
from ..measures.metrics import TOL, data_spread
from ..measures.mixing import continuity, frame_changes, transition_counts
from ..model import build_model
from ..pipeline import epochs_for, make_config, sample_run, train_run
from ..presets import EPOCHS, LR
from .ensemble import train_many


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


def train_with_reconstructions(data: Data, *, depth: int, width: int, epochs: int = EPOCHS, lr: float = LR,
                               batch_size: Optional[int] = None, seed: int = 0, device="auto",
                               show: int = 8, snapshots: int = 6, **train_kw) -> tuple:
    """:func:`pipeline.train_run` that also records f(x) of the first ``show`` training images before
    training and after about ``snapshots`` log-spaced epochs. Returns (Run, Reconstructions); the
    last row is the returned run's model (its best weights)."""
    cfg = make_config(data, depth, width, train_kw.pop("out_act", None))
    dev = pick_device(device) if not isinstance(device, torch.device) else device
    model = build_model(cfg.model, seed=seed).to(dev)
    x_show = data.x[:show].to(dev)
    if train_kw.get("updates") is not None:  # the snapshots' schedule in epochs (train_run counts exactly)
        epochs = epochs_for(train_kw["updates"], len(data), batch_size)
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

    run = train_run(data, depth=depth, width=width, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=dev,
                    model=model, callback=callback, out_act=cfg.out_act, **train_kw)
    keep(run.result.best_epoch)
    return run, Reconstructions(originals=data.x[:show].cpu(), epochs=done, images=torch.stack(rows))



DEPTHS = (2, 3, 5, 7, 10)


def depth_sweep(data: Data, *, depths: Sequence[int] = DEPTHS, width: int = 50, seeds: Sequence[int] = (0, 1, 2),
                epochs: int = EPOCHS, lr: float = LR, batch_size: Optional[int] = None, out_act: Optional[str] = None,
                chains: int = 200, steps: int = 100, noise: str = "uniform", eps: float = 0.0, tol: float = TOL,
                max_points: Optional[int] = 300, device="auto", progress: bool = False, log=None) -> list:
    """Train one L x ``width`` net per (depth, seed) on ``data`` with the same training budget and
    evaluate ``chains`` x ``steps`` samples. Returns one dict per run: depth, width, seed, loss (best
    training MSE), learnt (fraction of training points reproduced), converged (after ``steps``),
    converged_at_5 / _10 (after 5 / 10 steps), coverage,
    coverage_converged, median_nn, novelty, copies, attractor_fraction (of at most ``max_points``
    training points), radius_median, spurious, burn_in, class_tv (labelled data), seconds.
    ``log``: e.g. ``print``, called with one line per finished run.
    """
    grid = [(depth, seed) for depth in depths for seed in seeds]
    t0 = time.perf_counter()  # all nets at once (ensemble.fit_many); the training time is shared out evenly
    runs = train_many([data] * len(grid), depths=[d for d, _ in grid], width=width, seeds=[s for _, s in grid],
                      epochs=epochs, lr=lr, batch_sizes=batch_size, device=device, out_act=out_act, progress=progress)
    train_s = (time.perf_counter() - t0) / len(runs)
    rows = []
    for (depth, seed), run in zip(grid, runs):
        t0 = time.perf_counter()
        s = evaluate_run(run, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed, tol=tol,
                         max_points=max_points).summary()
        row = {"data": data.name, "depth": depth, "width": width, "seed": seed, "loss": run.result.best_loss,
               "learnt": run.result.learnt / max(1, run.result.n_train)}
        for k in ("converged", "converged_at_5", "converged_at_10", "coverage", "coverage_converged",
                  "median_nn", "novelty", "copies", "attractor_fraction", "radius_median", "spurious",
                  "burn_in", "class_tv"):
            row[k] = s.get(k)
        row["seconds"] = train_s + time.perf_counter() - t0
        rows.append(row)
        if log is not None:
            log(f"{data.name} L={depth} seed={seed}: " + ", ".join(
                f"{k}={row[k]:.3g}" for k in ("loss", "converged", "coverage", "median_nn", "attractor_fraction")))
    return rows


def mixing_sweep(run, *, eps_values: Sequence[float] = (0.0, 0.02, 0.05, 0.1, 0.2), chains: int = 100,
                 steps: int = 200, burn: int = 50, noise: str = "uniform", jitter: str = "uniform",
                 seed: int = 0, tol: float = TOL) -> list:
    """For each eps, walk ``chains`` x ``steps`` (every step recorded) and count hops between
    attractors (training points within ``tol``; states in between are skipped) after ``burn`` steps.

    One dict per eps: eps, hops_per_chain (mean), hop_rate (hops per chain per step), moved (fraction
    of chains that hopped at least once), visited (mean distinct attractors per chain), unassigned
    (fraction of states in between), occupancy (per attractor), counts (K x K transition counts).
    """
    out = []
    for eps in eps_values:
        res = sample_run(run, chains=chains, steps=steps, noise=noise, eps=eps, jitter=jitter, seed=seed)
        m = transition_counts(res.frames, run.data.x, res.steps, tol=tol, burn=burn)
        out.append({"eps": float(eps), "hops_per_chain": float(m.hops.float().mean()), "hop_rate": m.hop_rate,
                    "moved": float((m.hops > 0).float().mean()), "visited": float(m.visited.float().mean()),
                    "unassigned": m.unassigned, "occupancy": m.occupancy.tolist(), "counts": m.counts.tolist()})
    return out


def walk_moves(walks: dict, train: torch.Tensor, *, burn: int = 50, tol: float = TOL) -> list:
    """Do chains cut or slide between attractors? One row per walk of ``walks`` {label: SampleResult,
    every step recorded} on the training points ``train``, after ``burn`` steps: label, sampler,
    scale, hops_per_chain and occupancy (:func:`mixing.transition_counts`), and the frame-to-frame
    RMS change in units of the data's spread (:func:`mixing.continuity`): its 95th percentile
    (``continuity``), median (``step_median``) and largest value (``step_max``). A hop in one step
    reads the distance between the two points (1 between nearest neighbours); a slide a fraction."""
    spread = data_spread(train)
    rows = []
    for label, walk in walks.items():
        m = transition_counts(walk.frames, train, walk.steps, tol=tol, burn=burn)
        after = walk.frames[[k for k, t in enumerate(walk.steps) if t >= burn]]
        rows.append({"walk": label, "sampler": walk.sampler, "scale": walk.scale,
                     "hops_per_chain": float(m.hops.float().mean()), "occupancy": m.occupancy.tolist(),
                     "continuity": continuity(after, spread), "step_median": continuity(after, spread, q=0.5),
                     "step_max": float(frame_changes(after).max()) / spread})
    return rows
