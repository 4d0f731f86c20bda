"""The notebooks as a book: run them in place at the settings each one states, check the committed
outputs, and build the documentation site offline::

    python -m kals_utils.book execute [NAMES...]   run notebooks/NAME.ipynb with papermill (kernel
                                                   "kals") at SETTINGS[NAME], tidy, write back
    python -m kals_utils.book check [NAMES...]     the rules below, on the committed files; runs nothing
                                                   (the same as ``execute --check``)
    python -m kals_utils.book build                docs/ -> docs/_build/html (Sphinx + myst-nb, offline)
    python -m kals_utils.book results              refill the Results pages' tables from their committed data
                                                   (:mod:`kals_utils.faces.results`)

The rules of a committed notebook (``check``; tests/test_book.py applies them to every notebook):
either it has no outputs at all, or it was executed by this module (``metadata.kals.executed``) and
then every code cell ran, the first one says with which settings, on which date and machine, and
no output is an error or a traceback, names a path of the machine that ran it, or embeds a GIF (a
GIF is shown from its file under saved_samples/, or as a PNG strip of frames); each file < 3 MB
(``tidy`` keeps a PNG figure over 300 kB, a walk of photographs, as a JPEG).
"""

import argparse
import ast
import base64
import copy
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import nbformat
import numpy as np
import torch

from ..errors import KalsError
from ..files import DEBIAN_FASHION, atomic_path, out_dir, project_dir
from ..render import png_bytes
from .results import regenerate

ROOT = project_dir()
NB_DIR = ROOT / "notebooks"
SAMPLES = ROOT / "saved_samples"      # GIFs the notebooks write: shown from there, by relative path
DOCS = ROOT / "docs"
SITE = DOCS / "_build" / "html"       # where `build` puts the site
KERNEL = "kals"                       # the Jupyter kernel setup.sh installs
MAX_BYTES = 3_000_000                 # a committed notebook stays below this
MAX_OUTPUT_BYTES = 600_000            # ... and so does each of its outputs (a figure is ~50-200 kB)
PHOTO_PNG_BYTES = 300_000             # a PNG figure larger than this is committed as a JPEG ...
JPEG_QUALITY = 90                     # ... of this quality
STRIP_FRAMES = 6                      # frames in the PNG strip that stands in for an unlinked GIF
# What each notebook is executed with: papermill parameters over its defaults. The defaults where
# the whole notebook runs in under ~5 CPU minutes, QUICK where it does not (its prose says what QUICK
# trades away). Every notebook fixes its seeds (SEED = 0 and the sweeps' SEEDS).
SETTINGS = {
    "01_synthetic_1d": {},
    "02_synthetic_2d": {},
    "03_mnist": {"QUICK": True, "DATASET": "fashion-mnist"},   # MNIST itself is not on this machine
    "04_cifar_dogs": {"QUICK": True, "DATASET": "sample-photos"},   # offline stand-ins: no CIFAR-10 or
    "05_celeba": {"QUICK": True, "DATASET": "lfw-faces"},           # CelebA on this machine
    "06_architectures": {"SEEDS": [0]},   # defaults: 3 seeds, ~24 CPU minutes (the CNN); one seed ~8
    "07_versus_diffusion": {"BUDGETS": [60]},   # defaults: 60 and 180 CPU seconds per family (~20 CPU minutes)
}
# Environment per notebook (the kernel inherits it): where data sets lie that torchvision cannot fetch
# offline. Debian's package dataset-fashion-mnist (files.DEBIAN_FASHION) is read where it lies; nothing
# is written there.
# 07 trains kals' classifier (the Fréchet distance's features) and caches it under its data root, so it
# reads <repo>/data (torchvision downloads Fashion-MNIST there; or link Debian's .gz files into it).
ENV = {"03_mnist": {"KALS_DATA": DEBIAN_FASHION}, "06_architectures": {"KALS_DATA": DEBIAN_FASHION},
       "07_versus_diffusion": {"KALS_DATA": str(project_dir() / "data")}}
# Paths of a machine that must not appear in a committed output (besides this checkout's own path).
MACHINE_PATH = re.compile(r"(/tmp/|/root/|/home/[a-z]|/Users/[A-Za-z]|[A-Za-z]:\\Users\\)")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w*Error: ", re.M)
VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")
VOLATILE_NB_KEYS = ("papermill", "widgets")
WIDGET = "application/vnd.jupyter.widget-view+json"


def read(path):
    """A notebook, without nbformat's warning about cells that have no id (ours predate them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nbformat.read(path, as_version=4)


def notebook_path(name: str) -> Path:
    """``03``, ``03_mnist``, ``03_mnist.ipynb`` or ``notebooks/03_mnist.ipynb`` -> its path."""
    stem = Path(name).stem
    hits = [p for p in sorted(NB_DIR.glob("*.ipynb")) if p.stem == stem or p.stem.split("_")[0] == stem]
    if len(hits) != 1:
        known = ", ".join(p.stem for p in sorted(NB_DIR.glob("*.ipynb")))
        raise KalsError(f"no single notebook named {name!r} in {NB_DIR.name}/ (known: {known})")
    return hits[0]


def parameter_names(nb) -> set:
    """The upper-case names the ``parameters`` cell of ``nb`` assigns (``DEPTH, WIDTH = ...`` gives both):
    what papermill and :data:`SETTINGS` may set."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return set()
    targets = [t for node in ast.parse(cells[0].source).body if isinstance(node, ast.Assign) for t in node.targets]
    names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return {n for n in names if n.isupper()}


def settings_text(params: dict, smoke: bool = False) -> str:
    """``QUICK = True, DATASET = "fashion-mnist"``, or ``the defaults``; SMOKE says so first."""
    text = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in params.items()) or "the defaults"
    return f"SMOKE = True (CI sizes), {text}" if smoke else text


def machine() -> str:
    """``CPU (AMD EPYC, 2 cores)`` or ``GPU (NVIDIA H200)``: what DEVICE = "auto" ran on."""
    if torch.cuda.is_available():
        return f"GPU ({torch.cuda.get_device_name(0)})"
    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU ({name}, {os.cpu_count()} cores)"


# ---------------------------------------------------------------- tidy: what the committed file keeps

def _relative_paths(text: str) -> str:
    """This checkout's path -> repository-relative; the home folder -> ``~``; temp folders -> ``<tmp>``."""
    text = text.replace(f"{ROOT}/", "").replace(str(ROOT), ".")
    home = str(Path.home())
    if home not in ("", "/"):
        text = text.replace(home, "~")
    return re.sub(r"(?<![\w.])/tmp/(?:[\w.\-]+/)*", "<tmp>/", text.replace(tempfile.gettempdir() + "/", "/tmp/"))


def _gif_files(samples: Path) -> dict:
    """bytes -> path of every GIF in ``samples`` (to find which file an inline GIF came from)."""
    return {p.read_bytes(): p for p in sorted(samples.glob("*.gif"))} if samples.is_dir() else {}


def png_strip(gif: bytes, frames: int = STRIP_FRAMES) -> bytes:
    """``frames`` evenly spaced frames of a GIF side by side (first to last), as PNG bytes."""
    from PIL import Image, ImageSequence
    with Image.open(io.BytesIO(gif)) as im:
        all_frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    pick = np.linspace(0, len(all_frames) - 1, min(frames, len(all_frames))).round().astype(int)
    gap = np.full((all_frames[0].shape[0], 4, 3), 255, np.uint8)
    return png_bytes(np.concatenate([x for i in pick for x in (all_frames[i], gap)][:-1], axis=1))


def _gif_output(data: dict, gifs: dict, folder: Path) -> dict:
    """An inline GIF -> a Markdown image of its file under saved_samples/ (relative to the notebook's
    ``folder``), or, for a GIF that is not there, a PNG strip of its frames."""
    raw = base64.b64decode(data.pop("image/gif"))
    path = gifs.get(raw)
    if path is not None:
        rel = Path(os.path.relpath(path, folder)).as_posix()
        data["text/markdown"] = f"![{path.name}]({rel})"
        data["text/plain"] = f"<the GIF {rel}>"
    else:
        data["image/png"] = base64.b64encode(png_strip(raw)).decode()
        data["text/plain"] = f"<{STRIP_FRAMES} frames of the GIF, first to last>"
    return data


def _progress_bar(out) -> bool:
    """A tqdm bar in a notebook: a widget whose text form reads ``fit f(x)≈x:  40%|####  | 120/300 ...``."""
    data = out.get("data", {})
    return WIDGET in data and bool(re.search(r"\d+%\|.*\| *[\d.]+[kMG]?/", data.get("text/plain", "")))


def _as_jpeg(data: dict) -> None:
    """A large PNG figure (photographs and noise compress badly; a walk of colour images reaches 1 MB)
    re-encoded as a JPEG of JPEG_QUALITY, in place: the same picture at a fifth of the bytes."""
    from PIL import Image as PILImage
    img = PILImage.open(io.BytesIO(base64.b64decode(data.pop("image/png")))).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    data["image/jpeg"] = base64.b64encode(buf.getvalue()).decode()


def _tidy_output(out, gifs: dict, folder: Path):
    if "text" in out:
        out["text"] = _relative_paths(out["text"])
    if "traceback" in out:
        out["traceback"] = [_relative_paths(t) for t in out["traceback"]]
    data = out.get("data")
    if data is None:
        return out
    if "image/gif" in data:
        _gif_output(data, gifs, folder)
    if len(data.get("image/png", "")) > PHOTO_PNG_BYTES:
        _as_jpeg(data)
    if WIDGET in data:  # a live widget needs a kernel: say so instead of an empty box
        del data[WIDGET]
        data["text/markdown"] = "*(An interactive widget: it appears when the notebook runs in Jupyter.)*"
        data["text/plain"] = "(an interactive widget: it appears when the notebook runs in Jupyter)"
    for mime in ("text/plain", "text/html", "text/markdown"):
        if isinstance(data.get(mime), str):
            data[mime] = _relative_paths(data[mime])
    return out


def drop_injected(nb):
    """``nb`` without papermill's injected-parameters cell (the banner says what it set): left in, it would
    silently undo a reader's change to the parameters cell above it (a newcomer's DATASET, issue #29)."""
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    return nb


def banner(name: str, params: dict, *, smoke: bool, seconds: float, day: str, device: str):
    """The first output of the first code cell: how, when and where this notebook was executed."""
    passed = " (set for this run over the parameters cell's defaults)" if params else ""
    text = (f"Executed with {settings_text(params, smoke)}{passed} on {day}, {device}; the whole notebook "
            f"ran in {seconds:.0f} s. Re-run: `python -m kals_utils.book execute {name}`.")
    return nbformat.v4.new_output("display_data", data={"text/markdown": f"*{text}*", "text/plain": text})


def tidy(nb, name: str, params: dict, *, smoke: bool = False, seconds: float = 0.0, samples=SAMPLES,
         folder=NB_DIR):
    """A papermill-executed notebook made fit to commit (in place; returns it): no injected parameters cell
    (:func:`drop_injected`; the banner names them), no timestamps or papermill records, no widget state, no machine
    paths, GIFs as links to their files in ``samples`` (relative to ``folder``, where the notebook is written) or as
    PNG strips, the settings banner first, ``metadata.kals`` saying it was executed and how."""
    gifs = _gif_files(Path(samples))
    drop_injected(nb)
    for key in VOLATILE_NB_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = [_tidy_output(o, gifs, Path(folder)) for o in cell.outputs if not _progress_bar(o)]
    day, device = date.today().isoformat(), machine()
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.outputs.insert(0, banner(name, params, smoke=smoke, seconds=seconds, day=day, device=device))
    nb.metadata["kals"] = {"executed": True, "settings": params, "smoke": smoke, "date": day, "device": device,
                           "seconds": round(seconds)}
    return nb


def clean(nb):
    """A copy of ``nb`` as it is before execution: no outputs, no counts, no papermill-injected
    parameters, no ``metadata.kals`` (for tests that run the committed notebooks)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.metadata.pop("kals", None)
    return nb


# ---------------------------------------------------------------- execute

def _run_papermill(src: Path, dest: Path, params: dict, env: dict) -> None:
    import papermill
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        papermill.execute_notebook(str(src), str(dest), parameters=params, kernel_name=KERNEL, cwd=str(NB_DIR),
                                   progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as e:
        raise KalsError(f"{src.name}: cell {e.exec_count} failed with {e.ename}: {e.evalue} "
                        "(nothing was written back)") from None
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def execute(name: str, *, dest=None, smoke: bool = False, params=None, env=None) -> Path:
    """Run one notebook top to bottom with papermill at ``SETTINGS[name]`` (or ``params``), tidy it
    (:func:`tidy`) and write it to ``dest`` (default: over the committed file). ``smoke``: CI sizes."""
    src = notebook_path(name)
    name = src.stem
    params = dict(SETTINGS.get(name, {}) if params is None else params)
    unknown = set(params) - parameter_names(read(src))
    if unknown:
        raise KalsError(f"{name}: its parameters cell has no {', '.join(sorted(unknown))}; fix SETTINGS in {__name__}")
    run_env = {"PYTHONHASHSEED": "0", "KALS_SMOKE": "1" if smoke else "0", **ENV.get(name, {}), **(env or {})}
    dest = Path(dest or src)
    with tempfile.TemporaryDirectory() as tmp:
        executed, clean_src = Path(tmp) / src.name, Path(tmp) / "clean" / src.name
        clean_src.parent.mkdir()
        nbformat.write(clean(read(src)), clean_src)
        t0 = time.monotonic()
        _run_papermill(clean_src, executed, params, run_env)
        samples = out_dir(run_env.get("KALS_OUT", ""))  # where the notebook wrote its GIFs
        nb = tidy(read(executed), name, params, smoke=smoke, seconds=time.monotonic() - t0,
                  samples=samples, folder=dest.parent)
    with atomic_path(dest) as tmp_dest:
        nbformat.write(nb, tmp_dest)
    return dest


# ---------------------------------------------------------------- check

def _output_text(out) -> str:
    parts = [out.get("text", ""), "\n".join(out.get("traceback", []))]
    parts += [v for k, v in out.get("data", {}).items() if k.startswith("text/") and isinstance(v, str)]
    return "\n".join(parts)


def _linked_images(text: str) -> list:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text) + re.findall(r"<img [^>]*src=\"([^\"]+)\"", text)


def _output_problems(out, folder: Path) -> list:
    bad = []
    text = _output_text(out)
    if out.output_type == "error" or TRACEBACK.search(text):
        bad.append("an error output or a traceback")
    hit = MACHINE_PATH.search(text)
    if hit or str(ROOT) in text:
        bad.append(f"a machine's absolute path ({hit.group(0) if hit else str(ROOT)}...)")
    data = out.get("data", {})
    if "image/gif" in data:
        bad.append("an inline GIF (show it from its file under saved_samples/, or as a PNG strip)")
    if WIDGET in data:
        bad.append("a widget view (it needs a kernel; tidy() replaces it)")
    size = len(json.dumps(out))
    if size > MAX_OUTPUT_BYTES:
        bad.append(f"an output of {size / 1e6:.1f} MB")
    bad += [f"a link to a missing image {src}" for src in _linked_images(text)
            if not src.startswith(("http:", "https:", "data:")) and not (folder / src).is_file()]
    return bad


def problems(path) -> list:
    """What breaks the rules in the notebook at ``path`` (see the module docstring); [] if nothing."""
    path = Path(path)
    raw = path.read_bytes()
    bad = [f"{len(raw) / 1e6:.1f} MB (limit {MAX_BYTES / 1e6:.0f} MB)"] if len(raw) > MAX_BYTES else []
    nb = read(io.StringIO(raw.decode()))
    code = [c for c in nb.cells if c.cell_type == "code"]
    executed = nb.metadata.get("kals", {}).get("executed", False)
    if not executed:
        if any(c.outputs or c.execution_count for c in code):
            bad.append("outputs, but no metadata.kals.executed: execute it with `python -m kals_utils.book "
                       "execute`, or clear its outputs")
        return bad
    if [c for c in code if c.execution_count is None]:
        bad.append(f"{sum(c.execution_count is None for c in code)} code cells that did not run")
    first = code[0].outputs[0] if code and code[0].outputs else {}
    if not _output_text(first).strip().lstrip("*").startswith("Executed with "):
        bad.append("no 'Executed with ...' banner first in the first code cell")
    if any(k in nb.metadata for k in VOLATILE_NB_KEYS) or any(k in c.metadata for c in nb.cells
                                                               for k in VOLATILE_CELL_KEYS):
        bad.append("volatile metadata (papermill records, timestamps or widget state)")
    for i, c in enumerate(code):
        for out in c.outputs:
            bad += [f"code cell {i}: {p}" for p in _output_problems(out, path.parent)]
    return list(dict.fromkeys(bad))


# ---------------------------------------------------------------- build

def build(*, src=DOCS, out=SITE, quiet: bool = True) -> Path:
    """The documentation site from ``src`` (docs/; Sphinx + myst-nb; notebooks read with their
    committed outputs, never executed; no network) into ``out``; returns ``out/index.html``. Any
    Sphinx warning (a broken reference, a missing image) fails the build."""
    cmd = [sys.executable, "-W", "ignore::Warning", "-m", "sphinx", "-b", "html", "-W", "--keep-going",
           *(["-q"] if quiet else []), str(src), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise KalsError(f"the docs build failed (exit {r.returncode}):\n{(r.stderr or r.stdout)[-4000:]}")
    return Path(out) / "index.html"


# ---------------------------------------------------------------- command line

def _names(names) -> list:
    return [notebook_path(n).stem for n in names] if names else [p.stem for p in sorted(NB_DIR.glob("*.ipynb"))]


def _check(names) -> int:
    found = {n: problems(notebook_path(n)) for n in _names(names)}
    for n, bad in found.items():
        state = "executed" if read(notebook_path(n)).metadata.get("kals") else "clean"
        print(f"{n}: " + ("; ".join(bad) if bad else f"ok ({state})"))
    return 1 if any(found.values()) else 0


def _execute_one(name: str) -> bool:
    """Execute one notebook in place, saying what happened; False if it failed or is not clean."""
    print(f"{name}: executing with {settings_text(SETTINGS.get(name, {}))} ...", flush=True)
    try:
        path = execute(name)
    except KalsError as e:
        print(f"{name}: FAILED: {e}", flush=True)
        return False
    bad = problems(path)
    print(f"{name}: written to {path.relative_to(ROOT)}" + (f"; NOT clean: {'; '.join(bad)}" if bad else ""), flush=True)
    return not bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kals_utils.book", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="run notebooks in place at their SETTINGS (all if none named)")
    ex.add_argument("names", nargs="*", help="e.g. 01_synthetic_1d or 01")
    ex.add_argument("--check", action="store_true", help="only check the committed files; run nothing")
    ch = sub.add_parser("check", help="check the committed notebooks; run nothing")
    ch.add_argument("names", nargs="*")
    bu = sub.add_parser("build", help=f"build the docs site into {SITE.relative_to(ROOT)}")
    bu.add_argument("--out", default=str(SITE))
    sub.add_parser("results", help="refill the Results pages' tables from their committed data")
    args = ap.parse_args(argv)
    try:
        if args.command == "results":
            changed = regenerate(ROOT)
            print("\n".join(f"rewrote {p.relative_to(ROOT)}" for p in changed) or "Results pages up to date")
            return 0
        if args.command == "check" or (args.command == "execute" and args.check):
            return _check(args.names)
        if args.command == "build":
            print(f"site: {build(out=args.out)}")
            return 0
        failed = [n for n in _names(args.names) if not _execute_one(n)]
        if failed:
            print(f"kals: error: not executed: {', '.join(failed)} (see above)", file=sys.stderr)
        return 1 if failed else 0
    except KalsError as e:
        print(f"kals: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
