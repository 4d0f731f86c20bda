"""Tables: a list of result dicts as Markdown, mean and spread over seeds, and the table that
``evaluate`` prints. Plain strings, no drawing."""

import math
from typing import Optional, Sequence

from .evaluate import Evaluation


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



def format_rows(rows, cols=None) -> str:
    """A list of dicts as a Markdown table (``cols``: which keys, default all of the first row's)."""
    if not rows:
        return "(no rows)"
    cols = list(cols or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}"
    if isinstance(v, (list, tuple)):  # e.g. occupancy per attractor
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


TABLE = [  # (key, label, meaning)
    ("samples", "samples", "final chain states"),
    ("train", "training points", "the run's whole set (a selection rule's held-out images included)"),
    ("converged", "converged", "fraction within tol of a training point"),
    ("coverage", "coverage", "distinct nearest training points / min(samples, train)"),
    ("coverage_converged", "coverage (converged)", "the same, converged samples only"),
    ("distinct", "distinct nearest images", "the same on standardised images: low = collapse onto a few"),
    ("coverage_real", "coverage, real images", "the training set split in two at this ratio: what real images read"),
    ("distinct_real", "distinct nearest, real images", "the same split, distinct nearest images"),
    ("sharpness", "sharpness ratio", "mean image gradient, samples / training images (blur < 1)"),
    ("memorized_std", "memorised (any contrast)", "the 1/3 copy test on standardised images"),
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
    ("spurious", "spurious fixed points", "stopped (step < burn tol) >= tol from the data and off its manifold"),
    ("novel_fixed", "novel fixed points", "stopped >= tol from the data but inside a real k-NN ball"),
    ("spurious_points", "distinct spurious points", ""),
    ("converged_at_5", "converged at step 5", "recorded chains within tol after 5 steps"),
    ("converged_at_10", "converged at step 10", ""),
    ("visited_mean", "images visited per chain", "distinct nearest training images over the recorded walk (mixing)"),
    ("burn_in", "burn-in step", "mean step size stays below burn tol from here"),
    ("final_step_size", "last step size", "mean RMS step between the last two frames"),
]


PRDC_TABLE = [  # (key, label, meaning)
    ("precision", "precision", "samples inside a real k-NN ball (fidelity)"),
    ("recall", "recall", "real images inside a sample k-NN ball (diversity)"),
    ("density", "density", "mean count of real balls holding a sample / k (about 1 for real data)"),
    ("coverage", "PRDC coverage", "real images whose ball holds a sample"),
    ("frechet", "Fréchet distance", "Gaussians fitted to the two feature sets"),
    ("memorized", "memorised", "nearest training image closer than 1/3 of the second nearest"),
]


def _prdc_lines(s: dict) -> list:
    """The sample-metric rows (value, and the held-out ceiling beside it)."""
    if "prdc" not in s:
        return []
    p, c = dict(s["prdc"], memorized=s["memorized"]), s.get("prdc_ceiling") or {}
    space = "pixel space" if p["features"] == "pixels" else f"{p['features']} features"
    head = (f"sample metrics in {space}, k={p['k']}, real = {p['real']}"
            + (f"; ceiling = {c['real']}" if c else "; no test-split ceiling (mnist, fashion-mnist, cifar-dogs and "
                                                     "celeba have one, with their data root): read the 'real images' "
                                                     "rows above"))
    rows = [(label, _fmt(p.get(key)), f"ceiling {_fmt(c.get(key))}" if c else "", meaning)
            for key, label, meaning in PRDC_TABLE]
    return [head] + [f"  {a:<24} {b:>8}  {c_:<16} {m}".rstrip() for a, b, c_, m in rows]


def format_evaluation(ev: Evaluation) -> str:
    """The small table ``evaluate`` prints."""
    s = ev.summary()
    lo, hi = ev.value_range
    head = (f"{ev.n_samples} samples vs {ev.n_train} training points, D={ev.dim}; distances are RMS per "
            f"coordinate on [{lo:g}, {hi:g}]; tol={ev.tol:g}" + (f", burn tol={s['burn_tol']:g}" if "burn_tol" in s else ""))
    rows = [(label, _fmt(s[key]), meaning) for key, label, meaning in TABLE if key in s]
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    return "\n".join([head] + [f"  {a:<{w}}  {b:>{v}}  {c}".rstrip() for a, b, c in rows] + _prdc_lines(s))
