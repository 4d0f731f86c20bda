"""The panel driven from code, without a kernel: every click finishes before it returns."""

import numpy as np
import pytest
import torch

from kals_utils import KalsError, points, train_run
from kals_utils.model import config_of
from kals_utils.render import read_gif
from kals_utils.faces.widgets import KaleidoscopePanel


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
    calls, is_set = [], panel.controller._stop.is_set

    def stop_after_five():  # the Stop button sets this flag; here it is set from the loop itself
        calls.append(1)
        if len(calls) == 5:
            panel.stop_button.click()
        return is_set()

    panel.controller._stop.is_set = stop_after_five
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
    # (under a label band, if frames_of draws one)
    from kals_utils.render import grid_frames
    assert p.frames.shape[0] == 3 and p.frames.shape[2] == 8 * 10 + 2 and p.frames.shape[1] >= 6 * 10 + 2
    grid = grid_frames(p.result.frames[:, :48], (1, 4, 4), (-1.0, 1.0), nrow=8, scale=2)
    assert grid.shape == (3, 6 * 10 + 2, 8 * 10 + 2) and np.array_equal(p.frames[:, -(6 * 10 + 2):], grid)


# ---------------------------------------------------------------- issue #12: the control panel
import base64  # noqa: E402
import html  # noqa: E402
import re  # noqa: E402

from kals_utils import pace, widgets  # noqa: E402
from kals_utils import panel as controller  # noqa: E402
from kals_utils.model import ARCH_HELP, ARCHS  # noqa: E402
from kals_utils.render import GIF_FPS  # noqa: E402

NO_FLAG = re.compile(r"(?<![\w-])--[a-z]")  # a command-line flag in a message the user sees


def tiny_images(n=6, shape=(1, 4, 4)):
    import torch
    from kals_utils.data import Data
    x = torch.rand(n, int(np.prod(shape)), generator=torch.Generator().manual_seed(0)) * 2 - 1
    return Data(x=x, value_range=(-1.0, 1.0), name="tiny", image_shape=shape)


def messages(p):
    return " ".join(w.value for w in (p.status, p.warning, p.saved, p.progress_text, p.noise_note, p.arch_help))


def test_widget_sample_keeps_a_typed_file_name(panel):
    panel.epochs.value = 20
    panel.train_button.click()
    panel.sample_button.click()
    assert panel.filename.value == "points2d_L7_H50_c16_T4_eps0_normal.gif"  # auto-filled
    panel.steps.value = 3
    panel.sample_button.click()
    assert panel.filename.value == "points2d_L7_H50_c16_T3_eps0_normal.gif"  # still auto: follows the settings
    panel.filename.value = "mine.gif"  # the user types a name ...
    panel.steps.value = 2
    panel.sample_button.click()
    assert panel.filename.value == "mine.gif"  # ... and Sample keeps it
    panel.filename.value = ""  # an emptied box hands the naming back to Sample
    panel.sample_button.click()
    assert panel.filename.value == "points2d_L7_H50_c16_T2_eps0_normal.gif"


def test_widget_progress_reads_epochs_elapsed_and_left(panel, monkeypatch):
    monkeypatch.setattr(pace, "PROGRESS_S", 0.0)  # every epoch updates the line
    lines = []
    panel.progress_text.observe(lambda c: lines.append(c["new"]), names="value")
    panel.train_button.click()
    assert lines[0] == "epoch 0 / 80 · starting …"
    assert re.fullmatch(r"epoch 40 / 80 · \d+:\d\d elapsed · ~\d+:\d\d left", lines[40]), lines[40]
    assert re.fullmatch(r"epoch 80 / 80 · \d+:\d\d elapsed · done", panel.progress_text.value)
    assert panel.progress.value == panel.progress.max == 80
    assert pace.duration(12) == "0:12" and pace.duration(3725) == "1:02:05"


def test_widget_warns_about_a_long_cpu_training_up_front():
    import torch
    from kals_utils.data import Data
    # the 03 notebook: 1000 MNIST images, L=10, H=500 (2.79M weights), 10,000 epochs: ~20 CPU minutes
    data = Data(x=torch.zeros(1000, 784), value_range=(-1.0, 1.0), name="mnist", image_shape=(1, 28, 28))
    p = KaleidoscopePanel(data, depth=10, width=500, epochs=10_000, batch_size=1000, device="cpu")
    assert "about 20 min of CPU time: 10000 epochs × 1000 images × 2.8M weights" in p.warning.value
    assert "lower epochs, width H or depth L" in p.warning.value
    p.epochs.value = 50  # a quick look: no warning
    assert p.warning.value == ""
    p.width.value = 1024
    p.epochs.value = 2000
    assert "CPU time" in p.warning.value  # follows every control that changes the cost
    small = KaleidoscopePanel(points(dim=2), device="cpu")
    assert small.warning.value == ""  # 2000 epochs of a 2D net: seconds


def test_widget_warns_from_the_measured_pace(panel, monkeypatch):
    monkeypatch.setattr(pace, "LONG_TRAIN_S", 1e-6)  # anything is "long" now
    monkeypatch.setattr(pace, "PACE_S", 0.0)
    shown = []
    panel.warning.observe(lambda c: shown.append(c["new"]), names="value")
    panel.train_button.click()
    paced = [w for w in shown if "pace" in w]
    assert len(paced) == 1 and re.search(r"at the pace of the first 5 epochs this training takes about \d+ s on cpu; "
                                         r"Stop keeps the best weights so far", paced[0]), shown
    assert "pace" not in panel.warning.value  # after the training: the up-front estimate for the next one
    assert "CPU time: 80 epochs × 4 points" in panel.warning.value
    assert not NO_FLAG.search(messages(panel) + " ".join(shown))


def test_widget_fps_control_sets_the_gif_timing(panel, tmp_path):
    from PIL import Image
    assert panel.fps.value == GIF_FPS
    panel.epochs.value = 20
    panel.train_button.click()
    panel.sample_button.click()
    panel.fps.value = 2
    panel.filename.value = "slow.gif"
    panel.export_button.click()
    with Image.open(tmp_path / "gifs" / "slow.gif") as im:
        assert im.info["duration"] == 500  # 2 fps: 500 ms a frame
    assert "2 fps" in panel.saved.value


def test_widget_overwrite_is_explicit_and_a_download_link_follows(panel, tmp_path):
    panel.epochs.value = 20
    panel.train_button.click()
    panel.sample_button.click()
    assert not panel.overwrite.value  # off by default
    panel.filename.value = "walk.gif"
    panel.export_button.click()
    path = tmp_path / "gifs" / "walk.gif"
    first = path.read_bytes()
    link = panel.download.value
    assert 'download="walk.gif"' in link and 'href="data:image/gif;base64,' in link
    assert base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", link).group(1)) == first

    panel.fps.value = 3  # another GIF under the same name: refused while overwrite is off
    panel.export_button.click()
    status = html.unescape(panel.status.value)
    assert "walk.gif already exists" in status and "tick 'overwrite'" in status and "walk_2.gif" in status
    assert path.read_bytes() == first and not (tmp_path / "gifs" / "walk_2.gif").exists()
    panel.overwrite.value = True
    panel.export_button.click()
    assert panel.status.value.count("wrote") == 1 and path.read_bytes() != first
    assert "replaced the old file" in panel.saved.value
    assert "no download link" in widgets.download_link(path, limit=10)  # big files: a note, not 30 MB of base64


def test_widget_recipe_disables_start_noise_and_marks_the_model_stale(panel):
    assert not panel.noise.disabled
    panel.recipe.value = "improved"
    assert panel.noise.disabled and "covariance" in panel.noise.tooltip and "_data" in panel.noise_note.value
    panel.epochs.value = 20
    panel.train_button.click()
    assert panel.run.config.recipe == "improved" and "improved recipe" in panel.status.value
    panel.sample_button.click()
    assert panel.filename.value == "points2d_L7_H50_c16_T4_eps0_data.gif"  # the start is the data's covariance
    assert "from the data's covariance" in html.unescape(panel.status.value)
    walk = panel.result

    panel.recipe.value = "paper"  # after training: the model is stale, like a new L or H
    assert not panel.noise.disabled and panel.stale
    assert "recipe changed" in panel.status.value and "press Train to retrain" in panel.status.value
    panel.sample_button.click()
    assert "stale" in panel.status.value and panel.result is walk
    panel.recipe.value = "improved"
    assert not panel.stale


def test_widget_sampling_seed_is_apart_from_the_training_seed(panel):
    panel.epochs.value = 20
    panel.seed.value, panel.sample_seed.value = 3, 0
    panel.train_button.click()
    assert panel.run.config.seed == 3
    panel.sample_button.click()
    a = panel.result.start.clone()
    panel.sample_seed.value = 1
    panel.sample_button.click()
    assert not np.allclose(panel.result.start, a)  # another sampling seed: another walk, same model
    panel.sample_seed.value = 0
    panel.seed.value = 7  # the training seed only matters for the next training
    panel.sample_button.click()
    assert np.allclose(panel.result.start, a) and "sampling seed 0" in panel.status.value
    assert KaleidoscopePanel(points(dim=1), seed=4, sample_seed=9).sample_seed.value == 9
    assert KaleidoscopePanel(points(dim=1), seed=4).sample_seed.value == 4


def test_widget_device_and_batch_size(panel):
    import torch
    assert panel.device.options[:2] == ("auto", "cpu") and panel.device.value == "cpu"
    assert set(panel.device.options) == set(controller.available_devices()) <= {"auto", "cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        assert "cuda" not in panel.device.options  # only devices this machine has can be picked
        with pytest.raises(KalsError, match="device 'cuda' is not available"):
            KaleidoscopePanel(points(dim=2), device="cuda")
    with pytest.raises(Exception, match="Invalid selection"):
        panel.device.value = "tpu"
    assert panel.batch_size.value == panel.batch_size.max == 4  # all 4 points: full batch
    panel.epochs.value = 10
    panel.train_button.click()
    assert panel.run.config.batch_size is None
    panel.batch_size.value = 2
    panel.train_button.click()
    assert panel.run.config.batch_size == 2 and panel.run.result.epochs_done == 10


def test_widget_architecture_menu(tmp_path):
    p = KaleidoscopePanel(points(dim=2), depth=2, width=8, epochs=5, chains=4, steps=2, device="cpu",
                          out_dir=tmp_path)
    assert p.arch.options == ARCHS and p.arch.value == "mlp"
    assert p.arch.disabled and "image data only" in p.arch_help.value  # points: only the MLP
    assert p.arch.tooltip == f"mlp: {ARCH_HELP['mlp']}"
    p.arch.value = "cnn"  # from code: refused with the control's name, nothing trained
    p.train_button.click()
    assert "architecture cnn needs image data" in p.status.value and "set architecture to mlp" in p.status.value
    assert p.run is None and not p.controller.busy

    q = KaleidoscopePanel(tiny_images(), depth=2, width=4, epochs=3, chains=6, steps=2, device="cpu",
                          out_dir=tmp_path)
    assert not q.arch.disabled
    for arch in ARCHS:
        q.arch.value = arch
        assert q.arch.tooltip == f"{arch}: {ARCH_HELP[arch]}" and ARCH_HELP[arch] in q.arch_help.value
    q.arch.value = "cnn"
    q.train_button.click()
    assert q.run.config.model.arch == "cnn" and "cnn" in q.status.value
    q.sample_button.click()
    # "tiny" has no preset of its own: it starts from the image folder's (improved recipe, eps 0.01)
    assert q.filename.value == "tiny_L2_H4_c6_T2_eps0.01_data_cnn.gif"
    q.arch.value = "mlp"  # after training: stale
    assert q.stale and "architecture changed" in q.status.value
    q.sample_button.click()
    assert "stale" in q.status.value


def test_widget_messages_name_controls_not_flags():
    assert controller.panel_words("set SUBSET (--subset) to 9 or less") == "set SUBSET to 9 or less"
    assert controller.panel_words('use the tanh output (out_act="tanh", --out-act tanh; range [-1, 1])') == \
        'use the tanh output (out_act="tanh"; range [-1, 1])'
    assert controller.panel_words("use --device auto or a smaller --batch-size") == \
        "use device auto or a smaller batch size"


def test_widget_progress_of_a_loaded_run():
    data = points(dim=1)
    run = train_run(data, depth=2, width=4, epochs=12, progress=False, device="cpu")
    p = KaleidoscopePanel(data, run=run, epochs=500)
    assert p.progress.value == p.progress.max == 12
    assert p.progress_text.value == "epoch 12 / 12 · trained before this panel opened"


def test_precision_control_reaches_training_and_sampling(tmp_path, monkeypatch):
    from kals_utils import points
    seen = []  # the dtype every Linear layer computes in: the precision that actually ran
    forward = torch.nn.Linear.forward
    monkeypatch.setattr(torch.nn.Linear, "forward", lambda self, x: seen.append((out := forward(self, x)).dtype) or out)
    p = KaleidoscopePanel(points(dim=2), depth=3, width=8, epochs=5, chains=4, steps=2, device="cpu", out_dir=tmp_path)
    assert p.precision.options == ("fp32", "bf16", "auto") and p.precision.value == "auto"  # presets.PRECISION
    p.precision.value = "bf16"
    p.train_button.click()
    assert p.run.config.precision == "bf16" and torch.bfloat16 in set(seen)
    seen.clear()
    p.sample_button.click()
    assert str(p.result.final.dtype) == "torch.float32"  # the chain state stays fp32 ...
    assert torch.bfloat16 in seen  # ... while f ran in bf16 (the panel's metrics may run fp32)
    seen.clear()
    p.precision.value = "fp32"
    p.sample_button.click()
    assert seen and torch.bfloat16 not in seen


# ---------------------------------------------------------------- issue #24: the basins' epoch slider
def test_widget_basins_button_fills_the_epoch_slider(tmp_path, monkeypatch):
    monkeypatch.setattr(controller, "BASIN_GRID", 16)
    p = KaleidoscopePanel(points(dim=2), depth=3, width=16, epochs=30, device="cpu", out_dir=tmp_path)
    assert p.basin_epoch.disabled and p.basin_image.value == b"" and p.basins_box.layout.display is None
    p.train_button.click()
    p.basins_button.click()
    epochs = [e for e, _, _ in p.controller.basin_maps]
    assert len(p.basin_png) == len(epochs) == p.basin_epoch.max + 1 > 2 and not p.basin_epoch.disabled
    assert p.basin_png[0][:8] == b"\x89PNG\r\n\x1a\n" and p.basin_image.layout.display is None
    assert p.basin_epoch.value == len(epochs) - 1 and p.basin_image.value == p.basin_png[-1]
    assert p.basin_epoch_text.value == f"{epochs[-1]} of {epochs[-1]}"
    p.basin_epoch.value = 0  # a slider move only swaps bytes
    assert p.basin_image.value == p.basin_png[0] != p.basin_png[-1]
    assert p.basin_epoch_text.value == f"1 of {epochs[-1]}"
    p.train_button.click()  # retrained: the old maps go
    assert p.basin_png == [] and p.basin_image.value == b"" and p.basin_epoch.max == 0
    assert p.basin_image.layout.display == "none"


def test_widget_basins_are_hidden_for_images(tmp_path):
    p = KaleidoscopePanel(tiny_images(), depth=2, width=8, epochs=5, device="cpu", out_dir=tmp_path)
    assert p.basins_button.disabled and p.basins_box.layout.display == "none"
    p.controller.basins()
    assert "1D and 2D points" in p.status.value and p.basin_png == []
