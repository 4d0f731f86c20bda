"""Command line: ``python -m kals_utils {demo,train,sample,evaluate}``, and the ``.npz`` samples file
(written by ``sample --save-samples``, read by ``evaluate``).

User mistakes print one line ``kals: error: ...`` and exit 2; Ctrl-C during ``train`` saves the best
weights so far to ``--out`` and exits 130.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .data import load_data, points
from .errors import KalsError, check_float, check_int, check_seed
from .experiments import format_evaluation
from .export import export_gif
from .files import atomic_path, ensure_writable
from .features import FEATURES
from .metrics import ATTRACTOR_POINTS, BURN_TOL, K, TOL, Evaluation, evaluate_samples
from .model import ARCH_HELP, ARCHS, PATCH, ModelConfig, RunConfig, act_for_range, out_range
from .pipeline import RECORD, feature_space, heldout_images, load_run, sample_run, save_run, train_run
from .plots import fig_to_array, plot_2d
from .precision import PRECISIONS
from .recipes import RECIPES
from .render import GIF_CHAINS, GIF_FPS, gif_name, save_png
from .sample import CHAINS, NOISES, SAMPLERS, STEPS, kaleidoscope
from .train import EPOCHS, LR

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
RECIPE_NAMES = tuple(RECIPES)


COMMANDS = ("demo", "train", "sample", "evaluate")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        words = self.prog.split()
        cmd = words[-1] if len(words) > 1 and words[-1] in COMMANDS else ""
        if "invalid choice" in message and not cmd:
            import difflib
            wrong = message.split("'")[1] if "'" in message else ""
            close = difflib.get_close_matches(wrong, COMMANDS, n=1)
            message = f"unknown command {wrong!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                      f"; choose one of {', '.join(COMMANDS)}")
        raise KalsError(f"{message} (see `python -m kals_utils {cmd + ' ' if cmd else ''}--help`)")


def _common(p):
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default), bf16 (bfloat16 matrix multiplies, fp32 weights, Adam and loss) or auto "
                        "(bf16 where the device multiplies bf16 natively and the net has >= 200k weights)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto: CUDA, MPS, CPU)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _train_parser(sub):
    p = sub.add_parser("train", help="fit f(x)≈x on a data set and save a checkpoint")
    p.add_argument("--data", required=True, help="points1d|points2d|mnist|fashion-mnist|cifar-dogs|celeba|folder:PATH")
    p.add_argument("--data-root", default="data", help="where torchvision data sets live / are downloaded (default data/)")
    p.add_argument("--subset", type=int, default=None, help="seeded random subset of N images (default: all)")
    p.add_argument("--image-size", type=int, default=None, help="resize images to N x N")
    p.add_argument("--points", default=None, help="training points, e.g. '0.2;0.8' or '0.2,0.2;0.8,0.8'")
    p.add_argument("--arch", choices=ARCHS, default="mlp",
                   help="the net f: " + "; ".join(f"{a}: {h}" for a, h in ARCH_HELP.items()) +
                        " (default mlp; cnn, unet and transformer need images)")
    p.add_argument("--depth", "-L", type=int, required=True, help="depth L (>= 1; its meaning per --arch above)")
    p.add_argument("--width", "-H", type=int, required=True, help="width H (>= 1; its meaning per --arch above)")
    p.add_argument("--patch", type=int, default=PATCH, help=f"transformer patch size in pixels (default {PATCH})")
    p.add_argument("--no-top-skip", action="store_true",
                   help="unet: drop the full-resolution skip connection (so f cannot copy its input through it)")
    p.add_argument("--out-act", choices=["sigmoid", "tanh"], default=None,
                   help="output activation: sigmoid -> [0,1], tanh -> [-1,1] (default: sigmoid for points, tanh for images)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"passes over the data (default {EPOCHS})")
    p.add_argument("--lr", type=float, default=LR, help=f"Adam learning rate (default {LR:g})")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size (default: full batch)")
    p.add_argument("--resume", default=None, help="continue training from this checkpoint (optimiser state included)")
    p.add_argument("--recipe", choices=RECIPE_NAMES, default=None,
                   help="paper (default: the paper's procedure) or improved (denoising training + data-covariance "
                        "start noise); stored in the checkpoint, so `sample` uses it too")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    _common(p)


def _sample_parser(sub):
    p = sub.add_parser("sample", help="kaleidoscopic sampling from a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--chains", type=int, default=CHAINS, help=f"number of chains (default {CHAINS})")
    p.add_argument("--steps", type=int, default=STEPS, help=f"applications of f (default {STEPS})")
    p.add_argument("--every", type=int, default=1, help="record every k-th step (default 1)")
    p.add_argument("--noise", default="uniform",
                   help="start noise: uniform|normal (default uniform; the improved recipe starts from the data's covariance)")
    p.add_argument("--eps", type=float, default=0.0, help="between-step zero-mean noise scale (default 0)")
    p.add_argument("--jitter", choices=NOISES, default="uniform",
                   help="between-step noise: uniform on [-eps, eps] or normal N(0, eps^2) (default uniform); "
                        "normal with eps near the training noise of the improved recipe keeps chains moving")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="walk (the paper's z <- f(z)) or a chain that keeps moving: dae, langevin, annealed "
                        "(default: the recipe's own; improved: dae)")
    p.add_argument("--scale", type=float, default=None,
                   help="noise of dae/langevin/annealed (default: the top of the run's training noise)")
    p.add_argument("--gif", default=None, help="write the walk as a GIF here")
    p.add_argument("--fps", type=float, default=GIF_FPS, help=f"GIF frames per second (default {GIF_FPS:g})")
    p.add_argument("--save-samples", default=None, help="write final samples + training set to this .npz")
    p.add_argument("--recipe", choices=RECIPE_NAMES, default=None,
                   help="how to sample: paper or improved (default: the recipe stored in the checkpoint)")
    _common(p)


def _evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="measure saved samples: convergence, coverage, novelty, attractors, burn-in")
    p.add_argument("--samples", required=True, help="the .npz written by `sample --save-samples`")
    p.add_argument("--checkpoint", default=None,
                   help="the checkpoint it was sampled from (adds attractor stability, spurious fixed points, burn-in)")
    p.add_argument("--tol", type=float, default=TOL,
                   help=f"RMS distance per coordinate, on the data's scale, that counts as 'at a point' (default {TOL:g})")
    p.add_argument("--burn-tol", type=float, default=BURN_TOL,
                   help=f"mean RMS step size that ends the burn-in (default {BURN_TOL:g})")
    p.add_argument("--max-train", type=int, default=ATTRACTOR_POINTS,
                   help=f"check the Jacobian at most at this many (seeded) training points (default {ATTRACTOR_POINTS})")
    p.add_argument("--jacobian", choices=["auto", "exact", "power"], default="auto",
                   help="exact eigenvalues, or power iteration with Jacobian-vector products (default auto: exact for D <= 64)")
    p.add_argument("--k", type=int, default=K,
                   help=f"neighbours of the precision/recall/density/coverage balls (default {K}, Naeem et al. 2020)")
    p.add_argument("--features", choices=FEATURES, default="pixels",
                   help="space of the sample metrics: pixels, randcnn (a fixed random CNN) or classifier (a small CNN "
                        "kals trains on the data set's labelled split, cached under --data-root; mnist, fashion-mnist)")
    p.add_argument("--data-root", default=None,
                   help="the data set's folder: its held-out split gives each metric's ceiling (real vs real)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--seed", type=int, default=0, help="seed for the Jacobian subset and power iteration (default 0)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto: CUDA, MPS, CPU)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m kals_utils", description="Generative Kaleidoscopic Networks: train f(x)≈x, then iterate f from noise.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="train the 2D four-point kaleidoscope and write a GIF + PNG (offline, <1 min)")
    p.add_argument("--out", default="saved_samples", help="folder for the GIF and PNG (default saved_samples/)")
    _common(p)
    _train_parser(sub)
    _sample_parser(sub)
    _evaluate_parser(sub)
    return ap


def _data_for(args):
    is_points = args.data in ("points1d", "points2d")
    out_act = args.out_act or ("sigmoid" if is_points else "tanh")
    if is_points and (args.subset or args.image_size):
        raise KalsError("--subset and --image-size are for image data sets, not points")
    return load_data(args.data, root=args.data_root, subset=args.subset, seed=args.seed,
                     value_range=out_range(out_act), image_size=args.image_size, pts=args.points), out_act


def cmd_train(args) -> int:
    out = ensure_writable(args.out)
    data, out_act = _data_for(args)
    epochs, resume, recipe = args.epochs, None, args.recipe or "paper"
    if args.resume:
        ck = load_checkpoint(args.resume)
        c = ck.config
        if (c.dim, c.depth, c.width, c.out_act, c.model.arch) != (data.dim, args.depth, args.width, out_act, args.arch):
            raise KalsError(f"--resume {args.resume} has D={c.dim}, L={c.depth}, H={c.width}, {c.out_act}, "
                            f"arch {c.model.arch}; this run asks for D={data.dim}, L={args.depth}, H={args.width}, "
                            f"{out_act}, arch {args.arch}")
        if not ck.train_state:
            raise KalsError(f"{args.resume} holds no training state to resume from")
        resume = ck.train_state
        recipe = args.recipe or c.recipe  # keep training the way it started unless told otherwise
        epochs = args.epochs - int(resume["epoch"])  # --epochs is the total, as in the first run
        if epochs <= 0:
            raise KalsError(f"{args.resume} already has {resume['epoch']} epochs; pass --epochs larger than that")
    t0 = time.time()

    def banner():  # printed once every setting has been checked
        print(f"training {args.arch} L={args.depth} H={args.width} on {data.name} ({len(data)} x {data.dim}) for {epochs} epochs, "
              f"recipe {recipe} (Ctrl-C stops and keeps the best weights)", flush=True)
    arch_kw = {"patch": args.patch} if args.arch == "transformer" else {}
    if args.arch == "unet":
        arch_kw["top_skip"] = not args.no_top_skip
    run = train_run(data, depth=args.depth, width=args.width, arch=args.arch, arch_kw=arch_kw, precision=args.precision,
                    epochs=epochs, lr=args.lr, batch_size=args.batch_size,
                    seed=args.seed, device=args.device, out_act=out_act, progress=not args.no_progress,
                    resume=resume, recipe=recipe, on_start=banner)
    replaced = out.exists()
    save_run(run, out)
    r = run.result
    print(f"trained in {time.time() - t0:.1f}s — {r.report()}")
    print(f"checkpoint written to {out}" + (" (replaced the file that was there)" if replaced else ""))
    if r.status == "interrupted":
        print("interrupted: the checkpoint holds the best weights so far; continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if r.status == "diverged":
        print(f"warning: {r.message}", file=sys.stderr)
    return 0


def cmd_sample(args) -> int:
    check_float("--fps", args.fps, 0.0, strict=True)
    gif = ensure_writable(args.gif, "GIF file") if args.gif else None
    if gif is not None and gif.suffix.lower() != ".gif":
        raise KalsError(f"--gif {args.gif}: the walk is written as an animated GIF; give a name ending in .gif")
    npz = ensure_writable(args.save_samples, ".npz file") if args.save_samples else None
    if npz is not None and npz.suffix.lower() != ".npz":
        raise KalsError(f"--save-samples {args.save_samples}: samples are written as .npz; give a name ending in .npz")
    run = load_run(args.checkpoint, device=args.device)
    record = GIF_CHAINS if run.config.image_shape is not None else None
    recipe = args.recipe or run.config.recipe
    res = sample_run(run, chains=args.chains, steps=args.steps, every=args.every, noise=args.noise,
                     eps=args.eps, jitter=args.jitter, seed=args.seed, record=record, recipe=recipe,
                     precision=args.precision, sampler=args.sampler, scale=args.scale)
    print(f"sampled {args.chains} chains x {args.steps} steps from {args.checkpoint} "
          f"({run.config.dataset}, L={run.config.depth}, H={run.config.width}, recipe {recipe})")
    if gif:
        replaced = gif.exists()
        export_gif(run, res, gif, fps=args.fps)
        print(f"GIF written to {gif} ({len(res.steps)} frames)" + (" (replaced the file that was there)" if replaced else ""))
    if npz:
        save_samples(npz, run, res, steps=args.steps, eps=args.eps, jitter=args.jitter, seed=args.seed,
                     noise=args.noise, recipe=recipe)
        print(f"samples written to {npz}")
    return 0


def _folder(path: str, what: str) -> Path:
    """``path`` as an existing (made if missing) writable folder, else KalsError."""
    out = Path(path).expanduser()
    if not path or (out.exists() and not out.is_dir()):
        raise KalsError(f"{what} {path!r} is not a folder; give a folder name, e.g. saved_samples")
    ensure_writable(out / "probe", "folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KalsError(f"cannot create folder {out}: {e.strerror or e}") from None
    return out


def _demo_pictures(run, res, out: Path, steps: int):
    gif = export_gif(run, res, out / gif_name(run.config, len(res.final), steps, 0.0, "normal"), fps=3,
                     title="2D kaleidoscope")
    png = out / gif.name.replace(".gif", ".png")
    save_png(fig_to_array(plot_2d(run.model, run.data.x, noise=res.start, samples=res.final,
                                  title=f"after {steps} steps")), png)
    print(f"GIF written to {gif}\nPNG written to {png}")


def cmd_demo(args) -> int:
    out = _folder(args.out, "--out")
    t0 = time.time()
    data = points(dim=2)
    run = train_run(data, depth=7, width=50, epochs=2000, lr=1e-3, seed=args.seed, device=args.device,
                    precision=args.precision,
                    progress=not args.no_progress)
    print(f"trained the 2D four-point kaleidoscope (L=7, H=50): {run.result.report()}")
    chains, steps = 64, 15
    res = sample_run(run, chains=chains, steps=steps, noise="normal", seed=args.seed)
    _demo_pictures(run, res, out, steps)
    print(f"({time.time() - t0:.1f}s)")
    return 0


# ---------------------------------------------------------------- evaluate and the .npz file
def save_samples(path, run, res, *, steps: int, eps: float, seed: int, noise: str, recipe: str,
                 jitter: str = "uniform") -> Path:
    """Write final samples, start states, the training set (and labels) and the walk's settings to
    ``path`` (.npz): everything ``evaluate`` needs, with or without the checkpoint."""
    extra = {} if run.data.labels is None else {"labels": run.data.labels.numpy()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, samples=res.final.numpy(), train=run.data.x.cpu().numpy(),
                            start=res.start.numpy(), value_range=np.array(run.config.value_range),
                            image_shape=np.array(run.config.image_shape or ()), steps=steps,
                            eps=eps, jitter=jitter, seed=seed, noise=noise, recipe=recipe, **extra)
    return Path(path)


def load_samples(path) -> dict:
    """Read a ``sample --save-samples`` file: samples, train, start, value_range, image_shape, steps,
    eps, labels (or None), seed (0 if absent)."""
    path = Path(path)
    if not path.is_file():
        raise KalsError(f"samples file {path} not found; write one with `python -m kals_utils sample "
                        f"--checkpoint CKPT --save-samples {path}`")
    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)
    except (OSError, ValueError) as e:
        raise KalsError(f"{path} is not a readable .npz file ({type(e).__name__}); write it with sample --save-samples") from None
    missing = {"samples", "train"} - keys
    if missing:
        raise KalsError(f"{path} lacks {sorted(missing)}; write it with `python -m kals_utils sample --save-samples`")
    shape = tuple(int(v) for v in z["image_shape"]) if "image_shape" in keys else ()
    return {"samples": torch.from_numpy(z["samples"]).float(), "train": torch.from_numpy(z["train"]).float(),
            "start": torch.from_numpy(z["start"]).float() if "start" in keys else None,
            "value_range": tuple(float(v) for v in z["value_range"]) if "value_range" in keys else (0.0, 1.0),
            "image_shape": shape or None, "steps": int(z["steps"]) if "steps" in keys else None,
            "eps": float(z["eps"]) if "eps" in keys else 0.0,
            "jitter": str(z["jitter"]) if "jitter" in keys else "uniform",
            "labels": torch.from_numpy(z["labels"]) if "labels" in keys else None,
            "seed": int(z["seed"]) if "seed" in keys else 0}


def evaluate_npz(samples_path, checkpoint=None, *, device="auto", tol: float = TOL, burn_tol: float = BURN_TOL,
                 method: str = "auto", max_points: Optional[int] = ATTRACTOR_POINTS, with_norm: bool = True,
                 seed: int = 0, k: int = K, features: str = "pixels", data_root=None) -> Evaluation:
    """Metrics of a saved ``.npz``; with ``checkpoint`` also attractor stability, spurious fixed points
    and the burn-in curve (the walk is re-run from the saved start noise; with eps > 0 the jitter is
    redrawn from the saved seed, 0 if the file has none), and with ``data_root`` the ceilings of the
    sample metrics from the data set's held-out split (and the classifier features)."""
    s = load_samples(samples_path)
    model = frames = steps = None
    config = RunConfig(model=ModelConfig(dim=s["train"].shape[1], depth=1, width=1,
                                         out_act=act_for_range(*s["value_range"])),
                       value_range=s["value_range"], image_shape=s["image_shape"], dataset="samples")
    if checkpoint is not None:
        run = load_run(checkpoint, device=device)
        if tuple(run.data.x.shape) != tuple(s["train"].shape):
            raise KalsError(f"{samples_path} was not sampled from {checkpoint}: its training set is "
                            f"{tuple(s['train'].shape)}, the checkpoint's {tuple(run.data.x.shape)}")
        model, config = run.model, run.config
        if s["start"] is not None and s["steps"]:
            walk = kaleidoscope(model, steps=s["steps"], eps=s["eps"], jitter=s["jitter"], seed=s["seed"], start=s["start"],
                                record=min(len(s["start"]), RECORD))
            frames, steps = walk.frames, walk.steps
    embed = feature_space(config, features, data_root=data_root, log=lambda m: print(m, file=sys.stderr))
    return evaluate_samples(s["samples"], s["train"], labels=s["labels"], model=model, frames=frames, steps=steps,
                            tol=tol, burn_tol=burn_tol, value_range=s["value_range"], method=method,
                            max_points=max_points, with_norm=with_norm, seed=seed, k=k, features=embed,
                            feature_name=features,
                            heldout=heldout_images(config, len(s["samples"]), data_root=data_root, seed=seed))


def _json_ready(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def cmd_evaluate(args) -> int:
    """CLI entry: print the metrics table (or ``--json``) for ``--samples`` (+ ``--checkpoint``)."""
    tol = check_float("--tol", args.tol, 0.0, strict=True)
    ev = evaluate_npz(args.samples, args.checkpoint, device=args.device, tol=tol,
                      burn_tol=check_float("--burn-tol", args.burn_tol, 0.0, strict=True),
                      method=args.jacobian, max_points=args.max_train, seed=args.seed,
                      k=check_int("--k", args.k, 1), features=args.features, data_root=args.data_root)
    if args.json:
        out = ev.summary()
        if ev.burn is not None:
            out["burn_curve"] = {"steps": ev.burn.steps[1:], "step_size": ev.burn.step_size}
            out["convergence_curve"] = {"steps": ev.burn.steps, "converged": ev.convergence}
        json.dump(_json_ready(out), sys.stdout, indent=1, allow_nan=False)
        print()
    else:
        print(format_evaluation(ev))
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.seed = check_seed(args.seed)
        return {"demo": cmd_demo, "train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate}[args.cmd](args)
    except KalsError as e:
        print(f"kals: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kals: interrupted before training started; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `evaluate --json | head`: the reader left; end quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
