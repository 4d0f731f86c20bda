"""Does the kaleidoscope keep turning? Mixing of samplers on one trained net (issues #21, #30).

    python benchmarks/mixing.py [--data fashion-mnist] [--root /usr/share/datasets/fashion-mnist] [--images 1000]
        [--image-size 28] [--depth 10] [--width 500] [--epochs 400] [--batch-size 100] [--lr 1e-3]
        [--recipe improved] [--train-seed 0] [--checkpoint runs/mixing_fashion-mnist.pt]
        [--samplers walk dae langevin annealed walkjump walkjump:0.65] [--seeds 0 1 2] [--chains 200]
        [--steps 100] [--features pixels classifier] [--targets morph] [--json saved_samples/mixing_fashion-mnist.json]

Trains (or loads from ``--checkpoint``) one net with ``train_run(recipe=...)``, then for every
sampler and sampling seed walks ``--chains`` chains for ``--steps`` steps from the recipe's start
(every step recorded; the frames are f's outputs) and measures, with
:func:`kals_utils.studies.mixing.walk_mixing`: distinct nearest training images per chain,
the fraction of chains that change class, the integrated autocorrelation time of the
nearest-neighbour index, frame-by-frame precision / coverage / memorised fraction after the
burn-in, precision / coverage pooled over the last 50 steps of all chains, and the continuity
figure (95th percentile of the RMS change between consecutive frames, in units of the data's spread).
A sampler given as ``name:scale`` runs at that noise scale instead of the run's. ``--data digits``
(scikit-learn's bundled 8x8 digits, ``--image-size 16`` upsamples them) and ``--data lfw``
(scikit-image's bundled faces) check that the recipe travels. ``--checkpoint``: a saved net is
measured as it is (the lead's newer recipe, say); a missing one is trained and saved there. The held-out ceiling (real test images in place of a frame) is printed too.
Writes the rows as JSON and prints a markdown table (mean and range over the seeds).
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils import sample, train_run  # noqa: E402
from kals_utils.data import Data, load_data  # noqa: E402
from kals_utils.measures.mixing import framewise_quality  # noqa: E402
from kals_utils.measures.evaluate import feature_space  # noqa: E402
from kals_utils.measures.features import embedder, load_or_train_classifier  # noqa: E402
from kals_utils.pipeline import load_run, run_scale, save_run  # noqa: E402
from kals_utils.studies.mixing import MORPH_TARGETS, TARGETS, mixing_study  # noqa: E402

COLS = (("precision_min", "precision (min frame)"), ("classifier_precision_min", "cls precision (min frame)"),
        ("pooled_coverage", "coverage (last 50)"), ("classifier_pooled_coverage", "cls coverage (last 50)"),
        ("precision_median", "precision (median frame)"), ("classifier_precision_median", "cls precision (median frame)"),
        ("memorized_max", "memorised (max frame)"), ("visited", "visited / chain"),
        ("class_change", "chains changing class"), ("tau", "tau (steps)"), ("continuity", "continuity p95 (spreads)"),
        ("step_median", "median step (spreads)"))
TARGET_SETS = {"mixing": TARGETS, "morph": MORPH_TARGETS}  # issue #21's, issue #30's


def sklearn_data(name: str, n: int, seed: int, size: int = 0, heldout: bool = False) -> Data:
    """scikit-learn's 8x8 digits or scikit-image's LFW faces (25x25 grey), scaled to [-1, 1]: a seeded
    subset of n images, or with ``heldout`` the rest; ``size`` > 0: resized to size x size (bilinear,
    antialiased)."""
    if name == "digits":
        from sklearn.datasets import load_digits
        b = load_digits()
        x, labels, shape = torch.tensor(b.data, dtype=torch.float32) / 16.0, torch.tensor(b.target), (1, 8, 8)
    else:
        from skimage.data import lfw_subset
        imgs = torch.tensor(lfw_subset(), dtype=torch.float32)  # (200, 25, 25) in [0, 1]
        x, labels, shape = imgs.reshape(len(imgs), -1), None, (1, 25, 25)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    idx = (perm[n:] if heldout else perm[:n]).sort().values
    if size and size != shape[-1]:
        x = torch.nn.functional.interpolate(x.reshape(-1, *shape), size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False).clamp(0, 1).reshape(len(x), -1)
        shape = (1, size, size)
    return Data(x=x[idx] * 2 - 1, value_range=(-1.0, 1.0), name=name, image_shape=shape,
                labels=None if labels is None else labels[idx], subset=n, seed=seed)


def digits_features(args, data: Data) -> dict:
    """Classifier features for scikit-learn's digits: kals's small CNN trained on the run's training
    images and tested on the held-out rest (cached under the checkpoint's folder)."""
    rest = sklearn_data("digits", args.images, 0, args.image_size, heldout=True)
    cache = Path(args.checkpoint or "runs/x").parent / "kals_cache" / f"classifier_digits_{data.image_shape[-1]}.pt"
    model, meta = load_or_train_classifier(cache, data.x, data.labels, image_shape=data.image_shape, x_test=rest.x,
                                           labels_test=rest.labels, value_range=data.value_range)
    return {"classifier": embedder("classifier", image_shape=data.image_shape, value_range=data.value_range,
                                   classifier=model)}


def get_data(args) -> Data:
    if args.data in ("digits", "lfw"):
        return sklearn_data(args.data, args.images, 0, args.image_size)
    size = None if args.image_size in (0, 28) else args.image_size
    return load_data(args.data, root=args.root, subset=args.images, seed=0, value_range=(-1, 1), image_size=size)


def get_run(args, data: Data):
    """The checkpoint if it exists (same settings assumed), else a fresh train_run saved there."""
    if args.checkpoint and Path(args.checkpoint).is_file():
        return load_run(args.checkpoint, device="cpu"), None
    t, c = time.perf_counter(), time.process_time()
    run = train_run(data, depth=args.depth, width=args.width, epochs=args.epochs, batch_size=args.batch_size or None,
                    lr=args.lr, recipe=args.recipe, precision="auto", progress=False, device="cpu", seed=args.train_seed)
    wall = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
    if args.checkpoint:
        save_run(run, args.checkpoint, keep_train_state=False)
    return run, wall


def sampler_specs(names, scale: float, centre: float) -> list:
    """One spec per sampler name: the paper's walk, the walk with restarts, or a moving sampler at
    the run's scale (Langevin at scale / 1.41, about the centre of the training noise; walkjump at
    the ``centre``); a name
    ``sampler:s`` is that moving sampler at noise scale s."""
    out = []
    for name in names:
        if ":" in name:
            kind, s = name.split(":")
            out.append({"label": f"{kind} s={float(s):.2f}", "sampler": kind, "scale": float(s)})
        else:
            out.append(_named_specs(scale, centre)[name])
    return out


def _named_specs(scale: float, centre: float) -> dict:
    return {"walk": {"label": "walk (paper)", "sampler": "walk"},
             "dae": {"label": f"dae s={scale:.2f}", "sampler": "dae", "scale": scale},
             "langevin": {"label": f"langevin s={scale / 1.41:.2f}", "sampler": "langevin", "scale": scale / 1.41},
             "annealed": {"label": f"annealed s={scale:.2f}", "sampler": "annealed", "scale": scale},
             "settle": {"label": f"settle s={scale:.2f}", "sampler": "settle", "scale": scale},
             "restart": {"label": "restart every 10", "sampler": "restart"},
             "walkjump": {"label": f"walkjump s={centre:.2f}", "sampler": "walkjump", "scale": centre}}


def ceiling(args, run, features) -> dict:
    """Frame metrics for held-out real images in place of a frame (the best a generator can read)."""
    if args.data == "lfw":
        return {}
    size = None if args.image_size in (0, 28) else args.image_size
    if args.data == "digits":
        rest = sklearn_data("digits", args.images, 0, args.image_size, heldout=True).x
        test_x = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(1))[:args.chains]]
    else:
        test_x = load_data(args.data, root=args.root, subset=args.chains, seed=1, value_range=(-1, 1), image_size=size,
                           train=False).x
    out = {}
    for name, embed in features.items():
        q = framewise_quality(test_x[None], run.data.x, features=embed)
        out.update({(k if name == "pixels" else f"{name}_{k}"): v[0] for k, v in q.items()})
    return out


def table(rows, targets=TARGETS) -> str:
    cols = [c for c in COLS if any(c[0] in r for r in rows)]
    out = ["| sampler | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label in dict.fromkeys(r["label"] for r in rows):
        rs = [r for r in rows if r["label"] == label]
        cells = []
        for key, _ in cols:
            v = [r[key] for r in rs]
            mark = ""
            if key in targets:
                op, bound = targets[key]
                mark = " ✓" if all((x >= bound) if op == ">=" else (x <= bound) for x in v) else " ✗"
            cells.append(f"{sum(v) / len(v):.2f} ({min(v):.2f}–{max(v):.2f}){mark}" if len(v) > 1 else f"{v[0]:.2f}{mark}")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist",
                   help="data folder (a writable copy or symlinks lets the classifier be cached in it)")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=0, help="resize the images (default 0: their own size)")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--recipe", default="improved")
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--checkpoint", default="")
    p.add_argument("--samplers", nargs="+", default=["walk", "restart", "dae", "langevin"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--chains", type=int, default=200)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--features", nargs="+", default=["pixels", "classifier"])
    p.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                   help="override a sampler constant of kals_utils.sample for this run, e.g. WALKJUMP_STEP=0.3")
    p.add_argument("--targets", choices=list(TARGET_SETS), default="morph", help="targets the table marks")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for item in args.set:  # exploration: a sampler's constants (the defaults stay in kals_utils.sample)
        name, value = item.split("=")
        setattr(sample, name, type(getattr(sample, name))(value))
    t0, c0 = time.perf_counter(), time.process_time()
    data = get_data(args)
    run, train_wall = get_run(args, data)
    features = {f: feature_space(run.config, f, data_root=args.root) for f in args.features
                if f == "pixels" or run.data.labels is not None and args.data not in ("digits", "lfw")}
    if args.data == "digits" and "classifier" in args.features:
        features.update(digits_features(args, run.data))
    rows = mixing_study(run, sampler_specs(args.samplers, run_scale(run), run_scale(run, "walkjump")), seeds=args.seeds, chains=args.chains,
                        steps=args.steps, features=features)
    ceil = ceiling(args, run, features)
    out = {"machine": f"{cpu_model()}, {os.cpu_count()} cores (shared), torch {torch.__version__}, 1 thread, "
                      f"python {platform.python_version()}",
           "date": time.strftime("%Y-%m-%d"), "settings": vars(args), "train": run.result.report(),
           "config_extra": run.config.extra, "train_time": train_wall, "ceiling": ceil,
           "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rows": rows}
    path = Path(args.json or f"saved_samples/mixing_{args.data}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(run.result.report(), run.config.extra)
    print("held-out ceiling (one frame of real test images):", {k: round(v, 3) for k, v in ceil.items()})
    print(table(rows, TARGET_SETS[args.targets]))
    print(f"wall {out['wall_s']:.0f} s, CPU {out['cpu_s']:.0f} s; rows in {path}")


if __name__ == "__main__":
    main()
