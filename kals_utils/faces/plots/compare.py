"""Runs side by side, by label: the final samples and loss curves of each (architectures), and the
quality-against-CPU-time figures of the diffusion study (``studies.versus``)."""

from typing import Optional, Sequence

import numpy as np

from ...measures.metrics import nearest_neighbours, nearest_pairs
from ...studies.architectures import final_samples, kept_runs
from ...measures.tables import summarise
from .curves import metric_label, plot_losses
from .figure import _axes, new_figure
from .images import plot_images

def plot_final_samples(rows: Sequence[dict], data, *, k: int = 16, ncols: int = 4, pairs: bool = False,
                       title: str = ""):
    """One figure: the final states of the first ``k`` chains of the first kept run of each label
    (:func:`final_samples`), titled with the mean converged fraction and median NN distance over
    its seeds, then ``k`` training images of ``data`` for comparison; ``pairs``: each sample followed
    by its nearest training image instead (no training-image panel). Returns the Figure."""
    finals = final_samples(rows, k=k)
    if pairs:
        finals = {label: nearest_pairs(x, data.x, nearest_neighbours(x, data.x)[1], k=k) for label, x in finals.items()}
    means = {m["label"]: m for m in summarise(rows, by=("label",), keys=("converged", "median_nn"))}
    fig, axes = new_figure(ncols, size=(3.2, 3.7), nrows=-(-(len(finals) + (not pairs)) // ncols))
    axes = np.atleast_1d(axes)
    for ax, (label, x) in zip(axes, finals.items()):
        m = means[label]
        plot_images(x, data.image_shape, data.value_range, nrow=4, ax=ax)
        seeds = f"{m['runs']} seed" + "s" * (m["runs"] > 1)
        ax.set_title(f"{label}\nconverged {m['converged']:.2f}, NN {m['median_nn']:.2f} ({seeds})", fontsize=9)
    if not pairs:
        plot_images(data.x[:k], data.image_shape, data.value_range, nrow=4, ax=axes[len(finals)])
        axes[len(finals)].set_title("training images", fontsize=9)
    for ax in axes[len(finals) + (not pairs):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_loss_curves(rows: Sequence[dict], *, title: str = "training loss (first kept run of each)"):
    """The training-loss curves of the first kept run of each label in one log-scale plot."""
    fig, ax = new_figure()
    runs = kept_runs(rows)
    for run in runs.values():
        plot_losses(run.result.losses, ax=ax, title=title)
    ax.legend(list(runs), fontsize=8)
    return fig


# ---------------------------------------------------------------- basins of attraction (issue #24)


def plot_versus(rows: Sequence[dict], *, key: str = "fd_classifier", ax=None, log_y: bool = True,
                title: str = "quality against training CPU time"):
    """``key`` (default the classifier Fréchet distance; lower is better) against the training
    budget in CPU minutes for :func:`studies.versus.versus_diffusion` rows: one line per label (mean
    over seeds, bars: the spread of the seeds; hollow markers: runs a stopping rule ended before
    the budget), the held-out real images' value as a dashed line."""
    fig, ax = _axes(ax, size=(6.4, 4.4))
    runs = [r for r in rows if r.get("budget_s") is not None and r.get(key) is not None]
    curves = _by_label(runs, key)
    if any(any(m["stopped"]) for m in curves):
        ax.plot([], [], "o", mfc="white", mec="0.3", ls="none", label="(hollow: ended by its stopping rule)")
    for i, m in enumerate(curves):
        ax.errorbar(m["x"], m["y"], yerr=m["sd"], marker="o", capsize=3, color=f"C{i}", label=m["label"])
        hollow = [j for j, s in enumerate(m["stopped"]) if s]
        ax.plot([m["x"][j] for j in hollow], [m["y"][j] for j in hollow], "o", mfc="white", mec=f"C{i}", ls="none",
                zorder=5)
    for r in rows:
        if r.get("family") == "real" and r.get(key) is not None:
            ax.axhline(r[key], ls="--", color="0.4", label="held-out real images")
    if log_y:
        ax.set_yscale("log")
    ax.set(xscale="log", xlabel="training budget, CPU minutes (one thread)", ylabel=metric_label(key), title=title)
    ax.legend(fontsize=8)
    return fig


def _by_label(rows: Sequence[dict], key: str) -> list:
    """[{label, x (budget, CPU minutes), y (mean of key), sd, stopped (every seed's run ended by a
    stopping rule before the budget)}] per label, budgets in order."""
    out = []
    for label in dict.fromkeys(r["label"] for r in rows):
        budgets = sorted({r["budget_s"] for r in rows if r["label"] == label})
        groups = [[r for r in rows if r["label"] == label and r["budget_s"] == b] for b in budgets]
        y = [float(np.mean([r[key] for r in g])) for g in groups]
        sd = [float(np.std([r[key] for r in g], ddof=1)) if len(g) > 1 else 0.0 for g in groups]
        out.append(dict(label=label, x=[b / 60 for b in budgets], y=y, sd=sd,
                        stopped=[all(r.get("stopped", False) for r in g) for g in groups]))
    return out


def plot_versus_grids(rows: Sequence[dict], image_shape, value_range, *, budget: Optional[float] = None,
                      seed: int = 0, ncols: int = 4, title: str = "", upto: bool = False):
    """The kept samples (``grid``) of every label side by side at ``budget`` CPU seconds (default:
    the largest any row has) for ``seed``, with the held-out real images; titled with the classifier
    Fréchet distance and the network evaluations per image. upto: each label at its largest budget
    up to ``budget`` (for families measured at fewer budgets), the budget in its title."""
    kept = [r for r in rows if "grid" in r]
    if budget is None:
        budget = max((r["budget_s"] for r in kept if r["budget_s"] is not None), default=None)
    mine = [r for r in kept if r["family"] != "real" and r["seed"] == seed
            and (r["budget_s"] == budget or (upto and r["budget_s"] <= budget))]
    last = {r["label"]: max(q["budget_s"] for q in mine if q["label"] == r["label"]) for r in mine}
    show = [r for r in kept if r["family"] == "real"] + [r for r in mine if r["budget_s"] == last[r["label"]]]
    fig, axes = new_figure(ncols, size=(2.6, 3.0), nrows=max(1, -(-len(show) // ncols)))
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, show):
        plot_images(r["grid"], image_shape, value_range, nrow=4, ax=ax)
        held = f" / held-out {r['fd_heldout']:.0f}" if r.get("fd_heldout") is not None else ""
        after = f", {r['budget_s'] / 60:.3g} min" if upto and r["family"] != "real" else ""
        after += f"\n(its rule stopped it at {r['train_cpu_s'] / 60:.2g} min)" if after and r.get("stopped") else ""
        ax.set_title(f"{r['label']}{after}\nFD {r['fd_classifier']:.0f}{held}, {r['nfe']} evals/image", fontsize=8)
    for ax in axes[len(show):]:
        ax.set_axis_off()
    fig.suptitle(title or (f"samples after at most {budget / 60:.3g} training CPU minutes (seed {seed})" if upto else
                           f"samples after {budget / 60:.3g} training CPU minutes (seed {seed})"), fontsize=10)
    return fig
