"""Every command in the README works verbatim: its ```bash and ```python blocks are run here, in a
fresh folder, exactly as written (``.venv/bin/python`` is this interpreter). Blocks right after
<!-- main-command --> / <!-- test-command --> run in CI itself (.ci/run); a block after
<!-- not-run: REASON --> says why it is not run (e.g. it starts Jupyter)."""
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!--[^\n]*-->\s*\n)?```(bash|python)\n(.*?)\n```", re.S)


def readme_blocks():
    out = []
    for m in BLOCK.finditer((ROOT / "README.md").read_text()):
        tag, lang, code = m.group(1) or "", m.group(2), m.group(3)
        if any(t in tag for t in ("main-command", "test-command", "not-run")):
            continue
        out.append((lang, code))
    return out


def test_readme_has_runnable_blocks():
    assert len(readme_blocks()) >= 3


def test_readme_blocks_run_verbatim(tmp_path):
    env_py = sys.executable
    for lang, code in readme_blocks():  # in order: later blocks use files earlier ones wrote
        if lang == "bash":
            cmd = code.replace(".venv/bin/python", env_py)
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=tmp_path, capture_output=True,
                               text=True, timeout=600)
        else:
            r = subprocess.run([env_py, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                               env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert r.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
