"""The improved recipe as a user gets it at QUICK, with its selection rule (issue #29).

    python benchmarks/selection.py fashion --root DIR --seeds 0,1,2 [--out docs/results/selection_fashion.json]
    python benchmarks/selection.py travel --data digits|lfw-faces|sample-photos [--seeds 0] [--recipe paper]
        [--out docs/results/selection_travel.json] [--png saved_samples/selection_<data>.png]
    python benchmarks/selection.py travel --data folder:DIR/NAME --size 0 --out docs/results/selection_folders.json
        (DIR from benchmarks/folders.py DIR)
    python benchmarks/selection.py ttq --root DIR [--budget 600 --every 60] --out docs/results/selection_ttq.json
    python benchmarks/selection.py contrast --data lfw-faces --out docs/results/selection_contrast.json
        [--png saved_samples/selection_contrast.png]
    python benchmarks/selection.py real --data digits|lfw-faces|sample-photos --out docs/results/selection_travel.json
    python benchmarks/selection.py ages --data lfw-faces --seeds 0,1,2 --every 60 --updates 900
        --out docs/results/selection_ages.json
    python benchmarks/selection.py views --data lfw-faces|sample-photos|folder:DIR/NAME [--size 0] --seeds 0,1,2
        --out docs/results/selection_views.json
    python benchmarks/selection.py noise --data fashion-mnist|lfw-faces|folder:DIR/NAME [--root DIR] [--size 0]
        --seeds 0 --out docs/results/selection_noise.json

``fashion``: the first 1,000 Fashion-MNIST training images at 28x28 (``--root`` holds the IDX .gz files
and a writable kals_cache for the classifier); the recipe's QUICK settings exactly
(``presets.QUICK_IMAGES``, ``recipe="improved"``, precision ``auto``, one torch thread); then 300 chains
of the recipe's own sampler for 5 and 100 steps, measured as studies.versus measures its rows
(classifier Fréchet distance, memorised, ...) plus the collapse measures.
``travel``: the same recipe and budget, untuned, on scikit-learn's digits (16x16), the 100 LFW faces
(32x32) or the sample photos (32x32 colour); 300 chains x 100 steps measured by ``evaluate_run``
(pixels): coverage, memorised, distinct nearest images, sharpness ratio, and what real images read on coverage
and distinct nearest at the same samples per training image (``collapse.real_at_ratio``: held-out training
images); ``--png`` draws 48 samples.
Every row records the training CPU seconds, the updates done, where the rule stopped and why.
``real``: adds what real images read (``coverage_real``, ``distinct_real``) to the ``--out`` rows of ``--data`` that
lack them (rows measured before it existed); from the data alone, as ``travel`` computes it.
``contrast``: why the copy test also runs on standardised images. The recipe at QUICK with its rule switched
off for 1,000 updates; every 250, 300 walks from its start distribution for 1, 3, 10 and 30 applications of f,
memorised in pixels and on standardised images (``--png``: starts, the four frames and the nearest training
images of 16 chains at the last snapshot).
``ages``: where the collapse on small sets comes from, and what longer training buys (``ages``' docstring).
``views``: the weights ``travel`` keeps, sampled as the rule chose and as each other view a check reads would
show them (f's first output by the turn sampler, the restart sampler after 0 and 5 hidden steps), measured as
``travel`` measures: why a run shows the most varied view that is not blurred (``selection.pick_burn``).
``noise``: the check's own noise: the weights ``travel`` (or ``fashion``) keeps, read by NOISE_READS checks with
other starts and reference images; how far apart two reads of the same weights lie sets ``selection.TIE``.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kals_utils.measures.collapse import collapse_measures, real_at_ratio  # noqa: E402
from kals_utils.data import load_data  # noqa: E402
from kals_utils.measures.evaluate import classifier_for, evaluate_run  # noqa: E402
from kals_utils.mirror import mirrored  # noqa: E402
from kals_utils.neighbours import copied_fraction  # noqa: E402
from kals_utils.pipeline import sample_run, train_run  # noqa: E402
from kals_utils.presets import MIRROR, PRESETS, QUICK_IMAGES  # noqa: E402
from kals_utils.studies.versus import first_images, measure  # noqa: E402

NET = {k: QUICK_IMAGES[k] for k in ("width", "updates", "lr", "batch_size")}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def train(data, seed: int, recipe: str = "improved", mirror: str = MIRROR):
    """(run, training CPU s): ``recipe`` at QUICK, as ImageNotebook(QUICK=True) trains it (``paper``: as its
    ``paper()`` step does, the same net and budget trained the paper's way, no selection rule)."""
    t0 = time.process_time()
    run = train_run(data, depth=PRESETS["fashion-mnist"].depth, seed=seed, device="cpu", recipe=recipe,
                    progress=False, note=None, mirror=mirror, **NET)
    return run, time.process_time() - t0


def base_row(run, cpu: float, seed: int, name: str) -> dict:
    ex, r = run.config.extra, run.result
    return dict(data=name, recipe=run.config.recipe, seed=seed, n=len(run.data), train_cpu_s=round(cpu, 1), updates_budget=NET["updates"],
                epochs_done=r.epochs_done, kept_epoch=ex.get("stopped_at"), copy_baseline=ex.get("copy_baseline"),
                copy_line=ex.get("copy_line"), collapse_line=ex.get("collapse_line"), burn=ex.get("burn"),
                mirror=ex.get("mirror"), mirror_ratio=ex.get("mirror_ratio"),
                checks=run.result.train_state.get("checks"), message=r.message,
                precision=run.config.precision, date=time.strftime("%Y-%m-%d"), cpu=cpu_name(),
                torch=torch.__version__, threads=torch.get_num_threads())


def mirror_fields(args, run, final: torch.Tensor, data) -> dict:
    """A row's mirror fields: memorised against the images and their mirrors (a mirrored copy is a copy) where the run
    trained on mirrors; rows asked for with another ``--mirror`` than the default are marked so ("mirror on")."""
    out = {"burn_mode": f"mirror {args.mirror}"} if args.mirror != MIRROR else {}
    if run.config.extra.get("mirror"):
        out["memorized_mirrors"] = copied_fraction(final, torch.cat([data.x, mirrored(data.x, data.image_shape)]))
    return out


def fashion(args) -> list:
    data = first_images("fashion-mnist", 1000, root=args.root)
    rows = []
    for seed in args.seeds:
        run, cpu = train(data, seed, mirror=args.mirror)
        clf = classifier_for(run.config, data_root=args.root)
        for steps in (5, 100):
            walk = sample_run(run, chains=300, steps=steps, seed=seed, record=0)
            row = dict(base_row(run, cpu, seed, "fashion-mnist (first 1000)"), steps=steps, sampler=walk.sampler)
            row.update(measure(walk.final.cpu(), data, classifier=clf, seed=seed))
            row.update(collapse_measures(walk.final.cpu(), data.x, data.image_shape))
            row.update(real_at_ratio(data.x, len(walk.final), seed=seed))
            rows.append(dict(row, **mirror_fields(args, run, walk.final.cpu(), data)))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "checks"}), flush=True)
    return rows


def travel_data(name: str, size: int = 32):
    if name == "digits":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from mixing import sklearn_data
        return sklearn_data("digits", 1500, 0, size=16)
    return load_data(name, value_range=(-1, 1), image_size=size or None)


def short_name(name: str) -> str:
    """A row's data name: a folder's own name for ``folder:PATH``."""
    return Path(name.split(":", 1)[1]).name if name.startswith("folder:") else name


def travel(args) -> list:
    data = travel_data(args.data, args.size)
    rows = []
    for seed in args.seeds:
        run, cpu = train(data, seed, args.recipe, args.mirror)
        walk = sample_run(run, chains=300, steps=100, seed=seed, record=48)
        ev = evaluate_run(run, walk, seed=seed).summary()
        row = dict(base_row(run, cpu, seed, short_name(args.data)), steps=100, sampler=walk.sampler,
                   image="x".join(map(str, data.image_shape)))
        row.update({k: ev.get(k) for k in ("coverage", "memorized", "memorized_std", "distinct", "sharpness", "converged",
                                           "coverage_real", "distinct_real")})
        rows.append(dict(row, **mirror_fields(args, run, walk.final.cpu(), data)))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "checks"}), flush=True)
        if args.png and seed == args.seeds[0]:
            from kals_utils.faces.plots import plot_images
            fig = plot_images(walk.final[:48], data.image_shape, data.value_range,
                              title=f"{short_name(args.data)}, {args.recipe}, QUICK, seed {seed}")
            fig.savefig(args.png, dpi=100, bbox_inches="tight")
    return rows


VIEWS = (None, ("turn", 0), ("restart", 0), ("restart", 5))   # the rule's own view, then each one asked for


def views(args) -> list:
    data = travel_data(args.data, args.size)
    rows = []
    for seed in args.seeds:
        run, cpu = train(data, seed)
        for view in VIEWS:
            asked = {} if view is None else dict(sampler=view[0], burn=view[1])
            walk = sample_run(run, chains=300, steps=100, seed=seed, record=48, note=None, **asked)
            ev = evaluate_run(run, walk, seed=seed).summary()
            row = dict(base_row(run, cpu, seed, short_name(args.data)), steps=100, sampler=walk.sampler,
                       image="x".join(map(str, data.image_shape)), view="rule" if view is None else "/".join(map(str, view)),
                       burn_mode="the rule's view" if view is None else "asked for")
            if view is not None:
                row["burn"] = view[1]
            row.update({k: ev.get(k) for k in ("coverage", "memorized", "memorized_std", "distinct", "sharpness",
                                               "coverage_real", "distinct_real")})
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("checks", "message")}), flush=True)
    return rows


NOISE_READS = 8   # checks of other starts and reference images read the same kept weights


def noise(args) -> list:
    import kals_utils.selection as rule
    data = first_images("fashion-mnist", 1000, root=args.root) if args.data == "fashion-mnist" \
        else travel_data(args.data, args.size)
    made, init, rows = [], rule.SampleCheck.__init__, []

    def keep(self, *a, **kw):   # the run's own check, to read its weights with others like it
        init(self, *a, **kw)
        made.append((self.train, kw))
    rule.SampleCheck.__init__ = keep
    try:
        for seed in args.seeds:
            made.clear()
            run, cpu = train(data, seed, mirror=args.mirror)
            x_fit, kw = made[0]
            reads = []
            for k in range(NOISE_READS):
                check = rule.SampleCheck(run.model, x_fit, None, **{**kw, "seed": 100 + k})
                check.shortened = True   # read every view, as a check after a shortened one does
                (_copying, quality, distinct, burn, sampler), _shown = check.measure()
                reads.append(dict(quality=quality, distinct=distinct, burn=burn, sampler=sampler))
            name = "fashion-mnist (first 1000)" if args.data == "fashion-mnist" else short_name(args.data)
            rows.append(dict(base_row(run, cpu, seed, name), reads=reads))
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("checks", "message")}), flush=True)
    finally:
        rule.SampleCheck.__init__ = init
    return rows


def real(args) -> list:
    data, out = travel_data(args.data), Path(args.out)
    rows = [r for r in json.loads(out.read_text()) if r["data"] == args.data]
    for r in rows:
        r.update(real_at_ratio(data.x, 300, seed=r["seed"]))   # travel's 300 chains, evaluate_run's seed
    return rows


def time_to_quality(args) -> list:
    """The paper's recipe at its MNIST schedule (lr 1e-4, batches of 1000 = full batch here) on the first
    1,000 Fashion-MNIST images, measured every ``--every`` training CPU seconds up to ``--budget``: the
    CPU time until classifier FD <= 120 with memorised <= 0.05 (300 chains of its walk, 100 steps)."""
    data = first_images("fashion-mnist", 1000, root=args.root)
    rows, state = [], {"resume": None, "cpu": 0.0}
    clf = None
    while state["cpu"] < args.budget:
        t0 = time.process_time()
        run = train_run(data, depth=10, width=500, lr=1e-4, batch_size=1000, epochs=10**9, seed=args.seeds[0],
                        device="cpu", recipe="paper", progress=False, note=None, resume=state["resume"],
                        should_stop=lambda: time.process_time() - t0 >= args.every)
        state["cpu"] += time.process_time() - t0
        state["resume"] = run.result.train_state
        run.model.load_state_dict(run.result.train_state["last_state_dict"])   # the weights trained so far
        clf = clf or classifier_for(run.config, data_root=args.root)
        walk = sample_run(run, chains=300, steps=100, seed=args.seeds[0], record=0)
        row = dict(data="fashion-mnist (first 1000)", recipe="paper", lr=1e-4, batch_size=1000, seed=args.seeds[0],
                   train_cpu_s=round(state["cpu"], 1), epochs_done=run.result.epochs_done, steps=100,
                   precision=run.config.precision, date=time.strftime("%Y-%m-%d"), cpu=cpu_name())
        row.update(measure(walk.final.cpu(), data, classifier=clf, seed=args.seeds[0]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def snapshots(data, seed: int, updates: int, every: int):
    """(run, {updates: weights}): the recipe at QUICK with its rule's checks running and recorded but its stop
    and its choice not used, trained for ``updates`` updates, the weights kept every ``every`` passes."""
    import kals_utils.selection as rule
    snaps, check, stop = {}, rule.SampleCheck.callback, rule.SampleCheck.should_stop

    def keep(self, epoch, loss):
        check(self, epoch, loss)
        if (epoch + 1) % every == 0:
            snaps[epoch + 1] = self._state()
    rule.SampleCheck.callback, rule.SampleCheck.should_stop = keep, lambda self: False
    try:
        run = train_run(data, depth=PRESETS["fashion-mnist"].depth, seed=seed, device="cpu", recipe="improved",
                        progress=False, note=None, **{**NET, "updates": updates})
    finally:
        rule.SampleCheck.callback, rule.SampleCheck.should_stop = check, stop
    return run, snaps


def contrast(args) -> list:
    from kals_utils.neighbours import memorization, memorized_std_fraction, nearest_neighbours
    from kals_utils.sample import data_start, kaleidoscope
    data = travel_data(args.data)
    run, snaps = snapshots(data, args.seeds[0], 1000, 250)
    rows, x = [], data.x
    for upd, state in sorted(snaps.items()):
        run.model.load_state_dict(state)
        start = data_start(x, 300, scale=1.3, seed=args.seeds[0], value_range=run.config.value_range)
        frames = [start[:16]]
        for k in (1, 3, 10, 30):
            z = kaleidoscope(run.model, start=start, steps=k, every=k, precision="fp32").final
            row = dict(data=args.data, seed=args.seeds[0], updates=upd, applications=k, chains=300,
                       memorized=memorization(z, x).fraction,
                       memorized_std=memorized_std_fraction(z, x),
                       date=time.strftime("%Y-%m-%d"), cpu=cpu_name(), torch=torch.__version__)
            rows.append(row)
            frames.append(z[:16])
            print(json.dumps(row), flush=True)
    if args.png:
        from kals_utils.faces.plots import plot_images
        frames.append(x[nearest_neighbours(z, x)[1][:16]])
        fig = plot_images(torch.cat(frames), data.image_shape, data.value_range, nrow=16,
                          title=f"{args.data}, {max(snaps)} updates: start, f applied 1, 3, 10, 30 times, nearest training image")
        fig.savefig(args.png, dpi=80, bbox_inches="tight")
    return rows


def ages(args) -> list:
    """Where the collapse comes from: for weights every ``--every`` passes of a run trained past its rule's stop,
    300 starts of the recipe's distribution and f applied 1, 2, 3, 5 and 10 times, each measured as ``travel``
    measures a walk (coverage, memorised, at any contrast, distinct nearest, sharpness), and the starts themselves."""
    from kals_utils.measures.metrics import coverage
    from kals_utils.neighbours import memorization, nearest_neighbours
    from kals_utils.sample import data_start, kaleidoscope
    data, rows = travel_data(args.data), []
    for seed in args.seeds:
        run, snaps = snapshots(data, seed, args.updates, int(args.every))
        x = data.x
        start = data_start(x, 300, scale=1.3, seed=seed, value_range=run.config.value_range)
        for upd, state in sorted(snaps.items()):
            run.model.load_state_dict(state)
            z, applied = start, 0
            for k in (0, 1, 2, 3, 5, 10):
                if k > applied:
                    z, applied = kaleidoscope(run.model, start=z, steps=k - applied, precision="fp32").final, k
                row = dict(data=args.data, seed=seed, epoch=upd, applications=k, chains=300,
                           coverage=coverage(nearest_neighbours(z, x)[1], len(x)), memorized=memorization(z, x).fraction,
                           **collapse_measures(z, x, data.image_shape), date=time.strftime("%Y-%m-%d"), cpu=cpu_name(),
                           torch=torch.__version__, precision=run.config.precision)
                rows.append(row)
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("date", "cpu", "torch")}), flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("fashion", "travel", "ttq", "contrast", "real", "ages", "views", "noise"))
    p.add_argument("--budget", type=float, default=600.0, help="ttq: training CPU seconds in all")
    p.add_argument("--every", type=float, default=60.0, help="ttq: training CPU seconds between measurements; "
                   "ages: passes between snapshots")
    p.add_argument("--updates", type=int, default=1000, help="ages: updates trained (the rule's stop not used)")
    p.add_argument("--root", default="data")
    p.add_argument("--data", default="digits")
    p.add_argument("--size", type=int, default=32, help="travel: images resized to N x N (0: native size)")
    p.add_argument("--recipe", default="improved", choices=("improved", "paper"), help="travel: the recipe")
    p.add_argument("--mirror", default=MIRROR, choices=("auto", "on", "off"),
                   help="travel, fashion: train on the images' mirrors too (rows of another than the default are marked so)")
    p.add_argument("--seeds", default="0", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--out", required=True)
    p.add_argument("--png", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    modes = {"fashion": fashion, "travel": travel, "ttq": time_to_quality, "contrast": contrast, "real": real,
             "ages": ages, "views": views, "noise": noise}
    rows = modes[args.mode](args)
    out = Path(args.out)
    key = lambda r: (r["data"], r.get("recipe", "improved"), r["seed"], r.get("steps"), r.get("updates"),  # noqa: E731
                     r.get("applications"), r.get("epoch"), r.get("burn_mode"), r.get("view"))
    new = {key(r): r for r in rows}   # a re-run replaces its own earlier rows, where they stood
    old = json.loads(out.read_text()) if out.is_file() else []
    kept = [new.pop(key(r), r) for r in old]
    out.write_text(json.dumps(kept + list(new.values()), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
