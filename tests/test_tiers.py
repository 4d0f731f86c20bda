"""The fast edit loop (issue #32): a registered `slow` marker, and `pytest -m "not slow"` leaves out
the notebook, docs, browser and long-training tests while keeping the rest."""
import ast
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import SLOW_FILES, SLOW_TESTS  # noqa: E402

TESTS = Path(__file__).resolve().parent


def test_slow_marker_is_registered(pytestconfig):
    assert any(m.startswith("slow:") for m in pytestconfig.getini("markers"))


def test_every_slow_test_named_exists():
    """A renamed test would silently join the fast tier: every name in SLOW_TESTS is a test function."""
    for file, names in SLOW_TESTS.items():
        defined = {n.name for n in ast.walk(ast.parse((TESTS / file).read_text())) if isinstance(n, ast.FunctionDef)}
        assert names <= defined, (file, names - defined)


def test_fast_tier_leaves_out_notebooks_docs_browser_and_long_training():
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                        "-m", "not slow"], cwd=TESTS.parent, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    fast = [line for line in r.stdout.splitlines() if "::" in line]
    files = {t.split("::")[0].rsplit("/", 1)[-1] for t in fast}
    assert not files & (SLOW_FILES | {"test_browser.py", "test_docs.py", "test_notebooks.py"}), files
    names = {(t.split("::")[0].rsplit("/", 1)[-1], t.split("::")[1].split("[")[0]) for t in fast}
    assert not [(f, n) for f, n in names if n in SLOW_TESTS.get(f, ())]
    assert ("test_book.py", "test_execute_runs_a_notebook_and_leaves_it_fit_to_commit") not in names  # executed_smoke
    assert ("test_layout.py", "test_imports_only_go_down") in names and len(fast) > 300
