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
  6. bf16 (issue #15): the MNIST model's training step and sampling step under bf16 autocast
     (train_bf16_ms, bf16_speedup = fp32 step / bf16 step, sample_bf16_ms), and the share of a step
     that the fused Adam update takes (adam_ms)
  7. sweeps (issue #15): ensemble.fit_many vs one fit per net, in CPU seconds of one thread
     (sweep_speedup for N=sweep_nets corner-loss-like nets, depth_sweep_speedup for a depth x seed
     table)
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import math

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils import ModelConfig, build_model, fit, kaleidoscope, pick_device  # noqa: E402
from kals_utils.studies import fit_many  # noqa: E402
from kals_utils.model import n_weights  # noqa: E402
from kals_utils.precision import bf16_supported  # noqa: E402
from kals_utils.train import make_adam  # noqa: E402
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


def train_step_ms(device, dim, depth, width, batch=1000, steps=5, clock=time.perf_counter, precision="fp32"):
    """ms per optimiser step through ``fit`` (full batch of ``batch`` rows: one step per epoch)."""
    model = build_model(ModelConfig(dim, depth, width, "tanh"), seed=0).to(device)
    x = torch.rand(batch, dim, device=device) * 2 - 1
    kw = dict(lr=1e-4, progress=False, precision=precision)
    fit(model, x, epochs=2, **kw)  # warm-up (allocations, kernels)
    # fit also runs a final whole-set loss and a fixed-point check (a forward each, not a step):
    # the difference of a long and a 1-step fit cancels that fixed cost
    long = best_time(lambda: fit(model, x, epochs=steps + 1, **kw), device, 3, 0, clock)
    short = best_time(lambda: fit(model, x, epochs=1, **kw), device, 3, 0, clock)
    return (long - short) / steps * 1e3, n_weights(model)


def adam_ms(device, dim, depth, width):
    """ms of one fused Adam update of the model's weights (part of every training step)."""
    model = build_model(ModelConfig(dim, depth, width, "tanh"), seed=0).to(device)
    opt = make_adam(model, 1e-4)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    return best_time(opt.step, device, repeat=10, warmup=2) * 1e3


def sweep_specs():
    """Two sweeps of tiny nets (L x H=50, sigmoid), as lists of (config, data, epochs, batch, seed).

    corner: like the corner-loss experiment — n uniform points in [0,1]^d, d in {2, 4}, n up to 256
    (11 sizes), 500 Adam steps of batch min(1000, n); depth: L in {2,3,5,7,10} x seeds {0,1,2} on the
    four 2D points, 500 full-batch steps.
    """
    from kals_utils import points
    corner = []
    for d in (2, 4):
        for n in (1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256):
            g = torch.Generator().manual_seed(d * 10_007 + n)
            b = min(1000, n)
            corner.append((ModelConfig(d, 7, 50, "sigmoid"), torch.rand(n, d, generator=g),
                           math.ceil(500 / math.ceil(n / b)), None if b == n else b, 0))
    x = points(dim=2).x
    depth = [(ModelConfig(2, L, 50, "sigmoid"), x, 500, None, s) for L in (2, 3, 5, 7, 10) for s in (0, 1, 2)]
    return {"sweep": corner, "depth_sweep": depth}


def sweep_speedup(spec, clock=time.process_time, repeat=3):
    """(seconds one fit per net, seconds fit_many) for one sweep, on the CPU, one thread: the best of
    ``repeat`` alternating runs of each (the machine is shared; the best run is the least disturbed)."""
    cfgs, data, epochs, batches, seeds = map(list, zip(*spec))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    one, many = math.inf, math.inf
    try:
        fit_many(cfgs[:3], data[:3], epochs=3, lr=1e-3, seeds=0, progress=False)  # warm-up
        fit(build_model(cfgs[0]), data[0], epochs=3, progress=False)
        for _ in range(repeat):
            t = clock()
            for c, x, e, b, s in spec:
                fit(build_model(c, seed=s), x, epochs=e, lr=1e-3, batch_size=b, seed=s, progress=False)
            one = min(one, clock() - t)
            t = clock()
            fit_many(cfgs, data, epochs=epochs, lr=1e-3, batch_sizes=batches, seeds=seeds, progress=False)
            many = min(many, clock() - t)
    finally:
        torch.set_num_threads(before)
    return one, many


def sample_ms(device, model, chains=1000, steps=20):
    x0 = torch.rand(chains, model[0].in_features, device=device) * 2 - 1

    def plain():
        kaleidoscope(model, start=x0, steps=steps, every=steps)  # records only start and end

    def plain_bf16():
        kaleidoscope(model, start=x0, steps=steps, every=steps, precision="bf16")

    def record():
        kaleidoscope(model, start=x0, steps=steps, every=1)

    def render():
        r = kaleidoscope(model, start=x0, steps=steps, every=1, record=48, frame_dtype=torch.uint8)
        grid_frames(r.frames, (1, 28, 28), (-1, 1), nrow=8, scale=2)

    return [best_time(f, device, repeat=3) / steps * 1e3 for f in (plain, record, render, plain_bf16)]


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
    from kals_utils.faces.export import export_gif
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


def arch_step_ms(device, arch, target=60_000, batch=1000, steps=2):
    """One Adam step (ms, best of ``steps`` after a warm-up) of ``arch`` at about ``target`` weights on
    28x28 grey images, batch ``batch``: what each architecture costs at the same size."""
    from kals_utils.model import build_net, width_for_params
    shape = (1, 28, 28)
    depth = {"mlp": 4, "cnn": 4, "unet": 3, "transformer": 4}[arch]
    width = width_for_params(arch, target=target, image_shape=shape, depth=depth)
    model = build_net(arch, image_shape=shape, depth=depth, width=width, seed=0).to(device)
    x = torch.rand(batch, 784, device=device) * 2 - 1
    opt = make_adam(model, 1e-3)
    best = float("inf")
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = ((model(x) - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        if i:
            best = min(best, (time.perf_counter() - t0) * 1e3)
    return best, n_weights(model)


def time_to_quality(precision, root="/usr/share/datasets/fashion-mnist", chunk=250, max_epochs=4000):
    """Wall seconds (training + the checks) until the improved recipe meets the quality targets
    (precision >= 0.9, coverage >= 0.7, memorised <= 0.2; ``experiments.FRONTIER_TARGETS``) on a fixed
    real subset: Fashion-MNIST, 300 images at 16x16, L=10, H=256, full batch, lr 1e-3, seed 0; checked
    every ``chunk`` epochs with 300 chains x 100 steps. (None, epochs) if not met by ``max_epochs``."""
    from kals_utils.data import load_data
    from kals_utils.studies import FRONTIER_TARGETS as T
    from kals_utils.measures.evaluate import evaluate_run
    from kals_utils.pipeline import sample_run, train_run
    data = load_data("fashion-mnist", root=root, subset=300, seed=0, value_range=(-1, 1), image_size=16)
    t0, run, state = time.perf_counter(), None, None
    for total in range(chunk, max_epochs + 1, chunk):
        run = train_run(data, depth=10, width=256, epochs=chunk, lr=1e-3, seed=0, device="cpu", progress=False,
                        recipe="improved", precision=precision, resume=state)
        state = run.result.train_state
        s = evaluate_run(run, sample_run(run, chains=300, steps=100, seed=0, precision=precision),
                         method="power", max_points=10).summary()
        if s["prdc"]["precision"] >= T["precision"] and s["prdc"]["coverage"] >= T["coverage"] \
                and s["memorized"] <= T["memorized"]:
            return time.perf_counter() - t0, total
    return None, max_epochs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="skip the CIFAR-dogs training model (saves ~1 min on a CPU)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    ap.add_argument("--quality", action="store_true",
                    help="also time_to_quality_s, fp32 vs bf16 (minutes; needs Debian's Fashion-MNIST)")
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
            res[f"train_cpu_ms{key}"] = cms
            rows.append(("  same step in CPU seconds", f"{cms:.1f} ms", f"{cms / cfloor:.2f}x floor ({cfloor:.1f} ms)"))

    model = build_model(ModelConfig(784, 10, 500, "tanh"), seed=0).to(device)
    plain, rec, ren, plain16 = sample_ms(device, model)
    res.update(sample_plain_ms=plain, sample_record_ms=rec, sample_render_ms=ren,
               sample_record_ratio=rec / plain, sample_render_ratio=ren / plain)
    rows.append(("sample step, 1000 chains, MNIST model: plain", f"{plain:.2f} ms", ""))
    rows.append(("  + every step recorded (1000 x 784 floats)", f"{rec:.2f} ms", f"{rec / plain:.2f}x plain"))
    rows.append(("  + 48 chains as uint8 grid frames", f"{ren:.2f} ms", f"{ren / plain:.2f}x plain"))
    res.update(sample_bf16_ms=plain16, sample_bf16_speedup=plain / plain16)
    rows.append(("sample step, same, bf16 autocast", f"{plain16:.2f} ms", f"{plain / plain16:.2f}x faster than fp32"))
    gif = gif_ms_per_frame()
    res["gif_ms_per_frame"] = gif
    rows.append(("GIF export, 300 frames of a 48-chain 28x28 grid", f"{gif:.2f} ms/frame", ""))
    e2e = end_to_end_s(device)
    res["end_to_end_smoke_s"] = e2e
    rows.append(("end to end, MNIST notebook path at SMOKE size", f"{e2e:.1f} s", ""))

    if bf16_supported(device):
        ms16, _ = train_step_ms(device, 784, 10, 500, precision="bf16")
        res["train_bf16_ms"], res["bf16_speedup"] = ms16, res["train_ms"] / ms16
        rows.append(("train step MNIST model, bf16 autocast (fp32 weights, loss, Adam)", f"{ms16:.1f} ms",
                     f"{res['train_ms'] / ms16:.2f}x faster than fp32"))
        if cpu_clock:
            cms16, _ = train_step_ms(device, 784, 10, 500, clock=time.process_time, precision="bf16")
            res["train_bf16_cpu_ms"], res["bf16_speedup_cpu_time"] = cms16, res["train_cpu_ms"] / cms16
            rows.append(("  same step in CPU seconds", f"{cms16:.1f} ms",
                         f"{res['train_cpu_ms'] / cms16:.2f}x fewer CPU seconds than fp32"))
        a = adam_ms(device, 784, 10, 500)
        res["adam_ms"] = a
        rows.append(("  of which the fused Adam update (fp32)", f"{a:.1f} ms",
                     f"{a / res['train_ms']:.0%} of the fp32 step, {a / ms16:.0%} of the bf16 step"))
    if device.type == "cpu":
        for key, spec in sweep_specs().items():
            one, many = sweep_speedup(spec)
            res[f"{key}_speedup"], res[f"{key}_nets"] = one / many, len(spec)
            res[f"{key}_one_by_one_s"], res[f"{key}_fit_many_s"] = one, many
            rows.append((f"{key.replace('_', ' ')}: {len(spec)} nets, fit_many vs one fit each (CPU s, 1 thread)",
                         f"{many:.1f} s", f"{one / many:.1f}x faster ({one:.1f} s one by one)"))

    for arch in ("mlp", "cnn", "unet", "transformer"):
        ms, n = arch_step_ms(device, arch)
        res[f"train_ms_{arch}"] = ms
        rows.append((f"train step, {arch}, {n:,} weights, batch 1000, 28x28", f"{ms:.0f} ms", ""))
    if args.quality:
        for prec in ("fp32", "bf16"):
            secs, ep = time_to_quality(prec)
            res[f"time_to_quality_s_{prec}"], res[f"time_to_quality_epochs_{prec}"] = secs, ep
            rows.append((f"time to quality, improved recipe, {prec}", "not met" if secs is None else f"{secs:.0f} s",
                         f"after {ep} epochs"))
        res["time_to_quality_s"] = {p: res[f"time_to_quality_s_{p}"] for p in ("fp32", "bf16")}
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
