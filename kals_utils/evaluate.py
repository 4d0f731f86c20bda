"""Evaluate a kaleidoscope: the metrics of :mod:`kals_utils.metrics` for a run or a saved ``.npz``.

``python -m kals_utils evaluate --checkpoint CKPT --samples NPZ [--json] [--tol X] [--device D]``
prints a small table (or JSON). The ``.npz`` is the one ``sample --save-samples`` writes.
"""

import json
import math
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .errors import KalsError, check_float
from .metrics import BURN_TOL, TOL, Evaluation, evaluate_samples
from .sample import kaleidoscope

RECORD = 256  # chains recorded for the burn-in curve


def evaluate_run(run, result=None, chains: int = 300, steps: int = 100, noise: str = "uniform", eps: float = 0.0,
                 seed: int = 0, tol: float = TOL, burn_tol: float = BURN_TOL, method: str = "auto",
                 max_points: Optional[int] = 1000, with_norm: bool = False) -> Evaluation:
    """Metrics of a :class:`pipeline.Run`'s samples: ``result`` (a SampleResult) or, if None, a
    fresh walk of ``chains`` x ``steps`` (first RECORD chains recorded for the burn-in curve)."""
    if result is None:
        result = kaleidoscope(run.model, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed,
                              record=min(chains, RECORD))
    return evaluate_samples(result.final, run.data.x, labels=run.data.labels, model=run.model,
                            frames=result.frames, steps=result.steps, tol=tol, burn_tol=burn_tol,
                            value_range=run.config.value_range, method=method, max_points=max_points,
                            with_norm=with_norm, seed=seed)


def load_samples(path) -> dict:
    """Read a ``sample --save-samples`` file: samples, train, start, value_range, image_shape, steps,
    eps, labels (or None), seed (0 if absent)."""
    path = Path(path)
    if not path.is_file():
        raise KalsError(f"samples file {path} not found; write one with `python -m kals_utils sample "
                        f"--checkpoint CKPT --save-samples {path}`")
    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)
    except (OSError, ValueError) as e:
        raise KalsError(f"{path} is not a readable .npz file ({type(e).__name__}); write it with sample --save-samples") from None
    missing = {"samples", "train"} - keys
    if missing:
        raise KalsError(f"{path} lacks {sorted(missing)}; write it with `python -m kals_utils sample --save-samples`")
    shape = tuple(int(v) for v in z["image_shape"]) if "image_shape" in keys else ()
    return {"samples": torch.from_numpy(z["samples"]).float(), "train": torch.from_numpy(z["train"]).float(),
            "start": torch.from_numpy(z["start"]).float() if "start" in keys else None,
            "value_range": tuple(float(v) for v in z["value_range"]) if "value_range" in keys else (0.0, 1.0),
            "image_shape": shape or None, "steps": int(z["steps"]) if "steps" in keys else None,
            "eps": float(z["eps"]) if "eps" in keys else 0.0,
            "labels": torch.from_numpy(z["labels"]) if "labels" in keys else None,
            "seed": int(z["seed"]) if "seed" in keys else 0}


def evaluate_npz(samples_path, checkpoint=None, device="auto", tol: float = TOL, burn_tol: float = BURN_TOL,
                 method: str = "auto", max_points: Optional[int] = 1000, with_norm: bool = True,
                 seed: int = 0) -> Evaluation:
    """Metrics of a saved ``.npz``; with ``checkpoint`` also attractor stability, spurious fixed points
    and the burn-in curve (the walk is re-run from the saved start noise; with eps > 0 the jitter is
    redrawn from the saved seed, 0 if the file has none)."""
    s = load_samples(samples_path)
    model = frames = steps = None
    if checkpoint is not None:
        from .pipeline import load_run
        run = load_run(checkpoint, device=device)
        if tuple(run.data.x.shape) != tuple(s["train"].shape):
            raise KalsError(f"{samples_path} was not sampled from {checkpoint}: its training set is "
                            f"{tuple(s['train'].shape)}, the checkpoint's {tuple(run.data.x.shape)}")
        model = run.model
        if s["start"] is not None and s["steps"]:
            walk = kaleidoscope(model, steps=s["steps"], eps=s["eps"], seed=s["seed"], start=s["start"],
                                record=min(len(s["start"]), RECORD))
            frames, steps = walk.frames, walk.steps
    return evaluate_samples(s["samples"], s["train"], labels=s["labels"], model=model, frames=frames, steps=steps,
                            tol=tol, burn_tol=burn_tol, value_range=s["value_range"], method=method,
                            max_points=max_points, with_norm=with_norm, seed=seed)


# ---------------------------------------------------------------- tables
def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}"
    if isinstance(v, (list, tuple)):  # e.g. occupancy per attractor
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def format_rows(rows, cols=None) -> str:
    """A list of dicts as a Markdown table (``cols``: which keys, default all of the first row's)."""
    if not rows:
        return "(no rows)"
    cols = list(cols or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


TABLE = [  # (key, label, meaning)
    ("samples", "samples", "final chain states"),
    ("train", "training points", ""),
    ("converged", "converged", "fraction within tol of a training point"),
    ("coverage", "coverage", "distinct nearest training points / min(samples, train)"),
    ("coverage_converged", "coverage (converged)", "the same, converged samples only"),
    ("median_nn", "median NN distance", "RMS per coordinate, data scale"),
    ("spread", "data spread", "median distance training point -> nearest other"),
    ("novelty", "novelty", "median NN distance / data spread (0 = copies)"),
    ("copies", "copies", "fraction within tol (same as converged)"),
    ("class_tv", "class bias (TV)", "total variation, sample vs training class histogram"),
    ("class_top", "most over-sampled class", ""),
    ("class_top_ratio", "its sample/train ratio", ""),
    ("attractor_fraction", "attractor fraction", "training points fixed and with spectral radius < 1"),
    ("attractors_checked", "points checked", ""),
    ("jacobian", "Jacobian method", "exact eigenvalues or power-iteration estimate"),
    ("radius_median", "median spectral radius", ""),
    ("norm_median", "median spectral norm", "upper bound on the radius"),
    ("spurious", "spurious fixed points", "fraction of samples stopped (step < burn tol) >= tol from the data"),
    ("spurious_points", "distinct spurious points", ""),
    ("converged_at_5", "converged at step 5", "recorded chains within tol after 5 steps"),
    ("converged_at_10", "converged at step 10", ""),
    ("burn_in", "burn-in step", "mean step size stays below burn tol from here"),
    ("final_step_size", "last step size", "mean RMS step between the last two frames"),
]


def format_evaluation(ev: Evaluation) -> str:
    """The small table ``evaluate`` prints."""
    s = ev.summary()
    lo, hi = ev.value_range
    head = (f"{ev.n_samples} samples vs {ev.n_train} training points, D={ev.dim}; distances are RMS per "
            f"coordinate on [{lo:g}, {hi:g}]; tol={ev.tol:g}" + (f", burn tol={s['burn_tol']:g}" if "burn_tol" in s else ""))
    rows = [(label, _fmt(s[key]), meaning) for key, label, meaning in TABLE if key in s]
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    return "\n".join([head] + [f"  {a:<{w}}  {b:>{v}}  {c}".rstrip() for a, b, c in rows])


def _json_ready(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def cmd_evaluate(args) -> int:
    """CLI entry: print the metrics table (or ``--json``) for ``--samples`` (+ ``--checkpoint``)."""
    tol = check_float("--tol", args.tol, 0.0, strict=True)
    ev = evaluate_npz(args.samples, args.checkpoint, device=args.device, tol=tol,
                      burn_tol=check_float("--burn-tol", args.burn_tol, 0.0, strict=True),
                      method=args.jacobian, max_points=args.max_train, seed=args.seed)
    if args.json:
        out = ev.summary()
        if ev.burn is not None:
            out["burn_curve"] = {"steps": ev.burn.steps[1:], "step_size": ev.burn.step_size}
            out["convergence_curve"] = {"steps": ev.burn.steps, "converged": ev.convergence}
        json.dump(_json_ready(out), sys.stdout, indent=1, allow_nan=False)
        print()
    else:
        print(format_evaluation(ev))
    return 0
