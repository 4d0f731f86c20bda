"""Does bf16 change what the kaleidoscope learns and samples? fp32 vs bf16 on real Fashion-MNIST.

    python benchmarks/precision_quality.py [--root /usr/share/datasets/fashion-mnist] [--images 1000]
        [--image-size 28] [--depth 10] [--width 500] [--epochs 2000] [--lr 1e-3] [--batch-size 0]
        [--recipes paper improved] [--seeds 0 1 2] [--chains 300] [--steps 100] [--eps 0.01]
        [--threads N] [--json PATH]

For each recipe, seed and precision: ``train_run`` (same data, same initial weights, same budget)
in that precision, ``sample_run`` in that precision (the recipe's own start), and ``evaluate_run``
(pixels, k=5; the held-out split gives the ceilings). This is the path a user runs. One row each:

  train MSE     best whole-set training loss (the recipe's objective, measured in fp32)
  precision     PRDC precision of the final chain states
  coverage      PRDC coverage
  memorised     fraction of chains that end on (a near copy of) a training image
  class TV      total variation between the samples' and the data's class histograms (classifier)
  train s       training CPU seconds (process time) and wall seconds

Data: a seeded subset (seed 0, the same for every row) of the training split of the gzipped IDX
files of Debian's ``dataset-fashion-mnist`` (``dpkg -L dataset-fashion-mnist``), scaled to [-1, 1].
Writes the rows as JSON with ``--json`` and prints a markdown table with the seeds side by side.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils import sample_run, train_run  # noqa: E402
from kals_utils.data import load_data  # noqa: E402
from kals_utils.measures.evaluate import evaluate_run  # noqa: E402

METRICS = (("train MSE", "train_mse", "{:.4f}"), ("PRDC precision", "precision", "{:.2f}"),
           ("coverage", "coverage", "{:.2f}"), ("memorised", "memorized", "{:.2f}"),
           ("class TV", "class_tv", "{:.2f}"))


def measure(data, *, recipe, precision, seed, args) -> dict:
    """One trained net (recipe, precision, seed) and its sample metrics."""
    t, c = time.perf_counter(), time.process_time()
    run = train_run(data, depth=args.depth, width=args.width, epochs=args.epochs, lr=args.lr,
                    batch_size=args.batch_size or None, seed=seed, device="cpu", recipe=recipe,
                    precision=precision, progress=False)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    walk = sample_run(run, chains=args.chains, steps=args.steps, eps=args.eps, seed=0, precision=precision)
    s = evaluate_run(run, walk, method="power", max_points=10, data_root=args.root).summary()
    return {"recipe": recipe, "precision_mode": precision, "seed": seed, "train_mse": run.result.best_loss,
            "precision": s["prdc"]["precision"], "coverage": s["prdc"]["coverage"], "memorized": s["memorized"],
            "class_tv": s.get("class_tv"), "train_cpu_s": cpu, "train_wall_s": wall}


def table(rows) -> str:
    """Markdown: one line per (recipe, precision), each metric's values over the seeds."""
    out = ["| recipe | arithmetic | " + " | ".join(m[0] for m in METRICS) + " | train CPU s |",
           "|---" * (len(METRICS) + 3) + "|"]
    keys = list(dict.fromkeys((r["recipe"], r["precision_mode"]) for r in rows))
    for recipe, prec in keys:
        mine = [r for r in rows if (r["recipe"], r["precision_mode"]) == (recipe, prec)]
        cells = [" / ".join("–" if r[k] is None else f.format(r[k]) for r in mine) for _, k, f in METRICS]
        secs = [r["train_cpu_s"] for r in mine]
        out.append(f"| {recipe} | {prec} | " + " | ".join(cells) + f" | {min(secs):.0f}–{max(secs):.0f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=0, help="0: full batch")
    ap.add_argument("--recipes", nargs="+", default=["paper", "improved"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--chains", type=int, default=300)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data("fashion-mnist", root=args.root, subset=args.images, seed=0, value_range=(-1.0, 1.0),
                     image_size=None if args.image_size == 28 else args.image_size)
    rows = []
    for recipe in args.recipes:
        for seed in args.seeds:
            for prec in args.precisions:
                rows.append(measure(data, recipe=recipe, precision=prec, seed=seed, args=args))
                print(json.dumps(rows[-1]), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
