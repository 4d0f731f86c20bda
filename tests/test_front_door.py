"""The front door (issue #11): what a new user meets on the command line."""
import os
import pickle
import subprocess
import sys

import pytest
import torch

from kals_utils.checkpoint import FORMAT, load_checkpoint
from kals_utils.faces.cli import main
from kals_utils.errors import KalsError


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "p.pt"
    assert main(["train", "--data", "points2d", "-L", "3", "-H", "8", "--epochs", "50", "--out", str(path), "--no-progress"]) == 0
    return path


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def _bad_checkpoints(d, good):
    blob = good.read_bytes()
    files = {
        "text": ("t.pt", b"hello, not a checkpoint\n", "text file"),
        "truncated": ("tr.pt", blob[: len(blob) // 2], "corrupt or truncated"),
        "gif": ("g.pt", b"GIF89a" + bytes(200), "GIF image"),
        "empty": ("e.pt", b"", "empty"),
    }
    out = {k: (d / n, msg) for k, (n, data, msg) in files.items()}
    for k, (n, data, _) in files.items():
        (d / n).write_bytes(data)
    torch.save({"w": torch.ones(2)}, d / "foreign.pt")
    out["foreign"] = (d / "foreign.pt", "not a kals checkpoint")
    torch.save({"format": FORMAT, "version": 99}, d / "newer.pt")
    out["newer"] = (d / "newer.pt", "upgrade kals_utils")
    torch.save({"format": FORMAT, "version": 0}, d / "older.pt")
    out["older"] = (d / "older.pt", "re-train it")
    torch.save({"format": FORMAT, "version": 1, "x": _Evil()}, d / "code.pt")
    out["code"] = (d / "code.pt", "pickled Python objects, which could run code")
    with open(d / "bare.pt", "wb") as f:
        pickle.dump(_Evil(), f)
    out["bare-pickle"] = (d / "bare.pt", "could run code")
    return out


def test_unloadable_checkpoints_give_one_line_and_exit_2(tmp_path, ck, capsys):
    for kind, (path, msg) in _bad_checkpoints(tmp_path, ck).items():
        with pytest.raises(KalsError, match=msg):
            load_checkpoint(path)
        assert main(["sample", "--checkpoint", str(path)]) == 2, kind
        err = capsys.readouterr().err
        assert err.startswith("kals: error:") and err.count("\n") == 1 and msg in err, (kind, err)
        if kind not in ("code", "bare-pickle"):
            assert "could run code" not in err, kind  # said only when it is the cause


@pytest.mark.parametrize("argv,msg", [
    (["sample", "--chains", "2000000000"], "lower the number of chains"),
    (["sample", "--chains", "2000000000", "--recipe", "improved"], "lower the number of chains"),
    (["sample", "--steps", "1000000000000", "--chains", "3"], "record every k-th step"),
])
def test_memory_is_checked_before_sampling(ck, argv, msg, capsys):
    assert main(argv[:1] + ["--checkpoint", str(ck)] + argv[1:]) == 2
    err = capsys.readouterr().err
    assert msg in err and "GiB" in err and "free" in err


def test_memory_is_checked_before_training(tmp_path, capsys):
    argv = ["train", "--data", "points2d", "-L", "3", "-H", "100000000", "--out", str(tmp_path / "w.pt")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "lower the width H" in err and "GiB" in err
    assert "training L=" not in out  # the banner comes only after every check
    assert not (tmp_path / "w.pt").exists()


def test_outputs_go_into_new_folders_and_replacing_is_said(tmp_path, capsys):
    out = tmp_path / "runs" / "deep" / "p1.pt"
    argv = ["train", "--data", "points1d", "-L", "3", "-H", "5", "--epochs", "20", "--out", str(out), "--no-progress"]
    assert main(argv) == 0 and out.is_file()
    assert "replaced" not in capsys.readouterr().out
    assert main(argv) == 0
    assert "replaced the file that was there" in capsys.readouterr().out
    gif, npz = tmp_path / "g" / "w.gif", tmp_path / "s" / "w.npz"
    assert main(["sample", "--checkpoint", str(out), "--chains", "5", "--steps", "3", "--gif", str(gif),
                 "--save-samples", str(npz)]) == 0
    assert gif.is_file() and npz.is_file()


def test_failed_run_leaves_no_empty_folder(tmp_path):
    out = tmp_path / "new" / "p.pt"
    assert main(["train", "--data", "points1d", "-L", "0", "-H", "5", "--out", str(out)]) == 2
    assert not (tmp_path / "new").exists()


def test_help_names_the_real_command(capsys):
    for argv in (["nonsense"], ["train"], []):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "python -m kals_utils" in err and "kals_utils kals_utils" not in err
    r = subprocess.run([sys.executable, "-m", "kals_utils", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m kals_utils")


def test_evaluate_json_into_a_closed_pipe_is_quiet(ck, tmp_path):
    npz = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(ck), "--chains", "30", "--steps", "5", "--save-samples", str(npz)]) == 0
    cmd = (f"'{sys.executable}' -m kals_utils evaluate --checkpoint '{ck}' --samples '{npz}' --json | head -2")
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    assert r.stdout.startswith("{") and r.stderr == "", r.stderr
    assert r.returncode == 0


def test_no_deprecation_warnings_from_kals(ck, tmp_path):
    """evaluate uses forward-mode Jacobian products; torch's own jit warning must not reach the user."""
    npz = tmp_path / "s.npz"
    r = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-W", "error::FutureWarning",
                        "-m", "kals_utils", "sample", "--checkpoint", str(ck), "--chains", "20", "--steps", "5",
                        "--save-samples", str(npz)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-W", "error::FutureWarning",
                        "-m", "kals_utils", "evaluate", "--checkpoint", str(ck), "--samples", str(npz)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr
