"""Studies of basins, capacity and stored sequences (issue #24): what trains the nets that
:mod:`kals_utils.measures.basins` measures.

- :func:`basins_by_depth` / :func:`basins_over_training`: 2D basin maps for several depths, and at
  log-spaced epochs of one training run (frames of the "basins forming" GIF).
- :func:`capacity_sweep`: the share of n training points that are stable attractors, for several
  L x H and seeds, all nets of one width trained together (:func:`pipeline.train_many`), as in
  Radhakrishnan, Belkin, Uhler, PNAS 2020 (https://doi.org/10.1073/pnas.2005013117);
  :func:`holding_limits` says where each L x H stops holding its training set.
- :func:`sequence_sweep`: how long a loop x_0 -> ... -> x_(n-1) -> x_0 an L x H net replays (the
  ``sequence`` recipe); data: :func:`circle_points` (a closed curve), :func:`image_sequence` (one
  image rotated or shifted in steps), :func:`class_sequence` (one image per class, in class order).
"""

import copy
import math
import time
from typing import Callable, Optional, Sequence

import torch

from ..measures.basins import BASIN_STEPS, GRID_2D, REPLAY_BURN, REPLAY_CHAINS, basin_map, capacity, sequence_replay
from ..data import Data, points
from ..errors import KalsError, check_int
from ..measures.metrics import TOL
from ..model import build_model
from ..pipeline import make_config, sample_run, train_run
from ..presets import EPOCHS, LR
from ..measures.tables import summarise
from .ensemble import train_many

CIRCLE_CENTRE, CIRCLE_RADIUS = 0.5, 0.3   # the closed curve of the 2D sequences, inside [0, 1]^2
SNAPSHOTS = 8                             # log-spaced epochs of basins_over_training
HOLD_LEVEL = 1.0                          # a net "holds" its training set while this share are attractors


# ---------------------------------------------------------------- data
def circle_points(n: int, *, radius: float = CIRCLE_RADIUS, centre: float = CIRCLE_CENTRE) -> Data:
    """``n`` points evenly spaced on a circle in [0, 1]^2, counter-clockwise from angle 0: an
    ordered closed curve for the ``sequence`` recipe."""
    n = check_int("n", n, 2)
    t = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    x = torch.stack([centre + radius * t.cos(), centre + radius * t.sin()], dim=1).float()
    return points(x, dim=2)


def uniform_points(n: int, *, dim: int = 2, seed: int = 0) -> Data:
    """``n`` seeded uniform points in [0, 1]^dim."""
    x = torch.rand(check_int("n", n, 1), dim, generator=torch.Generator().manual_seed(seed))
    return points(x, dim=dim)


def image_sequence(image: torch.Tensor, image_shape, n: int, *, kind: str = "rotate", value_range=(-1.0, 1.0),
                   name: str = "sequence") -> Data:
    """``n`` copies of one flat ``image`` (D,), rotated by 360/n degrees (``rotate``) or shifted
    right by one pixel (``shift``, wrapping round) per step, in order: a loop of images."""
    import torchvision.transforms.functional as TF
    if kind not in ("rotate", "shift"):
        raise KalsError(f"unknown image sequence {kind!r}; choose rotate or shift")
    img = image.reshape(image_shape).float()
    lo = float(value_range[0])
    frames = []
    for i in range(check_int("n", n, 2)):
        if kind == "rotate":  # rotate the image's offset from the background, so the corners stay background
            frames.append(TF.rotate((img - lo)[None], 360.0 * i / n,
                                    interpolation=TF.InterpolationMode.BILINEAR)[0] + lo)
        else:
            frames.append(torch.roll(img, i, dims=-1))
    x = torch.stack(frames).reshape(n, -1).clamp(*value_range)
    return Data(x=x, value_range=tuple(map(float, value_range)), name=name, image_shape=tuple(image_shape))


def class_sequence(data: Data) -> Data:
    """One image of each class of a labelled ``data``, in class order (the first image of each)."""
    if data.labels is None:
        raise KalsError(f"{data.name} has no labels; a class sequence needs a labelled data set")
    classes = torch.unique(data.labels).tolist()
    idx = torch.tensor([int((data.labels == c).nonzero()[0]) for c in classes])
    return Data(x=data.x[idx], value_range=data.value_range, name=f"{data.name}-classes",
                image_shape=data.image_shape, labels=data.labels[idx], class_names=data.class_names)


# ---------------------------------------------------------------- basin maps
def basins_by_depth(data: Data, *, depths: Sequence[int] = (2, 4, 7, 10), width: int = 50, seed: int = 0,
                    epochs: int = EPOCHS, lr: float = LR, grid: int = GRID_2D, steps: int = BASIN_STEPS,
                    device="cpu") -> list:
    """One net per depth (same width, budget and seed, trained together), and its basin map:
    a list of (depth, run, :class:`basins.BasinMap`)."""
    runs = train_many([data] * len(depths), depths=list(depths), width=width, seeds=seed, epochs=epochs, lr=lr,
                      device=device)
    return [(d, r, basin_map(r.model, data.x, grid=grid, steps=steps)) for d, r in zip(depths, runs)]


def basin_rows(items) -> list:
    """One row per (depth, run, map) of :func:`basins_by_depth`: depth, the area share of each
    training point's basin (``basins``, in the data's order), spurious, unsettled, and how many
    training points are stable attractors."""
    rows = []
    for depth, run, bmap in items:
        k = len(bmap.train)
        rows.append({"depth": depth, "loss": run.result.best_loss, "basins": bmap.fractions[:k].tolist(),
                     "spurious": float(bmap.fractions[k:-1].sum()), "unsettled": float(bmap.fractions[-1]),
                     "attractors": int(bmap.stable.sum())})
    return rows


def snapshot_epochs(epochs: int, count: int = SNAPSHOTS) -> list:
    """``count`` log-spaced epoch numbers from 1 to ``epochs`` (distinct, increasing)."""
    epochs = check_int("epochs", epochs, 1)
    vals = torch.logspace(0, math.log10(epochs), check_int("snapshots", count, 1)).round().long().tolist()
    return sorted(set(vals))


def basins_over_training(data: Data, *, depth: int = 7, width: int = 50, seed: int = 0, epochs: int = EPOCHS,
                         lr: float = LR, snapshots: int = SNAPSHOTS, grid: int = 128, steps: int = BASIN_STEPS,
                         device="cpu") -> tuple:
    """Train one net and take its weights after each of :func:`snapshot_epochs` epochs; returns
    (run, [(epoch, model at that epoch, basin map), ...]) — the frames of the basins forming."""
    when = set(snapshot_epochs(epochs, snapshots))
    model = build_model(make_config(data, depth, width).model, seed=seed)  # the net train_run would build
    kept = {}

    def keep(epoch, loss):  # epoch is 0-based: the weights after epoch + 1 steps
        if epoch + 1 in when:
            kept[epoch + 1] = copy.deepcopy(model.state_dict())
    run = train_run(data, depth=depth, width=width, seed=seed, epochs=epochs, lr=lr, device=device, progress=False,
                    callback=keep, model=model)
    frames = []
    for e in sorted(kept):
        m = copy.deepcopy(run.model)
        m.load_state_dict(kept[e])
        frames.append((e, m, basin_map(m, data.x, grid=grid, steps=steps)))
    return run, frames


# ---------------------------------------------------------------- capacity
def capacity_sweep(make_data: Callable[[int, int], Data], *, ns: Sequence[int], depths: Sequence[int],
                   widths: Sequence[int], seeds: Sequence[int] = (0, 1, 2), epochs: int = EPOCHS, lr: float = LR,
                   tol: float = TOL, device="cpu", log=None) -> list:
    """For every n, L, H and seed: train an L x H net on ``make_data(n, seed)`` (all nets of one
    width together, :func:`pipeline.train_many`) and measure :func:`basins.capacity`. One dict per
    net: data, n, depth, width, seed, loss, fixed, attractors, radius_median, seconds (the width's
    training time shared out evenly, plus the net's own Jacobians)."""
    rows = []
    for width in widths:
        grid = [(n, d, s) for n in ns for d in depths for s in seeds]
        datas = [make_data(n, s) for n, _, s in grid]
        t0 = time.perf_counter()
        runs = train_many(datas, depths=[d for _, d, _ in grid], width=width, seeds=[s for _, _, s in grid],
                          epochs=epochs, lr=lr, device=device)
        share = (time.perf_counter() - t0) / len(runs)
        for (n, depth, seed), data, run in zip(grid, datas, runs):
            t1 = time.perf_counter()
            c = capacity(run.model, data.x, tol=tol)
            rows.append({"data": data.name, "n": n, "depth": depth, "width": width, "seed": seed,
                         "loss": run.result.best_loss, "fixed": c.fixed, "attractors": c.attractors,
                         "radius_median": c.radius_median, "seconds": share + time.perf_counter() - t1})
        if log is not None:
            log(f"H={width}: {len(runs)} nets in {time.perf_counter() - t0:.1f}s")
    return rows


def capacity_table(rows: Sequence[dict]) -> list:
    """Mean and sd over seeds per (data, depth, width, n)."""
    return summarise(rows, by=("data", "depth", "width", "n"), keys=("loss", "fixed", "attractors", "radius_median"))


def holding_limits(rows: Sequence[dict], level: float = HOLD_LEVEL) -> list:
    """Per (data, L, H): ``holds_up_to`` the largest n up to which every swept n had a mean attractor
    share >= ``level``; ``first_lost`` the next swept n (None: held all); ``half_at`` the first n
    with a mean share < 0.5; and the share at the largest n."""
    out = []
    table = capacity_table(rows)
    for key in dict.fromkeys((r["data"], r["depth"], r["width"]) for r in table):
        rs = sorted((r for r in table if (r["data"], r["depth"], r["width"]) == key), key=lambda r: r["n"])
        lost = next((r["n"] for r in rs if r["attractors"] < level - 1e-9), None)
        held = [r["n"] for r in rs if lost is None or r["n"] < lost]
        out.append({"data": key[0], "depth": key[1], "width": key[2], "holds_up_to": held[-1] if held else None,
                    "first_lost": lost, "half_at": next((r["n"] for r in rs if r["attractors"] < 0.5), None),
                    "at_max_n": rs[-1]["attractors"], "max_n": rs[-1]["n"]})
    return out


# ---------------------------------------------------------------- stored sequences
def sequence_sweep(make_seq: Callable[[int], Data], *, ns: Sequence[int], depths: Sequence[int],
                   widths: Sequence[int], seeds: Sequence[int] = (0, 1, 2), epochs: int = EPOCHS, lr: float = LR,
                   tol: float = TOL, chains: int = REPLAY_CHAINS, burn: int = REPLAY_BURN, device="cpu",
                   log=None) -> list:
    """For every n, L, H and seed: train a ``sequence`` net on ``make_seq(n)`` (train.fit with the
    next point as target; one net at a time) and measure :func:`basins.sequence_replay`. One dict
    per net: n, depth, width, seed, loss, one_step, from_points, from_random, max_error, seconds."""
    rows = []
    for n in ns:
        seq = make_seq(n)
        for depth in depths:
            for width in widths:
                for seed in seeds:
                    t0 = time.perf_counter()
                    run = train_run(seq, depth=depth, width=width, seed=seed, epochs=epochs, lr=lr,
                                    recipe="sequence", device=device, progress=False)
                    r = sequence_replay(run.model, seq.x, tol=tol, chains=chains, burn=burn, seed=seed)
                    rows.append({"data": seq.name, "n": n, "depth": depth, "width": width, "seed": seed,
                                 "loss": run.result.best_loss, **{k: getattr(r, k) for k in
                                 ("one_step", "from_points", "from_random", "max_error")},
                                 "seconds": time.perf_counter() - t0})
        if log is not None:
            log(f"n={n} done")
    return rows


def longest_replay(rows: Sequence[dict], *, random_level: float = 0.9) -> list:
    """Per (L, H, seed): the longest n swept that the net replays from every point
    (``from_points`` = 1) and the longest it also reaches from random starts (``from_random`` >=
    ``random_level``); then per (L, H) the median over seeds."""
    per = {}
    for r in rows:
        k = (r["depth"], r["width"], r["seed"])
        best = per.setdefault(k, {"points": 0, "random": 0})
        if r["from_points"] == 1.0:
            best["points"] = max(best["points"], r["n"])
            if r["from_random"] >= random_level:
                best["random"] = max(best["random"], r["n"])
    out = []
    for lh in dict.fromkeys((d, w) for d, w, _ in per):
        vals = [v for (d, w, _), v in per.items() if (d, w) == lh]
        pts, rnd = sorted(v["points"] for v in vals), sorted(v["random"] for v in vals)
        out.append({"depth": lh[0], "width": lh[1], "seeds": len(vals), "longest_from_points": pts,
                    "median_from_points": pts[len(pts) // 2], "longest_from_random": rnd,
                    "median_from_random": rnd[len(rnd) // 2]})
    return out


def replay_walk(run, *, chains: int = 64, steps: Optional[int] = None, seed: int = 0):
    """A walk from uniform noise long enough to burn in and play the loop twice (for figures)."""
    steps = steps if steps is not None else REPLAY_BURN + 2 * len(run.data)
    return sample_run(run, chains=chains, steps=steps, noise="uniform", seed=seed)
