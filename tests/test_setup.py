"""The install path: environment.yml lists the same packages as pyproject.toml."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALIASES = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_plain_install_brings_papermill():
    """The README and the docs show papermill commands after the plain `bash setup.sh`."""
    import tomllib
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "papermill" in {_name(r) for r in deps}


def test_environment_yml_matches_pyproject():
    import tomllib
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = proj["optional-dependencies"]
    tested = extras["test"] + extras["docs"] + extras["baseline"] + extras["samples"]
    want = {_name(r) for r in proj["dependencies"] + tested} - {"kals_utils"}
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


def test_environment_yml_uses_conda_forge_only():
    """conda-forge carries PyTorch now; the `pytorch` channel stopped at 2.5 (issue #23)."""
    text = (ROOT / "environment.yml").read_text()
    channels = re.search(r"^channels:\n((?:\s+- .+\n)+)", text, re.M).group(1)
    assert [c.strip("- ").strip() for c in channels.splitlines()] == ["conda-forge", "nodefaults"]


def _readme_command(tag: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(rf"<!-- {tag} -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S).group(1).strip()


def test_ci_runs_both_readme_commands_as_written():
    """.ci/run reads both commands out of the README and runs them verbatim (no paraphrase)."""
    import subprocess
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_block main-command" in ci and "readme_block test-command" in ci
    assert 'bash -c "$main_cmd"' in ci and 'bash -c "$test_cmd"' in ci
    script = ci.split("main_cmd=$(")[0].replace('cd "$(dirname "$0")/.."', "") + 'readme_block main-command; echo ---; readme_block test-command\n'
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split("---\n") == [_readme_command("main-command") + "\n", _readme_command("test-command") + "\n"]
    assert _readme_command("main-command").startswith("bash setup.sh &&")


def test_plain_setup_passes_on_a_ready_venv():
    """`bash setup.sh` with no option (the README's main command starts with it) exits 0 and,
    on a venv the test setup made, installs nothing."""
    import subprocess
    r = subprocess.run(["bash", "setup.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ready" in r.stdout


def test_committed_notebooks_are_clean_or_executed_by_the_book():
    """Outputs only from `python -m kals_utils.book execute` (it marks metadata.kals.executed);
    tests/test_book.py checks those outputs."""
    import json
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        data = json.loads(nb.read_text())
        if data["metadata"].get("kals", {}).get("executed"):
            continue
        for c in data["cells"]:
            if c["cell_type"] == "code":
                assert not c.get("outputs") and not c.get("execution_count"), nb.name
