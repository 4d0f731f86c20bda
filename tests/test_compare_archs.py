"""experiments.compare_architectures (issue #14): every architecture at a matched size on a tiny image
set, one row per (arch, seed) with the measures, kept runs for the sample grid, the GIFs and the panel."""

import math

import pytest
import torch

from kals_utils.data import Data
from kals_utils.errors import KalsError
from kals_utils.studies import (ARCH_KEYS, PARAM_SLACK, arch_label, compare_architectures, final_samples, kept_runs, matched_sizes, matched_width)
from kals_utils.faces.export import architecture_gifs
from kals_utils.measures.tables import format_rows, summarise
from kals_utils.faces.plots import plot_final_samples, plot_loss_curves
from kals_utils.model import ARCHS, n_weights
from kals_utils.render import read_gif

SHAPE = (1, 8, 8)


def tiny_images(n=6):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, math.prod(SHAPE), generator=g) * 2 - 1).clamp(-0.9, 0.9)
    return Data(x=x, value_range=(-1.0, 1.0), name="tiny", image_shape=SHAPE, labels=torch.arange(n) % 2)


@pytest.fixture(scope="module")
def rows():
    return compare_architectures(tiny_images(), target_params=3000, depths={"unet": 2}, arch_kw={"transformer": {"patch": 4}},
                                 seeds=(0, 1), epochs=3, lr=1e-3, batch_size=3, chains=8, steps=4, eps=0.01,
                                 device="cpu", max_points=3, keep_runs=True)


def test_one_row_per_arch_and_seed_at_matched_size(rows):
    assert [(r["arch"], r["seed"]) for r in rows] == [(a, s) for a in ARCHS for s in (0, 1)]
    for r in rows:
        assert abs(r["params"] - 3000) <= PARAM_SLACK * 3000
        assert r["params"] == n_weights(r["run"].model)  # the recorded count is the trained net's
        assert r["run"].config.model.arch == r["arch"] and r["run"].config.width == r["width"]
        assert r["batch"] == 3 and r["epochs"] == 3 and r["label"] == r["arch"]
        assert 0 <= r["learnt"] <= 1 and r["loss"] >= 0
        assert r["ms_per_step"] > 0 and r["seconds"] >= r["train_seconds"] > 0
        for k in ARCH_KEYS:
            assert k in r
        assert 0 <= r["converged"] <= 1 and 0 < r["coverage"] <= 1 and r["class_tv"] is not None
    assert rows[0]["depth"] == 4 and rows[4]["depth"] == 2  # default depths, the unet's overridden
    assert rows[6]["run"].model.patch == 4


def test_same_seed_same_numbers():
    again = compare_architectures(tiny_images(), archs=("mlp",), target_params=3000, seeds=(0,), epochs=3,
                                  batch_size=3, chains=8, steps=4, device="cpu", max_points=3)
    first = compare_architectures(tiny_images(), archs=("mlp",), target_params=3000, seeds=(0,), epochs=3,
                                  batch_size=3, chains=8, steps=4, device="cpu", max_points=3)
    for k in ("loss", "converged", "coverage", "median_nn"):
        assert again[0][k] == first[0][k]
    other = compare_architectures(tiny_images(), archs=("mlp",), target_params=3000, seeds=(1,), epochs=3,
                                  batch_size=3, chains=8, steps=4, device="cpu", max_points=3)
    assert other[0]["loss"] != first[0]["loss"] and other[0]["median_nn"] != first[0]["median_nn"]


def test_tables_grids_gifs_and_panel_runs(rows, tmp_path):
    table = format_rows(summarise(rows, by=("label",), keys=("params", "coverage", "ms_per_step")),
                        ["label", "runs", "params", "coverage", "coverage_sd", "ms_per_step"])
    assert table.count("\n") == 1 + len(ARCHS)
    finals = final_samples(rows, k=5)
    assert list(finals) == list(ARCHS) and all(v.shape == (5, 64) for v in finals.values())
    assert kept_runs(rows)["mlp"] is rows[0]["run"]
    gifs = architecture_gifs(rows, tmp_path, chains=6, steps=3)
    assert sorted(gifs) == sorted(ARCHS)
    assert gifs["cnn"].name == "tiny_L4_H" + str(rows[2]["width"]) + "_c6_T3_eps0.01_uniform_cnn.gif"
    for g in gifs.values():
        assert len(read_gif(g)) == 4
    fig = plot_final_samples(rows, tiny_images(), k=4, title="tiny")
    assert len(fig.axes) == 8 and fig.axes[0].get_title().startswith("mlp\nconverged")
    assert fig.axes[4].get_title() == "training images" and not fig.axes[5].axison
    fig.savefig(tmp_path / "grid.png")
    pairs = plot_final_samples(rows, tiny_images(), k=4, pairs=True)
    single, paired = (f.axes[3].get_images()[0].get_array().shape[:2] for f in (fig, pairs))
    assert len(pairs.axes) == 4 and paired[1] == single[1] and paired[0] > single[0]  # 8 cells: two rows of 4
    assert plot_loss_curves(rows).axes[0].get_legend().get_texts()[1].get_text() == "cnn"


def test_matched_sizes_say_what_l_and_h_mean():
    sizes = matched_sizes(SHAPE, target_params=3000, depths={"unet": 2}, arch_kw={"unet": {"top_skip": False}})
    assert [s["arch"] for s in sizes] == ["mlp", "cnn", "unet(top_skip=False)", "transformer"]
    assert all(abs(s["params"] - 3000) <= 600 for s in sizes) and "conv" in sizes[1]["meaning"]


def test_variants_are_labelled_and_start_from_noise(tmp_path):
    rows = compare_architectures(tiny_images(), archs=("unet",), target_params=3000, depths={"unet": 2},
                                 arch_kw={"unet": {"top_skip": False}}, recipe="improved", seeds=(0,), epochs=2,
                                 batch_size=3, chains=4, steps=2, device="cpu", max_points=2, keep_runs=True)
    r = rows[0]
    assert r["label"] == "unet(top_skip=False)+improved" and r["recipe"] == "improved"
    assert r["run"].model.top_skip is False
    start = r["samples"].frames[0]  # uniform noise, not the improved recipe's data-covariance start
    assert start.min() >= -1 and start.max() <= 1 and start.std() > 0.4
    gif = architecture_gifs(rows, tmp_path, chains=4, steps=2, scale=2)["unet(top_skip=False)+improved"]
    assert gif.name.endswith("_uniform_unet_top_skip_False_improved.gif") and read_gif(gif).shape[2] == 146  # 8 cells of 2x8 px + padding
    assert arch_label("transformer", {"patch": 8}) == "transformer(patch=8)"
    assert arch_label("transformer", {"patch": 4}) == "transformer" and arch_label("unet", {"top_skip": True}) == "unet"


def test_unmatchable_sizes_and_points_are_refused():
    with pytest.raises(KalsError, match="within 20%"):
        matched_width("unet", target=50, image_shape=SHAPE, depth=3)
    pts = Data(x=torch.rand(4, 2), value_range=(0.0, 1.0), name="pts")
    with pytest.raises(KalsError, match="needs images"):
        compare_architectures(pts, target_params=100, seeds=(0,), epochs=1)
