"""benchmarks/arch_probe.py runs end to end on a fake IDX file (tiny settings, a few seconds)."""

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_probe():
    spec = importlib.util.spec_from_file_location("arch_probe", ROOT / "benchmarks" / "arch_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_idx(path: Path, n=30):
    imgs = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    header = np.array([2051, n, 28, 28], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + imgs.tobytes())
    return imgs


def test_probe_runs_and_writes_json(tmp_path, capsys):
    probe = load_probe()
    imgs = fake_idx(tmp_path / "imgs.gz")
    assert (probe.read_idx_images(tmp_path / "imgs.gz") == imgs).all()
    out = tmp_path / "probe.json"
    probe.main(["--out", str(out), "--data", str(tmp_path / "imgs.gz"), "--n", "20", "--params", "3000",
                "--epochs", "1", "--batch", "10", "--chains", "6", "--steps", "3", "--b1000-steps", "0",
                "--depths", "mlp=2,cnn=2,unet=2,transformer=1", "--no-top-skip", "always"])
    res = json.loads(out.read_text())
    assert [r["arch"] for r in res["rows"]] == ["mlp", "cnn", "unet", "unet(no top skip)", "transformer"]
    for r in res["rows"]:
        assert 0 <= r["converged"] <= 1 and 0 < r["coverage"] <= 1 and 0 <= r["spurious"] <= 1
        assert r["ms_step_b1000"] is None
    assert "converged" in capsys.readouterr().out
