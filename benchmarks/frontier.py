"""Coverage without copying: sweep the denoising recipe's knobs and the sampler's jitter (issue #16).

    python benchmarks/frontier.py [--root DIR] [--subset 300] [--image-size 16] [--depth 6]
        [--width 256] [--epochs 600] [--lr 1e-3] [--chains 300] [--steps 100] [--seed 0]
        [--sigmas "0.05,0.2;0.1,0.4;0.2,0.8;0.4,1.0"] [--scales 1.0,1.3,2.0]
        [--eps 0,0.05,0.1,0.2] [--jitter normal] [--no-refs] [--json PATH] [--budget-s S]

Trains one net per denoising sigma range (the ``improved`` recipe's objective) and samples it
many times (start scale x eps: sampling is cheap); adds the ``paper`` and ``improved`` recipes as
reference rows. Every row is measured with ``evaluate_run`` (PRDC in pixel space, k=5; held-out
test-split ceilings). Writes a JSON list of rows and prints a markdown table. One thread, CPU.
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
from kals_utils.recipes import IMPROVED, PAPER, Recipe  # noqa: E402

RECORD, EVERY = 48, 1
COLUMNS = ("name", "sigma", "scale", "eps", "jitter", "precision", "recall", "density", "coverage",
           "memorized", "visited_mean", "class_tv", "ceil_precision", "ceil_coverage", "ceil_memorized", "eval_s")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--subset", type=int, default=300)
    p.add_argument("--image-size", type=int, default=16, help="0 = native 28x28")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--epochs", type=int, default=600)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--chains", type=int, default=300)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sigmas", default="0.05,0.2;0.1,0.4;0.2,0.8;0.4,1.0", help="'lo,hi;lo,hi'")
    p.add_argument("--scales", default="1.0,1.3,2.0")
    p.add_argument("--eps", default="0,0.05,0.1,0.2")
    p.add_argument("--jitter", default="normal", choices=("normal", "uniform"))
    p.add_argument("--no-refs", action="store_true", help="skip the paper/improved reference rows")
    p.add_argument("--json", default="frontier.json")
    p.add_argument("--budget-s", type=float, default=None, help="stop starting new rows after this")
    p.add_argument("--plot", default=None, help="PNG: memorised (x) vs PRDC coverage (y), all rows")
    p.add_argument("--plot-only", default=None, help="JSON rows to plot (no training); needs --plot")
    p.add_argument("--gif", default=None, help="GIF of the best 'keeps moving' setting (48 chains, every 2)")
    return p.parse_args(argv)


def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def sigma_ranges(text):
    return [tuple(floats(part)) for part in text.split(";") if part.strip()]


def load(args):
    size = args.image_size or None
    return load_data("fashion-mnist", root=args.root, subset=args.subset, seed=0, value_range=(-1, 1),
                     image_size=size)


def train(data, recipe, args):
    t0 = time.perf_counter()
    run = train_run(data, depth=args.depth, width=args.width, epochs=args.epochs, lr=args.lr,
                    batch_size=None, seed=args.seed, device="cpu", progress=False, recipe=recipe)
    return run, time.perf_counter() - t0


def measure(run, recipe, args, *, eps, jitter, noise="uniform"):
    """One sampled walk of ``run`` started as ``recipe`` says, and its summary."""
    t0 = time.perf_counter()
    walk = sample_run(run, chains=args.chains, steps=args.steps, every=EVERY, eps=eps, jitter=jitter,
                      noise=noise, seed=args.seed, record=RECORD, recipe=recipe)
    s = evaluate_run(run, walk, k=5, features="pixels", data_root=args.root, seed=args.seed,
                     method="power", max_points=50).summary()
    return s, time.perf_counter() - t0


def row(name, recipe, eps, jitter, s, eval_s, train_s):
    p, c = s["prdc"], s.get("prdc_ceiling") or {}
    return {"name": name, "sigma": list(recipe.sigma), "scale": recipe.start_scale if recipe.start_kind else None,
            "eps": eps, "jitter": jitter, "precision": p["precision"], "recall": p["recall"],
            "density": p["density"], "coverage": p["coverage"], "memorized": s["memorized"],
            "visited_mean": s.get("visited_mean"), "class_tv": s.get("class_tv"), "spurious": s.get("spurious"),
            "novel_fixed": s.get("novel_fixed"), "ceil_precision": c.get("precision"),
            "ceil_recall": c.get("recall"), "ceil_coverage": c.get("coverage"),
            "ceil_density": c.get("density"), "ceil_memorized": c.get("memorized"),
            "eval_s": eval_s, "train_s": train_s}


def fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "(" + ", ".join(fmt(x) for x in v) + ")" if v else "-"
    return "-" if v is None else str(v)


def table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def reference_rows(data, args, trained):
    """paper (uniform start, eps 0.01 uniform) and improved (its defaults, eps 0.01 uniform)."""
    run, train_s = train(data, PAPER, args)
    out = [row("paper", PAPER, 0.01, "uniform", *measure(run, PAPER, args, eps=0.01, jitter="uniform"), train_s)]
    run, train_s = trained.get(IMPROVED.sigma) or train(data, IMPROVED, args)
    out.append(row("improved", IMPROVED, 0.01, "uniform",
                   *measure(run, IMPROVED, args, eps=0.01, jitter="uniform"), train_s))
    return out


def sweep_sigma(data, sigma, args, rows, deadline):
    recipe = Recipe(f"sigma{sigma[0]}-{sigma[1]}", "frontier sweep", sigma=sigma, start_kind="data")
    run, train_s = train(data, recipe, args)
    print(f"trained sigma {sigma} in {train_s:.0f} s", flush=True)
    for scale in floats(args.scales):
        for eps in floats(args.eps):
            if time.perf_counter() > deadline:
                return run, train_s
            r = Recipe(recipe.name, recipe.summary, sigma=sigma, start_kind="data", start_scale=scale)
            rows.append(row("sweep", r, eps, args.jitter, *measure(run, r, args, eps=eps, jitter=args.jitter),
                            train_s))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            save(rows, args.json)
    return run, train_s


def save(rows, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(rows, indent=1))


def plot(rows, path):
    """memorised (x) against PRDC coverage (y); colour = sigma range, marker size = eps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.fill_between([-0.02, 0.2], 0.7, 1.02, color="green", alpha=0.08, label="target (cov >= 0.7, mem <= 0.2)")
    sweep = [r for r in rows if r["name"] == "sweep"]
    sigmas = sorted({tuple(r["sigma"]) for r in sweep})
    cmap = plt.get_cmap("viridis", max(len(sigmas), 2))
    for i, sg in enumerate(sigmas):
        rs = [r for r in sweep if tuple(r["sigma"]) == sg]
        ax.scatter([r["memorized"] for r in rs], [r["coverage"] for r in rs], s=[20 + 300 * r["eps"] for r in rs],
                   color=cmap(i), alpha=0.7, label=f"sigma {sg[0]}-{sg[1]}")
    for r in rows:
        if r["name"] != "sweep":
            ax.scatter(r["memorized"], r["coverage"], marker="*", s=250, color="red" if r["name"] == "paper" else "k")
            ax.annotate(r.get("label", r["name"]), (r["memorized"], r["coverage"]), textcoords="offset points",
                        xytext=(6, 4))
    ax.set(xlabel="memorised fraction", ylabel="PRDC coverage (pixels, k=5)", xlim=(-0.02, 1.02), ylim=(0, 1.02),
           title="Fashion-MNIST: coverage vs memorisation (marker size ~ eps)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def best_moving(rows):
    ok = [r for r in rows if r["name"] == "sweep" and r["precision"] >= 0.9 and r["visited_mean"] is not None]
    return max(ok, key=lambda r: r["visited_mean"]) if ok else None


def gif(trained, rows, args):
    """The best 'keeps moving' row (precision >= 0.9, highest visited_mean) as a GIF + last-frame PNG."""
    from kals_utils.faces.export import export_gif, frames_of
    from kals_utils.render import save_png
    best = best_moving(rows)
    if best is None:
        return None
    run = trained[tuple(best["sigma"])][0]
    r = Recipe("gif", sigma=tuple(best["sigma"]), start_kind="data", start_scale=best["scale"])
    walk = sample_run(run, chains=args.chains, steps=args.steps, every=2, eps=best["eps"], jitter=best["jitter"],
                      seed=args.seed, record=48, recipe=r, frame_dtype=torch.uint8)
    export_gif(run, walk, args.gif)
    save_png(frames_of(run, walk, scale=4)[-1], Path(args.gif).with_name(Path(args.gif).stem + "_last.png"))
    return best


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.plot_only:
        return plot(json.loads(Path(args.plot_only).read_text()), args.plot)
    deadline = time.perf_counter() + (args.budget_s or float("inf"))
    data = load(args)
    rows, trained = [], {}
    for sigma in sigma_ranges(args.sigmas):
        if time.perf_counter() > deadline:
            break
        trained[sigma] = sweep_sigma(data, sigma, args, rows, deadline)
    if not args.no_refs:
        rows[:0] = reference_rows(data, args, trained)
    save(rows, args.json)
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)
    if args.gif:
        print("gif of", gif(trained, rows, args))


if __name__ == "__main__":
    main()
