"""Does bf16 change what the kaleidoscope learns and samples? fp32 vs bf16 on real Fashion-MNIST.

    python benchmarks/precision_quality.py [--seeds 0 1] [--images 1000] [--depth 10] [--width 500]
        [--steps 1500] [--lr 1e-4] [--chains 300] [--sample-steps 100] [--eps 0.01]
        [--idx-dir /usr/share/datasets/fashion-mnist] [--threads 1] [--json PATH]

For each seed: train the same net (same weights, same data, same budget of full-batch Adam steps)
once in fp32 and once in bf16 (autocast; fp32 weights, loss and Adam), then sample each trained
net ``chains`` x ``sample_steps`` (uniform start noise, eps jitter) in fp32 and in bf16. Prints one
row per (seed, training precision, sampling precision):

  train MSE   best whole-set MSE of training, re-measured in fp32 for both nets
  converged   fraction of chains whose final state is within RMS 0.05 of a training image
  coverage    distinct nearest training images / chains
  median NN   median RMS distance of a final state to its nearest training image
  time        training wall / CPU seconds (per net), sampling wall seconds

Data: the gzipped IDX files of Debian's ``dataset-fashion-mnist`` (``dpkg -L dataset-fashion-mnist``),
a seeded subset of ``images`` training images scaled to [-1, 1]; the net's output is tanh.
"""

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils import ModelConfig, build_model, fit, kaleidoscope  # noqa: E402
from kals_utils.data import select_subset  # noqa: E402
from kals_utils.metrics import nearest_neighbours  # noqa: E402
from kals_utils.train import full_loss  # noqa: E402

TOL = 0.05


def read_idx_images(path: Path) -> torch.Tensor:
    """uint8 (N, 28*28) images from an IDX file (gzipped or not)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise SystemExit(f"{path} is not an IDX image file (magic {magic})")
    return torch.from_numpy(np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols).copy())


def load_fashion(idx_dir: Path, images: int, seed: int) -> torch.Tensor:
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        if (idx_dir / name).is_file():
            u8 = read_idx_images(idx_dir / name)
            break
    else:
        raise SystemExit(f"no train-images-idx3-ubyte(.gz) in {idx_dir}; install dataset-fashion-mnist "
                         "or pass --idx-dir")
    idx = select_subset(len(u8), images, seed, "Fashion-MNIST")
    return u8[idx].float() / 255 * 2 - 1


def measure(model, x, result, chains, steps, eps, seed, precision):
    t = time.perf_counter()
    s = kaleidoscope(model, chains=chains, steps=steps, eps=eps, noise="uniform", seed=seed, every=steps,
                     precision=precision)
    seconds = time.perf_counter() - t
    dist, idx = nearest_neighbours(s.final, x)
    ok = dist < TOL
    return {"converged": float(ok.float().mean()), "coverage": len(set(idx.tolist())) / chains,
            "median_nn": float(dist.median()), "sample_s": seconds}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1500, help="full-batch Adam steps per net")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--chains", type=int, default=300)
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print(f"Fashion-MNIST, {args.images} images in [-1, 1], L={args.depth}, H={args.width}, tanh, "
          f"{args.steps} full-batch Adam steps lr {args.lr}; {args.chains} chains x {args.sample_steps} steps, "
          f"eps {args.eps}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for seed in args.seeds:
        x = load_fashion(Path(args.idx_dir), args.images, seed)
        cfg = ModelConfig(x.shape[1], args.depth, args.width, "tanh")
        for train_prec in ("fp32", "bf16"):
            model = build_model(cfg, seed=seed)
            t, c = time.perf_counter(), time.process_time()
            res = fit(model, x, epochs=args.steps, lr=args.lr, seed=seed, progress=False, precision=train_prec)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            mse32 = full_loss(model, x)
            for sample_prec in ("fp32", "bf16"):
                m = measure(model, x, res, args.chains, args.sample_steps, args.eps, seed, sample_prec)
                row = {"seed": seed, "train": train_prec, "sample": sample_prec, "train_mse": mse32,
                       "train_mse_own": res.best_loss, "best_epoch": res.best_epoch, "train_s": wall,
                       "train_cpu_s": cpu, **m}
                rows.append(row)
                print(f"  seed {seed} train {train_prec} sample {sample_prec}: MSE {mse32:.4g} "
                      f"converged {m['converged']:.2f} coverage {m['coverage']:.2f} "
                      f"median NN {m['median_nn']:.3f} (train {wall:.0f} s wall / {cpu:.0f} s CPU, "
                      f"sample {m['sample_s']:.1f} s)", flush=True)
    print()
    head = f"{'seed':>4} {'train':>5} {'sample':>6} {'train MSE':>10} {'converged':>9} {'coverage':>8} " \
           f"{'median NN':>9} {'train s':>8} {'CPU s':>6} {'sample s':>8}"
    print(head)
    for r in rows:
        print(f"{r['seed']:>4} {r['train']:>5} {r['sample']:>6} {r['train_mse']:>10.4g} {r['converged']:>9.2f} "
              f"{r['coverage']:>8.2f} {r['median_nn']:>9.3f} {r['train_s']:>8.0f} {r['train_cpu_s']:>6.0f} "
              f"{r['sample_s']:>8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
