"""Every architecture through the whole path (issue #14): train_run, checkpoint round trip, sampling,
GIF, evaluate (Jacobian metrics through Jacobian-vector products), resume, interrupt, CLI errors."""
import numpy as np
import pytest
import torch

from kals_utils import load_run, sample_run, save_run, train_run
from kals_utils.checkpoint import load_checkpoint
from kals_utils.faces.cli import main
from kals_utils.data import Data
from kals_utils.errors import KalsError
from kals_utils.faces.export import export_gif
from kals_utils.model import ARCHS
from kals_utils.measures.evaluate import evaluate_run
from kals_utils.render import read_gif

# settings under which each net learns the 6 block images (full-batch Adam, lr 2e-3)
SETTINGS = {"mlp": dict(depth=3, width=64), "cnn": dict(depth=3, width=32), "unet": dict(depth=2, width=8),
            "transformer": dict(depth=2, width=32, arch_kw={"patch": 4})}
EPOCHS = {"mlp": 300, "cnn": 600, "unet": 500, "transformer": 300}


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    low = (torch.rand(6, 1, 4, 4, generator=g) > 0.5).float() * 1.6 - 0.8
    x = torch.nn.functional.interpolate(low, size=(8, 8), mode="nearest").reshape(6, -1)
    return Data(x=x, value_range=(-1.0, 1.0), name="blocks", image_shape=(1, 8, 8), labels=torch.arange(6) % 2)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_trains_samples_saves_and_evaluates(arch, images, tmp_path):
    run = train_run(images, arch=arch, epochs=EPOCHS[arch], lr=2e-3, seed=0, device="cpu", progress=False,
                    **SETTINGS[arch])
    assert run.config.model.arch == arch and run.result.best_loss < 1e-3
    save_run(run, tmp_path / "r.pt")
    back = load_run(tmp_path / "r.pt", device="cpu")
    assert type(back.model) is type(run.model) and back.config.model == run.config.model
    z = torch.rand(3, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(back.model(z), run.model(z))
    # chains started near the training images come back to them
    g = torch.Generator().manual_seed(1)
    start = (images.x.repeat(2, 1) + 0.15 * torch.randn(12, 64, generator=g)).clamp(-1, 1)
    walk = sample_run(back, chains=12, steps=30, start=start, record=12)
    d0 = torch.cdist(start, images.x).min(1).values.mean()
    d1 = torch.cdist(walk.final, images.x).min(1).values.mean()
    assert d1 < 0.5 * d0, (float(d0), float(d1))
    gif = export_gif(back, walk, tmp_path / "w.gif")
    assert read_gif(gif).shape[0] >= 2
    ev = evaluate_run(back, walk, method="power", max_points=6).summary()
    assert 0 <= ev["attractor_fraction"] <= 1 and ev["jacobian"] == "power"


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_resume_and_interrupt(arch, images, tmp_path):
    stop_at = {"n": 0}

    def should_stop():
        stop_at["n"] += 1
        return stop_at["n"] >= 5
    run = train_run(images, arch=arch, epochs=20, seed=0, device="cpu", progress=False, should_stop=should_stop,
                    **SETTINGS[arch])
    assert run.result.status == "interrupted" and run.result.epochs_done == 5
    save_run(run, tmp_path / "i.pt")
    ck = load_checkpoint(tmp_path / "i.pt")
    more = train_run(images, arch=arch, epochs=5, seed=0, device="cpu", progress=False, resume=ck.train_state,
                     **SETTINGS[arch])
    assert more.result.epochs_done == 10


def test_cli_arch(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(imgs / f"{i}.png")
    ck = tmp_path / "t.pt"
    assert main(["train", "--data", f"folder:{imgs}", "--arch", "transformer", "--patch", "4", "-L", "1", "-H", "8",
                 "--epochs", "3", "--out", str(ck), "--no-progress"]) == 0
    assert "training transformer L=1 H=8" in capsys.readouterr().out
    assert load_checkpoint(ck).config.model.patch == 4
    assert main(["sample", "--checkpoint", str(ck), "--chains", "4", "--steps", "2", "--gif", str(tmp_path / "t.gif")]) == 0
    capsys.readouterr()
    assert main(["train", "--data", "points2d", "--arch", "cnn", "-L", "2", "-H", "4", "--out", str(ck)]) == 2
    assert "needs images" in capsys.readouterr().err
    assert main(["train", "--data", "points2d", "--arch", "resnet", "-L", "2", "-H", "4", "--out", str(ck)]) == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
    assert main(["train", "--data", f"folder:{imgs}", "--arch", "unet", "-L", "9", "-H", "4", "--epochs", "1",
                 "--out", str(tmp_path / "u.pt"), "--no-progress"]) == 0  # 8x8 padded to 256x256 inside


def test_image_arch_on_points_is_refused():
    from kals_utils import points
    with pytest.raises(KalsError, match="fit only arch mlp"):
        train_run(points(dim=2), arch="unet", depth=2, width=4)
