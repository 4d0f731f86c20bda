"""The install path: environment.yml lists the same packages as pyproject.toml."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALIASES = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    import tomllib
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = {_name(r) for r in proj["dependencies"] + proj["optional-dependencies"]["test"]}
    have, in_deps = set(), False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if not line.startswith(" "):
            in_deps = line.startswith("dependencies:")
        if not in_deps:
            continue
        m = re.match(r"^\s+-\s+([A-Za-z][\w.-]*)", line)
        if m and not line.strip().endswith(":"):
            have.add(ALIASES.get(_name(m.group(1)), _name(m.group(1))))
    have -= {"python", "pip"}
    assert have == want


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmd = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S).group(1).strip()
    assert cmd in ci


def test_committed_notebooks_have_no_outputs():
    import json
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        for c in cells:
            if c["cell_type"] == "code":
                assert not c.get("outputs") and not c.get("execution_count"), nb.name
