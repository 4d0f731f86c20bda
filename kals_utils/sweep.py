"""Measured experiments over many runs: depth sweep and mixing (each returns a list of dicts, one
per run, so a notebook cell is one call plus a table or plot).

- :func:`depth_sweep`: train L in {2, 3, 5, 7, 10} (same H, epochs, lr, batch: the same budget in
  optimiser steps) for several seeds and measure the samples (:func:`evaluate.evaluate_run`).
- :func:`summarise`: mean and standard deviation over seeds.
- :func:`mixing_sweep`: with eps > 0, how often chains hop between attractors.
"""

import math
import time
from typing import Optional, Sequence

from .data import Data
from .evaluate import evaluate_run
from .metrics import TOL, transition_counts
from .pipeline import train_run
from .sample import kaleidoscope

DEPTHS = (2, 3, 5, 7, 10)
SWEEP_KEYS = ("converged", "coverage", "median_nn", "attractor_fraction")


def depth_sweep(data: Data, depths: Sequence[int] = DEPTHS, width: int = 50, seeds: Sequence[int] = (0, 1, 2),
                epochs: int = 2000, lr: float = 1e-3, batch_size: Optional[int] = None, out_act: Optional[str] = None,
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
    rows = []
    for depth in depths:
        for seed in seeds:
            t0 = time.perf_counter()
            run = train_run(data, depth, width, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            device=device, out_act=out_act, progress=progress)
            ev = evaluate_run(run, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed, tol=tol,
                              max_points=max_points)
            s = ev.summary()
            row = {"data": data.name, "depth": depth, "width": width, "seed": seed, "loss": run.result.best_loss,
                   "learnt": run.result.learnt / max(1, run.result.n_train)}
            for k in ("converged", "converged_at_5", "converged_at_10", "coverage", "coverage_converged",
                      "median_nn", "novelty", "copies", "attractor_fraction", "radius_median", "spurious",
                      "burn_in", "class_tv"):
                row[k] = s.get(k)
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if log is not None:
                log(f"{data.name} L={depth} seed={seed}: " + ", ".join(
                    f"{k}={row[k]:.3g}" for k in ("loss", "converged", "coverage", "median_nn", "attractor_fraction")))
    return rows


def summarise(rows: Sequence[dict], by: Sequence[str] = ("data", "depth"), keys: Optional[Sequence[str]] = None) -> list:
    """Group ``rows`` by the ``by`` keys; for each numeric key give the mean and the sample standard
    deviation (``key`` and ``key_sd``) over the group, and ``runs`` (its size)."""
    if keys is None:  # every numeric key of any row, in first-seen order
        keys = list(dict.fromkeys(k for r in rows for k, v in r.items() if k not in by and k != "seed"
                                  and isinstance(v, (int, float)) and not isinstance(v, bool)))
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r.get(b) for b in by), []).append(r)
    out = []
    for g, rs in groups.items():
        row = dict(zip(by, g))
        row["runs"] = len(rs)
        for k in keys:
            vals = [float(r[k]) for r in rs if r.get(k) is not None and not math.isnan(float(r[k]))]
            m = sum(vals) / len(vals) if vals else float("nan")
            row[k] = m
            row[k + "_sd"] = (math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
                              if len(vals) > 1 else float("nan"))
        out.append(row)
    return out


def mixing_sweep(run, eps_values: Sequence[float] = (0.0, 0.02, 0.05, 0.1, 0.2), chains: int = 100,
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
        res = kaleidoscope(run.model, chains=chains, steps=steps, noise=noise, eps=eps, jitter=jitter, seed=seed)
        m = transition_counts(res.frames, run.data.x, res.steps, tol=tol, burn=burn)
        out.append({"eps": float(eps), "hops_per_chain": float(m.hops.float().mean()), "hop_rate": m.hop_rate,
                    "moved": float((m.hops > 0).float().mean()), "visited": float(m.visited.float().mean()),
                    "unassigned": m.unassigned, "occupancy": m.occupancy.tolist(), "counts": m.counts.tolist()})
    return out
