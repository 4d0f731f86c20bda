"""Recipes side by side with the same budget (:func:`compare_recipes`), and the denoising recipe's
knobs against the field's sample metrics (:func:`recipe_frontier`: covering the data without
copying it)."""

import time
from typing import Optional, Sequence

import torch

from ..measures.evaluate import RECORD, evaluate_run
from ..measures.metrics import nearest_neighbours, nearest_pairs
from ..pipeline import sample_run, train_run
from ..recipes import Recipe, get_recipe
from ..measures.tables import _fmt


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
