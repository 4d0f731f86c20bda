"""The package's shape (issues #13, #23, #32): four layers — the core helper, measures, studies, faces —
in folders that show them (the core at the top, measures/, studies/, faces/),
in one import direction with no cycles (function-level imports count), no function much longer than
a screen, keyword-only many-parameter functions, a headless core."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "kals_utils"
CORE = ["errors", "presets", "files", "device", "precision", "nets", "model", "neighbours", "sharpness", "images", "datasets", "data",
        "checkpoint", "ema", "train", "moves", "sample", "mirror", "selection", "recipes", "render", "pipeline"]                       # the thin helper: data -> fit -> sample -> render
MEASURE = [f"measures.{m}" for m in ("collapse", "prdc", "features", "metrics", "attractors", "mixing", "basins",
                                     "evaluate", "tables")]  # every measure of a run, and its tables
ENSEMBLE = ["studies.ensemble.plan", "studies.ensemble.stack", "studies.ensemble.fit"]   # many small nets at once
STUDIES = ENSEMBLE + ["studies.corner", "studies.sweeps", "studies.compare", "studies.architectures",
                      "studies.capacity", "studies.mixing", "studies.versus"]
PLOTS = [f"faces.plots.{m}" for m in ("figure", "images", "walks", "curves", "basins", "compare")]
FACES = PLOTS + [f"faces.{m}" for m in ("export", "pace", "controls", "training", "panel", "widgets", "walkthrough",
                                        "cli", "results", "book")]              # drawing, the panel, the CLI
ORDER = CORE + MEASURE + STUDIES + FACES
FOLDERS = {"measures": MEASURE, "studies": STUDIES, "faces": FACES}   # each layer above the core has its folder
DOORS = {"book": "faces.book"}   # top-level forwarders, so `python -m kals_utils.book` keeps working
MAX_LINES = 70


def _modules():
    """{"sample": tree, "studies.corner": tree, ...} for every module of the package."""
    files = [p for p in PKG.rglob("*.py") if p.stem not in ("__init__", "__main__")
             and not (p.parent == PKG and p.stem in DOORS)]
    return {".".join(p.relative_to(PKG).with_suffix("").parts): ast.parse(p.read_text()) for p in files}


def _targets(name: str, node: ast.ImportFrom) -> list:
    """The package modules a relative import in module ``name`` names (``from ..x import y`` -> x).
    A sub-package (``from .plots import y``) names every module in it: its ``__init__`` imports them all."""
    base = name.split(".")[:-node.level] if node.level else []
    if node.module:
        return _within(".".join(base + node.module.split(".")))
    return [m for a in node.names for m in _within(".".join(base + [a.name]))]


def _within(target: str) -> list:
    """``target`` itself, or, for a sub-package, every module of it (``plots`` -> plots.figure, ...)."""
    folder = PKG.joinpath(*target.split("."))
    if not folder.is_dir():
        return [target]
    return [".".join(p.relative_to(PKG).with_suffix("").parts) for p in sorted(folder.rglob("*.py"))
            if p.stem not in ("__init__", "__main__")]


def test_every_module_is_in_the_order():
    assert sorted(_modules()) == sorted(ORDER)


def test_folders_show_the_layers():
    """The core sits at the top of kals_utils/, every measure in measures/, every study in studies/,
    every face in faces/ — and the reverse: each of those folders holds its layer's modules only."""
    top = {p.stem for p in PKG.glob("*.py")} - {"__init__", "__main__"} - set(DOORS)
    assert top == set(CORE), sorted(top ^ set(CORE))
    for folder, layer in FOLDERS.items():
        inside = {m for m in _modules() if m.split(".")[0] == folder}
        assert inside == set(layer), (folder, sorted(inside ^ set(layer)))
        assert all(m.split(".")[0] == folder for m in layer), folder
        assert (PKG / folder / "__init__.py").exists(), folder
    assert {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(FOLDERS)


def test_doors_only_forward():
    """kals_utils/book.py and kals_utils/__main__.py are a few lines that call a face's main()."""
    for door, face in {**DOORS, "__main__": "faces.cli"}.items():
        text = (PKG / f"{door}.py").read_text()
        tree = ast.parse(text)
        froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level >= 1]
        assert [(n.module, [a.name for a in n.names]) for n in froms] == [(face, ["main"])], door
        assert len(text.splitlines()) <= 12, door


def test_imports_only_go_down():
    for name, tree in _modules().items():
        for node in ast.walk(tree):  # every import, at any depth
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                for t in _targets(name, node):
                    t = t if t in ORDER else t.rsplit(".", 1)[0]  # "studies.x.y" (a name in x) -> "studies.x"
                    assert t in ORDER and ORDER.index(t) < ORDER.index(name), f"{name} imports {t}, which is above it"


def test_core_does_not_draw():
    for name, tree in _modules().items():
        if name in CORE + MEASURE + STUDIES:
            for node in ast.walk(tree):
                mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                        [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(m.startswith(("matplotlib", "ipywidgets")) for m in mods), name


def test_the_core_imports_no_measure_study_or_face():
    """The helper a reader needs (data, model, train, sample, render, pipeline) stands on its own."""
    for name, tree in _modules().items():
        if name in CORE:
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level >= 1:
                    assert all(t.split(".")[0] in CORE for t in _targets(name, node)), name


def test_the_core_reads_in_one_sitting():
    """nanoGPT's model.py + train.py + sample.py are ~750 lines; kals' core pipeline modules stay near that."""
    lines = sum(len((PKG / f"{m}.py").read_text().splitlines()) for m in ("model", "train", "sample", "pipeline"))
    assert lines < 1000, lines


def test_panel_controller_does_not_draw():
    """The panel's controller (and its clock) is tested without a kernel: no widgets, no matplotlib."""
    for name in ("faces.panel", "faces.pace", "faces.controls", "faces.training"):
        for node in ast.walk(_modules()[name]):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m.startswith(("matplotlib", "ipywidgets", "plots", "export", "widgets")) for m in mods), \
                (name, mods)


def test_functions_are_short():
    long = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert not long, long


def test_public_functions_with_many_parameters_are_keyword_only():
    loose = []
    for name, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                positional = node.args.posonlyargs + node.args.args
                if len(positional) + len(node.args.kwonlyargs) > 6 and len(positional) > 3:
                    loose.append(f"{name}.{node.name}")
    assert not loose, loose


def test_no_function_level_imports_inside_the_package():
    """Every import of a kals module sits at the top of its module (no hidden import cycles)."""
    hidden = []
    for name, tree in _modules().items():
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{name}.{fn.name}" for node in ast.walk(fn)
                           if isinstance(node, ast.ImportFrom) and node.level >= 1]
    assert not hidden, hidden


def test_import_kals_utils_loads_the_core_only():
    """``import kals_utils as kals`` (every notebook's opening) imports the core helper and nothing that
    draws: the measures, studies and faces behind ``kals.<name>`` come on first use."""
    import subprocess
    import sys
    code = ("import sys, kals_utils; print(sorted(m for m in sys.modules if m.startswith(('kals_utils.', "
            "'matplotlib', 'ipywidgets', 'IPython'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=PKG.parent, env={**__import__("os").environ, "PYTHONPATH": str(PKG.parent)})
    loaded = set(ast.literal_eval(r.stdout.strip().splitlines()[-1]))
    assert loaded <= {f"kals_utils.{m}" for m in CORE}, sorted(loaded - {f"kals_utils.{m}" for m in CORE})


def test_the_public_surface_resolves_and_is_documented():
    """Every name of ``kals_utils.__all__`` (eager or lazy) and every lazily named module resolves,
    and docs/api.md lists each name."""
    import kals_utils
    api = (PKG.parent / "docs" / "api.md").read_text()
    for name in kals_utils.__all__:
        assert getattr(kals_utils, name) is not None, name
        assert f"`{name}`" in api or f"kals_utils.{name}" in api, f"docs/api.md does not mention {name}"
    units = {".".join(m.split(".")[:2]) if m.split(".")[0] in ("measures", "faces") else m.split(".")[0]
             for m in ORDER}   # a module, or a sub-package that is one subject (studies, faces.plots)
    assert set(kals_utils.MODULES.values()) == units
    for name, where in kals_utils.MODULES.items():
        assert where.rsplit(".", 1)[-1] == name, (name, where)
        assert getattr(kals_utils, name).__name__ == f"kals_utils.{where}"
    from kals_utils import plots, studies   # every notebook's second line
    assert (plots.__name__, studies.__name__) == ("kals_utils.faces.plots", "kals_utils.studies")
    assert set(kals_utils.__all__) <= set(dir(kals_utils))
    try:
        kals_utils.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
