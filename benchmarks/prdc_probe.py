"""Sample metrics on real Fashion-MNIST: ceilings and sanity values in three feature spaces.

    python benchmarks/prdc_probe.py [--fmnist DIR] [--data-root data] [--n 1000] [--k 5]
                                    [--classifier-train 10000] [--epochs 3] [--big]

Reads the gzipped IDX files (Debian's dataset-fashion-mnist puts them in
/usr/share/datasets/fashion-mnist) with gzip + numpy. The "training set" is ``--n`` seeded
training images in [-1, 1]; every fake set has ``--n`` images and is compared with that set
(k = ``--k``) in pixel, random-CNN and classifier features:

  ceiling      ``--n`` held-out test images (the best a generator can expect: "real vs real")
  heldout B    another ``--n`` test images (should read about the ceiling)
  train+noise  the training images + N(0, 0.05²) noise (memorised ≈ 1, precision/density high)
  100 copies   100 training images × 10, + the same noise (mode collapse: coverage drops)
  uniform      uniform noise in [-1, 1] (precision ≈ 0)

The classifier (for the classifier features and the "recog." column: max softmax >= 0.9) is
trained by kals on ``--classifier-train`` training images and cached under
``<data-root>/kals_cache`` (with outlier exposure, see kals_utils.measures.features); its test accuracy
on the 10K test images is printed. ``--big`` also
times PRDC on 10K × 10K pixel features (chunked, float64). Runs on the CPU.
"""

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils import features as F  # noqa: E402
from kals_utils.measures.prdc import memorized_fraction, prdc, real_reference, frechet_distance  # noqa: E402

SHAPE = (1, 28, 28)
VR = (-1.0, 1.0)


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder: Path, split: str):
    images = read_idx(folder / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
    x = torch.from_numpy(images.copy()).reshape(len(images), -1).float() / 255 * 2 - 1
    return x, torch.from_numpy(labels.astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--classifier-train", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    folder = Path(args.fmnist)
    x_train_all, y_train_all = load(folder, "train")
    x_test, y_test = load(folder, "t10k")
    print(f"Fashion-MNIST: {len(x_train_all)} train, {len(x_test)} test images, read in "
          f"{time.perf_counter() - t0:.1f} s; torch {torch.__version__}, {torch.get_num_threads()} threads")

    g = torch.Generator().manual_seed(args.seed)
    train = real_reference(x_train_all, args.n, seed=args.seed)
    test_perm = torch.randperm(len(x_test), generator=g)
    heldout_a, heldout_b = x_test[test_perm[:args.n]], x_test[test_perm[args.n:2 * args.n]]
    noise = 0.05 * torch.randn(args.n, train.shape[1], generator=g)
    reps = args.n // 100 + 1
    fakes = {
        "ceiling (held-out A)": heldout_a,
        "held-out B": heldout_b,
        "train + noise 0.05": (train + noise).clamp(-1, 1),
        "100 copies + noise": (train[:100].repeat(reps, 1)[:args.n] + noise).clamp(-1, 1),
        "uniform noise": torch.rand(args.n, train.shape[1], generator=g) * 2 - 1,
    }

    # classifier: trained by kals, cached
    idx = real_reference(torch.arange(len(x_train_all)), args.classifier_train, seed=args.seed + 1)
    cache = F.classifier_cache_path(args.data_root, "fashion-mnist", SHAPE)
    t = time.perf_counter()
    clf, meta = F.load_or_train_classifier(cache, x_train_all[idx], y_train_all[idx], image_shape=SHAPE,
                                           x_test=x_test, labels_test=y_test, value_range=VR,
                                           epochs=args.epochs, seed=args.seed)
    print(f"classifier: {meta['n_train']} train images, {meta['epochs']} epochs, test accuracy "
          f"{meta['test_acc']:.4f} on {meta['n_test']}; trained in {meta['train_seconds']:.1f} s "
          f"({'loaded from cache' if meta['cached'] else 'fresh'}, this call {time.perf_counter() - t:.1f} s)")

    recog = {name: F.recognisable_fraction(clf, fake, value_range=VR) for name, fake in fakes.items()}
    recog_train = F.recognisable_fraction(clf, train, value_range=VR)
    memo = {name: memorized_fraction(fake, train) for name, fake in fakes.items()}

    print(f"\nn = {args.n} real (training subset) vs n fake, k = {args.k}; memorised: pixel-space ratio test "
          f"(d1 < d2/3) against the {args.n} training images; recog.: classifier max softmax >= 0.9 "
          f"(training images: {recog_train:.3f})\n")
    header = (f"| {'features':10} | {'fake set':22} | {'prec.':>6} | {'recall':>6} | {'density':>7} | "
              f"{'cover.':>6} | {'Fréchet':>9} | {'memo.':>5} | {'recog.':>6} | {'sec':>5} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for kind in F.FEATURES:
        t = time.perf_counter()
        emb = lambda x: F.embed(x, kind=kind, image_shape=SHAPE, value_range=VR, classifier=clf)  # noqa: E731
        f_real = emb(train)
        t_embed = time.perf_counter() - t
        for name, fake in fakes.items():
            t = time.perf_counter()
            f_fake = emb(fake)
            m = prdc(f_real, f_fake, k=args.k)
            fd = frechet_distance(f_real, f_fake)
            sec = time.perf_counter() - t + (t_embed if name.startswith("ceiling") else 0.0)
            print(f"| {kind:10} | {name:22} | {m['precision']:6.3f} | {m['recall']:6.3f} | {m['density']:7.3f} | "
                  f"{m['coverage']:6.3f} | {fd:9.4g} | {memo[name]:5.3f} | {recog[name]:6.3f} | {sec:5.2f} |")

    if args.big:
        n = min(10000, len(x_test))
        real_big = real_reference(x_train_all, n, seed=args.seed)
        t = time.perf_counter()
        m = prdc(real_big, x_test[:n], k=args.k)
        print(f"\nPRDC {n} x {n} pixel features (D=784): {time.perf_counter() - t:.1f} s; "
              + ", ".join(f"{key} {m[key]:.3f}" for key in ("precision", "recall", "density", "coverage")))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
