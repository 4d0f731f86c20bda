"""benchmarks/precision_quality.py (fp32 vs bf16, recipe x seed) runs end to end on a tiny labelled
set through train_run / sample_run / evaluate_run and prints the table with the seeds side by side."""

import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import fakedata  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_precision_table_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("precision_quality", ROOT / "benchmarks" / "precision_quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fakedata.write_mnist(tmp_path, n_train=60, n_test=30, folder="FashionMNIST")
    out = tmp_path / "pq.json"
    rows = mod.main(["--root", str(tmp_path), "--images", "30", "--image-size", "8", "--depth", "2",
                     "--width", "16", "--epochs", "5", "--seeds", "0", "1", "--chains", "20", "--steps", "5",
                     "--json", str(out)])
    assert [(r["recipe"], r["precision_mode"], r["seed"]) for r in rows] == [
        (rec, p, s) for rec in ("paper", "improved") for s in (0, 1) for p in ("fp32", "bf16")]
    for r in rows:
        assert 0 <= r["precision"] <= 1 and 0 <= r["coverage"] <= 1 and 0 <= r["memorized"] <= 1
        assert r["class_tv"] is not None and r["train_mse"] > 0
    assert len(json.loads(out.read_text())["rows"]) == 8
    table = capsys.readouterr().out.splitlines()[-4:]
    assert table[0].startswith("| paper | fp32 | ") and table[-1].startswith("| improved | bf16 | ")
    assert table[0].count(" / ") == 5  # two seeds side by side in each of the five metrics
