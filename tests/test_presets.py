"""Every default once (issue #23): change a preset and the CLI, the demo, the panel and the
notebooks' parameters cells follow."""
import dataclasses
import json
from pathlib import Path

import pytest

import kals_utils
from kals_utils import presets
from kals_utils.checkpoint import load_checkpoint
from kals_utils.faces.cli import build_parser, main

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def shallow_points1d(monkeypatch):
    """points1d's preset with L=3, H=6 and 50 epochs, for the length of one test."""
    changed = dataclasses.replace(presets.PRESETS["points1d"], depth=3, width=6, epochs=50)
    monkeypatch.setitem(presets.PRESETS, "points1d", changed)
    return changed


def test_cli_train_takes_the_data_sets_preset(shallow_points1d, tmp_path):
    ck = tmp_path / "p.pt"
    assert main(["train", "--data", "points1d", "--out", str(ck), "--no-progress"]) == 0
    cfg = load_checkpoint(ck).config
    assert (cfg.depth, cfg.width, cfg.epochs, cfg.recipe) == (3, 6, 50, shallow_points1d.recipe)


def test_cli_options_override_the_preset(shallow_points1d, tmp_path):
    ck = tmp_path / "p.pt"
    assert main(["train", "--data", "points1d", "--depth", "2", "--epochs", "5", "--out", str(ck), "--no-progress"]) == 0
    cfg = load_checkpoint(ck).config
    assert (cfg.depth, cfg.width, cfg.epochs) == (2, 6, 5)


def test_every_cli_option_shows_its_default():
    sub = build_parser()._subparsers._group_actions[0].choices
    for name, parser in sub.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help" and not action.required and action.nargs != 0:
                assert "default" in (action.help or ""), f"{name} {action.option_strings[0]} hides its default"


def _parameters(nb: str) -> dict:
    cells = json.loads((NOTEBOOKS / nb).read_text())["cells"]
    src = "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])
    ns: dict = {"kals": kals_utils}   # as the notebook's first cell imports it
    exec(src, ns)  # the cell reads kals.preset_for, so it sees the patched preset
    return ns


def test_notebook_parameters_follow_the_preset(shallow_points1d):
    ns = _parameters("01_synthetic_1d.ipynb")
    assert (ns["DEPTH"], ns["WIDTH"], ns["EPOCHS"]) == (3, 6, 50)


@pytest.mark.parametrize("nb,key", [("01_synthetic_1d.ipynb", "points1d"), ("02_synthetic_2d.ipynb", "points2d"),
                                    ("03_mnist.ipynb", "mnist"), ("04_cifar_dogs.ipynb", "cifar-dogs"),
                                    ("05_celeba.ipynb", "celeba")])
def test_each_notebook_starts_from_its_preset(nb, key):
    ns, p = _parameters(nb), presets.PRESETS[key]
    budget = (ns["UPDATES"], p.updates) if "UPDATES" in ns else (ns["EPOCHS"], p.epochs)   # 03-05: updates
    assert (ns["DEPTH"], ns["WIDTH"], budget[0], ns["LR"], ns["CHAINS"], ns["STEPS"]) == \
        (p.depth, p.width, budget[1], p.lr, p.chains, p.steps)


def test_panel_defaults_follow_the_preset(shallow_points1d):
    from kals_utils import points
    from kals_utils.faces.panel import Panel
    from kals_utils.faces.widgets import KaleidoscopePanel
    s = Panel(points(dim=1), render=None).settings
    assert (s.depth, s.width, s.epochs, s.chains, s.steps) == (3, 6, 50, shallow_points1d.chains, shallow_points1d.steps)
    view = KaleidoscopePanel(points(dim=1))  # no other argument: the data set's (changed) preset
    assert (view.depth.value, view.width.value, view.epochs.value) == (3, 6, 50)
    assert KaleidoscopePanel(points(dim=1), depth=2).depth.value == 2  # a given value still wins


def test_demo_follows_the_points2d_preset(monkeypatch, tmp_path):
    monkeypatch.setitem(presets.PRESETS, "points2d",
                        dataclasses.replace(presets.PRESETS["points2d"], depth=3, width=8, epochs=20, steps=4))
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith("points2d_L3_H8_") and "_T4_" in n and n.endswith(".gif") for n in names), names
