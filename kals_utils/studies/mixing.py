"""Does the kaleidoscope keep turning? Mixing and quality of a walk, frame by frame (issue #21).

For one walk (its frames are f's outputs, every step recorded) :func:`walk_mixing` reports:

- ``visited``: distinct nearest training images per chain over steps 1..T (T = 100 in the study,
  so it reads "per chain per 100 steps");
- ``class_change``: fraction of chains whose nearest training image changes class (label) at least
  once after the burn-in;
- ``tau``: integrated autocorrelation time of the chains' nearest-neighbour index after the burn-in
  (:func:`mixing.autocorrelation_time`: one-hot state, Sokal's window; in steps; ``tau_censored``
  when the walk was too short to bound it);
- frame by frame after the burn-in: PRDC precision and coverage of the R chains' states against R
  training images, the memorised fraction (:func:`mixing.framewise_quality`), reported as the
  minimum / mean / median / maximum over frames;
- ``continuity``: the 95th percentile over chains and steps after the burn-in of the RMS change between
  consecutive frames, in units of the data's spread (:func:`mixing.continuity`; a cut reads >= ~2, a
  morph a fraction of 1), and ``step_median``, the median change on the same scale (issue #30);
- ``pooled``: precision and coverage of every chain's states over the last ``pool`` steps against
  the whole training set (:func:`mixing.pooled_coverage`).

:func:`mixing_study` runs it for several samplers and seeds on one trained run.
"""

from typing import Optional, Sequence

import torch

from ..measures.metrics import K
from ..measures.mixing import (autocorrelation_time, class_changes, continuity, distinct_visits, framewise_quality,
                               nn_indices, pooled_coverage)
from ..neighbours import spread
from ..pipeline import Run, sample_run

BURN = 10     # steps treated as burn-in (chains descending from the start noise onto the data)
POOL = 50     # last steps pooled for the coverage of the whole walk
TARGETS = {"precision_min": (">=", 0.9), "pooled_coverage": (">=", 0.8), "memorized_max": ("<=", 0.1),
           "visited": (">=", 10.0), "class_change": (">=", 0.5)}  # issue #21, 28x28 Fashion-MNIST
MORPH_TARGETS = {"visited": (">=", 10.0), "class_change": (">=", 0.5), "classifier_pooled_coverage": (">=", 0.6),
                 "precision_median": (">=", 0.85), "classifier_precision_median": (">=", 0.8),
                 "memorized_max": ("<=", 0.05), "continuity": ("<=", 1.0)}  # issue #30: crisp, varied, sliding


def walk_mixing(frames: torch.Tensor, train: torch.Tensor, *, labels=None, burn: int = BURN, pool: int = POOL,
                k: int = K, features=None, seed: int = 0) -> dict:
    """Mixing and per-frame quality of a walk whose ``frames`` (T+1, R, D) are the start (row 0)
    and f's outputs at steps 1..T. ``features``: embedding for precision/coverage (None = pixels)."""
    idx = nn_indices(frames, train)
    after = idx[burn + 1:] if burn + 1 < len(idx) - 3 else idx[1:]
    tau, censored = autocorrelation_time(after)
    q = framewise_quality(frames[burn + 1:], train, k=k, features=features, seed=seed)
    pooled = pooled_coverage(frames[-pool:].reshape(-1, frames.shape[-1]), train, k=k, features=features)
    out = {"visited": float(distinct_visits(idx[1:]).float().mean()), "tau": tau, "tau_censored": censored,
           "pooled_precision": pooled["precision"], "pooled_coverage": pooled["coverage"],
           "continuity": continuity(frames[burn:], spread(train)),
           "step_median": continuity(frames[burn:], spread(train), q=0.5)}
    if labels is not None:
        out["class_change"] = float(class_changes(after, labels).float().mean())
    for key, vals in q.items():
        v = torch.tensor(vals)
        out.update({f"{key}_min": float(v.min()), f"{key}_mean": float(v.mean()), f"{key}_max": float(v.max()),
                    f"{key}_median": float(v.median())})
    out["frames"] = {key: [round(x, 4) for x in vals] for key, vals in q.items()}
    return out


def meets(row: dict, targets: Optional[dict] = None) -> dict:
    """Which ``targets`` (default issue #21's TARGETS; MORPH_TARGETS: issue #30's) a row meets:
    {key: True/False} (missing keys left out)."""
    ok = {}
    for key, (op, bound) in (targets or TARGETS).items():
        if key in row:
            ok[key] = row[key] >= bound if op == ">=" else row[key] <= bound
    return ok


def mixing_study(run: Run, samplers: Sequence[dict], *, seeds: Sequence[int] = (0, 1, 2), chains: int = 200,
                 steps: int = 100, burn: int = BURN, pool: int = POOL, features: Optional[dict] = None,
                 k: int = K, log=None) -> list:
    """One row per (sampler, seed): ``samplers`` are dicts of :func:`pipeline.sample_run` options
    plus a ``label`` (e.g. ``{"label": "dae 0.5", "sampler": "dae", "scale": 0.3}``); ``features``:
    {name: embedding callable or None} for precision/coverage (default pixels only)."""
    features = features or {"pixels": None}
    rows = []
    for spec in samplers:
        opts = {key: v for key, v in spec.items() if key != "label"}
        for seed in seeds:
            walk = sample_run(run, chains=chains, steps=steps, seed=seed, **opts)
            row = {"label": spec.get("label", opts.get("sampler", "walk")), "seed": seed, "chains": chains,
                   "steps": steps, "burn": burn, "pool": pool, **{k: v for k, v in opts.items() if k != "start"}}
            for name, embed in features.items():
                m = walk_mixing(walk.frames, run.data.x, labels=run.data.labels, burn=burn, pool=pool, k=k,
                                features=embed, seed=seed)
                row.update({(key if name == "pixels" else f"{name}_{key}"): v for key, v in m.items()
                            if name == "pixels" or key.startswith(("precision", "coverage", "pooled", "frames"))})
            rows.append(row)
            if log:
                log(row)
    return rows
