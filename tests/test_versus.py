"""The kaleidoscope beside a diffusers DDPM (issue #22): the study end to end at SMOKE size on fake
MNIST written in the real IDX format, offline; a clear message when the `baseline` extra is missing."""
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakedata  # noqa: E402
from reference import naive_memorized, naive_prdc  # noqa: E402
from kals_utils.errors import KalsError  # noqa: E402
from kals_utils.studies import versus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_network(monkeypatch):
    def forbidden(self, *args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vs")
    fakedata.write_mnist(root)
    return root


def test_study_end_to_end_at_smoke_size(mnist_root, no_network):
    torch.manual_seed(0)
    data = versus.first_images("mnist", 64, root=mnist_root)
    assert len(data) == 64 and data.image_shape == (1, 28, 28) and float(data.x.min()) >= -1
    s = versus.SMOKE
    rows = versus.versus_diffusion(data, data_root=mnist_root, seeds=(0,), budgets=s["budgets"],
                                   n_samples=s["n_samples"], ddim_steps=s["ddim_steps"], kals_steps=s["kals_steps"],
                                   unet=s["unet"], kals=s["kals"], keep=True)
    real, runs = rows[0], rows[1:]
    assert real["family"] == "real" and real["nfe"] == 0   # (fake MNIST repeats its images: no memorised check)
    assert [(r["family"], r["budget_s"]) for r in runs] == [(f, b) for f in versus.FAMILIES for b in s["budgets"]]
    for r in runs:
        assert r["train_cpu_s"] >= r["budget_s"] and r["updates"] >= 1
        assert r["nfe"] == (s["ddim_steps"] if r["family"] in versus.DIFFUSION else s["kals_steps"][0])
        for k in ("fd_classifier", "fd_heldout", "fd_pixels", "clf_precision", "clf_coverage", "px_precision", "px_coverage",
                  "memorized", "class_tv", "recognisable", "sample_ms_cpu"):
            assert math.isfinite(r[k]) and r[k] >= 0, (r["label"], k)
        assert 0 <= r["class_tv"] <= 1 and 0 <= r["memorized"] <= 1
        assert r["grid"].shape == (versus.GRID, 784) and float(r["grid"].abs().max()) <= 1
    # known answers: every pixel-space number recomputed from the samples (here all are in the grid)
    from kals_utils.measures.prdc import real_reference
    real = real_reference(data.x, s["n_samples"], seed=0)
    assert s["n_samples"] == versus.GRID
    for r in runs:
        want = naive_prdc(real, r["grid"], k=5)
        assert [r[f"px_{m}"] for m in want] == pytest.approx(list(want.values()), abs=1e-9), r["label"]
        assert r["memorized"] == pytest.approx(naive_memorized(r["grid"], data.x), abs=1e-9), r["label"]
    mlp, kals = ([r for r in runs if r["family"] == f][0] for f in ("mlp-ddpm", "improved"))
    assert abs(mlp["params"] - kals["params"]) / kals["params"] < 0.02   # matched weights (one unit of width: ~1.6% here)
    assert versus.kept_run(rows).config.recipe == "improved"
    assert not any("grid" in r or "run" in r for r in versus.json_rows(rows))


def test_a_run_its_rule_stopped_is_measured_once_for_every_larger_budget(mnist_root, monkeypatch):
    """improved trains afresh for each budget (its stopping rule keeps the best weights so far); once
    the rule ends a run before its budget, larger budgets are that same run, not trained again."""
    from kals_utils import selection
    from kals_utils.measures.evaluate import classifier_for
    from kals_utils.pipeline import make_config
    data = versus.first_images("mnist", 128, root=mnist_root)
    clf = classifier_for(make_config(data, 1, 1), data_root=mnist_root)
    kw = dict(seed=0, classifier=clf, n_samples=16, kals_steps=(2,), kals=versus.SMOKE["kals"])
    trained = []
    real_train = versus._kals_train
    monkeypatch.setattr(versus, "_kals_train", lambda *a, **k: trained.append(k["budget"]) or real_train(*a, **k))
    monkeypatch.setattr(selection.SampleCheck, "should_stop", lambda self: len(self.checks) >= 1)  # stop at the first check
    rows = versus.kals_rows("improved", data, budgets=(30.0, 60.0), **kw)
    assert trained == [30.0] and [r["budget_s"] for r in rows] == [30.0, 60.0]
    assert all(r["stopped"] and r["train_cpu_s"] < 30 for r in rows)
    assert rows[0]["fd_classifier"] == rows[1]["fd_classifier"] and rows[0]["kept_epoch"] >= 1
    trained.clear()
    rows = versus.kals_rows("paper", data, budgets=(0.2, 0.4), **kw)   # no rule: one run, resumed
    assert trained == [0.2, pytest.approx(0.4 - rows[0]["train_cpu_s"])] and not any(r["stopped"] for r in rows)
    assert rows[1]["updates"] > rows[0]["updates"]
    trained.clear()
    rows = versus.kals_rows("improved-nostop", data, budgets=(0.2, 0.4), keep=True, **kw)   # no rule: resumed
    assert len(trained) == 2 and not any(r["stopped"] or r["kept_epoch"] for r in rows)
    run = rows[-1]["run"]
    assert "holdout" not in run.config.extra and run.config.extra["sigma"]   # all 128 images, still denoising


def test_mlp_weight_count_and_matching():
    parts = versus.diffusers_parts()
    for width in (16, 40):
        net = versus.TimeMLP(784, width, blocks=2, parts=parts)
        assert sum(p.numel() for p in net.parameters()) == versus.mlp_weights(784, width, blocks=2)
        assert net(torch.zeros(3, 1, 28, 28), torch.tensor(5)).shape == (3, 1, 28, 28)
    assert versus.matched_mlp_width(784, versus.mlp_weights(784, 469)) == 469


def test_missing_extra_says_how_to_install(monkeypatch, mnist_root):
    monkeypatch.setitem(sys.modules, "diffusers", None)   # `import diffusers` now fails as if not installed
    with pytest.raises(KalsError, match=r"pip install -e \.\[baseline\]"):
        versus.diffusers_parts()
    data = versus.first_images("mnist", 32, root=mnist_root)
    with pytest.raises(KalsError, match="baseline"):   # before any training
        versus.versus_diffusion(data, data_root=mnist_root, families=("improved", "unet"))
    rows = versus.versus_diffusion(data, data_root=mnist_root, families=("paper",), budgets=(0.2,), n_samples=8,
                                   kals_steps=(2,), kals=versus.SMOKE["kals"], with_heldout=False)
    assert [r["family"] for r in rows] == ["paper"]   # kals' own rows need no extra


def test_benchmark_without_the_extra_prints_one_line(tmp_path):
    code = ("import sys, runpy; sys.modules['diffusers'] = None; sys.argv = ['versus_diffusion.py', '--root', "
            f"{str(tmp_path)!r}, '--families', 'unet']; runpy.run_path({str(ROOT / 'benchmarks' / 'versus_diffusion.py')!r}, "
            "run_name='__main__')")
    fakedata.write_mnist(tmp_path)
    r = subprocess.run([sys.executable, "-c", code.replace("'--families'", "'--dataset', 'mnist', '--n', '32', '--families'")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "pip install -e .[baseline]" in r.stderr


def test_unknown_family_and_too_many_samples(mnist_root):
    data = versus.first_images("mnist", 16, root=mnist_root)
    with pytest.raises(KalsError, match="unknown families"):
        versus.versus_diffusion(data, data_root=mnist_root, families=("gan",))
    with pytest.raises(KalsError, match="exceeds"):
        versus.versus_diffusion(data, data_root=mnist_root, families=("paper",), n_samples=100)
    with pytest.raises(KalsError, match="at most"):
        versus.first_images("mnist", 10_000, root=mnist_root)


def test_grids_and_curves_of_families_measured_at_different_budgets():
    """The report's figures: `upto` shows each family at its largest budget up to the one asked; a
    budget every seed of a family reached after its stopping rule ended it is drawn hollow."""
    from kals_utils import plots
    g = torch.zeros(versus.GRID, 784)
    row = dict(fd_classifier=1.0, fd_heldout=2.0, nfe=5, grid=g, seed=0)
    rows = [dict(row, family="real", label="held-out real images", budget_s=None),
            dict(row, family="unet", label="unet", budget_s=60.0), dict(row, family="unet", label="unet", budget_s=1800.0),
            dict(row, family="improved", label="kals", budget_s=60.0, stopped=False),
            dict(row, family="improved", label="kals", budget_s=600.0, stopped=True, train_cpu_s=90.0)]
    fig = plots.plot_versus_grids(rows, (1, 28, 28), (-1.0, 1.0), budget=1800.0, upto=True)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("held-out") and titles[1].startswith("unet, 30 min") and titles[2].startswith("kals, 10 min\n(its rule stopped it at 1.5 min)")
    assert [m["stopped"] for m in plots.compare._by_label(rows[1:], "fd_classifier")] == [[False, False], [False, True]]
    assert len([ax for ax in plots.plot_versus_grids(rows, (1, 28, 28), (-1.0, 1.0), budget=1800.0).axes
                if ax.get_title()]) == 2   # without upto: only the families measured at that budget
