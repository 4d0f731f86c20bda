import subprocess
import sys

import numpy as np
import pytest

from kals_utils.faces.cli import main
from kals_utils.render import label_height, read_gif


def test_demo_writes_gif_and_png(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    gifs, pngs = list(tmp_path.glob("*.gif")), list(tmp_path.glob("*.png"))
    assert len(gifs) == 1 and len(pngs) == 1 and str(gifs[0]) in out
    frames = read_gif(gifs[0])
    assert frames.shape[0] == 16  # start + 15 steps (each frame is titled with its step)
    assert frames.shape[1] > 200 and frames.shape[2] > 200


def test_train_then_sample_points(tmp_path, capsys):
    ck = tmp_path / "p1.pt"
    assert main(["train", "--data", "points1d", "--depth", "7", "--width", "10", "--epochs", "2000",
                 "--out", str(ck), "--no-progress"]) == 0
    npz, gif = tmp_path / "s.npz", tmp_path / "w.gif"
    assert main(["sample", "--checkpoint", str(ck), "--chains", "50", "--steps", "30", "--every", "5",
                 "--gif", str(gif), "--save-samples", str(npz)]) == 0
    z = np.load(npz)
    assert z["samples"].shape == (50, 1) and z["train"].shape == (2, 1)
    assert (np.abs(z["samples"] - z["train"].T).min(axis=1) < 0.05).mean() > 0.9
    assert read_gif(gif).shape[0] == 7  # steps 0, 5, ..., 30


def test_train_sample_folder_images(tmp_path, tiny_folder):
    ck = tmp_path / "f.pt"
    assert main(["train", "--data", f"folder:{tiny_folder}", "--depth", "3", "--width", "32",
                 "--epochs", "50", "--lr", "1e-3", "--batch-size", "4", "--out", str(ck), "--no-progress"]) == 0
    gif = tmp_path / "img.gif"
    assert main(["sample", "--checkpoint", str(ck), "--chains", "6", "--steps", "3", "--gif", str(gif),
                 "--eps", "0.01"]) == 0
    f = read_gif(gif)
    assert f.ndim == 4 and f.shape[1] == label_height(f.shape[2]) + 2 + (8 * 2 + 2)  # step band + one row of 8x8 images


@pytest.mark.parametrize("argv,msg", [
    (["train", "--data", "points1d", "--depth", "0", "--width", "5", "--out", "OUT"], "depth L must be >= 1"),
    (["train", "--data", "points1d", "--depth", "3", "--width", "0", "--out", "OUT"], "width H must be >= 1"),
    (["train", "--data", "imagenet", "--depth", "3", "--width", "5", "--out", "OUT"], "unknown data set"),
    (["train", "--data", "folder:/no/such/dir", "--depth", "3", "--width", "5", "--out", "OUT"], "does not exist"),
    (["train", "--data", "points1d", "--depth", "3", "--width", "5", "--out", "/etc/hostname/x.pt"], "is a file, not a folder"),
    (["train", "--data", "points1d", "--points", "0.2,0.8", "--depth", "3", "--width", "5", "--out", "OUT"], "needs 1D points"),
    (["trian", "--data", "points1d"], "did you mean 'train'"),
    (["sample"], "python -m kals_utils sample --help"),
    (["sample", "--checkpoint", "/no/such.pt"], "not found"),
    (["train", "--data", "points1d"], "required"),
])
def test_bad_arguments_exit_2_with_one_line(argv, msg, capsys, tmp_path):
    argv = [str(tmp_path / "x.pt") if a == "OUT" else a for a in argv]   # never a checkpoint in the repo's root
    assert main(argv) == 2
    assert not (tmp_path / "x.pt").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("kals: error:") and msg in err and "\n" not in err


def test_bad_sampling_arguments(tmp_path, capsys):
    ck = tmp_path / "p.pt"
    main(["train", "--data", "points2d", "--depth", "2", "--width", "4", "--epochs", "5", "--out", str(ck), "--no-progress"])
    for extra, msg in ((["--steps", "-1"], "steps"), (["--eps", "-0.5"], "eps"), (["--chains", "-3"], "chains"),
                       (["--noise", "pink"], "unknown start noise"), (["--gif", str(tmp_path) + "/"], "is a folder"),
                       (["--gif", str(tmp_path / "a.png")], "ending in .gif"), (["--gif", str(tmp_path / "w.gif"), "--fps", "0"], "fps")):
        assert main(["sample", "--checkpoint", str(ck)] + extra) == 2
        assert msg in capsys.readouterr().err


def test_module_entry_point_runs_headless(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kals_utils", "train", "--data", "points1d", "--depth", "-1",
                        "--width", "3", "--out", str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "depth" in r.stderr
    r = subprocess.run([sys.executable, "-c", "import sys, kals_utils.pipeline, kals_utils.faces.cli; "
                        "print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False"]
