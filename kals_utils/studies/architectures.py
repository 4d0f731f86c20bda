"""Architectures side by side (issue #14): MLP, CNN, U-Net and transformer at matched sizes and the
same training budget on the same images."""

import math
import time
from dataclasses import fields
from typing import Optional, Sequence

from ..errors import KalsError, check_int
from ..measures.evaluate import RECORD, evaluate_run
from ..model import ARCH_HELP, ARCHS, ModelConfig, act_for_range, count_weights, width_for_params
from ..pipeline import sample_run, train_run
from ..presets import ARCH_DEPTHS
from ..recipes import get_recipe


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
