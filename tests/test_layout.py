"""The package's shape (issue #13): one import direction with no cycles (function-level imports
count), no function much longer than a screen, keyword-only many-parameter functions."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "kals_utils"
ORDER = ["errors", "files", "device", "precision", "nets", "model", "data", "checkpoint", "train", "ensemble", "sample", "recipes", "prdc", "features", "metrics",
         "basins", "pipeline", "render", "plots", "export", "experiments", "studies.capacity", "widgets", "cli"]
MAX_LINES = 70


def _modules():
    """Every module, subpackages' too, by dotted name below the package (``studies.capacity``)."""
    return {".".join(p.relative_to(PKG).with_suffix("").parts): ast.parse(p.read_text())
            for p in PKG.rglob("*.py") if p.stem not in ("__init__", "__main__")}


def _targets(name: str, node: ast.ImportFrom) -> list:
    """The ORDER entries a relative import in module ``name`` reaches (``from ..pipeline import x``
    in studies.capacity -> pipeline; ``from .studies import capacity`` -> studies.capacity)."""
    base = name.split(".")[:-1][:len(name.split(".")) - node.level]
    mod = base + (node.module.split(".") if node.module else [])
    out = []
    for alias in node.names:
        for cand in (".".join(mod + [alias.name]), ".".join(mod), ".".join(mod[:1])):
            if cand in ORDER:
                out.append(cand)
                break
    return out


def test_every_module_is_in_the_order():
    assert sorted(_modules()) == sorted(ORDER)


def test_imports_only_go_down():
    for name, tree in _modules().items():
        for node in ast.walk(tree):  # every import, at any depth
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                for t in _targets(name, node):
                    assert ORDER.index(t) < ORDER.index(name), f"{name} imports {t}, which is above it"


def test_core_does_not_draw():
    core = ORDER[:ORDER.index("pipeline") + 1] + ["render"]
    for name, tree in _modules().items():
        if name in core:
            for node in ast.walk(tree):
                mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                        [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(m.startswith(("matplotlib", "ipywidgets")) for m in mods), name


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
