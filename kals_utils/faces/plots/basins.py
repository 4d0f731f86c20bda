"""What a net stores (issue #24): basin maps in 1D and 2D (and side by side by depth, and as GIF
frames over training), basin sizes of training images, the capacity curve, a stored 2D loop."""

import numpy as np
import torch

from ...model import model_device
from .figure import (CHAIN_STYLE, FRAME_DPI, START_STYLE, _axes, _curve, _legend_handles, _range_of, _train_points,
                     fig_to_array, new_figure)
from .walks import loss_surface

SPURIOUS_COLOR, UNSETTLED_COLOR = "0.68", "black"   # basins of spurious fixed points / of chains still moving
BASIN_ALPHA = 0.85      # basin colours are softened a little so the loss contours and points read on top
CONTOUR_LEVELS = (1e-5, 1e-4, 1e-3, 1e-2)           # loss |f(z) - z|² contours drawn over a 2D basin map


def basin_colors(k: int) -> list:
    """One colour per training point (tab10, then tab20 for more than 10), as RGB tuples."""
    from matplotlib import colormaps
    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [tuple(cmap(i % cmap.N)[:3]) for i in range(k)]


def _basin_rgb(bmap) -> np.ndarray:
    """The map's labels as an RGB image: a training point's colour, grey spurious, black unsettled."""
    from matplotlib.colors import to_rgb
    k, s = len(bmap.train), len(bmap.spurious)
    table = np.array(basin_colors(k) + [to_rgb(SPURIOUS_COLOR)] * s + [to_rgb(UNSETTLED_COLOR)])
    lab = bmap.labels.numpy()
    idx = np.where(lab < 0, k + s, lab)
    return 1 - BASIN_ALPHA * (1 - table[idx])   # blend towards white


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%" if v >= 0.001 or v == 0 else "<0.1%"


def _basin_legend(bmap, *, loc="outside lower center", anchor=None, ncol=2, fig=None, ax=None):
    """Legend entries: each training point (its location and area share), spurious, unsettled."""
    from matplotlib.patches import Patch
    k = len(bmap.train)
    loc_txt = (lambda p: f"{p[0]:.2f}") if bmap.dim == 1 else (lambda p: f"({p[0]:.2f}, {p[1]:.2f})")
    handles = [Patch(color=c, label=f"{loc_txt(bmap.train[i].tolist())}: {_pct(float(bmap.fractions[i]))}")
               for i, c in enumerate(basin_colors(k))]
    handles.append(Patch(color=SPURIOUS_COLOR, label=f"spurious ({len(bmap.spurious)}): "
                                                     f"{_pct(float(bmap.fractions[k:-1].sum()))}"))
    handles.append(Patch(color=UNSETTLED_COLOR, label=f"unsettled: {_pct(float(bmap.fractions[-1]))}"))
    target = fig if fig is not None else ax
    return target.legend(handles=handles, loc=loc, bbox_to_anchor=anchor, ncol=ncol, fontsize=8, frameon=False,
                         title="basin: area share", title_fontsize=8, handlelength=1.2, columnspacing=1.0)


def plot_basins_2d(bmap, model=None, *, ax=None, title: str = "basins of attraction", legend: bool = True,
                   annotate: bool = False, contours: bool = True):
    """A 2D basin map (``basins.basin_map``): every start coloured by where its chain ends (one
    colour per training point, grey: a spurious fixed point, black: still moving), the training
    points (hollow squares) and spurious fixed points (grey crosses) on top, and, with ``model``, the
    loss |f(z) - z|² as contour lines (:data:`CONTOUR_LEVELS`). ``legend``: the area shares below the
    axes; ``annotate``: each training point's share written beside it (for small panels)."""
    fig, ax = _axes(ax, size=(5.0, 6.0))
    lo, hi = bmap.value_range
    ax.imshow(_basin_rgb(bmap), origin="lower", extent=(lo, hi, lo, hi), interpolation="nearest")
    if contours and model is not None:
        xs, ys, loss = loss_surface(model, 151)
        cs = ax.contour(xs, ys, np.maximum(loss, 1e-12), levels=CONTOUR_LEVELS, colors="0.2", linewidths=0.6,
                        alpha=0.7)
        ax.clabel(cs, fmt=lambda v: f"{v:.0e}", fontsize=6)
    tr = bmap.train.numpy()
    _train_points(ax, tr[:, 0], tr[:, 1])
    if len(bmap.spurious):
        sp = bmap.spurious.numpy()
        ax.scatter(sp[:, 0], sp[:, 1], marker="x", s=30, color="0.3", linewidths=1.2, zorder=6)
    if annotate:
        for i, p in enumerate(tr):
            ax.annotate(_pct(float(bmap.fractions[i])), p, xytext=(0, 11), textcoords="offset points", ha="center",
                        fontsize=8, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8), zorder=7)
    ax.set(xlabel="z₁", ylabel="z₂", title=title, xlim=(lo, hi), ylim=(lo, hi))
    if legend:
        _basin_legend(bmap, fig=fig)
    return fig


def plot_basins_1d(bmap, model, *, title: str = "basins of attraction"):
    """A 1D basin map: f(x) against the identity (top) and, under it, the start line coloured by where
    each start's chain ends (one colour per training point, grey spurious, black unsettled), each
    interval labelled with its length; the legend gives every basin's total share."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    a, b = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    lo, hi = bmap.value_range
    xs, ys = _curve(model, lo, hi)
    a.plot(xs, xs, ":", color="grey", label="identity")
    a.plot(xs, ys, color="tab:blue", label="f(x)")
    tr = bmap.train[:, 0].numpy()
    _train_points(a, tr, tr)
    a.set(ylabel="f(x)", title=title, ylim=(lo, hi))
    a.legend(loc="upper left", fontsize=8)
    rgb = _basin_rgb(bmap)[None]
    b.imshow(rgb, extent=(lo, hi, 0, 1), aspect="auto", interpolation="nearest")
    for x0, x1, _ in bmap.intervals():
        b.axvline(x0, color="white", lw=0.8)
        b.text((x0 + x1) / 2, 0.5, f"{x1 - x0:.2f}", ha="center", va="center", fontsize=8)
    _train_points(b, tr, np.full_like(tr, 0.5))
    b.set(xlabel="start x₀", yticks=[], xlim=(lo, hi))
    b.set_title("where each start ends (interval lengths)", fontsize=9)
    _basin_legend(bmap, fig=fig, ncol=3)
    return fig


def plot_basins_by_depth(items, *, title: str = "basins by depth"):
    """Basin maps side by side, ``items`` = [(depth, model or run, map), ...] (e.g. from
    ``studies.capacity.basins_by_depth``): each panel titled by L, each training point's share
    written beside it, one legend for the colours."""
    fig, axes = new_figure(len(items), size=(3.2, 3.7))
    axes = np.atleast_1d(axes)
    for i, (a, (depth, model, bmap)) in enumerate(zip(axes, items)):
        plot_basins_2d(bmap, getattr(model, "model", model), ax=a, title=f"L = {depth}", legend=False, annotate=True)
        if i:
            a.set_ylabel("")
            a.tick_params(labelleft=False)
    from matplotlib.patches import Patch
    k = len(items[0][2].train)
    handles = [Patch(color=c, label=f"point {i}") for i, c in enumerate(basin_colors(k))]
    handles += [Patch(color=SPURIOUS_COLOR, label="spurious"), Patch(color=UNSETTLED_COLOR, label="unsettled")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


BASIN_FRAME_SIZE = (5.0, 6.0)   # inches of one basins-over-training GIF frame (at FRAME_DPI: 500 x 600 px)


def basin_frames(snapshots, *, title: str = "basins while training", dpi: int = FRAME_DPI) -> np.ndarray:
    """One RGB frame per (epoch, model, map) of ``studies.capacity.basins_over_training`` (or of the
    panel's ``basin_maps``, 1D maps too), all of one size, for ``render.save_gif``. Returns uint8
    (F, H, W, 3)."""
    frames = []
    for epoch, model, bmap in snapshots:
        if bmap.dim == 1:
            fig = plot_basins_1d(bmap, model, title=f"{title}: epoch {epoch}")
        else:
            fig, ax = new_figure(1, size=BASIN_FRAME_SIZE)
            plot_basins_2d(bmap, model, ax=ax, title=f"{title}: epoch {epoch}")
        fig.set_dpi(dpi)
        frames.append(fig_to_array(fig))
    return np.stack(frames)


def plot_capacity(rows, *, ax=None, key: str = "attractors", title: str = "stored as attractors"):
    """Share of the training points that are stable attractors against n (log x), from
    ``studies.capacity.capacity_sweep`` rows: mean over seeds as a line per L x H (colour: L,
    line style: H), every seed as a dot."""
    fig, ax = _axes(ax, size=(6.4, 4.4))
    depths = sorted({r["depth"] for r in rows})
    widths = sorted({r["width"] for r in rows})
    styles = ["-", "--", ":", "-."]
    for i, d in enumerate(depths):
        for j, w in enumerate(widths):
            rs = [r for r in rows if r["depth"] == d and r["width"] == w]
            if not rs:
                continue
            ns = sorted({r["n"] for r in rs})
            means = [np.mean([r[key] for r in rs if r["n"] == n]) for n in ns]
            ax.scatter([r["n"] for r in rs], [r[key] for r in rs], s=8, color=f"C{i}", alpha=0.35)
            ax.plot(ns, means, styles[j % len(styles)], marker="o", ms=3, color=f"C{i}", label=f"L={d}, H={w}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="training points n", ylabel="share of training points", ylim=(-0.03, 1.03), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=max(1, len(widths)), loc="lower left")
    return fig


def plot_basin_stats(stats, *, class_names=None, title: str = "basin sizes of training images"):
    """Two panels for ``basins.basin_statistics``: of the random starts that ended on a training image,
    the share on each class (bars, one colour per class) against the class's share of the training set
    (dots), and each image's basin size (share of all starts) against the distance to its nearest other
    training image (dots in the colour of their class)."""
    fig, (a, b) = new_figure(2, size=(4.6, 3.8))
    frac, nn = stats.fraction.numpy(), stats.nn_dist.numpy()
    if stats.classes is not None:
        cls = stats.classes.numpy()
        ks = sorted(set(cls.tolist()))
        names = [class_names[c] if class_names else str(c) for c in ks]
        reached = max(float(frac.sum()), 1e-12)
        a.bar(range(len(ks)), [frac[cls == c].sum() / reached for c in ks], color=[f"C{c % 10}" for c in ks],
              label="starts that reached an image")
        a.scatter(range(len(ks)), [(cls == c).mean() for c in ks], color="black", zorder=3, s=18,
                  label="share of training set")
        a.set_xticks(range(len(ks)), names, rotation=60, ha="right", fontsize=8)
        b.scatter(nn, frac, c=[f"C{c % 10}" for c in cls], s=16, alpha=0.8)
    else:
        b.scatter(nn, frac, s=16, color="tab:blue")
    a.set(ylabel="share", title="by class")
    a.legend(fontsize=7)
    b.set(xlabel="RMS distance to nearest other training image", ylabel="basin size (share of starts)",
          title=f"by isolation (Spearman {stats.rank_nn:.2f})")
    fig.suptitle(title + f" — spurious {_pct(stats.spurious)}, unsettled {_pct(stats.unsettled)}")
    return fig


def plot_sequence_2d(model, seq: torch.Tensor, result=None, *, ax=None, title: str = "stored sequence"):
    """A 2D stored loop: the points x_i in order (numbered, hollow squares), an arrow from each x_i to
    f(x_i) (on x_(i+1) if the loop is stored), and, with a walk ``result`` from
    ``sample.kaleidoscope``, its start states (white rings) and last states (orange)."""
    fig, ax = _axes(ax, size=(5.0, 5.0))
    lo, hi = _range_of(model)
    s = torch.as_tensor(seq).float()
    with torch.no_grad():
        fx = model(s.to(model_device(model))).cpu()
    p, q = s.numpy(), fx.numpy()
    ax.plot(np.r_[p[:, 0], p[:1, 0]], np.r_[p[:, 1], p[:1, 1]], color="0.8", lw=1, zorder=1)
    for i in range(len(p)):
        ax.annotate("", xy=q[i], xytext=p[i], arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2), zorder=3)
        if len(p) <= 24:
            ax.annotate(str(i), p[i], xytext=(7, 7), textcoords="offset points", fontsize=8)
    _train_points(ax, p[:, 0], p[:, 1])
    if result is not None:
        ax.scatter(result.start[:, 0], result.start[:, 1], **START_STYLE)
        ax.scatter(result.final[:, 0], result.final[:, 1], **CHAIN_STYLE)
    ax.set(xlabel="z₁", ylabel="z₂", title=title, xlim=(lo, hi), ylim=(lo, hi))
    ax.set_aspect("equal")
    ax.legend(handles=_legend_handles(("start", "chain", "train") if result is not None else ("train",)),
              loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    return fig
