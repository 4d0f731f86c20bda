"""Every command in the README and in the docs' pages works verbatim: their ```bash and ```python blocks
are run here, in a fresh folder, exactly as written (``.venv/bin/X`` is this interpreter's X). Blocks
right after <!-- main-command --> / <!-- test-command --> run in CI itself (.ci/run), the one after
<!-- docs-command --> in tests/test_docs.py, the one after <!-- results-command --> in tests/test_results.py; a block after <!-- not-run: REASON --> says why it is not
run (e.g. it starts Jupyter, or runs for many minutes)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!--[^\n]*-->\s*\n)?```(bash|python)\n(.*?)\n```", re.S)
SKIP_TAGS = ("main-command", "test-command", "docs-command", "results-command", "not-run")
DOC_PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")
                   if "_build" not in p.parts)


def blocks(path: Path):
    out = []
    for m in BLOCK.finditer(path.read_text()):
        tag, lang, code = m.group(1) or "", m.group(2), m.group(3)
        if any(t in tag for t in SKIP_TAGS):
            continue
        out.append((lang, code))
    return out


def readme_blocks():
    return blocks(ROOT / "README.md")


def run_blocks(found, cwd: Path, env: dict, what: str):
    bin_dir = str(Path(sys.executable).parent)
    for lang, code in found:  # in order: later blocks use files earlier ones wrote
        if lang == "bash":
            cmd = code.replace(".venv/bin/", bin_dir + "/")
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=cwd, capture_output=True,
                               text=True, timeout=600, env=env)
        else:
            r = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
                               env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})
        assert r.returncode == 0, f"{what} block failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr, r.stderr[-3000:]


def test_readme_has_runnable_blocks():
    assert len(readme_blocks()) >= 3


def _fresh_folder(tmp_path: Path) -> dict:
    """A fresh folder where ``notebooks/`` is the repository's (commands, run from the repository root,
    name notebooks by that path); the environment sends GIFs a notebook writes there too."""
    import os
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    return {**os.environ, "KALS_OUT": str(tmp_path / "saved_samples"), "OMP_NUM_THREADS": "1"}


def test_readme_blocks_run_verbatim(tmp_path):
    run_blocks(readme_blocks(), tmp_path, _fresh_folder(tmp_path), "README")


def test_docs_have_runnable_blocks():
    assert "docs/guide.md" in DOC_PAGES and len(blocks(ROOT / "docs" / "guide.md")) >= 4


@pytest.mark.parametrize("page", [p for p in DOC_PAGES if blocks(ROOT / p)])
def test_docs_blocks_run_verbatim(page, tmp_path):
    run_blocks(blocks(ROOT / page), tmp_path, _fresh_folder(tmp_path), page)
