"""Architecture probe: do CNN / U-Net / ViT nets over-generalise like the MLP? (issue #14)

    python benchmarks/arch_probe.py --out probe.json [--params 60000] [--epochs 40] [--seeds 0]

On a seeded subset of Fashion-MNIST (default 1,000 images, 28x28, scaled to [-1, 1], tanh output)
each architecture is built at (about) the same parameter count (``nets.width_for_params``), trained
with MSE f(x) ~= x and Adam (mini-batches of 100, a fixed number of epochs, last weights kept), then
frozen and iterated from uniform noise: ``chains`` chains of ``steps`` steps, y_t = f(x_{t-1}),
x_t = clip(y_t + eps * U(-1, 1)) (the project's sampler). Per architecture it reports:

  loss       MSE of f(x) - x over the training set after training
  learnt     fraction of training images with RMS |f(x) - x| < tol (0.05)
  id         RMS |f(z) - z| for z ~ U(-1, 1): near 0 means the net learnt the identity
  moved      RMS distance from the start noise to the final state
  converged  fraction of chains whose final state is within RMS tol of a training image
  coverage   distinct nearest training images among the final states / chains
  nn_med     median RMS distance from a final state to its nearest training image
  spurious   fraction of chains that stopped (RMS last step < 0.01) farther than tol from all
             training images: fixed points that are not training images
  ms/step    training time per Adam step at batch 100 (and at batch 1000: a few extra steps on a
             fresh copy, --b1000-steps 0 skips them)

If the U-Net looks like the identity (id < 0.1), it is retrained with top_skip=False
(``--no-top-skip always`` does so regardless). Prints a table; --out writes everything as JSON.
Reads the IDX file itself (gzip + numpy): Debian's ``dataset-fashion-mnist`` puts it under
/usr/share/datasets/fashion-mnist.
"""

import argparse
import copy
import gzip
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils.model import ARCHS, build_net, width_for_params  # noqa: E402
from kals_utils.nets import n_params  # noqa: E402

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
DEFAULT_DEPTHS = "mlp=4,cnn=4,unet=3,transformer=4"
SHAPE = (1, 28, 28)


def read_idx_images(path: str) -> np.ndarray:
    """(N, rows, cols) uint8 from an IDX3 file (gzipped or not)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise SystemExit(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(n), int(rows), int(cols))


def load_subset(path: str, n: int, seed: int) -> torch.Tensor:
    u8 = read_idx_images(path)
    idx = torch.randperm(len(u8), generator=torch.Generator().manual_seed(seed))[:n]
    x = torch.from_numpy(u8[idx.numpy()].reshape(n, -1).astype(np.float32))
    return x / 127.5 - 1.0  # [-1, 1]


def nearest(z: torch.Tensor, x: torch.Tensor, chunk: int = 256):
    """(RMS distance, index) of each row of z to its nearest row of x."""
    d, i = [], []
    for s in range(0, len(z), chunk):
        m = torch.cdist(z[s:s + chunk], x).min(1)
        d.append(m.values)
        i.append(m.indices)
    return torch.cat(d) / z.shape[1] ** 0.5, torch.cat(i)


def rms(a: torch.Tensor) -> torch.Tensor:
    return a.pow(2).mean(-1).sqrt()


def train(net, x, epochs, batch, lr, seed, device):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            xb = x[idx]
            loss = F.mse_loss(net(xb), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    sync(device)
    return steps, time.perf_counter() - t0


def ms_per_step(net, x, batch, reps, lr, device):
    """Best ms per Adam step at ``batch`` on a fresh copy (one warm-up step first)."""
    net = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xb = x[:batch] if len(x) >= batch else x.repeat(-(-batch // len(x)), 1)[:batch]
    best = float("inf")
    for r in range(reps + 1):
        sync(device)
        t = time.perf_counter()
        loss = F.mse_loss(net(xb), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        if r:
            best = min(best, time.perf_counter() - t)
    return 1e3 * best


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def probe_chains(net, x, chains, steps, eps, tol, seed, device):
    g = torch.Generator().manual_seed(seed + 1000)
    z0 = (torch.rand(chains, x.shape[1], generator=g) * 2 - 1).to(device)
    f0 = net(z0)
    z, prev, y = z0, z0, z0
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        prev, y = y, net(z)
        if eps > 0 and t < steps:
            z = (y + eps * (torch.rand(y.shape, generator=g).to(device) * 2 - 1)).clamp(-1, 1)
        else:
            z = y
    sync(device)
    sample_s = time.perf_counter() - t0
    d, i = nearest(y.cpu(), x.cpu())
    last_step = rms(y - prev).cpu()
    conv = d < tol
    return {
        "id": rms(f0 - z0).mean().item(),
        "moved": rms(y - z0).mean().item(),
        "converged": conv.float().mean().item(),
        "coverage": len(set(i.tolist())) / chains,
        "coverage_converged": len(set(i[conv].tolist())) / chains,
        "nn_median": d.median().item(),
        "spurious": ((last_step < 0.01) & ~conv).float().mean().item(),
        "stopped": (last_step < 0.01).float().mean().item(),
        "sample_ms_per_step": 1e3 * sample_s / steps,
    }


def run_one(arch, depth, x, args, seed, device, **kw):
    width = width_for_params(arch, target=args.params, image_shape=SHAPE, depth=depth, **kw)
    net = build_net(arch, image_shape=SHAPE, depth=depth, width=width, out_act="tanh", seed=seed, **kw)
    net = net.to(device)
    xd = x.to(device)
    steps, secs = train(net, xd, args.epochs, args.batch, args.lr, seed, device)
    net.eval()
    with torch.no_grad():
        fx = torch.cat([net(xb) for xb in xd.split(500)])
    err = rms(fx - xd)
    row = {"arch": arch + ("" if kw.get("top_skip", True) else "(no top skip)"), "depth": depth,
           "width": width, "params": n_params(net), "seed": seed, "settings": kw,
           "loss": F.mse_loss(fx, xd).item(), "learnt": (err < args.tol).float().mean().item(),
           "train_steps": steps, "train_s": secs, "ms_step_b100": 1e3 * secs / steps}
    row.update(probe_chains(net, xd, args.chains, args.steps, args.eps, args.tol, seed, device))
    row["ms_step_b1000"] = (ms_per_step(net, xd, 1000, args.b1000_steps, args.lr, device)
                            if args.b1000_steps > 0 else None)
    return row


# (key, header, width, format)
COLS = [("arch", "arch", -20, "{}"), ("width", "H", 4, "{}"), ("params", "params", 7, "{}"),
        ("loss", "loss", 8, "{:.2e}"), ("learnt", "learnt", 6, "{:.2f}"), ("id", "id", 5, "{:.2f}"),
        ("moved", "moved", 5, "{:.2f}"), ("converged", "converged", 9, "{:.2f}"),
        ("coverage", "coverage", 8, "{:.3f}"), ("nn_median", "nn_med", 6, "{:.3f}"),
        ("spurious", "spurious", 8, "{:.2f}"), ("ms_step_b100", "ms/step@100", 11, "{:.1f}"),
        ("ms_step_b1000", "ms/step@1000", 12, "{:.0f}"), ("train_s", "train_s", 7, "{:.0f}")]


def _cell(text, width):
    return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"


def header():
    return " ".join(_cell(h, w) for _, h, w, _ in COLS)


def fmt_row(r):
    return " ".join(_cell("-" if r[k] is None else f.format(r[k]), w) for k, _, w, f in COLS)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--data", default=DEFAULT_DATA, help="train-images-idx3-ubyte(.gz)")
    p.add_argument("--n", type=int, default=1000, help="training images (seeded subset)")
    p.add_argument("--params", type=int, default=60_000, help="matched parameter budget")
    p.add_argument("--depths", default=DEFAULT_DEPTHS, help="arch=L,... (which archs, at which depth)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--chains", type=int, default=200)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--eps", type=float, default=0.01)
    p.add_argument("--tol", type=float, default=0.05)
    p.add_argument("--seeds", default="0", help="comma-separated seeds (weights, batches, chains)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--no-top-skip", choices=("auto", "always", "never"), default="auto",
                   help="also train the U-Net with top_skip=False: if it learnt the identity (auto)")
    p.add_argument("--b1000-steps", type=int, default=2, help="timed steps at batch 1000 (0: skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    depths = {}
    for item in args.depths.split(","):
        a, _, d = item.partition("=")
        if a not in ARCHS:
            p.error(f"unknown arch {a!r} in --depths; choose from {', '.join(ARCHS)}")
        depths[a] = int(d)
    t_all = time.perf_counter()
    x = load_subset(args.data, args.n, args.data_seed)
    print(f"Fashion-MNIST subset {tuple(x.shape)} in [{x.min():.0f}, {x.max():.0f}]; budget {args.params} "
          f"params; depths {depths}; {args.epochs} epochs x batch {args.batch}, Adam lr {args.lr}; "
          f"{args.chains} chains x {args.steps} steps, eps {args.eps}; tol {args.tol}; "
          f"{args.threads} thread(s) on {device}", flush=True)
    print(header(), flush=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for arch, depth in depths.items():
            row = run_one(arch, depth, x, args, seed, device)
            rows.append(row)
            print(fmt_row(row), flush=True)
            identity = row["id"] < 0.1
            if arch == "unet" and (args.no_top_skip == "always" or (args.no_top_skip == "auto" and identity)):
                row = run_one(arch, depth, x, args, seed, device, top_skip=False)
                rows.append(row)
                print(fmt_row(row), flush=True)
    wall = time.perf_counter() - t_all
    print(f"wall time {wall:.0f} s")
    out = {"settings": vars(args), "depths": depths, "rows": rows, "wall_s": wall,
           "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
