"""Issue 7: no lost work, no unsafe loading, one clear message for every user mistake."""
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from kals_utils.checkpoint import load_checkpoint
from kals_utils.faces.cli import main

PY = sys.executable


def _train(out, *extra, epochs=300, data="points2d"):
    return main(["train", "--data", data, "--depth", "3", "--width", "16", "--epochs", str(epochs),
                 "--lr", "1e-2", "--out", str(out), "--no-progress", *extra])


def test_sigint_during_cli_train_saves_best_weights_and_exits_130(tmp_path):
    out = tmp_path / "int.pt"
    proc = subprocess.Popen([PY, "-m", "kals_utils", "train", "--data", "points2d", "--depth", "7", "--width", "50",
                             "--epochs", "10000000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell's background job ignores SIGINT; give the child the default, as a terminal does
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    try:
        line = proc.stdout.readline()
        assert "Ctrl-C" in line, line
        reader.start()
        deadline = time.time() + 120
        while "it/s" not in "".join(err) and time.time() < deadline:  # the progress bar is moving
            time.sleep(0.2)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=60)  # may take part of stderr from the reader
        reader.join(timeout=10)
        stderr = "".join(err) + (rest or "")
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "checkpoint written" in stdout and "--resume" in stderr, (stdout, stderr[-1500:])
    ck = load_checkpoint(out)
    assert ck.train_state["epoch"] > 0 and len(ck.losses) == ck.train_state["epoch"]
    assert min(ck.losses) < ck.losses[0]


def test_fit_survives_keyboard_interrupt_in_a_notebook():
    from kals_utils import points, train_run
    calls = []

    def cb(epoch, loss):
        calls.append(loss)
        if epoch == 40:
            raise KeyboardInterrupt  # what Jupyter's "interrupt kernel" raises

    run = train_run(points(dim=2), depth=3, width=16, epochs=1000, lr=1e-2, progress=False, callback=cb)
    assert run.result.status == "interrupted" and run.result.epochs_done == 41  # epochs 0..40 ran
    x = run.data.x
    assert abs(((run.model(x) - x) ** 2).mean().item() - run.result.best_loss) < 1e-6


@pytest.mark.parametrize("batch", [None, "2"])
def test_resume_reaches_the_same_loss_as_one_run(tmp_path, batch):
    extra = [] if batch is None else ["--batch-size", batch]
    assert _train(tmp_path / "full.pt", *extra, epochs=120) == 0
    assert _train(tmp_path / "half.pt", *extra, epochs=50) == 0
    assert _train(tmp_path / "resumed.pt", "--resume", str(tmp_path / "half.pt"), *extra, epochs=120) == 0
    a, b = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(tmp_path / "resumed.pt")
    assert a.losses == b.losses and len(a.losses) == 120
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])


def test_same_seed_same_checkpoint_and_samples(tmp_path):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert _train(tmp_path / f"{name}.pt", "--seed", seed, epochs=100) == 0
        assert main(["sample", "--checkpoint", str(tmp_path / f"{name}.pt"), "--chains", "30", "--steps", "10",
                     "--eps", "0.05", "--seed", seed, "--save-samples", str(tmp_path / f"{name}.npz")]) == 0
    a, b, c = (load_checkpoint(tmp_path / f"{n}.pt") for n in "abc")
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert np.array_equal(np.load(tmp_path / "a.npz")["samples"], np.load(tmp_path / "b.npz")["samples"])
    # the control: another seed gives other weights and other samples
    assert not any(torch.equal(v, c.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert not np.array_equal(np.load(tmp_path / "a.npz")["samples"], np.load(tmp_path / "c.npz")["samples"])


def test_sampling_never_makes_nan_from_finite_input():
    from kals_utils import ModelConfig, build_model, kaleidoscope
    m = build_model(ModelConfig(5, 4, 32, "tanh"), seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(50)  # a wild net
    s = kaleidoscope(m, start=torch.randn(64, 5) * 1e30, steps=20, eps=1e6, jitter="normal")
    assert torch.isfinite(s.final).all() and torch.isfinite(s.frames).all()


@pytest.fixture
def ckpt(tmp_path):
    out = tmp_path / "ok.pt"
    assert _train(out, epochs=5) == 0
    return out


def _folder(tmp_path, kind):
    from PIL import Image
    d = tmp_path / kind
    d.mkdir()
    if kind == "mixed":
        Image.new("RGB", (8, 8)).save(d / "a.png")
        Image.new("RGB", (9, 7)).save(d / "b.png")
    elif kind == "broken":
        (d / "a.png").write_bytes(b"\x89PNG not really")
    return d


BAD_INPUT = [
    # (argv builder, text the one-line message must contain)
    ("train-depth", lambda t, c: ["train", "--data", "points1d", "--depth", "0", "--width", "5"], "depth L must be >= 1"),
    ("train-width", lambda t, c: ["train", "--data", "points1d", "--depth", "3", "--width", "-2"], "width H must be >= 1"),
    ("steps", lambda t, c: ["sample", "--checkpoint", str(c), "--steps", "-1"], "steps must be >= 0"),
    ("chains", lambda t, c: ["sample", "--checkpoint", str(c), "--chains", "-1"], "chains must be >= 0"),
    ("eps", lambda t, c: ["sample", "--checkpoint", str(c), "--eps", "-0.1"], "eps must be >= 0"),
    ("dataset", lambda t, c: ["train", "--data", "svhn", "--depth", "3", "--width", "5"], "unknown data set"),
    ("noise", lambda t, c: ["sample", "--checkpoint", str(c), "--noise", "pink"], "unknown start noise"),
    ("empty-folder", lambda t, c: ["train", "--data", f"folder:{_folder(t, 'empty')}", "--depth", "3", "--width", "5"], "holds no images"),
    ("unreadable", lambda t, c: ["train", "--data", f"folder:{_folder(t, 'broken')}", "--depth", "3", "--width", "5"], "cannot read image"),
    ("mixed-sizes", lambda t, c: ["train", "--data", f"folder:{_folder(t, 'mixed')}", "--depth", "3", "--width", "5"], "--image-size"),
    ("non-finite", lambda t, c: ["train", "--data", "points1d", "--points", "nan;0.5", "--depth", "3", "--width", "5"], "NaN or inf"),
    ("out-of-range", lambda t, c: ["train", "--data", "points1d", "--points=-0.5;0.5", "--depth", "3", "--width", "5"], "--out-act tanh"),
    ("gif-folder", lambda t, c: ["sample", "--checkpoint", str(c), "--gif", str(t) + "/"], "is a folder"),
    ("gif-unwritable", lambda t, c: ["sample", "--checkpoint", str(c), "--gif", "/sys/kals.gif"], "not writable"),
    ("device", lambda t, c: ["train", "--data", "points1d", "--depth", "3", "--width", "5", "--device", "cuda:99"], "device"),
    ("resume-mismatch", lambda t, c: ["train", "--data", "points2d", "--depth", "4", "--width", "16", "--resume", str(c)], "--resume"),
    ("missing-ckpt", lambda t, c: ["sample", "--checkpoint", str(t / "nope.pt")], "not found"),
]


@pytest.mark.parametrize("name,argv,msg", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gives_one_clear_line_and_exit_2(tmp_path, ckpt, capsys, name, argv, msg):
    args = argv(tmp_path, ckpt)
    if args[0] == "train":
        args += ["--out", str(tmp_path / "out.pt"), "--no-progress"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kals: error:") and "\n" not in err and msg in err, err


def test_corrupt_checkpoint_in_cli(tmp_path, ckpt, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ckpt.read_bytes()[:100])
    assert main(["sample", "--checkpoint", str(bad)]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
