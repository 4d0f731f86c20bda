"""Basins, capacity and stored sequences (issue #24): the measurements behind docs/results/basins.md.

    python benchmarks/basins_study.py --out basins.json [--parts defaults,capacity2d,capacity_img,sequence,images]
                                      [--data-root /usr/share/datasets/fashion-mnist]

Parts (each one thread, CPU, seeds 0-2 where a sweep has seeds):
  defaults      basin areas of the notebooks' nets (01: 1D {0.2, 0.8}, L=7 H=10; 02: four 2D points,
                L=7 H=50; 2000 full-batch Adam steps at lr 1e-3, seed 0) and the depth comparison
                L = 2, 4, 7, 10 (H=50); 256 x 256 grid (1D: 1024 starts), 200 steps
  capacity2d    attractor share vs n uniform points in [0,1]^2, n = 1..256, L in {2,4,7,10},
                H in {20,50,100}, 2000 full-batch steps (pipeline.train_many)
  capacity_img  the same on Fashion-MNIST 8x8 in [-1,1] (tanh), n = 2..100, L in {4,7}, H in {64,256}
  sequence      longest loop replayed: n points on a circle (radius 0.3), sequence recipe, n = 4..128,
                L x H in {2,4,7} x {50} and 4 x {20,100}, 2000 steps (train.fit, one net at a time)
  images        basin statistics of 100 Fashion-MNIST 8x8 images (L=7, H=256, 2000 uniform starts);
                image sequences: one item rotated in 8 steps (12x12), one item per class (8x8)
Prints tables; --out writes every row and the wall time of each part as JSON.
"""

import argparse
import json
import platform
import time

import torch

from kals_utils import load_data, points, train_run
from kals_utils.measures.basins import basin_map, basin_statistics, sequence_replay
from kals_utils.experiments import format_rows
from kals_utils.studies.capacity import (basins_by_depth, capacity_sweep, capacity_table, circle_points,
                                         class_sequence, holding_limits, image_sequence, longest_replay,
                                         sequence_sweep, uniform_points)

PARTS = ("defaults", "capacity2d", "capacity_img", "sequence", "images")


def _areas(bmap) -> list:
    return [{k: a[k] for k in ("kind", "index", "location", "fraction") if k in a} | (
        {"radius": a["radius"]} if "radius" in a else {}) for a in bmap.attractors()]


def part_defaults(args) -> dict:
    out = {}
    for name, dim, depth, width in (("01", 1, 7, 10), ("02", 2, 7, 50)):
        d = points(dim=dim)
        run = train_run(d, depth=depth, width=width, epochs=2000, lr=1e-3, seed=0, device="cpu", progress=False)
        out[name] = {"report": run.result.report(), "basins": _areas(basin_map(run.model, d.x))}
    out["depths"] = [{"depth": L, "loss": r.result.best_loss, "basins": _areas(b)}
                     for L, r, b in basins_by_depth(points(dim=2), depths=(2, 4, 7, 10), width=50, seed=0)]
    return out


def part_capacity2d(args) -> dict:
    rows = capacity_sweep(lambda n, s: uniform_points(n, seed=s), ns=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                          depths=(2, 4, 7, 10), widths=(20, 50, 100), seeds=(0, 1, 2), epochs=2000, log=print)
    print(format_rows(capacity_table(rows), ["depth", "width", "n", "fixed", "attractors", "attractors_sd",
                                             "radius_median"]))
    print(format_rows(holding_limits(rows)))
    return {"rows": rows, "limits": holding_limits(rows)}


def _fashion(n, seed, root, size=8):
    return load_data("fashion-mnist", root=root, subset=n, seed=seed, value_range=(-1, 1), image_size=size)


def part_capacity_img(args) -> dict:
    rows = capacity_sweep(lambda n, s: _fashion(n, s, args.data_root), ns=(2, 4, 8, 16, 32, 64, 100),
                          depths=(4, 7), widths=(64, 256), seeds=(0, 1, 2), epochs=2000, log=print)
    print(format_rows(capacity_table(rows), ["depth", "width", "n", "loss", "fixed", "attractors",
                                             "attractors_sd", "radius_median"]))
    print(format_rows(holding_limits(rows)))
    return {"rows": rows, "limits": holding_limits(rows)}


def part_sequence(args) -> dict:
    rows = []
    for depths, widths in (((2, 4, 7), (50,)), ((4,), (20, 100))):
        rows += sequence_sweep(circle_points, ns=(4, 8, 16, 32, 64, 128), depths=depths, widths=widths,
                               seeds=(0, 1, 2), epochs=2000, log=print)
    print(format_rows(rows, ["n", "depth", "width", "seed", "loss", "one_step", "from_points", "from_random",
                             "max_error"]))
    print(format_rows(longest_replay(rows)))
    return {"rows": rows, "longest": longest_replay(rows)}


def part_images(args) -> dict:
    data = _fashion(100, 0, args.data_root)
    run = train_run(data, depth=7, width=256, epochs=2000, seed=0, device="cpu", progress=False)
    stats = basin_statistics(run.model, data.x, labels=data.labels, chains=2000, seed=0)
    out = {"stats": {"report": run.result.report(), **stats.to_json()}}
    print(run.result.report(), "reached", stats.to_json()["reached"], "spurious", stats.spurious,
          "unsettled", stats.unsettled, "rank_nn", stats.rank_nn)
    seqs = {"rotate12": image_sequence(_fashion(1, 3, args.data_root, 12).x[0], (1, 12, 12), 8, kind="rotate"),
            "classes8": class_sequence(_fashion(200, 0, args.data_root))}
    out["sequences"] = []
    for name, seq in seqs.items():
        for depth, width in ((4, 256), (7, 256)):
            for seed in (0, 1, 2):
                r = train_run(seq, depth=depth, width=width, epochs=2000, seed=seed, recipe="sequence",
                              device="cpu", progress=False)
                rep = sequence_replay(r.model, seq.x, seed=seed).to_json()
                out["sequences"].append({"data": name, "n": len(seq), "depth": depth, "width": width, "seed": seed,
                                         "loss": r.result.best_loss, **rep})
    print(format_rows(out["sequences"], ["data", "n", "depth", "width", "seed", "loss", "one_step", "from_points",
                                         "from_random", "max_error"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--data-root", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = {"machine": f"{platform.machine()}, {torch.get_num_threads()} thread, torch {torch.__version__}",
              "date": time.strftime("%Y-%m-%d")}
    for part in args.parts.split(","):
        t0 = time.perf_counter()
        result[part] = globals()[f"part_{part}"](args)
        result[part + "_seconds"] = time.perf_counter() - t0
        print(f"== {part}: {result[part + '_seconds']:.0f}s", flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1, default=float)


if __name__ == "__main__":
    main()
