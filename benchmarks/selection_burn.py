"""How long the restart sampler's hidden burn-in should be, and who chooses it (issue #29).

    python benchmarks/selection_burn.py fixed N  fashion|travel [benchmarks/selection.py options]
    python benchmarks/selection_burn.py joint    fashion|travel [benchmarks/selection.py options]
    python benchmarks/selection_burn.py sizes --n 100,300 --seeds 0,1 --root DIR --out FILE

Runs ``benchmarks/selection.py`` (same data, budget, sampler and measures) with the selection rule's
check walk read differently from the default (:func:`selection.pick_burn`: RESTART_BURN, shorter only
where frames that old collapse):

``fixed N``: every check reads the walk after a hidden burn-in of N (ages N + 1 .. N + RESTART), and
the run samples with burn-in N: the same burn-in for every data set.
``joint``: every check reads the walk at the burn-in :func:`selection.pick_burn` prefers among all
of RESTART_BURN .. 0, whether or not RESTART_BURN's frames collapse.

``sizes``: the default rule on the first N Fashion-MNIST images (QUICK), then 300 chains x 100 steps
sampled twice, with the burn-in the rule chose and with RESTART_BURN, measured as the ``fashion`` rows.

Rows as benchmarks/selection.py writes them, plus ``burn_mode``. Committed output:
docs/results/selection_burn.json and selection_burn_sizes.json (Results → selection, *How long a hidden
burn-in*).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import kals_utils.selection as rule  # noqa: E402


def patched(mode: str, n: int):
    def measure(check):
        got = check.reads([("restart", b) for b in ([n] if mode == "fixed" else range(rule.RESTART_BURN, -1, -1))])
        copying, distinct, burn, frames, sampler = got[0] if mode == "fixed" else rule.pick_burn(got, check.line)
        return copying, rule.frechet_rows(frames, check.reference), distinct, burn, sampler
    return measure


def sizes(argv):
    import argparse
    import json
    import selection
    from kals_utils.measures.collapse import collapse_measures
    from kals_utils.measures.evaluate import classifier_for
    from kals_utils.pipeline import sample_run
    from kals_utils.studies.versus import first_images, measure
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=lambda s: [int(v) for v in s.split(",")], default=[100, 300])
    p.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0])
    p.add_argument("--root", default="data")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for n in args.n:
        data = first_images("fashion-mnist", n, root=args.root)
        for seed in args.seeds:
            run, cpu = selection.train(data, seed)
            clf = classifier_for(run.config, data_root=args.root)
            for burn in sorted({run.config.extra["burn"], rule.RESTART_BURN}):
                walk = sample_run(run, chains=300, steps=100, seed=seed, record=0, burn=burn, note=None)
                row = dict(selection.base_row(run, cpu, seed, f"fashion-mnist (first {n})"), steps=100,
                           sampler=walk.sampler, burn=burn, burn_mode="chosen" if burn == run.config.extra["burn"]
                           else f"fixed {burn}")
                row.update(measure(walk.final.cpu(), data, classifier=clf, seed=seed))
                row.update(collapse_measures(walk.final.cpu(), data.x, data.image_shape))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "checks"}), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


def main(argv):
    if argv[0] == "sizes":
        return sizes(argv[1:])
    mode, n = argv[0], (int(argv[1]) if argv[0] == "fixed" else None)
    rest = argv[2:] if mode == "fixed" else argv[1:]
    if mode not in ("fixed", "joint"):
        raise SystemExit("usage: selection_burn.py fixed N|joint fashion|travel ...")
    rule.SampleCheck.measure = patched(mode, n)
    import selection
    base = selection.base_row
    selection.base_row = lambda *a: dict(base(*a), burn_mode=f"fixed {n}" if mode == "fixed" else "joint")
    selection.main(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
