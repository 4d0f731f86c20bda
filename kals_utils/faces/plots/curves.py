"""Curves over a run or a sweep: the training loss, the corner loss against n, one panel per metric
against depth (with readable metric names), and the coverage/memorisation frontier."""

import re
from typing import Optional

import numpy as np

from .figure import _axes, new_figure

def plot_losses(losses, ax=None, title: str = "training loss"):
    """Loss history (log scale) vs epoch."""
    fig, ax = _axes(ax)
    ys = np.maximum(np.asarray(losses, dtype=float), 1e-12)
    ax.semilogy(np.arange(len(ys)), ys)
    ax.set(xlabel="epoch", ylabel="MSE |f(x) - x|²", title=title)
    return fig


def plot_corner_loss(points, ax=None, paper: Optional[dict] = None, title: str = "loss at the cube's corners"):
    """Corner loss against the number of training points n (log x), one line per dimension d;
    ``paper`` ({d: {n: loss}}) adds the published values as dashed lines."""
    fig, ax = _axes(ax)
    for i, d in enumerate(sorted({p.dim for p in points})):
        ps = sorted((p for p in points if p.dim == d), key=lambda p: p.n)
        color = f"C{i}"
        ax.plot([p.n for p in ps], [p.corner_loss for p in ps], "o-", color=color, label=f"d={d} (kals)")
        if paper and d in paper:
            ns = sorted(paper[d])
            ax.plot(ns, [paper[d][n] for n in ns], "x--", color=color, alpha=0.6, label=f"d={d} (paper)")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="number of training points n", ylabel="max over corners ‖c - f(c)‖² / d", title=title)
    ax.legend(fontsize=8)
    return fig


SWEEP_LABELS = {"fd_classifier": "classifier Fréchet distance (lower is better)",
                "fd_heldout": "classifier Fréchet distance to held-out images",
                "fd_pixels": "Fréchet distance in pixels", "converged": "converged at the end", "coverage": "coverage",
                "median_nn": "median NN distance (RMS)",
                "attractor_fraction": "attractor fraction",
                "radius_median": "spectral radius at the training points (median)",
                "spurious": "stopped at a spurious point", "burn_in": "burn-in (steps)", "novelty": "novelty",
                "copies": "copies", "class_tv": "class TV distance", "loss": "training loss",
                "memorized": "memorised fraction", "coverage_converged": "coverage (converged)"}
SWEEP_UNITS = {"median_nn": "RMS distance", "radius_median": "radius (< 1: attracting)", "burn_in": "steps",
               "loss": "MSE", "novelty": "NN distance / point spacing"}
FRACTION_KEYS = {"converged", "coverage", "attractor_fraction", "spurious", "copies", "class_tv", "memorized",
                 "coverage_converged", "novel_fixed", "train_fixed"}


def metric_label(key: str) -> str:
    """A readable name for a metric key: ``converged_at_5`` -> "converged after 5 steps"."""
    m = re.fullmatch(r"converged_at_(\d+)", key)
    if m:
        return f"converged after {m[1]} step" + ("s" if m[1] != "1" else "")
    return SWEEP_LABELS.get(key, key.replace("_", " "))


def is_fraction(key: str) -> bool:
    """Whether the metric ``key`` is a fraction in [0, 1] (drawn on a 0..1 axis)."""
    return key in FRACTION_KEYS or key.startswith("converged_at_")


def _sweep_axis(ax, key: str, depths):
    import textwrap
    from matplotlib.ticker import MaxNLocator
    ax.set_title("\n".join(textwrap.wrap(metric_label(key), 26)), fontsize=10)
    ax.set_xlabel("depth L")
    if len(depths) <= 12:
        ax.set_xticks(depths)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    pad = max(0.5, 0.06 * (max(depths) - min(depths))) if depths else 0.5
    if depths:
        ax.set_xlim(min(depths) - pad, max(depths) + pad)
    if is_fraction(key):
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction")
    else:
        if key == "radius_median":
            ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        if key != "loss":
            ax.set_ylim(bottom=0)
        ax.set_ylabel(SWEEP_UNITS.get(key, ""))
    ax.grid(alpha=0.3)


def plot_depth_sweep(rows, keys=("converged", "coverage", "median_nn", "attractor_fraction"), axes=None,
                     title: str = ""):
    """One panel per metric against depth L (rows from ``experiments.depth_sweep``, any number of data
    sets and seeds): every run as a dot, the mean over seeds as a line, one colour per data set.
    Depth ticks are the depths swept; fractions (:func:`is_fraction`) are drawn from 0 to 1; panels are
    titled by :func:`metric_label`."""
    if axes is None:
        fig, axes = new_figure(len(keys), size=(3.3, 3.1))
    else:
        fig = np.atleast_1d(axes)[0].figure
    axes = np.atleast_1d(axes)
    names = list(dict.fromkeys(r.get("data", "") for r in rows))
    all_depths = sorted({int(r["depth"]) for r in rows})
    for i, name in enumerate(names):
        rs = [r for r in rows if r.get("data", "") == name]
        for ax, k in zip(axes, keys):
            pts = [(r["depth"], r[k]) for r in rs if r.get(k) is not None]
            if not pts:
                continue
            depths = sorted({d for d, _ in pts})
            means = [np.mean([v for d2, v in pts if d2 == d]) for d in depths]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=f"C{i}", s=14, alpha=0.45, clip_on=False)
            ax.plot(depths, means, "o-", color=f"C{i}", label=name or None, clip_on=False, zorder=3)
    for ax, k in zip(axes, keys):
        _sweep_axis(ax, k, all_depths)
    if any(names):
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=f"C{i}", marker="o", label=name) for i, name in enumerate(names)]
        fig.legend(handles=handles, loc="outside right upper", fontsize=9, title="data", title_fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_frontier(rows, *, ax=None, marks: Optional[dict] = None, target=(0.2, 0.7),
                  title: str = "covering without copying"):
    """Memorised fraction (x) against PRDC coverage (y) for :func:`experiments.recipe_frontier` rows
    (colour: the denoising noise range; size: the jitter eps), the target box (memorised <= target[0],
    coverage >= target[1]) shaded, and ``marks`` {label: (memorized, coverage)} as stars (e.g. the
    paper and improved recipes)."""
    fig, ax = _axes(ax, size=(6.4, 4.6))
    ax.fill_between([0, target[0]], target[1], 1, color="tab:green", alpha=0.12, label="target")
    sigmas = sorted({tuple(r["sigma"]) for r in rows})
    for i, sg in enumerate(sigmas):
        rs = [r for r in rows if tuple(r["sigma"]) == sg]
        ax.scatter([r["memorized"] for r in rs], [r["coverage"] for r in rs], s=[30 + 300 * r["eps"] for r in rs],
                   color=f"C{i}", alpha=0.8, edgecolors="white", label=f"σ {sg[0]:g}–{sg[1]:g}")
    for label, (m, c) in (marks or {}).items():
        ax.scatter([m], [c], marker="*", s=220, color="black", zorder=5)
        ax.annotate(label, (m, c), textcoords="offset points", xytext=(7, -3), fontsize=9)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="memorised (nearest training image < 1/3 of the 2nd nearest)",
           ylabel="coverage (k-NN balls, k=5)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    return fig
