"""The kaleidoscope beside a small diffusion model, same data, same training CPU time (issue #22).

    python benchmarks/versus_diffusion.py [--root data] [--n 1000] [--budgets 60,180]
        [--seeds 0,1,2] [--families unet,improved] [--samples 300] [--ddim-steps 50]
        [--kals-steps 5,100] [--out saved_samples/versus_diffusion.json] [--append] [--grids DIR]

Trains every family (studies.versus.FAMILIES) on the first ``--n`` training images of Fashion-MNIST
for each budget (CPU seconds of the training loop, one torch thread), samples and measures each
(studies.versus.measure). ``--root`` must be writable: the classifier and decoded data are cached
under ROOT/kals_cache (a folder of symlinks to Debian's /usr/share/datasets/fashion-mnist files
works). The JSON file is rewritten after every (family, seed), so a long run can be stopped and
read; ``--append`` adds to the rows already in it (a later run of other families or budgets).
``--grids DIR``: also save each row's first 16 samples as DIR/<label>_<budget>_s<seed>.pt.
``--report``: train nothing; read --out (and --grids), print the tables (mean and spread over seeds)
and draw saved_samples/versus_diffusion_fd.png (quality against training CPU time) and
saved_samples/versus_diffusion_samples_<budget>.png (sample grids side by side).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils.studies.versus import (BUDGETS, DDIM_STEPS, FAMILIES, KALS_STEPS, N_SAMPLES, N_TRAIN,  # noqa: E402
                                       VERSUS_KEYS, first_images, json_rows, versus_diffusion)
from kals_utils.errors import KalsError  # noqa: E402
from kals_utils.measures.tables import format_rows  # noqa: E402


def _floats(text):
    return tuple(float(v) for v in text.split(",") if v)


def _ints(text):
    return tuple(int(v) for v in text.split(",") if v)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data", help="writable data root holding Fashion-MNIST's IDX .gz files")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--n", type=int, default=N_TRAIN, help="the first N training images")
    p.add_argument("--budgets", type=_floats, default=BUDGETS, help="training CPU seconds, comma-separated")
    p.add_argument("--seeds", type=_ints, default=(0, 1, 2))
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--samples", type=int, default=N_SAMPLES)
    p.add_argument("--ddim-steps", type=int, default=DDIM_STEPS)
    p.add_argument("--kals-steps", type=_ints, default=KALS_STEPS)
    p.add_argument("--no-heldout", action="store_true", help="skip the held-out real images row")
    p.add_argument("--out", default="saved_samples/versus_diffusion.json")
    p.add_argument("--append", action="store_true", help="keep the rows already in --out")
    p.add_argument("--grids", default=None, help="folder for each row's first 16 samples (.pt)")
    p.add_argument("--report", action="store_true", help="only tables and figures from --out and --grids")
    return p.parse_args(argv)


def _tag(r) -> str:
    return f"{r['label']}_{r['budget_s']}_s{r['seed']}".replace(" ", "_").replace("(", "").replace(")", "")


SUMMARY = ("label", "budget_s", "runs", "train_cpu_s", "updates", "nfe", "sample_ms_cpu", "fd_classifier",
           "fd_classifier_sd", "fd_heldout", "fd_heldout_sd", "fd_pixels", "clf_precision", "clf_recall",
           "clf_coverage", "px_precision", "px_coverage", "memorized", "memorized_sd", "class_tv", "recognisable")


def report(args):
    """Tables and figures from a finished (or partial) run's JSON and grids."""
    from kals_utils.faces.plots import plot_versus, plot_versus_grids
    from kals_utils.measures.tables import summarise
    rows = json.loads(Path(args.out).read_text())
    for r in rows:
        f = Path(args.grids or "-") / f"{_tag(r)}.pt"
        if args.grids and f.is_file():
            r["grid"] = torch.load(f, weights_only=True)
    keys = [k for k in SUMMARY if k not in ("label", "budget_s", "runs") and not k.endswith("_sd")]
    table = summarise(rows, by=("label", "budget_s"), keys=keys)
    print(format_rows(table, SUMMARY))
    fig = plot_versus(rows, title=f"first {rows[0]['n_train']} Fashion-MNIST images: classifier Fréchet distance")
    fig.savefig(Path(args.out).parent / "versus_diffusion_fd.png", dpi=100)
    fig = plot_versus(rows, key="fd_heldout", title="classifier Fréchet distance to held-out test images")
    fig.savefig(Path(args.out).parent / "versus_diffusion_fd_heldout.png", dpi=100)
    fig = plot_versus(rows, key="memorized", log_y=False, title="memorised fraction (pixels)")
    fig.savefig(Path(args.out).parent / "versus_diffusion_memorized.png", dpi=100)
    for budget in sorted({r["budget_s"] for r in rows if r["budget_s"] is not None and "grid" in r}):
        fig = plot_versus_grids(rows, (1, 28, 28), (-1.0, 1.0), budget=budget, upto=True)
        fig.savefig(Path(args.out).parent / f"versus_diffusion_samples_{budget:g}.png", dpi=100)


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        return report(args)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    before = json.loads(out.read_text()) if args.append and out.is_file() else []
    data = first_images(args.dataset, args.n, root=args.root)
    started = time.time()

    def save(rows):
        stamp = {"date": time.strftime("%Y-%m-%d"), "wall_s": round(time.time() - started, 1), "n_train": args.n,
                 "threads": torch.get_num_threads(), "torch": torch.__version__}
        out.write_text(json.dumps(before + [dict(r, **stamp) for r in json_rows(rows)], indent=1))
        if args.grids:
            Path(args.grids).mkdir(parents=True, exist_ok=True)
            for r in rows:
                if "grid" in r:
                    torch.save(r["grid"], Path(args.grids) / f"{_tag(r)}.pt")

    rows = versus_diffusion(data, data_root=args.root, families=args.families.split(","), budgets=args.budgets,
                            seeds=args.seeds, n_samples=args.samples, ddim_steps=args.ddim_steps,
                            kals_steps=args.kals_steps, keep=bool(args.grids), with_heldout=not args.no_heldout,
                            log=lambda m: print(m, flush=True), on_rows=save)
    save(rows)
    print(format_rows(json_rows(rows), VERSUS_KEYS))
    print(f"wrote {out} ({time.time() - started:.0f} s wall)")


if __name__ == "__main__":
    try:
        main()
    except KalsError as e:   # a missing extra or a wrong setting: one line, not a traceback
        print(f"versus_diffusion: {e}", file=sys.stderr)
        sys.exit(2)
