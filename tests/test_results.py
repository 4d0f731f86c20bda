"""The Results pages are generated from committed data (issue #34): `python -m kals_utils.book results`
refills every marked table from the JSON files (and the tables it copies out of the executed notebooks);
run on a copy of the checkout it must change nothing. Numbers the prose quotes are checked against the
same data here."""
import json
import shutil
from pathlib import Path

import pytest

from kals_utils import KalsError
from kals_utils import results as R

ROOT = Path(__file__).resolve().parents[1]


def _page(name: str) -> str:
    return " ".join((ROOT / "docs" / "results" / name).read_text().split())  # line breaks do not matter


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The files the results command reads and writes, copied as they are committed."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "docs" / "results", root / "docs" / "results")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "saved_samples").mkdir()
    for f in (ROOT / "saved_samples").glob("*.json"):
        shutil.copy(f, root / "saved_samples" / f.name)
    return root


def test_results_command_changes_nothing(copy):
    """The committed pages are exactly what the data give: regenerating rewrites no file."""
    files = lambda: {p: p.read_bytes() for p in (copy / "docs" / "results").rglob("*") if p.is_file()}  # noqa: E731
    before = files()
    assert R.regenerate(copy) == [], "run `python -m kals_utils.book results` and commit what it rewrites"
    assert files() == before


def test_a_changed_number_is_written_back(copy, tmp_path):
    """Break the data once: the page follows it (the regions really are generated)."""
    root = tmp_path / "c"
    shutil.copytree(copy, root)
    path = root / "saved_samples" / "versus_diffusion.json"
    rows = json.loads(path.read_text())
    rows[0]["fd_classifier"] = 1234.0   # the held-out real images' row
    path.write_text(json.dumps(rows))
    assert R.regenerate(root) == [root / "docs" / "results" / "versus_diffusion.md"]
    assert "| held-out real images | — | 1 | — | — | 0 | — | 1234 |" in path.parents[1].joinpath(
        "docs", "results", "versus_diffusion.md").read_text()


def test_fill_and_its_errors():
    text = "a\n<!-- table:x -->\nold\nold\n<!-- /table -->\nb\n<!-- table:y -->\n<!-- /table -->\n"
    out = R.fill(text, {"x": "| 1 |", "y": "| 2 |"})
    assert out == "a\n<!-- table:x -->\n| 1 |\n<!-- /table -->\nb\n<!-- table:y -->\n| 2 |\n<!-- /table -->\n"
    with pytest.raises(KalsError, match="no table named 'y'"):
        R.fill(text, {"x": ""})


def test_results_command_is_shown_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- results-command -->\n```bash\n.venv/bin/python -m kals_utils.book results\n```" in readme


# ---------------------------------------------------------------- numbers quoted in prose
def _versus():
    return json.loads((ROOT / "saved_samples" / "versus_diffusion.json").read_text())


def test_versus_prose_numbers_come_from_the_json():
    rows, page = _versus(), _page("versus_diffusion.md")
    stopped = sorted((r for r in rows if r["label"] == "kals improved (5 steps)" and r["budget_s"] == 600),
                     key=lambda r: r["seed"])
    unet = [r for r in rows if r["family"] == "unet" and r["budget_s"] == 1800]
    assert all(r["memorized"] > unet[0]["memorized"] for r in stopped)   # "no higher" holds on no seed
    mem = " / ".join(f"{r['memorized']:.3f}" for r in stopped)
    c = [round(300 * r["memorized"]) for r in stopped]
    counts = f"{c[0]}, {c[1]} and {c[2]}"
    assert f"fraction is {mem} on seeds 0 / 1 / 2 ({counts} of 300 samples)" in page
    assert "holds on **no** seed" in page and "memorisation not met" in page
    assert f"memorised ≤ {max(r['memorized'] for r in rows if r['family'] == 'improved'):.3f}" in page
    ratio = [r["sample_ms_wall"] / r["sample_ms_cpu"] for r in rows if r["sample_ms_cpu"] > 0]
    assert max(ratio) < 1.03 and "within 3% of the CPU times" in page
    held = [r["fd_heldout"] / r["fd_classifier"] - 1 for r in rows if r.get("fd_heldout") and r["family"] != "real"]
    assert f"(single seeds: −{-100 * min(held):.0f}% to +{100 * max(held):.0f}%" in page


def test_mixing_prose_numbers_come_from_the_json():
    page = _page("mixing.md")
    main = json.loads((ROOT / "saved_samples" / "mixing_fashion-mnist.json").read_text())["rows"]
    cov = [r["pooled_coverage"] for r in main if r["sampler"] in ("dae", "langevin")]
    assert f"cover {min(cov):.2f}-{max(cov):.2f} only" in page
    travel = {f: json.loads((ROOT / "saved_samples" / f"mixing_travel_{f}.json").read_text())["rows"]
              for f in ("f1000_16_fullbatch", "f3000_16")}
    low = {f: round(min(r["precision_min"] for r in rs if r["sampler"] == "restart"), 6) for f, rs in travel.items()}
    assert low["f1000_16_fullbatch"] >= 0.9 > low["f3000_16"]   # met on 1,000 images, missed on 3,000
    assert f"exactly {low['f1000_16_fullbatch']:.3f}" in page and f"({low['f3000_16']:.3f} on seed 1)" in page
    assert all(r["tau_censored"] for r in main if r["sampler"] != "walk") and "> 15 (censored)" in page


def test_basins_prose_numbers_come_from_the_json():
    rows = json.loads((ROOT / "docs" / "results" / "basins.json").read_text())["sequence"]["rows"]
    n4 = sorted((r for r in rows if r["n"] == 4 and r["depth"] == 4 and r["width"] == 20), key=lambda r: r["seed"])
    counts = [round(256 * r["from_random"]) for r in n4]
    assert f"{counts[0]}, {counts[1]} and {counts[2]} of 256 starts" in _page("basins.md")
    assert all(r["from_random"] == 0 for r in rows if r["n"] == 4 and r["depth"] == 2)
