"""Recipes: the mechanics of each (on tiny data), and that the name travels through checkpoint,
command line and panel."""

import math

import numpy as np
import pytest
import torch

from kals_utils import KalsError, ModelConfig, build_model, fit, kaleidoscope, points
from kals_utils.checkpoint import load_checkpoint
from kals_utils.faces.cli import RECIPE_NAMES, main
from kals_utils.data import Data
from kals_utils.pipeline import load_run, sample_run, save_run, train_run
from kals_utils.studies import compare_recipes, meets
from kals_utils.recipes import IMPROVED, PAPER, RECIPES, Recipe, get_recipe, noisy_inputs, recipe_loss
from kals_utils.sample import data_start
from kals_utils.train import full_loss


SIGMA = (0.6, 1.2)  # the improved recipe's noise on data of spread 0.3 (it takes it from the data's spread)


def _images(n=24, dim=16, seed=0):
    """n labelled 'images' in [-1, 1] (two classes: bright left half / bright right half)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = torch.rand(n, dim, generator=g) * 0.6 - 0.8
    half = dim // 2
    x[labels == 0, :half] += 1.0
    x[labels == 1, half:] += 1.0
    return Data(x=x.clamp(-1, 1), value_range=(-1.0, 1.0), name="toy", image_shape=(1, 4, dim // 4), labels=labels)


def test_names_and_defaults():
    assert tuple(RECIPES) == RECIPE_NAMES == ("paper", "improved", "sequence")
    assert get_recipe("paper") is PAPER and get_recipe(IMPROVED) is IMPROVED
    assert not PAPER.sigma and recipe_loss("paper") is None and PAPER.start_kind is None
    with pytest.raises(KalsError, match="unknown recipe 'fancy'; choose one of paper, improved, sequence"):
        get_recipe("fancy")
    with pytest.raises(KalsError, match="sigma_min, sigma_max"):
        Recipe("bad", sigma=(0.5, 0.1))


def test_paper_sampling_is_the_plain_kaleidoscope():
    run = train_run(points(dim=2), depth=3, width=8, epochs=3, device="cpu", progress=False)
    a = sample_run(run, chains=7, steps=5, noise="normal", eps=0.05, seed=3)
    b = kaleidoscope(run.model, chains=7, steps=5, noise="normal", eps=0.05, seed=3)
    assert torch.equal(a.final, b.final) and torch.equal(a.frames, b.frames)


def test_denoising_loss_uses_noisy_inputs_and_clean_targets():
    d = _images()
    m = build_model(ModelConfig(d.dim, 3, 16, "tanh"), seed=0)
    seen = []
    m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    loss = recipe_loss(IMPROVED, SIGMA)(m, d.x, torch.Generator().manual_seed(5))
    (noisy,) = seen  # improved: the noisy inputs only
    assert not torch.allclose(noisy, d.x) and noisy.min() >= -1 and noisy.max() <= 1
    # the same draw, reproduced: targets are the *clean* images
    expected_noisy = noisy_inputs(d.x, SIGMA, torch.Generator().manual_seed(5), (-1, 1))
    assert torch.equal(noisy, expected_noisy)
    with torch.no_grad():
        assert math.isclose(float(loss.detach()), float(((m(noisy) - d.x) ** 2).mean()), rel_tol=1e-5)


def test_noise_levels_are_log_uniform_in_range():
    x = torch.zeros(400, 2000)
    noisy = noisy_inputs(x, (0.2, 0.8), torch.Generator().manual_seed(0), (-math.inf, math.inf))
    sigma = noisy.std(dim=1, keepdim=True)
    assert sigma.min() >= 0.2 * 0.94 and sigma.max() <= 0.8 * 1.06
    assert abs(float(sigma.log().mean()) - math.log(0.4)) < 0.05  # log-uniform: geometric mean 0.4


def test_fit_with_recipe_keeps_best_by_clean_mse():
    d = _images()
    m = build_model(ModelConfig(d.dim, 3, 16, "tanh"), seed=0)
    r = fit(m, d.x, epochs=40, lr=1e-2, seed=0, progress=False, loss_fn=recipe_loss(IMPROVED, SIGMA))
    assert len(r.losses) == 40
    assert math.isclose(r.best_loss, min(r.losses), rel_tol=1e-6)  # history = clean MSE after each epoch
    assert math.isclose(full_loss(m, d.x), r.best_loss, rel_tol=1e-5)  # the returned weights are that best
    # reproducible: the noise comes from fit's per-epoch seeded generator
    m2 = build_model(ModelConfig(d.dim, 3, 16, "tanh"), seed=0)
    assert fit(m2, d.x, epochs=40, lr=1e-2, seed=0, progress=False, loss_fn=recipe_loss(IMPROVED, SIGMA)).losses == r.losses


def test_data_start_has_the_data_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(50, 3, generator=g) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.2]]) + 2
    z = data_start(train, 20000, seed=1, value_range=(-math.inf, math.inf))
    assert torch.allclose(z.mean(dim=0), train.mean(dim=0), atol=0.05)
    assert torch.allclose(torch.cov(z.T), torch.cov(train.T), atol=0.06)
    assert torch.equal(data_start(train, 10, seed=1), data_start(train, 10, seed=1))
    assert not torch.equal(data_start(train, 10, seed=1), data_start(train, 10, seed=2))
    clipped = data_start(train, 100, scale=3.0, seed=1, value_range=(0.0, 1.0))
    assert clipped.min() >= 0 and clipped.max() <= 1
    with pytest.raises(KalsError, match="at least 2 training points"):
        data_start(train[:1], 5)


def test_recipe_is_stored_in_checkpoint_and_used_for_sampling(tmp_path):
    d = _images()
    run = train_run(d, depth=3, width=16, epochs=20, lr=1e-2, seed=0, device="cpu", progress=False, recipe="improved")
    assert run.config.recipe == "improved"
    save_run(run, tmp_path / "r.pt")
    assert load_checkpoint(tmp_path / "r.pt").config.recipe == "improved"
    back = load_run(tmp_path / "r.pt", device="cpu")
    res = sample_run(back, chains=5, steps=4, eps=0.01, seed=2)  # recipe read from the checkpoint
    assert torch.equal(res.start, data_start(d.x, 5, scale=IMPROVED.start_scale, seed=2, value_range=(-1.0, 1.0)))
    paper = sample_run(back, chains=5, steps=4, eps=0.01, seed=2, recipe="paper")  # overridden
    assert torch.equal(paper.final, kaleidoscope(back.model, chains=5, steps=4, eps=0.01, seed=2).final)
    assert train_run(d, depth=2, width=8, epochs=2, device="cpu", progress=False).config.recipe == "paper"


def test_cli_recipe_train_and_sample(tmp_path, capsys):
    ck, npz = tmp_path / "p.pt", tmp_path / "s.npz"
    assert main(["train", "--data", "points2d", "-L", "3", "-H", "8", "--epochs", "40", "--recipe", "improved",
                 "--out", str(ck), "--no-progress"]) == 0   # a check every 30 passes
    out = capsys.readouterr().out
    assert "recipe improved; its selection rule may stop earlier" in out    # 4 points: too few to hold any out
    assert "\n  - kept the weights of epoch 30 (every check copied" in out   # the rule's notes, one per line ...
    assert "\n  - its check walk ends near only" in out and "\n  - more images help most" in out
    assert "\n  - kept the one that copied least" not in out     # ... not inside brackets
    assert load_checkpoint(ck).config.recipe == "improved"
    assert main(["sample", "--checkpoint", str(ck), "--chains", "6", "--steps", "3", "--save-samples", str(npz)]) == 0
    out = capsys.readouterr().out
    assert str(np.load(npz)["recipe"]) == "improved" and "recipe improved, sampler restart (its selection rule" in out
    assert main(["sample", "--checkpoint", str(ck), "--chains", "6", "--steps", "3", "--save-samples", str(npz),
                 "--recipe", "paper"]) == 0
    assert str(np.load(npz)["recipe"]) == "paper"
    assert main(["train", "--data", "points2d", "-L", "3", "-H", "8", "--recipe", "fancy", "--out", str(ck)]) == 2
    assert "invalid choice: 'fancy'" in capsys.readouterr().err


def test_widget_recipe_dropdown(tmp_path):
    from kals_utils.faces.widgets import KaleidoscopePanel
    p = KaleidoscopePanel(points(dim=2), depth=3, width=8, epochs=10, chains=4, steps=3, device="cpu",
                          out_dir=tmp_path, recipe="improved")
    assert p.recipe.options == RECIPE_NAMES and p.recipe.value == "improved"
    p.train_button.click()
    assert p.run.config.recipe == "improved" and "improved recipe" in p.status.value
    p.sample_button.click()  # the improved recipe starts from the data's covariance
    expected = sample_run(p.run, chains=4, steps=3, seed=0)
    assert torch.allclose(p.result.final, expected.final)
    p.recipe.value = "paper"  # another recipe means another f: the model is stale until retrained
    assert p.stale and "press Train to retrain" in p.status.value


def test_compare_rows_and_targets():
    rows = compare_recipes(_images(), seeds=(0,), depth=2, width=8, epochs=3, chains=6, steps=3, device="cpu",
                   max_points=4, keep_runs=True)
    assert [r["recipe"] for r in rows] == ["paper", "improved"]
    for r in rows:
        assert r["image"] == "1x4x4" and r["n"] == 24 and 0 <= r["class_tv"] <= 1 and 0 < r["coverage"] <= 1
        assert r["run"].config.recipe == r["recipe"] and r["samples"].final.shape == (6, 16)
    assert meets({"class_tv": 0.1, "coverage": 0.5, "median_nn": 0.1, "copies": 0.0}) == "all"
    assert meets({"class_tv": 0.3, "coverage": 0.1, "median_nn": 0.1, "copies": 0.0}) == "misses class_tv, coverage"


def test_evaluating_an_improved_run_uses_its_own_sampler():
    """evaluate_run without a result samples the way the run was trained (issue #13's bug)."""
    from kals_utils.measures.evaluate import evaluate_run
    run = train_run(_images(), depth=3, width=16, epochs=20, lr=1e-2, seed=0, device="cpu", progress=False,
                    recipe="improved")
    own = sample_run(run, chains=40, steps=10, seed=4, record=40)
    a = evaluate_run(run, own, seed=4).summary()
    b = evaluate_run(run, chains=40, steps=10, seed=4).summary()
    assert a == b
    uniform = evaluate_run(run, sample_run(run, chains=40, steps=10, seed=4, record=40, recipe="paper"), seed=4)
    assert uniform.summary() != a  # the uniform start really is another sampler
    bare = evaluate_run(run, sample_run(run, chains=40, steps=10, seed=4, record=0), seed=4).summary()
    assert bare["coverage"] == a["coverage"] and bare["distinct"] == a["distinct"]  # no frames kept: the rest still measured
