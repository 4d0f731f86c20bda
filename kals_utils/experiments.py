"""Studies over many runs, each returning a list of dicts (one per run) so that a notebook cell is
one call plus a table or a plot; and the tables themselves.

- :func:`corner_loss_vs_points`: the paper's "loss at the corners of the cube vs number of training
  points" (n uniform points in [0, 1]^d, L=7, H=50, 10,000 Adam steps of batch min(1000, n)).
- :func:`train_with_reconstructions`: :func:`pipeline.train_run` that also keeps f(x) of a few
  training images at log-spaced epochs, to show what the net has learnt so far.
- :func:`depth_sweep`: every depth in {2, 3, 5, 7, 10} with the same budget, several seeds.
- :func:`mixing_sweep`: with eps > 0, how often chains hop between attractors.
- :func:`compare_recipes`: recipes side by side with the same budget, several seeds.
- :func:`summarise`: mean and spread over seeds; :func:`format_rows`: a Markdown table.
Every walk goes through :func:`pipeline.sample_run`, so each run is sampled with its own recipe.
"""

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .data import Data
from .device import pick_device
from .errors import KalsError, check_int
from .export import export_gif
from .metrics import TOL, Evaluation, attractor_stability, nearest_neighbours, nearest_pairs, transition_counts
from .model import ARCH_HELP, ARCHS, ModelConfig, act_for_range, build_model, config_of, count_weights, residual, width_for_params
from .pipeline import RECORD, evaluate_run, make_config, sample_run, train_many, train_run
from .plots import new_figure, plot_images, plot_losses
from .recipes import Recipe, get_recipe
from .render import gif_name, safe_name
from .train import EPOCHS, LR


# ---------------------------------------------------------------- corner loss
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
    lines = [f"{'d':>2} {'n':>5} {'corner loss':>12} {'paper':>7} {'train loss':>11} {'steps':>6} {'time':>7} "
             f"{'attractors':>10}"]
    for p in points:
        ref = PAPER_CORNER_LOSS.get(p.dim, {}).get(p.n)
        lines.append(f"{p.dim:>2} {p.n:>5} {p.corner_loss:>12.4f} {'' if ref is None else f'{ref:.3f}':>7} "
                     f"{p.train_loss:>11.2e} {p.steps:>6} {p.seconds:>6.1f}s {p.attractor_fraction:>10.2f}")
    return "\n".join(lines)



# ---------------------------------------------------------------- reconstructions
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


# ---------------------------------------------------------------- depth sweep and mixing
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


# ---------------------------------------------------------------- recipes side by side
COMPARE_KEYS = ("class_tv", "coverage", "median_nn", "copies", "converged", "spurious", "attractor_fraction",
                "burn_in")
# The targets (measured with 300 chains x 100 steps): key -> (direction, bound).
TARGETS = {"class_tv": ("<=", 0.2), "coverage": (">=", 0.3), "median_nn": ("<=", 0.2), "copies": ("<=", 0.2)}


def meets(row: dict) -> str:
    """The targets a result row misses, e.g. ``"coverage"``, or ``"all"`` when it meets every one."""
    miss = [k for k, (op, bound) in TARGETS.items() if row.get(k) is not None
            and not (row[k] <= bound if op == "<=" else row[k] >= bound)]
    return "all" if not miss else "misses " + ", ".join(miss)


def compare_recipes(data, *, recipes: Sequence = ("paper", "improved"), seeds: Sequence[int] = (0, 1, 2), depth: int = 10,
            width: int = 256, epochs: int = 3000, lr: float = 1e-3, batch_size: Optional[int] = None,
            chains: int = 300, steps: int = 100, eps: float = 0.01, noise: str = "uniform", device="auto",
            max_points: Optional[int] = 100, keep_runs: bool = False, progress: bool = False, log=None) -> list:
    """Train and sample every recipe on ``data`` for every seed with the same budget (L, H, epochs,
    lr, batch) and measure the samples with :func:`pipeline.evaluate_run`.

    Returns one dict per (recipe, seed): data, image (e.g. "1x16x16"), n, recipe, seed, depth, width,
    epochs, lr, loss (best clean training MSE), the :data:`COMPARE_KEYS` metrics (``class_tv`` only
    for labelled data), targets (:func:`meets`), seconds; with ``keep_runs`` also ``run`` (the
    :class:`pipeline.Run`) and ``samples`` (its SampleResult) for GIFs and nearest-neighbour grids.
    Mean and spread over seeds: ``summarise(rows, by=("data", "image", "recipe"))``.
    ``log``: e.g. ``print``, called with one line per finished run.
    """
    rows = []
    for name in recipes:
        recipe = get_recipe(name)
        for seed in seeds:
            t0 = time.perf_counter()
            run = train_run(data, depth=depth, width=width, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            device=device, progress=progress, recipe=recipe)
            res = sample_run(run, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed,
                             record=min(chains, RECORD), recipe=recipe)
            s = evaluate_run(run, res, seed=seed, max_points=max_points).summary()
            row = {"data": data.name, "image": "x".join(map(str, data.image_shape or (data.dim,))), "n": len(data),
                   "recipe": recipe.name, "seed": seed, "depth": depth, "width": width, "epochs": epochs, "lr": lr,
                   "loss": run.result.best_loss}
            row.update({k: s.get(k) for k in COMPARE_KEYS})
            row["targets"] = meets(row)
            row["seconds"] = time.perf_counter() - t0
            if keep_runs:
                row["run"], row["samples"] = run, res
            rows.append(row)
            if log is not None:
                log(f"{data.name} {row['image']} {recipe.name} seed={seed}: " + ", ".join(
                    f"{k}={row[k]:.3g}" for k in ("class_tv", "coverage", "median_nn", "copies")
                    if row.get(k) is not None) + f" ({row['seconds']:.0f}s)")
    return rows


def comparison_gifs(rows: Sequence[dict], out_dir, *, chains: int = 48, steps: int = 100, every: int = 2,
                    eps: float = 0.01, seed: int = 0) -> dict:
    """One GIF per recipe from the first kept run of each in ``rows`` (``compare_recipes(..., keep_runs=True)``),
    written to ``out_dir``, every frame labelled "recipe: <name>" and its step; returns {recipe name: path}."""
    gifs = {}
    for row in rows:
        if row["recipe"] in gifs or "run" not in row:
            continue
        run = row["run"]
        walk = sample_run(run, chains=chains, steps=steps, every=every, eps=eps, seed=seed)
        name = gif_name(run.config, chains, steps, eps, "start", extra=f"_{row['recipe']}")
        gifs[row["recipe"]] = export_gif(run, walk, Path(out_dir) / name, title=f"recipe: {row['recipe']}")
    return gifs


def nearest_image_pairs(rows: Sequence[dict], train: torch.Tensor, *, k: int = 16) -> dict:
    """{recipe: (2k, D) tensor}: k final samples of the first kept run of each recipe, each followed by
    its nearest training image; draw with ``plots.plot_images(pairs[name], ..., pairs=True)``, which
    frames each pair and heads the columns "sample" / "nearest training image"."""
    pairs = {}
    for row in rows:
        if row["recipe"] in pairs or "samples" not in row:
            continue
        final = row["samples"].final
        _, idx = nearest_neighbours(final, train)
        pairs[row["recipe"]] = nearest_pairs(final, train, idx, k=k)
    return pairs


# ---------------------------------------------------------------- tables
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
    head = (f"sample metrics in {p['features']} space, k={p['k']}, real = {p['real']}"
            + (f"; ceiling = {c['real']}" if c else "; no held-out images: no ceiling (give the data root)"))
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


# ---------------------------------------------------------------- architectures side by side
ARCH_DEPTHS = {"mlp": 4, "cnn": 4, "unet": 3, "transformer": 4}  # L per architecture (model.ARCH_HELP)
ARCH_KEYS = ("converged", "converged_at_5", "coverage", "median_nn", "novelty", "spurious", "attractor_fraction",
             "radius_median", "class_tv", "burn_in")
PARAM_SLACK = 0.2  # matched sizes: every net within +-20% of the target parameter count


def arch_label(arch: str, settings: Optional[dict] = None, recipe: str = "paper") -> str:
    """A row's name: the architecture, its settings that differ from :class:`model.ModelConfig`'s
    defaults and a non-paper recipe, e.g. ``unet(top_skip=False)+improved``."""
    defaults = {f.name: f.default for f in fields(ModelConfig)}
    kw = ",".join(f"{k}={v}" for k, v in sorted((settings or {}).items()) if defaults.get(k) != v)
    return arch + (f"({kw})" if kw else "") + ("" if get_recipe(recipe).name == "paper" else f"+{get_recipe(recipe).name}")


def matched_width(arch: str, *, target: int, image_shape, depth: int, out_act: str = "tanh", **arch_kw) -> tuple:
    """(width, parameters) of the ``arch`` net nearest ``target`` weights (:func:`model.width_for_params`);
    KalsError if no width comes within :data:`PARAM_SLACK` of it (e.g. a U-Net's smallest width is too big)."""
    width = width_for_params(arch, target=target, image_shape=image_shape, depth=depth, out_act=out_act, **arch_kw)
    params = count_weights(ModelConfig(dim=math.prod(image_shape), depth=depth, width=width, out_act=out_act,
                                       arch=arch, image_shape=None if arch == "mlp" else image_shape, **arch_kw))
    if abs(params - target) > PARAM_SLACK * target:
        raise KalsError(f"{arch} at L={depth} cannot come within {PARAM_SLACK:.0%} of {target} parameters "
                        f"(nearest: H={width}, {params}); change its depth or the target")
    return width, params


def compare_architectures(data, *, archs: Sequence[str] = ARCHS, target_params: int = 60_000,
                          depths: Optional[dict] = None, arch_kw: Optional[dict] = None, seeds: Sequence[int] = (0, 1, 2),
                          epochs: int = 40, lr: float = 1e-3, batch_size: Optional[int] = 100, chains: int = 200,
                          steps: int = 50, eps: float = 0.01, noise: str = "uniform", recipe: str = "paper",
                          device="auto", max_points: Optional[int] = 100, keep_runs: bool = False,
                          progress: bool = False, log=None) -> list:
    """Every architecture in ``archs`` on the images ``data`` at a matched size and the same
    training budget, for every seed: the width comes from ``target_params`` (within +-20%, see
    :func:`matched_width`), the depth from ``depths`` (default :data:`ARCH_DEPTHS`), the settings
    from ``arch_kw`` ({arch: {"patch": 28}} etc.); each net is trained with ``recipe`` (``epochs``
    at ``lr``, batch ``batch_size``), then ``chains`` x ``steps`` chains start from ``noise`` (also
    for a recipe with a start of its own: every row answers "does noise fall onto the data?") and
    are measured by :func:`pipeline.evaluate_run` (power-iteration Jacobians at <= ``max_points``
    training images).

    One dict per (arch, seed): data, arch, label (:func:`arch_label`), recipe, depth, width, params,
    seed, epochs, batch, loss (best training MSE), learnt (fraction of training images reproduced),
    the :data:`ARCH_KEYS` metrics, train_seconds, ms_per_step (training time / optimiser steps),
    seconds (train + sample + measure); with ``keep_runs`` also ``run`` and ``samples``. Mean and
    spread: ``summarise(rows, by=("label",))``. ``log``: e.g. ``print``, one line per run.
    """
    if data.image_shape is None:
        raise KalsError("compare_architectures needs images (data with an image shape)")
    depths, arch_kw, rows = {**ARCH_DEPTHS, **(depths or {})}, arch_kw or {}, []
    batch = len(data) if batch_size is None else min(check_int("batch size", batch_size, 1), len(data))
    for arch in archs:
        kw = dict(arch_kw.get(arch, {}))
        width, params = matched_width(arch, target=target_params, image_shape=data.image_shape, depth=depths[arch],
                                      out_act=act_for_range(*data.value_range), **kw)
        for seed in seeds:
            t0 = time.perf_counter()
            run = train_run(data, depth=depths[arch], width=width, arch=arch, arch_kw=kw, epochs=epochs, lr=lr,
                            batch_size=batch_size, seed=seed, device=device, progress=progress, recipe=recipe)
            t_train = time.perf_counter() - t0
            res = sample_run(run, chains=chains, steps=steps, noise=noise, eps=eps, seed=seed,
                             record=min(chains, RECORD), recipe="paper")
            s = evaluate_run(run, res, method="power", seed=seed, max_points=max_points).summary()
            row = {"data": data.name, "arch": arch, "label": arch_label(arch, kw, recipe), "recipe": run.config.recipe,
                   "depth": depths[arch], "width": width, "params": params, "seed": seed, "epochs": epochs,
                   "batch": batch, "loss": run.result.best_loss,
                   "learnt": run.result.learnt / max(1, run.result.n_train)}
            row.update({k: s.get(k) for k in ARCH_KEYS})
            n_steps = max(1, run.result.epochs_done * math.ceil(len(data) / batch))
            row.update(train_seconds=t_train, ms_per_step=1e3 * t_train / n_steps, seconds=time.perf_counter() - t0)
            if keep_runs:
                row["run"], row["samples"] = run, res
            rows.append(row)
            if log is not None:
                log(f"{row['label']} L={row['depth']} H={width} ({params} weights) seed={seed}: " + ", ".join(
                    f"{k}={row[k]:.3g}" for k in ("loss", "learnt", "converged", "coverage", "median_nn", "spurious")
                    if row.get(k) is not None) + f" ({row['seconds']:.0f}s, {row['ms_per_step']:.0f} ms/step)")
    return rows


def kept_runs(rows: Sequence[dict]) -> dict:
    """{label: run} of the first kept run of each label in ``rows`` (``compare_architectures(...,
    keep_runs=True)``); e.g. ``kept_runs(rows)["mlp"]`` for the control panel."""
    out = {}
    for row in rows:
        if "run" in row:
            out.setdefault(row["label"], row["run"])
    return out


def final_samples(rows: Sequence[dict], *, k: int = 16) -> dict:
    """{label: (k, D)}: the final states of the first ``k`` chains of the first kept run of each label."""
    out = {}
    for row in rows:
        if "samples" in row:
            out.setdefault(row["label"], row["samples"].final[:k])
    return out


def architecture_gifs(rows: Sequence[dict], out_dir, *, chains: int = 48, steps: int = 60, every: int = 1,
                      eps: float = 0.01, noise: str = "uniform", seed: int = 0, scale: int = 1) -> dict:
    """One GIF per label from the first kept run of each (``keep_runs=True``), chains from ``noise``,
    pixels times ``scale`` (1 keeps a 48-chain, 31-frame GIF of 28x28 noise under 1 MB); named by
    :func:`render.gif_name` with ``_<label>`` appended (made file-safe). Returns {label: path}."""
    gifs = {}
    for label, run in kept_runs(rows).items():
        walk = sample_run(run, chains=chains, steps=steps, every=every, noise=noise, eps=eps, seed=seed,
                          recipe="paper")
        name = gif_name(run.config, chains, steps, eps, noise, extra=f"_{safe_name(label)}")
        gifs[label] = export_gif(run, walk, Path(out_dir) / name, scale=scale)
    return gifs


def matched_sizes(image_shape, *, archs: Sequence[str] = ARCHS, target_params: int = 60_000,
                  depths: Optional[dict] = None, arch_kw: Optional[dict] = None, out_act: str = "tanh") -> list:
    """What :func:`compare_architectures` would build, without training: one dict per arch with
    arch, depth (L), width (H), params and meaning (what L and H are, :data:`model.ARCH_HELP`)."""
    depths, arch_kw, out = {**ARCH_DEPTHS, **(depths or {})}, arch_kw or {}, []
    for arch in archs:
        width, params = matched_width(arch, target=target_params, image_shape=tuple(image_shape), depth=depths[arch],
                                      out_act=out_act, **arch_kw.get(arch, {}))
        out.append({"arch": arch_label(arch, arch_kw.get(arch)), "depth": depths[arch], "width": width,
                    "params": params, "meaning": ARCH_HELP[arch]})
    return out


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


# ---------------------------------------------------------------- covering without copying
FRONTIER_TARGETS = {"precision": 0.9, "coverage": 0.7, "memorized": 0.2}  # >=, >=, <=


def recipe_frontier(data, *, sigmas: Sequence[tuple] = ((0.2, 0.8), (0.4, 1.0), (0.6, 1.2), (0.8, 1.6)),
                    scales: Sequence[float] = (1.3,), eps_values: Sequence[float] = (0.0, 0.1),
                    jitter: str = "normal", depth: int = 10, width: int = 256, epochs: int = 3000, lr: float = 1e-3,
                    chains: int = 300, steps: int = 100, seed: int = 0, device="auto", data_root=None,
                    features: str = "pixels", log=None) -> list:
    """The denoising recipe's knobs against the field's sample metrics: one net per noise range
    ``sigmas`` (data-covariance start), sampled once per start scale x jitter eps. One row per walk:
    sigma, scale, eps, precision, recall, density, coverage (PRDC, k=5), memorized, visited_mean,
    class_tv, the ceilings (``ceil_*``, with ``data_root``) and ``meets`` (all FRONTIER_TARGETS)."""
    rows = []
    for sigma in sigmas:
        run = train_run(data, depth=depth, width=width, epochs=epochs, lr=lr, seed=seed, device=device,
                        progress=False, recipe=Recipe("denoise", sigma=tuple(sigma), start_kind="data"))
        for scale in scales:
            for eps in eps_values:
                recipe = Recipe("denoise", sigma=tuple(sigma), start_kind="data", start_scale=scale)
                walk = sample_run(run, chains=chains, steps=steps, eps=eps, jitter=jitter, seed=seed,
                                  record=min(chains, RECORD), recipe=recipe)
                rows.append(_frontier_row(evaluate_run(run, walk, seed=seed, method="power", max_points=50,
                                                       data_root=data_root, features=features).summary(),
                                          sigma=tuple(sigma), scale=scale, eps=eps))
                if log is not None:
                    log(" ".join(f"{k}={_fmt(v)}" for k, v in rows[-1].items() if not k.startswith("ceil_")))
    return rows


def _frontier_row(s: dict, **knobs) -> dict:
    p, c = s["prdc"], s.get("prdc_ceiling") or {}
    row = dict(knobs, precision=p["precision"], recall=p["recall"], density=p["density"], coverage=p["coverage"],
               memorized=s["memorized"], visited_mean=s.get("visited_mean"), class_tv=s.get("class_tv"))
    row.update({f"ceil_{k}": c.get(k) for k in ("precision", "coverage", "memorized")})
    t = FRONTIER_TARGETS
    row["meets"] = (row["precision"] >= t["precision"] and row["coverage"] >= t["coverage"]
                    and row["memorized"] <= t["memorized"])
    return row
