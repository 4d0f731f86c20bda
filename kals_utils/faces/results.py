"""The Results pages' tables, generated from committed data, never typed (issue #34)::

    python -m kals_utils.book results          extract the notebooks' tables, then refill every page

Each table on a page under ``docs/results/`` sits between ``<!-- table:NAME -->`` and ``<!-- /table -->``;
:data:`TABLES` says which function writes it, from which committed data file (``saved_samples/*.json``
written by the benchmarks, ``docs/results/*.json``). Where a page's numbers come from an executed
notebook, :func:`extract` first copies the notebook's printed tables into ``docs/results/notebook_tables.json``
(with the notebook's own line saying when, where and with which settings it ran), so a re-executed notebook
shows up as a changed data file and a changed page. tests/test_results.py runs this on a copy of the
checkout and fails if any page or data file differs: a page can not drift from its data.

Plain strings and JSON; no drawing (the figures come from each benchmark's ``--report``).
"""

import json
import re
from pathlib import Path

from ..errors import KalsError
from ..studies.capacity import capacity_table, holding_limits
from ..files import project_dir
from ..measures.tables import _fmt, summarise

ROOT = project_dir()
PAGES = ROOT / "docs" / "results"
SAMPLES = ROOT / "saved_samples"
REGION = re.compile(r"<!-- table:(?P<name>[\w-]+) -->\n(?P<body>(?:(?!<!-- ).)*?)\n?<!-- /table -->", re.S)
NOTEBOOK_TABLES = "notebook_tables.json"
# (notebook, section heading it starts with, how many tables of the section): the tables the pages quote
EXTRACT = (("01_synthetic_1d", "## 8. Is deeper better?", 2), ("02_synthetic_2d", "## 6. Corner loss", 1),
           ("02_synthetic_2d", "## 7. Is deeper better?", 2), ("03_mnist", "## 5. Is deeper better?", 2))


# ---------------------------------------------------------------- formatting
def frac(v) -> str:
    """A fraction, two decimals."""
    return "—" if v is None or v != v else f"{v:.2f}"


def sig(v) -> str:
    """Three significant digits (trailing zeros kept), whole numbers from 100 up."""
    if v is None or v != v:
        return "—"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:#.3g}".rstrip(".")


def _json(path: Path):
    if not path.is_file():
        raise KalsError(f"{path} is missing; it is the data of a Results page (run the benchmark its page names)")
    return json.loads(path.read_text())


def _mean(vals):
    return sum(vals) / len(vals)


# ---------------------------------------------------------------- notebooks -> JSON
def _markdown_table(text: str) -> list:
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (_number(c.strip()) for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def _fixed_table(text: str) -> list:
    """A table printed in aligned columns whose blank cells are spaces (``corner_table``)."""
    lines = text.rstrip().splitlines()
    head = lines[0]
    names = head.split()
    ends = [m.end() for m in re.finditer(r"\S+", head)]
    out = []
    for ln in lines[1:]:
        cells, start = [], 0
        for end in ends:
            cells.append(_number(ln[start:end].strip()))
            start = end
        out.append(dict(zip(names, cells)))
    return out


def _number(cell: str):
    if cell in ("", "nan", "—"):
        return None
    try:
        return int(cell) if re.fullmatch(r"-?\d+", cell) else float(cell)
    except ValueError:
        return cell


def _outputs(cell) -> list:
    texts = []
    for out in cell.get("outputs", []):
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        texts.append("".join(text) if isinstance(text, list) else text)
    return texts


def _banner(nb) -> str:
    for cell in nb["cells"]:
        for text in _outputs(cell):
            if text.startswith("Executed with"):
                return text.strip()
    return "not executed"


def notebook_section_tables(path: Path, heading: str, count: int) -> list:
    """The first ``count`` tables printed under the markdown ``heading`` of notebook ``path``."""
    nb = _json(path)
    found, inside = [], False
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and src.startswith("## "):
            inside = src.startswith(heading)
        if inside:
            for text in _outputs(cell):
                if text.lstrip().startswith("|"):
                    found.append(_markdown_table(text))
                elif re.match(r"\s*d\s+n\s+corner loss", text):
                    found.append(_fixed_table(text.replace("corner loss", "corner_loss").replace("train loss",
                                                                                              "train_loss ")))
    if len(found) < count:
        raise KalsError(f"{path.name}: section {heading!r} printed {len(found)} tables, the Results pages quote "
                        f"{count}; re-execute it (python -m kals_utils.book execute {path.stem})")
    return found[:count]


def extract(root: Path = ROOT) -> dict:
    """Every notebook table a Results page quotes, with the notebook's execution line."""
    out = {"command": "python -m kals_utils.book results", "notebooks": {}}
    for name, heading, count in EXTRACT:
        path = root / "notebooks" / f"{name}.ipynb"
        entry = out["notebooks"].setdefault(name, {"executed": _banner(_json(path)), "sections": {}})
        entry["sections"][heading.lstrip("# ")] = notebook_section_tables(path, heading, count)
    return out


def _section(data: dict, name: str, heading: str) -> list:
    return data["notebooks"][name]["sections"][heading.lstrip("# ")]


# ---------------------------------------------------------------- tables
def rows_table(head: list, rows: list) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def notebook_table(rows: list) -> str:
    """A table as the notebook printed it (``tables.format_rows``' numbers)."""
    head = list(rows[0])
    return rows_table(head, [[_fmt(r[k]) if r[k] is not None else "nan" for k in head] for r in rows])


def depth_table(data: dict, name: str) -> str:
    heading = next(h for n, h, _ in EXTRACT if n == name and "deeper" in h)
    return notebook_table(_section(data, name, heading)[0])


def corner_table(data: dict) -> str:
    rows = _section(data, "02_synthetic_2d", "## 6. Corner loss")[0]
    ns = sorted({r["n"] for r in rows})
    out = []
    for d in sorted({r["d"] for r in rows}):
        cells = []
        for n in ns:
            r = next(r for r in rows if r["d"] == d and r["n"] == n)
            paper = f" ({r['paper']:g})" if r.get("paper") is not None else ""
            cells.append(f"{r['corner_loss']:.4f}{paper}")
        out.append([d] + cells)
    return rows_table(["d"] + [f"n={n}" for n in ns], out)


VERSUS_ORDER = ("unet", "mlp-ddpm", "improved", "improved-nostop", "paper")
VERSUS_COLS = ("train_cpu_s", "updates", "nfe", "sample_ms_cpu", "fd_classifier", "fd_heldout", "fd_pixels",
               "clf_precision", "clf_recall", "clf_coverage", "px_coverage", "memorized", "class_tv", "recognisable")


def versus_table(rows: list) -> str:
    """The versus-diffusion table: mean over seeds per (family, sampler, budget); sd of fd_classifier."""
    groups = {}
    for r in rows:
        groups.setdefault((r["label"], r["budget_s"]), []).append(r)
    s = {(g["label"], g["budget_s"]): g for g in summarise(rows, by=("label", "budget_s"), keys=VERSUS_COLS)}
    order = sorted(groups, key=lambda k: (-1 if groups[k][0]["family"] == "real" else
                                          VERSUS_ORDER.index(groups[k][0]["family"]),
                                          "100 steps" in k[0], k[1] or 0))
    out = []
    for key in order:
        g, rs = s[key], groups[key]
        real = rs[0]["family"] == "real"
        budget = "—" if real else f"{key[1] / 60:g}" + (" (stopped)" if all(r.get("stopped") for r in rs) else "")
        ms = g["sample_ms_cpu"]
        out.append([key[0], budget, g["runs"], "—" if real else f"{g['train_cpu_s']:.0f}",
                    "—" if real else f"{g['updates']:,.0f}", f"{g['nfe']:.0f}",
                    "—" if real else (f"{ms:.0f}" if ms >= 10 else f"{ms:.2f}"),
                    sig(g["fd_classifier"]), sig(g["fd_classifier_sd"]), sig(g["fd_heldout"]), sig(g["fd_pixels"]),
                    *(frac(g[k]) for k in VERSUS_COLS[7:])])
    head = ["family (sampler)", "budget CPU min", "runs", "CPU s trained", "updates", "nfe", "CPU ms / image",
            "fd_classifier", "sd", "fd_heldout", "fd_pixels", "clf precision", "clf recall", "clf coverage",
            "px coverage", "memorised", "class TV", "recognisable"]
    return rows_table(head, out)


# mixing: (key, heading, target (op, bound) or None, format)
MIXING_MAIN = (("precision_min", "precision (min frame) >= 0.9", (">=", 0.9), "range"),
               ("classifier_precision_min", "cls precision (min frame)", None, "range"),
               ("pooled_coverage", "coverage (last 50) >= 0.8", (">=", 0.8), "range"),
               ("classifier_pooled_coverage", "cls coverage (last 50)", None, "mean"),
               ("memorized_max", "memorised (max frame) <= 0.1", ("<=", 0.1), "mean"),
               ("visited", "visited / chain >= 10", (">=", 10), "mean1"),
               ("class_change", "chains changing class >= 0.5", (">=", 0.5), "mean"),
               ("tau", "tau (steps)", None, "tau"))
MIXING_TRAVEL = (("precision_min", "precision min frame", None, "range"),
                 ("pooled_coverage", "coverage last 50", None, "range"),
                 ("memorized_max", "memorised max frame", None, "range"),
                 ("visited", "visited", None, "range1"),
                 ("class_change", "class change", None, "range"),
                 ("tau", "tau", None, "taurange"))


def _mixing_cell(rs: list, key: str, target, how: str) -> str:
    vals = [r[key] for r in rs if r.get(key) is not None]
    if not vals:
        return "-"
    m, lo, hi = _mean(vals), min(vals), max(vals)
    if how.startswith("tau"):  # a censored tau (the window was never met) is a lower bound
        censored = sum(bool(r.get("tau_censored")) for r in rs)
        text = (f"{m:.1f}" if m < 10 else f"{m:.0f}") if how == "tau" else f"{m:.0f} ({lo:.0f}-{hi:.0f})"
        if censored == len(rs):
            return f"> {text} (censored)" if how == "tau" else f"> {text}, censored"
        return text + (f", {censored} of {len(rs)} censored" if censored else "")
    digits = 1 if how.endswith("1") else 2
    text = f"{m:.{digits}f}"
    if how.startswith("range") and f"{lo:.{digits}f}" != f"{hi:.{digits}f}":
        text += f" ({lo:.{digits}f}-{hi:.{digits}f})"
    if target is not None:
        op, bound = target
        vals = [round(v, 6) for v in vals]   # stored as float32: 180/200 reads 0.89999998
        ok = all(v >= bound if op == ">=" else v <= bound for v in vals)
        text += " ✓" if ok else " ✗"
    return text


def mixing_table(files: list, cols, *, names: dict = None, first_cols: int = 0) -> str:
    """One row per sampler (over the sampling seeds) of the mixing benchmark's JSON ``files``."""
    out = []
    for f in files:
        d = _json(f)
        labels = list(dict.fromkeys(r["label"] for r in d["rows"]))
        for label in labels:
            rs = [r for r in d["rows"] if r["label"] == label]
            name = (names or {}).get((f.name, label), label)
            out.append([name] + [_mixing_cell(rs, k, t, how) for k, _, t, how in cols])
    order = list((names or {}).values())
    out.sort(key=lambda row: order.index(row[0]) if row[0] in order else len(order))
    return rows_table(["sampler"] + [c[1] for c in cols], out)


# the data sets' names, and their image sizes where --image-size does not apply (the JSON records the flag's 28)
DATA_NAMES = {"fashion-mnist": "Fashion-MNIST", "digits": "scikit-learn digits", "lfw": "scikit-image lfw_subset"}
NATIVE_SIZE = {"digits": "8x8", "lfw": "25x25"}
TRAVEL = ("mixing_travel_f300_16.json", "mixing_travel_f1000_16_fullbatch.json", "mixing_travel_f3000_16.json",
          "mixing_travel_f300_28_b50.json", "mixing_travel_digits.json", "mixing_travel_lfw.json")


def _travel_setting(d: dict) -> str:
    s = d["settings"]
    shape = NATIVE_SIZE.get(s["data"], f"{s['image_size']}x{s['image_size']}")
    batch = f"batch {s['batch_size']}" if s.get("batch_size") else "full batch"
    return (f"{DATA_NAMES.get(s['data'], s['data'])} {s['images']} imgs {shape}, L{s['depth']} H{s['width']}, "
            f"{batch}, <= {s['epochs']} epochs")


def travel_table(samples: Path) -> str:
    """The mixing benchmark on other data (one JSON file per data set): one row per sampler."""
    out = []
    for f in TRAVEL:
        d = _json(samples / f)
        extra = d["config_extra"]
        ran = re.search(r"at epoch \d+ of (\d+)", d["train"])
        for i, label in enumerate(dict.fromkeys(r["label"] for r in d["rows"])):
            rs = [r for r in d["rows"] if r["label"] == label]
            head = ["", "", ""]
            if i == 0:
                head = [_travel_setting(d), f"{extra['sigma'][0]:.2f}-{extra['sigma'][1]:.2f}; "
                        f"{extra.get('stopped_at')} / {ran.group(1) if ran else '?'}", f"{d['train_wall_s']:.0f}"]
            out.append(head + [label] + [_mixing_cell(rs, k, t, how) for k, _, t, how in MIXING_TRAVEL])
    return rows_table(["data, net, schedule", "sigma; stopped (kept / ran)", "train s", "sampler"]
                      + [c[1] for c in MIXING_TRAVEL], out)


MIXING_NAMES = {("mixing_fashion-mnist.json", "walk (paper)"): "walk (paper, eps 0)",  # (file, label) -> row, in order
                ("mixing_fashion-mnist_more.json", "restart every 10"): "**restart every 10** (improved's default)",
                ("mixing_fashion-mnist.json", "dae s=1.30"): "dae, s = sigma_max = 1.30",
                ("mixing_fashion-mnist.json", "langevin s=0.92"): "langevin, s = 0.92",
                ("mixing_fashion-mnist_more.json", "annealed s=1.30"): "annealed, s 1.30 -> 0.65 in cycles of 10",
                ("mixing_fashion-mnist_more.json", "settle s=1.30"): "settle (kick s=1.30, then 5 steps of f)"}


def basins_sequence_table(data: dict) -> str:
    out = []
    for r in sorted(data["sequence"]["longest"], key=lambda r: (r["depth"], r["width"])):
        out.append([r["depth"], r["width"],
                    f"{', '.join(map(str, r['longest_from_points']))} ({r['median_from_points']})",
                    f"{', '.join(map(str, r['longest_from_random']))} ({r['median_from_random']})"])
    return rows_table(["L", "H", "from the points", "from random starts (≥ 90%)"], out)


def basins_capacity_table(part: dict) -> str:
    """Mean share of the training points that are stable attractors, per L x H and n, and its limits."""
    table, limits = capacity_table(part["rows"]), holding_limits(part["rows"])
    ns = sorted({r["n"] for r in table})
    out = []
    for lim in sorted(limits, key=lambda r: (r["width"], r["depth"])):
        mine = {r["n"]: r for r in table if (r["depth"], r["width"]) == (lim["depth"], lim["width"])}
        out.append([lim["depth"], lim["width"]] + [frac(mine[n]["attractors"]) for n in ns]
                   + [frac(mine[ns[-1]]["fixed"])] + [v if v is not None else "—" for v in
                                                      (lim["holds_up_to"], lim["first_lost"], lim["half_at"])])
    return rows_table(["L", "H", f"n={ns[0]}"] + [str(n) for n in ns[1:]]
                      + [f"fixed at {ns[-1]}", "holds up to", "first lost", "half at"], out)


def basins_depth_table(data: dict) -> str:
    """Basin areas of the four 2D points per depth (notebook 02's defaults, seed 0)."""
    out = []
    for r in data["defaults"]["depths"]:
        share = lambda kind: sum(b["fraction"] for b in r["basins"] if b["kind"] == kind)  # noqa: E731
        train = sorted((b for b in r["basins"] if b["kind"] == "train"), key=lambda b: b["index"])
        out.append([r["depth"]] + [f"{100 * b['fraction']:.1f}%" for b in train]
                   + [f"{share(k):.2g}" if share(k) else "0" for k in ("spurious", "unsettled")])
    return rows_table(["L", "(0.2,0.2)", "(0.2,0.8)", "(0.8,0.2)", "(0.8,0.8)", "spurious", "unsettled"], out)


PRECISION_METRICS = (("train MSE", "train_mse", "{:.4f}"), ("PRDC precision", "precision", "{:.2f}"),
                     ("coverage", "coverage", "{:.2f}"), ("memorised", "memorized", "{:.2f}"),
                     ("class TV", "class_tv", "{:.2f}"))


def precision_quality_table(rows: list) -> str:
    """fp32 against bf16 (benchmarks/precision_quality.py): each metric's values over the seeds."""
    out = []
    for recipe, prec in dict.fromkeys((r["recipe"], r["precision_mode"]) for r in rows):
        mine = [r for r in rows if (r["recipe"], r["precision_mode"]) == (recipe, prec)]
        secs = [r["train_cpu_s"] for r in mine]
        out.append([recipe, prec] + [" / ".join("–" if r[k] is None else f.format(r[k]) for r in mine)
                                     for _, k, f in PRECISION_METRICS] + [f"{min(secs):.0f}–{max(secs):.0f}"])
    return rows_table(["recipe", "arithmetic"] + [m[0] for m in PRECISION_METRICS] + ["train CPU s"], out)


def _burn(row: dict) -> str:
    """The hidden burn-in the rule chose and, where it is not the restart sampler, the sampler."""
    if row.get("burn") is None:
        return "—"
    return f"{row['burn']}" + (f" ({row['sampler']})" if row.get("sampler") not in (None, "restart") else "")


def _real(row: dict, key: str, shown: bool = True) -> str:
    """`` (real 0.71)``: what held-out real images read on the same measure, where the row has it."""
    return f" (real {row[key]:.2f})" if shown and row.get(key) is not None else ""


# NAME -> (page, function of nothing that returns the table)
def selection_table(rows: list, mirrors: bool = False) -> str:
    """benchmarks/selection.py: one row per data set, seed and walk length (issue #29); ``mirrors``: with the
    copied fraction against the images and their mirrors (``--mirror``)."""
    out = []
    for r in rows:
        stopped = "stopped:" in r["message"]
        kept = "—" if r["kept_epoch"] is None else r["kept_epoch"]
        recipe = r.get("recipe", "improved") + (f" ({r['burn_mode']})" if r.get("burn_mode") else "")
        data = r["data"] + (f" ({r['n']} images, {r['image'].replace('x', '×')})" if r.get("image") else "")
        row = [data, recipe, r["seed"], f"{r['train_cpu_s']:.0f}", r["precision"], kept,
               r["epochs_done"], "yes" if stopped else "no", _burn(r), r["steps"]]
        row += [sig(r["fd_classifier"]) if "fd_classifier" in r else "—",
                frac(r.get("clf_coverage")) if "clf_coverage" in r else "—",
                frac(r.get("px_coverage", r.get("coverage"))) + _real(r, "coverage_real", "coverage" in r),
                f"{r.get('memorized', float('nan')):.3f}",
                "—" if r.get("memorized_std") is None else f"{r['memorized_std']:.3f}",
                frac(r["distinct"]) + _real(r, "distinct_real"),
                frac(r["sharpness"])]
        out.append(row + ([f"{r['memorized_mirrors']:.3f}" if "memorized_mirrors" in r else "—"] if mirrors else []))
    head = ["data", "recipe", "seed", "CPU s trained", "precision", "kept epoch", "epochs run", "rule stopped",
            "burn-in (sampler)", "walk steps", "fd_classifier", "clf coverage", "coverage (px)", "memorised",
            "memorised (any contrast)", "distinct nearest", "sharpness"] + (["memorised (mirrors)"] if mirrors else [])
    return rows_table(head, out)


def ages_table(rows: list, seed: int = 0, every: int = 120) -> str:
    """benchmarks/selection.py ages: per data set and snapshot (every ``every`` passes, seed ``seed``), the
    starts and f applied 1, 2, 5, 10 times as "distinct nearest / coverage / memorised at any contrast"."""
    cell = lambda r: f"{r['distinct']:.2f} / {r['coverage']:.2f} / {r['memorized_std']:.2f}"  # noqa: E731
    out = []
    for data in dict.fromkeys(r["data"] for r in rows):
        mine = {(r["epoch"], r["applications"]): r for r in rows if r["data"] == data and r["seed"] == seed}
        epochs = sorted({e for e, _ in mine if e % every == 0})
        out.append([data, "starts", cell(mine[(epochs[0], 0)]), "", "", ""])
        out += [[data, e] + [cell(mine[(e, k)]) for k in (1, 2, 5, 10)] for e in epochs]
    return rows_table(["data", "passes", "f once", "f twice", "f 5 times", "f 10 times"], out)


def tables(root: Path = ROOT) -> dict:
    nbt = lambda: _json(root / "docs" / "results" / NOTEBOOK_TABLES)  # noqa: E731
    basins = lambda: _json(root / "docs" / "results" / "basins.json")  # noqa: E731
    samples = root / "saved_samples"
    return {
        "versus": ("versus_diffusion.md", lambda: versus_table(_json(samples / "versus_diffusion.json"))),
        "mixing": ("mixing.md", lambda: mixing_table([samples / "mixing_fashion-mnist.json",
                                                      samples / "mixing_fashion-mnist_more.json"], MIXING_MAIN,
                                                     names=MIXING_NAMES)),
        "versus-selection": ("versus_diffusion.md", lambda: versus_table(
            _json(samples / "versus_diffusion_selection.json"))),
        "mixing-travel": ("mixing.md", lambda: travel_table(samples)),
        "depth-01": ("depth.md", lambda: depth_table(nbt(), "01_synthetic_1d")),
        "depth-02": ("depth.md", lambda: depth_table(nbt(), "02_synthetic_2d")),
        "depth-03": ("depth.md", lambda: depth_table(nbt(), "03_mnist")),
        "corner-loss": ("corner_loss.md", lambda: corner_table(nbt())),
        "basins-sequence": ("basins.md", lambda: basins_sequence_table(basins())),
        "basins-capacity-2d": ("basins.md", lambda: basins_capacity_table(basins()["capacity2d"])),
        "basins-capacity-images": ("basins.md", lambda: basins_capacity_table(basins()["capacity_img"])),
        "basins-depth": ("basins.md", lambda: basins_depth_table(basins())),
        "selection-fashion": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_fashion.json"))),
        "selection-travel": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_travel.json"))),
        "selection-burn": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_burn.json"))),
        "selection-folders": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_folders.json"))),
        "selection-mirror": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_mirror.json"), mirrors=True)),
        "selection-views": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_views.json"))),
        "selection-ages": ("selection.md", lambda: ages_table(_json(root / "docs" / "results" / "selection_ages.json"))),
        "selection-burn-sizes": ("selection.md", lambda: selection_table(
            _json(root / "docs" / "results" / "selection_burn_sizes.json"))),
        "faces-colour": ("faces_colour.md", lambda: selection_table(
            [r for r in _json(root / "docs" / "results" / "selection_travel.json")
             if r["data"] in ("lfw-faces", "sample-photos")])),
        "precision-quality": ("speed.md", lambda: precision_quality_table(
            _json(samples / "precision_quality_fashion-mnist_28x28.json")["rows"])),
    }


def fill(text: str, made: dict, page: str = "page") -> str:
    """``text`` with the body of every ``<!-- table:NAME -->`` region replaced by ``made[NAME]``."""
    def one(m):
        if m["name"] not in made:
            raise KalsError(f"{page}: no table named {m['name']!r}; known: {', '.join(sorted(made))}")
        return f"<!-- table:{m['name']} -->\n{made[m['name']]}\n<!-- /table -->"
    return REGION.sub(one, text)


def regenerate(root: Path = ROOT) -> list:
    """Extract the notebooks' tables, refill every page's tables; the files that changed."""
    changed = []
    data = root / "docs" / "results" / NOTEBOOK_TABLES
    text = json.dumps(extract(root), indent=1, ensure_ascii=False) + "\n"
    if not data.is_file() or data.read_text() != text:
        data.write_text(text)
        changed.append(data)
    made = {}
    for name, (page, fn) in tables(root).items():
        made.setdefault(page, {})[name] = fn()
    for page, named in made.items():
        path = root / "docs" / "results" / page
        old = path.read_text()
        missing = [n for n in named if f"<!-- table:{n} -->" not in old]
        if missing:
            raise KalsError(f"{path} has no region for {missing}; mark it <!-- table:NAME --> ... <!-- /table -->")
        if len(REGION.findall(old)) != old.count("<!-- table:"):
            raise KalsError(f"{path}: a <!-- table:NAME --> region is not closed by <!-- /table --> before the next")
        new = fill(old, named, page)
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed

