"""kals speed benchmark: how close training and sampling run to this machine's matrix-multiply rate.

    python benchmarks/bench.py [--json PATH] [--device auto|cpu|cuda|mps] [--quick]

Prints a table and (with --json) writes the figures. Everything runs in one process on one device;
ratios compare timings taken in the same run. Sections:
  1. matmul peak: fp32 GEMM 2048^3 (the yardstick)
  2. training: ms per Adam step, MNIST model (D=784, L=10, H=500) and CIFAR-dogs model (D=3072,
     L=10, H=2000), batch 1000, through kals' own `train.fit`; ratio to the FLOP floor
     6 * batch * weights / peak
  3. sampling: ms per step, 1000 chains, MNIST model: (a) plain, (b) every step recorded,
     (c) the 48 shown chains recorded as uint8 and tiled into GIF-ready grids
  4. GIF export: ms per frame, 300 frames of a 48-chain 28x28 grid
  5. end to end: the MNIST notebook's path at SMOKE size (train + sample + GIF), wall seconds
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils import ModelConfig, build_model, fit, kaleidoscope, pick_device  # noqa: E402
from kals_utils.model import n_weights  # noqa: E402
from kals_utils.render import grid_frames, save_gif  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def best_time(fn, device, repeat=5, warmup=1, clock=time.perf_counter):
    """Best time of ``fn()`` over ``repeat`` runs (after ``warmup``), in seconds. ``clock``:
    wall time (perf_counter), or ``time.process_time`` — CPU seconds of all this process's
    threads, which other programs on the machine barely disturb."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        sync(device)
        times.append(clock() - t)
    return min(times)


def matmul_gflops(device, n=2048, repeat=5, clock=time.perf_counter):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t = best_time(lambda: a @ b, device, repeat=repeat, warmup=2, clock=clock)
    return 2 * n ** 3 / t / 1e9


def train_step_ms(device, dim, depth, width, batch=1000, steps=5, clock=time.perf_counter):
    """ms per optimiser step through ``fit`` (full batch of ``batch`` rows: one step per epoch)."""
    model = build_model(ModelConfig(dim, depth, width, "tanh"), seed=0).to(device)
    x = torch.rand(batch, dim, device=device) * 2 - 1
    fit(model, x, epochs=2, lr=1e-4, progress=False)  # warm-up (allocations, kernels)
    # fit also runs a final whole-set loss and a fixed-point check (a forward each, not a step):
    # the difference of a long and a 1-step fit cancels that fixed cost
    long = best_time(lambda: fit(model, x, epochs=steps + 1, lr=1e-4, progress=False), device, 3, 0, clock)
    short = best_time(lambda: fit(model, x, epochs=1, lr=1e-4, progress=False), device, 3, 0, clock)
    return (long - short) / steps * 1e3, n_weights(model)


def sample_ms(device, model, chains=1000, steps=20):
    x0 = torch.rand(chains, model[0].in_features, device=device) * 2 - 1

    def plain():
        kaleidoscope(model, start=x0, steps=steps, every=steps)  # records only start and end

    def record():
        kaleidoscope(model, start=x0, steps=steps, every=1)

    def render():
        r = kaleidoscope(model, start=x0, steps=steps, every=1, record=48, frame_dtype=torch.uint8)
        grid_frames(r.frames, (1, 28, 28), (-1, 1), nrow=8, scale=2)

    return [best_time(f, device, repeat=3) / steps * 1e3 for f in (plain, record, render)]


def gif_ms_per_frame(frames=300):
    g = grid_frames(torch.rand(frames, 48, 784) * 2 - 1, (1, 28, 28), (-1, 1), nrow=8, scale=2)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        save_gif(g, Path(d) / "b.gif", fps=10)
        return (time.perf_counter() - t) / frames * 1e3


def end_to_end_s(device):
    """The MNIST notebook's SMOKE path on MNIST-shaped data (random uint8 pixels: a timing stand-in,
    not MNIST): 200 images, L=10, H=500, 20 epochs of batch 100, 48 chains x 30 steps, GIF."""
    from kals_utils.data import Data
    from kals_utils.export import export_gif
    from kals_utils.pipeline import sample_run, train_run
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (200, 784), generator=g).float() / 255 * 2 - 1
    data = Data(x=x, value_range=(-1.0, 1.0), name="random-mnist-shaped", image_shape=(1, 28, 28))
    t = time.perf_counter()
    run = train_run(data, depth=10, width=500, epochs=20, lr=1e-4, batch_size=100, device=device, progress=False)
    res = sample_run(run, chains=48, steps=30, eps=0.01, record=48)
    with tempfile.TemporaryDirectory() as d:
        export_gif(run, res, Path(d) / "e2e.gif")
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="skip the CIFAR-dogs training model (saves ~1 min on a CPU)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    res = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"}
    if device.type == "cuda":
        res["machine"] = torch.cuda.get_device_name(device)
    rows = []
    peak = matmul_gflops(device)
    res["matmul_gflops"] = peak
    rows.append(("matmul peak (fp32 2048^3)", f"{peak:.1f} GFLOP/s", ""))

    models = [("mnist", 784, 10, 500)] + ([] if args.quick else [("cifar_dogs", 3072, 10, 2000)])
    cpu_clock = device.type == "cpu"
    if cpu_clock:  # the same yardstick in CPU seconds: robust to other load on a shared machine
        peak_cpu = matmul_gflops(device, clock=time.process_time)
        res["matmul_gflops_cpu_time"] = peak_cpu
        rows.append(("matmul peak by CPU time (per CPU-second)", f"{peak_cpu:.1f} GFLOP/s", ""))
    for name, dim, depth, width in models:
        ms, w = train_step_ms(device, dim, depth, width)
        floor = 6 * 1000 * w / (peak * 1e9) * 1e3
        key = "" if name == "mnist" else f"_{name}"
        res[f"train_ms{key}"], res[f"train_floor_ms{key}"], res[f"train_ratio_to_floor{key}"] = ms, floor, ms / floor
        rows.append((f"train step {name} (D={dim}, L={depth}, H={width}, batch 1000, {w / 1e6:.2f}M weights)",
                     f"{ms:.1f} ms", f"{ms / floor:.2f}x floor ({floor:.1f} ms)"))
        if cpu_clock:
            cms, _ = train_step_ms(device, dim, depth, width, clock=time.process_time)
            cfloor = 6 * 1000 * w / (peak_cpu * 1e9) * 1e3
            res[f"train_cpu_ratio_to_floor{key}"] = cms / cfloor
            rows.append(("  same step in CPU seconds", f"{cms:.1f} ms", f"{cms / cfloor:.2f}x floor ({cfloor:.1f} ms)"))

    model = build_model(ModelConfig(784, 10, 500, "tanh"), seed=0).to(device)
    plain, rec, ren = sample_ms(device, model)
    res.update(sample_plain_ms=plain, sample_record_ms=rec, sample_render_ms=ren,
               sample_record_ratio=rec / plain, sample_render_ratio=ren / plain)
    rows.append(("sample step, 1000 chains, MNIST model: plain", f"{plain:.2f} ms", ""))
    rows.append(("  + every step recorded (1000 x 784 floats)", f"{rec:.2f} ms", f"{rec / plain:.2f}x plain"))
    rows.append(("  + 48 chains as uint8 grid frames", f"{ren:.2f} ms", f"{ren / plain:.2f}x plain"))
    gif = gif_ms_per_frame()
    res["gif_ms_per_frame"] = gif
    rows.append(("GIF export, 300 frames of a 48-chain 28x28 grid", f"{gif:.2f} ms/frame", ""))
    e2e = end_to_end_s(device)
    res["end_to_end_smoke_s"] = e2e
    rows.append(("end to end, MNIST notebook path at SMOKE size", f"{e2e:.1f} s", ""))

    print(f"kals benchmark on {res['machine']} ({res['device']}, torch {res['torch']}, {res['threads']} threads)")
    w0 = max(len(r[0]) for r in rows)
    for a, b, c in rows:
        print(f"  {a:<{w0}}  {b:>14}  {c}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
        print(f"figures written to {args.json}")
    return res


if __name__ == "__main__":
    main()
