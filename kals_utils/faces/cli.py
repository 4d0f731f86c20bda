"""Command line: ``python -m kals_utils {demo,train,sample,evaluate,basins}``, and the ``.npz`` samples file
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

from ..measures.basins import BASIN_STEPS, basin_map
from ..checkpoint import load_checkpoint
from ..data import dataset_help, load_data, points
from ..errors import KalsError, check_float, check_int, check_seed
from ..measures.evaluate import evaluate_npz, save_samples
from .export import export_gif
from ..files import ensure_writable, out_dir
from ..measures.features import FEATURES
from ..measures.metrics import BURN_TOL, K, TOL
from ..measures.attractors import ATTRACTOR_POINTS
from ..model import ARCH_HELP, ARCHS, PATCH, out_range
from ..pipeline import epochs_for, load_run, sample_run, save_run, train_run
from .plots import fig_to_array, plot_2d, plot_basins_1d, plot_basins_2d
from ..precision import PRECISIONS
from ..mirror import use_mirror
from ..recipes import RECIPES, denoises, get_recipe, selects, split_holdout
from ..render import GIF_CHAINS, GIF_FPS, gif_name, save_png
from ..presets import (ARCH, CHAINS, EPS, EVERY, JITTER, MIRROR, NOISE, OUT_DIR, PRECISION, PRESETS, SEED, STEPS,
                      preset_for)
from ..sample import NOISES, SAMPLERS
from ..measures.tables import format_evaluation

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
RECIPE_NAMES = tuple(RECIPES)


COMMANDS = ("demo", "train", "sample", "evaluate", "basins")
DEMO_CHAINS = 64  # chains drawn in the demo's GIF and PNG


def _preset_help(key: str) -> str:
    """'points1d 7, points2d 7, mnist 10, ...': one setting of every preset, for --help."""
    return ", ".join(f"{name} {getattr(p, key)}" for name, p in PRESETS.items())


def _fill_from_preset(args, preset) -> None:
    """Options left unset on the command line take the data set's preset."""
    if args.epochs is None and args.updates is None:  # the budget: the preset's, in its own unit
        args.epochs, args.updates = preset.epochs, preset.updates
    for key in ("depth", "width", "epochs", "lr", "batch_size", "recipe"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(preset, key))


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
    p.add_argument("--precision", choices=PRECISIONS, default=PRECISION,
                   help=f"auto (bf16 where the device multiplies bf16 natively and the net has >= 200k weights, "
                        f"else fp32), fp32, or bf16 (bfloat16 matrix multiplies, fp32 weights, Adam and loss) "
                        f"(default {PRECISION})")
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto: CUDA, MPS, CPU)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _train_parser(sub):
    p = sub.add_parser("train", help="fit f(x)≈x on a data set and save a checkpoint")
    p.add_argument("--data", required=True, help="the data set: " + dataset_help())
    p.add_argument("--data-root", default="data", help="where torchvision data sets live / are downloaded (default data/)")
    p.add_argument("--subset", type=int, default=None, help="seeded random subset of N images (default: all)")
    p.add_argument("--image-size", type=int, default=None, help="resize images to N x N (default: native size)")
    p.add_argument("--points", default=None, help="training points, e.g. '0.2;0.8' or '0.2,0.2;0.8,0.8' (default: the paper's points)")
    p.add_argument("--arch", choices=ARCHS, default=ARCH,
                   help="the net f: " + "; ".join(f"{a}: {h}" for a, h in ARCH_HELP.items()) +
                        " (default mlp; cnn, unet and transformer need images)")
    p.add_argument("--depth", "-L", type=int, default=None,
                   help="depth L (>= 1; its meaning per --arch above) (default: the data set's preset, " + _preset_help("depth") + ")")
    p.add_argument("--width", "-H", type=int, default=None,
                   help="width H (>= 1; its meaning per --arch above) (default: the data set's preset, " + _preset_help("width") + ")")
    p.add_argument("--patch", type=int, default=PATCH, help=f"transformer patch size in pixels (default {PATCH})")
    p.add_argument("--no-top-skip", action="store_true",
                   help="unet: drop the full-resolution skip connection (so f cannot copy its input through it)")
    p.add_argument("--out-act", choices=["sigmoid", "tanh"], default=None,
                   help="output activation: sigmoid -> [0,1], tanh -> [-1,1] (default: sigmoid for points, tanh for images)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the data (default: the preset, " + _preset_help("epochs") + ")")
    p.add_argument("--updates", type=int, default=None,
                   help="the budget in optimizer updates instead: the same work on 100 images or 5,000 "
                        "(default: the preset's, where it has one: " + ", ".join(
                            f"{n} {p.updates}" for n, p in PRESETS.items() if p.updates) + ")")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the preset, " + _preset_help("lr") + ")")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (default: the preset, " + _preset_help("batch_size") + "; None = full batch)")
    p.add_argument("--resume", default=None, help="continue training from this checkpoint (optimiser state included; default: start afresh)")
    p.add_argument("--recipe", choices=RECIPE_NAMES, default=None,
                   help="paper (the paper's procedure), improved (denoising training + data-covariance start "
                        "noise) or sequence (f(x_i) = x_(i+1 mod n): the points in the order given, or a folder's "
                        "images in sorted file-name order, replayed as a loop); stored in the checkpoint, so "
                        "`sample` uses it too (default: the preset, " + _preset_help("recipe") + ")")
    p.add_argument("--mirror", choices=("auto", "on", "off"), default=MIRROR,
                   help="train the improved recipe on the images' left-right mirrors too: auto (where mirrors are "
                        "images of the same kind, measured on the data), on or off (default " + MIRROR + ")")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    _common(p)


def _sample_parser(sub):
    p = sub.add_parser("sample", help="kaleidoscopic sampling from a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--chains", type=int, default=CHAINS, help=f"number of chains (default {CHAINS})")
    p.add_argument("--steps", type=int, default=STEPS, help=f"applications of f (default {STEPS})")
    p.add_argument("--every", type=int, default=EVERY, help=f"record every k-th step (default {EVERY})")
    p.add_argument("--noise", default=NOISE,
                   help=f"start noise: uniform|normal (default {NOISE}; the improved recipe starts from the data's covariance)")
    p.add_argument("--eps", type=float, default=EPS, help=f"between-step zero-mean noise scale (default {EPS:g})")
    p.add_argument("--jitter", choices=NOISES, default=JITTER,
                   help="between-step noise: uniform on [-eps, eps] or normal N(0, eps^2) (default uniform); "
                        "normal with eps near the training noise of the improved recipe keeps chains moving")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="walk (the paper's z <- f(z)), restart (the walk, each chain restarted every few steps), "
                        "turn (f of a start that turns smoothly), walkjump (chains that slide from image to image) "
                        "or another chain that keeps moving: dae, langevin, annealed, settle (default: the recipe's "
                        "own, or the one its selection rule chose; paper: walk, improved: restart or turn)")
    p.add_argument("--scale", type=float, default=None,
                   help="noise of walkjump/dae/langevin/annealed/settle (default: the run's training noise)")
    p.add_argument("--gif", default=None, help="write the walk as a GIF here (default: no GIF)")
    p.add_argument("--fps", type=float, default=GIF_FPS, help=f"GIF frames per second (default {GIF_FPS:g})")
    p.add_argument("--save-samples", default=None, help="write final samples + training set to this .npz (default: none)")
    p.add_argument("--recipe", choices=RECIPE_NAMES, default=None,
                   help="how to sample: paper or improved (default: the recipe stored in the checkpoint)")
    _common(p)


def _evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="measure saved samples: convergence, coverage, novelty, attractors, burn-in")
    p.add_argument("--samples", required=True, help="the .npz written by `sample --save-samples`")
    p.add_argument("--checkpoint", default=None,
                   help="the checkpoint it was sampled from (adds attractor stability, spurious fixed points, burn-in; default: none)")
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
                        "kals trains on the data set's labelled split, cached under --data-root; mnist, fashion-mnist) (default pixels)")
    p.add_argument("--data-root", default=None,
                   help="the data set's folder: its held-out split gives each metric's ceiling (real vs real; default: no ceilings)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--seed", type=int, default=0, help="seed for the Jacobian subset and power iteration (default 0)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto: CUDA, MPS, CPU)")


def _basins_parser(sub):
    p = sub.add_parser("basins", help="basin map of a 1D/2D checkpoint: where every start on a grid ends (PNG, JSON)")
    p.add_argument("--checkpoint", required=True, help="a 1D or 2D run (points1d/points2d)")
    p.add_argument("--png", default=None, help="write the basin map here (.png; default: no picture)")
    p.add_argument("--json", action="store_true",
                   help="print every attractor (training points, spurious fixed points, unsettled) with its location "
                        "and its basin's area fraction (they sum to 1)")
    p.add_argument("--grid", type=int, default=None, help="starts per side (default 256 in 2D, 1024 in 1D)")
    p.add_argument("--steps", type=int, default=BASIN_STEPS, help=f"applications of f per start (default {BASIN_STEPS})")
    p.add_argument("--tol", type=float, default=TOL,
                   help=f"RMS distance that counts as 'at a training point' (default {TOL:g})")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto: CUDA, MPS, CPU)")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m kals_utils", description="Generative Kaleidoscopic Networks: train f(x)≈x, then iterate f from noise.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="train the 2D four-point kaleidoscope and write a GIF + PNG (offline, <1 min)")
    p.add_argument("--out", default=None, help=f"folder for the GIF and PNG (default <repo>/{OUT_DIR}, or $KALS_OUT)")
    _common(p)
    _train_parser(sub)
    _sample_parser(sub)
    _evaluate_parser(sub)
    _basins_parser(sub)
    return ap


def _data_for(args):
    is_points = args.data in ("points1d", "points2d")
    out_act = args.out_act or ("sigmoid" if is_points else "tanh")
    if is_points and (args.subset or args.image_size):
        raise KalsError("--subset and --image-size are for image data sets, not points")
    data = load_data(args.data, root=args.data_root, subset=args.subset, seed=args.seed,
                     value_range=out_range(out_act), image_size=args.image_size, pts=args.points)
    if data.note:
        print(f"note: {data.note}")
    return data, out_act


def _as_list(report: str) -> str:
    """A run's report with the parts of its message one per line: the selection rule's notes read as a list."""
    head, _, message = report.partition(" — ")
    parts, depth = [""], 0
    for i, ch in enumerate(message):   # split at "; " outside brackets
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if message.startswith("; ", i) and depth == 0:
            parts.append("")
        else:
            parts[-1] += ch
    return head + "".join(f"\n  - {m.strip()}" for m in parts if m.strip())


def cmd_train(args) -> int:
    out = ensure_writable(args.out)
    data, out_act = _data_for(args)
    _fill_from_preset(args, preset_for(args.data))
    epochs, resume, recipe = args.epochs, None, args.recipe
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
        if args.updates is not None and args.epochs is None:
            raise KalsError("--resume counts its budget in epochs: pass --epochs (the total) instead of --updates")
        epochs = args.epochs - int(resume["epoch"])  # --epochs is the total, as in the first run
        if epochs <= 0:
            raise KalsError(f"{args.resume} already has {resume['epoch']} epochs; pass --epochs larger than that")
    t0 = time.time()
    flip = resume is None and recipe is not None and selects(recipe) and use_mirror(args.mirror, data.x, data.image_shape)[0]

    def banner():  # printed once every setting has been checked
        share = get_recipe(recipe).holdout if resume is None and denoises(get_recipe(recipe)) else 0
        held = len(split_holdout(len(data), share, args.seed)[1]) if share else 0   # as the selection rule splits
        rows = (len(data) - held) * (2 if flip else 1)                              # ... and mirrors
        budget = f"{epochs} epochs" if args.updates is None or resume else (   # the bar counts epochs
            f"{args.updates} updates ({epochs_for(args.updates, rows, args.batch_size)} epochs)")
        rule = f"; {held} of them held out for its selection rule, which may stop earlier" if held else (
            "; its selection rule may stop earlier" if share else "")
        rule += "; with the images' left-right mirrors" if flip else ""
        print(f"training {args.arch} L={args.depth} H={args.width} on {data.name} ({len(data)} x {data.dim}) for {budget}, "
              f"recipe {recipe}{rule} (Ctrl-C stops and keeps the best weights)", flush=True)
    arch_kw = {"patch": args.patch} if args.arch == "transformer" else {}
    if args.arch == "unet":
        arch_kw["top_skip"] = not args.no_top_skip
    run = train_run(data, depth=args.depth, width=args.width, arch=args.arch, arch_kw=arch_kw, precision=args.precision,
                    epochs=epochs, updates=None if resume else args.updates, lr=args.lr, batch_size=args.batch_size,
                    seed=args.seed, device=args.device, out_act=out_act, progress=not args.no_progress,
                    resume=resume, recipe=recipe, on_start=banner, mirror="on" if flip else "off")
    replaced = out.exists()
    save_run(run, out)
    r = run.result
    print(f"trained in {time.time() - t0:.1f}s — {_as_list(r.report())}")
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
    chosen = " (its selection rule's choice)" if args.sampler is None and "sampler" in run.config.extra else ""
    print(f"sampled {args.chains} chains x {args.steps} steps from {args.checkpoint} "
          f"({run.config.dataset}, L={run.config.depth}, H={run.config.width}, recipe {recipe}, "
          f"sampler {res.sampler}{chosen})")
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
    out = _folder(str(out_dir()) if args.out is None else args.out, "--out")
    t0 = time.time()
    p = PRESETS["points2d"]
    run = train_run(points(dim=2), depth=p.depth, width=p.width, epochs=p.epochs, lr=p.lr, seed=args.seed,
                    device=args.device, precision=args.precision, progress=not args.no_progress)
    print(f"trained the 2D four-point kaleidoscope (L={p.depth}, H={p.width}): {run.result.report()}")
    steps = p.steps
    res = sample_run(run, chains=DEMO_CHAINS, steps=steps, noise=p.noise, seed=args.seed)
    _demo_pictures(run, res, out, steps)
    print(f"({time.time() - t0:.1f}s)")
    return 0


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
    burn_tol, k = check_float("--burn-tol", args.burn_tol, 0.0, strict=True), check_int("--k", args.k, 1)

    def banner():   # once the files are read and checked: the Jacobians take a minute or so on a CPU for images
        print(f"measuring {args.samples}" + (f" with {args.checkpoint}: the Jacobian of f at up to {args.max_train} "
                                             "training points (attractors) ..." if args.checkpoint else " ..."),
              file=sys.stderr, flush=True)
    ev = evaluate_npz(args.samples, args.checkpoint, device=args.device, tol=tol, burn_tol=burn_tol,
                      method=args.jacobian, max_points=args.max_train, seed=args.seed, k=k, features=args.features,
                      data_root=args.data_root, log=lambda m: print(m, file=sys.stderr),
                      on_start=None if args.json else banner)
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


def cmd_basins(args) -> int:
    """CLI entry: the basin map of a 1D/2D checkpoint, as a PNG and/or JSON on stdout."""
    png = ensure_writable(args.png, "PNG file") if args.png else None
    if png is not None and png.suffix.lower() != ".png":
        raise KalsError(f"--png {args.png}: the map is written as a PNG; give a name ending in .png")
    if png is None and not args.json:
        raise KalsError("nothing to write: pass --png FILE.png, --json, or both")
    run = load_run(args.checkpoint, device=args.device)
    if run.config.dim not in (1, 2):
        raise KalsError(f"{args.checkpoint} is a D={run.config.dim} run; basin maps are for 1D and 2D points "
                        "(for images use kals_utils.measures.basins.basin_statistics)")
    t0 = time.time()
    bmap = basin_map(run.model, run.data.x, grid=args.grid, steps=check_int("--steps", args.steps, 0),
                     tol=check_float("--tol", args.tol, 0.0, strict=True))
    if png is not None:
        title = f"basins: {run.config.dataset}, L={run.config.depth}, H={run.config.width}"
        fig = (plot_basins_1d(bmap, run.model, title=title) if bmap.dim == 1
               else plot_basins_2d(bmap, run.model, title=title))
        save_png(fig_to_array(fig), png)
    if args.json:
        out = {"checkpoint": str(args.checkpoint), **bmap.to_json(), "seconds": time.time() - t0}
        json.dump(_json_ready(out), sys.stdout, indent=1, allow_nan=False)
        print()
    if png is not None:
        print(f"basin map written to {png}", file=sys.stderr if args.json else sys.stdout)
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.seed = check_seed(getattr(args, "seed", 0))  # basins has no seed
        return {"demo": cmd_demo, "train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate,
                "basins": cmd_basins}[args.cmd](args)
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
