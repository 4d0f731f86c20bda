"""The panel driven from code, without a kernel: every click finishes before it returns."""

import numpy as np
import pytest

from kals_utils import KalsError, points, train_run
from kals_utils.model import config_of
from kals_utils.render import read_gif
from kals_utils.widgets import KaleidoscopePanel


@pytest.fixture
def panel(tmp_path):
    p = KaleidoscopePanel(points(dim=2), depth=7, width=50, epochs=80, chains=16, steps=4, seed=0,
                          device="cpu", out_dir=tmp_path / "gifs")
    assert p.background is False  # no kernel here: clicks run in the foreground
    return p


def test_widget_train_sample_export_2d(panel, tmp_path):
    panel.depth.value, panel.width.value = 4, 24
    panel.train_button.click()
    assert "trained L=4, H=24" in panel.status.value
    cfg = config_of(panel.run.model)
    assert (cfg.dim, cfg.depth, cfg.width) == (2, 4, 24)
    assert len(panel.run.result.losses) == 80 and panel.progress.value == 80
    assert panel.loss_image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert panel.export_button.disabled  # nothing sampled yet

    panel.sample_button.click()
    assert panel.result.final.shape == (16, 2)
    assert len(panel.frames_png) == 5 == panel.scrubber.max + 1  # steps 0..4
    assert panel.frame.value == panel.frames_png[0]
    panel.scrubber.value = 4
    assert panel.frame.value == panel.frames_png[4] != panel.frames_png[0]
    assert panel.filename.value == "points2d_L4_H24_c16_T4_eps0_normal.gif"

    panel.filename.value = "walk"
    panel.export_button.click()
    path = tmp_path / "gifs" / "walk.gif"
    assert panel.gif_path == path.resolve() and str(path.resolve()) in panel.saved.value
    gif = read_gif(path)
    assert gif.ndim == 4 and gif.shape[1:3] == panel.frames.shape[1:3]
    assert 2 <= len(gif) <= 5  # identical consecutive frames are merged by the GIF writer


def test_widget_stale_model_refuses_to_sample(panel):
    panel.sample_button.click()
    assert "press Train first" in panel.status.value and panel.result is None
    panel.epochs.value = 20
    panel.train_button.click()
    panel.sample_button.click()
    first = panel.result
    assert first is not None and not panel.stale

    panel.width.value = 30
    assert panel.stale and "press Train to retrain" in panel.status.value
    panel.sample_button.click()
    assert "stale" in panel.status.value and panel.result is first  # the old walk was not replaced
    panel.width.value = 50  # back to the trained shape: usable again
    assert not panel.stale
    panel.depth.value = 3
    panel.train_button.click()
    assert config_of(panel.run.model).depth == 3 and not panel.stale
    assert panel.result is None and panel.frame.value == b""  # the old walk belongs to the old model
    panel.sample_button.click()
    assert panel.result is not None and "sampled" in panel.status.value


def test_widget_stop_keeps_best_weights(panel):
    calls, is_set = [], panel._stop.is_set

    def stop_after_five():  # the Stop button sets this flag; here it is set from the loop itself
        calls.append(1)
        if len(calls) == 5:
            panel.stop_button.click()
        return is_set()

    panel._stop.is_set = stop_after_five
    panel.train_button.click()
    assert panel.run.result.status == "interrupted" and panel.run.result.epochs_done == 5
    assert panel.stop_button.disabled and not panel.train_button.disabled


def test_widget_starts_from_a_trained_run_and_reports_mistakes(tmp_path):
    data = points(dim=1)
    run = train_run(data, depth=3, width=8, epochs=30, progress=False, device="cpu")
    p = KaleidoscopePanel(data, run=run, depth=7, width=50, chains=5, steps=3, out_dir=tmp_path)
    assert (p.depth.value, p.width.value) == (3, 8) and not p.stale  # sliders follow the run
    p.export_button.click()  # disabled in the browser; from code it explains itself
    assert "press Sample first" in p.status.value
    p.sample_button.click()
    assert len(p.frames_png) == 4 and p.frames.ndim == 4
    p.filename.value = "../escape.gif"
    p.export_button.click()
    assert "not a plain file name" in p.status.value and not (tmp_path.parent / "escape.gif").exists()
    with pytest.raises(KalsError, match="needs a kals_utils.data.Data"):
        KaleidoscopePanel(np.zeros((3, 2)))
    with pytest.raises(KalsError, match="start noise"):
        KaleidoscopePanel(data, noise="gauss")


def test_widget_image_data_shows_a_grid(tmp_path):
    import torch
    from kals_utils.data import Data
    x = torch.rand(6, 1 * 4 * 4) * 2 - 1
    data = Data(x=x, value_range=(-1.0, 1.0), name="tiny", image_shape=(1, 4, 4))
    p = KaleidoscopePanel(data, depth=2, width=8, epochs=5, chains=60, steps=2, device="cpu", out_dir=tmp_path)
    p.train_button.click()
    p.sample_button.click()
    # 48 of the 60 chains, 8 per row, 4x4 px scaled x2 with 2 px padding: 6 rows x 8 cols of 10 px + 2
    assert p.frames.shape == (3, 6 * 10 + 2, 8 * 10 + 2)
