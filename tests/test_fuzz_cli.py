"""A seeded fuzz test of the command line: generated invocations of every subcommand, with random
flags and values (negative, zero, NaN, inf, huge, empty, non-ASCII and spaced paths, missing and
wrong files), each must end with exit 0 or 2 and never a traceback.

Runs in-process at tiny sizes: after the CLI has validated everything (memory estimates included),
the work itself is clamped (at most 3 epochs, 3 steps, 64 chains), so valid-but-huge settings end
quickly instead of running for hours.
"""
import random

import numpy as np
import pytest
import torch

import kals_utils.faces.cli as cli_mod
import kals_utils.pipeline as pipeline_mod
from kals_utils.faces.cli import main

PER_COMMAND = 300
NUMBERS = ["0", "-1", "-7", "1", "2", "3", "nan", "inf", "-inf", "1e12", "99999999999999999999", "", "abc", "1.5",
           "0.001", "１", "1e-9"]


def _clamp(fn, **limits):
    def wrapped(*a, **kw):
        for k, lim in limits.items():
            if isinstance(kw.get(k), int) and kw[k] > lim:
                kw[k] = lim
        return fn(*a, **kw)
    return wrapped


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real inputs (a point checkpoint, an image checkpoint, saved samples) and wrong ones."""
    d = tmp_path_factory.mktemp("fuzz dir ü")  # a spaced, non-ASCII folder
    ck, img_ck, npz = d / "p t.pt", d / "img.pt", d / "s.npz"
    assert main(["train", "--data", "points2d", "-L", "3", "-H", "8", "--epochs", "20", "--out", str(ck), "--no-progress"]) == 0
    assert main(["sample", "--checkpoint", str(ck), "--chains", "20", "--steps", "5", "--save-samples", str(npz)]) == 0
    imgs = d / "imgs"
    imgs.mkdir()
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(imgs / f"{i}.png")
    assert main(["train", "--data", f"folder:{imgs}", "-L", "2", "-H", "8", "--epochs", "2", "--out", str(img_ck),
                 "--no-progress"]) == 0
    (d / "text.pt").write_text("not a checkpoint\n")
    (d / "pic.pt").write_bytes(b"GIF89a" + bytes(100))
    torch.save({"w": torch.ones(2)}, d / "foreign.pt")
    (d / "bad.npz").write_text("nope")
    return {"dir": d, "ck": str(ck), "img_ck": str(img_ck), "npz": str(npz), "imgs": str(imgs)}


@pytest.fixture
def clamped(monkeypatch):
    monkeypatch.setattr(pipeline_mod, "fit", _clamp(pipeline_mod.fit, epochs=3))
    monkeypatch.setattr(pipeline_mod, "kaleidoscope", _clamp(pipeline_mod.kaleidoscope, steps=3, chains=64))


def _paths(f, rng):
    d = f["dir"]
    if rng.random() < 0.5:
        return rng.choice([f["ck"], f["img_ck"]])
    return rng.choice([f["ck"], f["img_ck"], str(d / "text.pt"), str(d / "pic.pt"), str(d / "foreign.pt"),
                       str(d / "missing.pt"), "", str(d), f["npz"], str(d / "bad.npz"), "/dev/null", "ü ö.pt"])


def _out(f, rng, ext):
    d = f["dir"]
    if rng.random() < 0.5:
        return str(d / f"o{rng.randint(0, 9)}{ext}")
    return rng.choice([str(d / f"o{rng.randint(0, 9)}{ext}"), str(d / "new sub" / f"ä{ext}"), str(d) + "/",
                       str(d / "x.png"), "/proc/no/x" + ext, str(d / "text.pt" / f"y{ext}"), ""])


def _flags(cmd, f, rng):
    # valid values most of the time, so that the checks deep inside are reached too
    num = lambda: rng.choice(["1", "2", "3", "0.01"]) if rng.random() < 0.6 else rng.choice(NUMBERS)  # noqa: E731
    small = lambda: rng.choice(["1", "2", "3"]) if rng.random() < 0.6 else rng.choice(NUMBERS)  # noqa: E731
    common = {"--seed": num, "--device": lambda: rng.choice(["auto", "cpu", "cuda", "mps", "tpu", "", "cuda:7"]),
              "--no-progress": None}
    table = {
        "demo": {"--out": lambda: _out(f, rng, ""), **common},
        "train": {"--data": lambda: rng.choice(["points1d", "points2d", f"folder:{f['imgs']}", "folder:/nope", "mnist",
                                                "", "imagenet", "fashion-mnist"]),
                  "--data-root": lambda: rng.choice([str(f["dir"] / "data root"), "", "/dev/null"]),
                  "--subset": small, "--image-size": small,
                  "--points": lambda: rng.choice(["0.2;0.8", "0.2,0.8", "", "a;b", "0.2,0.2;0.8,0.8", "2;3", "nan;0.5"]),
                  "--depth": small, "--width": small, "-L": num, "-H": num,
                  "--out-act": lambda: rng.choice(["sigmoid", "tanh", "relu"]),
                  "--epochs": num, "--lr": num, "--batch-size": num,
                  "--resume": lambda: _paths(f, rng), "--recipe": lambda: rng.choice(["paper", "improved", "best"]),
                  "--out": lambda: _out(f, rng, ".pt"), **common},
        "sample": {"--checkpoint": lambda: _paths(f, rng), "--chains": num, "--steps": num, "--every": num,
                   "--noise": lambda: rng.choice(["uniform", "normal", "pink", ""]), "--eps": num,
                   "--gif": lambda: _out(f, rng, ".gif"), "--fps": num, "--save-samples": lambda: _out(f, rng, ".npz"),
                   "--recipe": lambda: rng.choice(["paper", "improved", "x"]), **common},
        "evaluate": {"--samples": lambda: f["npz"] if rng.random() < 0.6 else _paths(f, rng), "--checkpoint": lambda: f["ck"] if rng.random() < 0.6 else _paths(f, rng), "--tol": num,
                     "--burn-tol": num, "--max-train": num, "--jacobian": lambda: rng.choice(["auto", "exact", "power", "no"]),
                     "--json": None, "--seed": num, "--device": common["--device"], "--k": num,
                     "--features": lambda: rng.choice(["pixels", "randcnn", "texture"])},
    }[cmd]
    # required flags are present most of the time, so the checks behind them are reached
    required = {"train": ["--data", "--out"], "sample": ["--checkpoint"], "evaluate": ["--samples"], "demo": []}[cmd]
    names = [n for n in required if rng.random() < 0.9] + rng.sample(sorted(table), rng.randint(0, min(5, len(table))))
    if cmd == "train" and rng.random() < 0.9:
        names += ["--depth", "--width"]
    argv = [cmd]
    for name in dict.fromkeys(names):
        argv.append(name)
        if table[name] is not None:
            argv.append(table[name]())
    return argv


@pytest.mark.parametrize("cmd", ["train", "sample", "evaluate", "demo"])
def test_cli_fuzz(cmd, files, clamped, capsys, monkeypatch):
    rng = random.Random(f"kals-fuzz-{cmd}")
    monkeypatch.chdir(files["dir"])
    if cmd == "demo":  # the demo's drawing is tested elsewhere; here only its arguments matter
        monkeypatch.setattr(cli_mod, "_demo_pictures", lambda *a, **k: None)
    codes = {}
    for i in range(PER_COMMAND):
        argv = _flags(cmd, files, rng) + (["--no-progress"] if cmd in ("train", "demo") else [])
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, code, err[-2000:])
        assert "Traceback" not in err, (argv, err[-2000:])
        if code == 2:
            assert err.startswith("kals: error:") and err.count("\n") == 1, (argv, err)
        codes[code] = codes.get(code, 0) + 1
    print(cmd, codes)
    assert codes.get(2, 0) > 0
    assert codes.get(0, 0) > 0 or cmd == "evaluate", codes


# ---------------------------------------------------------------- hostile image folders (issue #23)
def _png_header_only(path, width, height):
    """A PNG whose header claims width x height pixels (a decompression bomb PIL refuses at open)."""
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8))
                     + chunk(b"IEND", b""))


def _hostile(kind, folder, rng):
    """Add one hostile entry of ``kind`` to ``folder``; returns True if kals should still train."""
    from PIL import Image
    pixels = lambda *shape: rng.integers(0, 256, shape, dtype=np.uint8)  # noqa: E731
    if kind == "bomb":
        _png_header_only(folder / "bomb.png", 20_000, 20_000)
    elif kind == "truncated":
        Image.fromarray(pixels(64, 64)).save(folder / "t.png")
        blob = (folder / "t.png").read_bytes()
        (folder / "t.png").write_bytes(blob[: len(blob) // 2])
    elif kind == "empty":
        (folder / "empty.jpg").write_bytes(b"")
    elif kind == "directory":
        (folder / "x.png").mkdir()
        return True  # a folder named like an image is not an image file: skipped
    elif kind == "text":
        (folder / "notes.png").write_text("not an image\n")
    elif kind in ("RGBA", "CMYK", "I", "P", "I;16", "F"):
        arr = {"RGBA": pixels(8, 8, 4), "CMYK": pixels(8, 8, 4)}.get(kind, pixels(8, 8))
        im = Image.fromarray(arr, "RGBA") if kind == "RGBA" else Image.fromarray(arr).convert(kind if kind != "CMYK" else "L")
        if kind == "CMYK":
            im = Image.fromarray(pixels(8, 8, 3), "RGB").convert("CMYK")
        im.save(folder / f"mode.{'jpg' if kind == 'CMYK' else 'tiff' if kind in ('F', 'I;16', 'I') else 'png'}")
        return True  # unusual modes are converted (greyscale or RGB)
    return False


@pytest.mark.parametrize("kind", ["bomb", "truncated", "empty", "directory", "text", "RGBA", "CMYK", "I", "P",
                                  "I;16", "F"])
def test_hostile_image_folders(kind, tmp_path, capsys):
    """A folder with one hostile file among good images: one line and exit 2, or trained (never a traceback)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    trains = _hostile(kind, folder, rng)
    code = main(["train", "--data", f"folder:{folder}", "-L", "2", "-H", "4", "--epochs", "1", "--image-size", "8",
                 "--out", str(tmp_path / "m.pt"), "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if trains:
        assert code == 0, err
    else:
        assert code == 2 and err.startswith("kals: error:") and err.count("\n") == 1, err
        assert "image" in err
