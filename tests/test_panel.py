"""The panel's controller (kals_utils.faces.panel) driven from code: no kernel, no ipywidgets, no matplotlib."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kals_utils import KalsError, files, pace, points, presets
from kals_utils.data import Data
from kals_utils.model import ModelConfig, count_weights
from kals_utils.faces.panel import SHOWN, Panel
from kals_utils.render import read_gif

REPO = Path(__file__).resolve().parents[1]


def fake_render(run, walk):
    """One flat grey frame per recorded step, brighter each step (no matplotlib)."""
    return np.stack([np.full((8, 8, 3), 20 * i, np.uint8) for i in range(len(walk.steps))])


def tiny(tmp_path, **kw):
    kw = {"depth": 3, "width": 8, "epochs": 30, "chains": 6, "steps": 4, "device": "cpu", **kw}
    return Panel(points(dim=2), render=fake_render, out_dir=tmp_path / "gifs", **kw)


def test_importing_the_controller_loads_no_widgets_and_no_matplotlib():
    code = "import sys, kals_utils.faces.panel; print(sorted(m for m in ('ipywidgets', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_defaults_are_the_data_sets_preset():
    p = Panel(points(dim=2), render=fake_render)
    pre = presets.PRESETS["points2d"]
    s = p.settings
    assert (s.depth, s.width, s.epochs, s.lr, s.recipe) == (pre.depth, pre.width, pre.epochs, pre.lr, pre.recipe)
    assert (s.chains, s.steps, s.eps, s.noise) == (pre.chains, pre.steps, pre.eps, pre.noise)
    assert (s.seed, s.sample_seed, s.precision, s.arch) == (presets.SEED, presets.SEED, presets.PRECISION, presets.ARCH)
    assert s.batch_size == 4 and p.out_dir == files.out_dir()  # all 4 points: full batch; the one output rule
    assert p.stale and "press Train" in p.status and p.progress_line == f"epoch 0 / {pre.epochs}"
    with pytest.raises(KalsError, match="no setting depht"):
        Panel(points(dim=2), render=fake_render, depht=3)


def test_train_then_a_changed_depth_makes_the_model_stale(tmp_path):
    p = tiny(tmp_path)
    heard = []
    p.observe(heard.append)
    p.sample()
    assert "press Train first" in p.status and p.status_kind == "error" and p.result is None
    p.train()
    assert p.run.config.depth == 3 and len(p.run.result.losses) == 30 and p.losses == p.run.result.losses
    assert p.progress == (30, 30) and p.progress_line.endswith("· done") and not p.busy and not p.stale
    assert p.status.startswith("trained L=3, H=8, mlp, paper recipe") and set(heard) <= set(SHOWN)
    assert {"progress", "busy", "walk", "losses", "status"} <= set(heard)

    p.set(depth=4)
    assert p.stale and p.status_kind == "warn" and "depth L changed" in p.status and "press Train" in p.status
    p.sample()
    assert "stale" in p.status and p.result is None
    p.set(depth=3)
    assert not p.stale and "match the trained model again" in p.status
    p.set(recipe="improved")
    assert p.stale and "recipe changed" in p.status


def test_sample_then_export_with_and_without_overwrite(tmp_path):
    p = tiny(tmp_path)
    p.train()
    p.sample()
    assert p.result.final.shape == (6, 2) and len(p.frames) == 5 == len(p.frames_png)
    assert p.frames_png[0][:8] == b"\x89PNG\r\n\x1a\n" and "sampled 6 chains x 4 steps" in p.status
    assert p.settings.filename == "points2d_L3_H8_c6_T4_eps0_normal.gif"  # named by Sample ...
    p.set(filename="walk.gif")
    p.set(steps=3)
    p.sample()
    assert p.settings.filename == "walk.gif"  # ... until the user names it

    p.export()
    path = tmp_path / "gifs" / "walk.gif"
    assert p.gif_path == path.resolve() and p.saved["replaced"] is False and p.status.startswith("wrote")
    first = path.read_bytes()
    assert read_gif(path).shape[1:3] == (8, 8)
    p.set(fps=2.0)
    p.export()  # the same name again: refused, the file untouched, a free name offered
    assert "walk.gif already exists" in p.status and "walk_2.gif" in p.status and path.read_bytes() == first
    p.set(overwrite=True)
    p.export()
    assert p.saved["replaced"] is True and p.saved["fps"] == 2.0 and path.read_bytes() != first
    p.set(filename="../escape.gif")
    p.export()
    assert "not a plain file name" in p.status and not (tmp_path / "escape.gif").exists()


def test_a_new_training_clears_the_old_walk(tmp_path):
    p = tiny(tmp_path, epochs=10)
    p.train()
    p.sample()
    p.set(depth=2)
    p.train()
    assert p.result is None and p.frames is None and p.frames_png == [] and not p.stale


def test_stop_keeps_the_best_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(pace, "PROGRESS_S", 0.0)  # a progress report after every epoch
    p = tiny(tmp_path, epochs=200, lr=1e-2)
    p.observe(lambda name: p.stop() if name == "progress" and p.progress[0] == 5 else None)
    p.train()
    r = p.run.result
    assert r.status == "interrupted" and r.epochs_done == 5 and "stopping" not in p.status
    assert p.progress_line.endswith("· interrupted") and not p.busy
    with torch.no_grad():
        mse = torch.mean((p.run.model(p.data.x) - p.data.x) ** 2).item()
    assert r.best_loss <= min(r.losses) and mse == pytest.approx(r.best_loss, rel=1e-4)  # the best, loaded


def test_background_training_runs_in_a_thread(tmp_path):
    p = tiny(tmp_path, epochs=20, background=True)
    p.train()
    p.wait(60)
    assert p.run is not None and p.run.result.epochs_done == 20 and not p.busy


def test_estimates_and_the_long_training_warning(tmp_path):
    # the 03 notebook: 1000 MNIST images, L=10, H=500 (2.79M weights), 10,000 epochs: ~20 CPU minutes
    cfg = ModelConfig(dim=784, depth=10, width=500, out_act="tanh")
    assert pace.macs_per_row(cfg) == count_weights(cfg)  # an MLP: every weight once per row
    assert 15 * 60 < pace.cpu_train_seconds(cfg, 1000, 10_000) < 25 * 60
    conv = ModelConfig(dim=16, depth=2, width=4, out_act="tanh", arch="cnn", image_shape=(1, 4, 4))
    assert pace.macs_per_row(conv) == 16 * count_weights(conv)  # a conv net: every weight once per pixel
    data = Data(x=torch.zeros(1000, 784), value_range=(-1.0, 1.0), name="mnist", image_shape=(1, 28, 28))
    p = Panel(data, render=fake_render, device="cpu")  # the mnist preset: L=10, H=500, 10,000 epochs
    assert p.warning.startswith("about 20 min of CPU time: 10000 epochs × 1000 images × 2.8M weights")
    p.set(epochs=50)
    assert p.warning == ""
    assert tiny(tmp_path).warning == ""


def test_the_measured_pace_replaces_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(pace, "LONG_TRAIN_S", 1e-9)  # anything is "long" now
    monkeypatch.setattr(pace, "PACE_S", 0.0)
    p = tiny(tmp_path)
    shown = []
    p.observe(lambda name: shown.append(p.warning) if name == "warning" else None)
    p.train()
    paced = [w for w in shown if "pace" in w]
    assert len(paced) == 1 and "at the pace of the first 5 epochs" in paced[0] and "on cpu" in paced[0]
    assert p.warning.startswith("about 0 s of CPU time: 30 epochs × 4 points")  # after it: the next estimate


# ---------------------------------------------------------------- issue #24: basins forming over training
def test_training_keeps_snapshots_and_basins_maps_each(tmp_path):
    from kals_utils.studies.capacity import SNAPSHOTS, snapshot_epochs
    p = tiny(tmp_path, depth=3, width=16, epochs=40)
    p.basins()
    assert "press Train first" in p.status and p.status_kind == "error" and p.basin_maps == []
    heard = []
    p.observe(heard.append)
    p.train()
    when = snapshot_epochs(40, SNAPSHOTS)
    assert sorted(p.snapshots) == when and when[0] == 1 and when[-1] == 40
    last = {k: v for k, v in p.run.model.state_dict().items()}
    assert not all(torch.equal(p.snapshots[1][k], last[k]) for k in last)  # epoch 1 is not the end
    p.basins(grid=12)
    assert [e for e, _, _ in p.basin_maps] == when and "basins" in heard and p.status_kind == "ok"
    for _, model, bmap in p.basin_maps:
        assert bmap.labels.shape == (12, 12) and abs(float(bmap.fractions.sum()) - 1) < 1e-9
        assert model is not p.run.model  # each snapshot is its own net
    # the snapshot nets hold the weights kept at their epochs
    assert all(torch.equal(p.basin_maps[0][1].state_dict()[k], p.snapshots[1][k]) for k in last)

    p.set(width=20)  # stale: refused
    p.basins(grid=12)
    assert "stale" in p.status and len(p.basin_maps) == len(when)
    p.set(epochs=10)
    p.train()  # a retrain clears the old maps and keeps its own snapshots
    assert p.basin_maps == [] and sorted(p.snapshots) == snapshot_epochs(10, SNAPSHOTS)


def test_basins_of_a_loaded_run_and_of_images(tmp_path):
    from kals_utils import train_run
    run = train_run(points(dim=1), depth=2, width=8, epochs=15, device="cpu", progress=False)
    p = Panel(points(dim=1), run, render=fake_render, device="cpu")
    p.basins(grid=50)
    assert [e for e, _, _ in p.basin_maps] == [15] and "before this panel opened" in p.status
    assert p.basin_maps[0][2].labels.shape == (50,)

    x = torch.rand(6, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    images = Data(x=x, value_range=(-1.0, 1.0), name="tiny", image_shape=(1, 4, 4))
    q = Panel(images, render=fake_render, depth=2, width=8, epochs=5, device="cpu")
    q.train()
    assert q.snapshots == {}  # images: no snapshots kept
    q.basins()
    assert q.status_kind == "error" and "1D and 2D points" in q.status and "basin_statistics" in q.status
    assert q.basin_maps == []


def test_the_sampler_menu_reaches_the_walk():
    """'recipe' samples with the trained recipe's own sampler; a named one is used as named."""
    from kals_utils import points
    from kals_utils.faces.panel import Panel
    p = Panel(points(dim=2), render=lambda run, walk: np.zeros((len(walk.steps), 4, 4, 3), np.uint8),
              depth=2, width=8, epochs=30, chains=6, steps=12, device="cpu", recipe="improved")
    p.train()
    p.sample()
    assert p.result.sampler == "restart"
    p.set(sampler="dae")
    p.sample()
    assert p.result.sampler == "dae" and p.result.scale is not None
