"""The improved recipe's selection rule (issue #29): it watches copying and quality on a short walk,
keeps the best weights from before copying rises, and budgets count optimizer updates."""
import math

import pytest
import torch

from kals_utils import selection
from kals_utils.data import Data
from kals_utils.pipeline import epochs_for, sample_run, train_run
from kals_utils.measures.prdc import frechet_distance, memorization


def _blobs(n=6, dim=16, seed=0):
    """n well-separated points in [-0.8, 0.8]^dim: a denoiser memorises them within a few hundred updates."""
    g = torch.Generator().manual_seed(seed)
    return Data(x=(torch.rand(n, dim, generator=g) * 1.6 - 0.8), value_range=(-1.0, 1.0), name="blobs")


def test_frechet_rows_matches_the_square_root_formula():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 6, generator=g), torch.randn(30, 6, generator=g) * 1.5 + 0.3
    assert selection.frechet_rows(a, b) == pytest.approx(frechet_distance(a, b), rel=1e-6)
    assert selection.frechet_rows(a, a) == pytest.approx(0.0, abs=1e-9)
    wide_a, wide_b = torch.randn(20, 500, generator=g), torch.randn(25, 500, generator=g)  # rank-deficient, D > n
    assert selection.frechet_rows(wide_a, wide_b) == pytest.approx(frechet_distance(wide_a, wide_b), rel=1e-5)


def test_the_rule_stops_before_a_net_copies_a_handful_of_points(monkeypatch):
    """Without the rule the net copies its six points (every check-walk sample a copy); with it,
    training stops early and the kept weights copy no more than the line allows."""
    monkeypatch.setattr(selection, "CHECK_UPDATES", 25)
    monkeypatch.setattr(selection, "CHECK_CHAINS", 64)
    data = _blobs()
    kw = dict(depth=4, width=64, epochs=1500, lr=1e-3, seed=0, device="cpu", progress=False)
    free = train_run(data, recipe=_no_rule(), **kw)
    chains = sample_run(free, chains=64, steps=selection.CHECK_STEPS, seed=0, sampler="walk").final
    copied = memorization(chains, data.x).fraction
    assert copied > 0.3                                          # the control: left alone, it copies
    run = train_run(data, recipe="improved", **kw)
    ex = run.config.extra
    mine = sample_run(run, chains=64, steps=selection.CHECK_STEPS, seed=0, sampler="walk").final
    assert memorization(mine, data.x).fraction < copied / 3      # measured afresh, not the rule's own record
    assert run.result.epochs_done < 1500 and "stopped" in run.result.message
    rule_checks = run.result.train_state["checks"]
    kept = [c for c in rule_checks if c[0] == ex["stopped_at"]][0]
    assert kept[1] <= ex["copy_line"] and ex["copy_baseline"] == 0.0
    assert any(c[1] > ex["copy_line"] for c in rule_checks)   # it saw the copying it stopped for


def _no_rule():
    from dataclasses import replace
    from kals_utils.recipes import IMPROVED
    return replace(IMPROVED, holdout=0.0)


def test_without_a_check_under_the_line_it_keeps_the_least_copying_weights():
    rule = selection.SampleCheck.__new__(selection.SampleCheck)
    rule.best, rule.least, rule.line = (math.inf, None, None), (0.4, 7, {"w": 1}), 0.03
    epoch, state, why = rule.kept()
    assert (epoch, state) == (7, {"w": 1}) and "copied least" in why


@pytest.mark.parametrize("n", [100, 1000])
def test_a_budget_in_updates_is_the_same_work_on_any_data(n):
    g = torch.Generator().manual_seed(0)
    data = Data(x=torch.rand(n, 4, generator=g) * 2 - 1, value_range=(-1.0, 1.0), name="toy")
    seen = []
    run = train_run(data, depth=2, width=8, updates=120, batch_size=10, lr=1e-3, seed=0, device="cpu",
                    progress=False, recipe="paper", callback=lambda e, loss: seen.append(e))
    per_epoch = math.ceil(n / 10)
    assert run.result.epochs_done == epochs_for(120, n, 10) == math.ceil(120 / per_epoch)
    assert run.result.epochs_done * per_epoch in range(120, 120 + per_epoch)   # 120 updates, whole epochs
    assert run.config.extra["updates"] == 120


def test_a_copy_with_raised_contrast_is_still_a_copy():
    """Iterating f can push a copy's contrast up until its pixel distances read "new" (100 LFW faces:
    6% copies in pixels, 60% standardised). copied_fraction sees it; a new image is not a copy."""
    from kals_utils.neighbours import copied_fraction
    from kals_utils.measures.collapse import collapse_measures
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, 64, generator=g) * 0.4 + 0.3                    # low-contrast images around 0.5
    mean = train.mean(dim=1, keepdim=True)
    contrasty = ((train[:20] - mean[:20]) * 2.5 + mean[:20]).clamp(0, 1)    # the same 20 images, contrast x2.5
    assert memorization(contrasty, train).fraction < 0.2                      # pixels: they look new
    assert copied_fraction(contrasty, train) == 1.0                           # at any contrast: copies
    assert collapse_measures(contrasty, train)["memorized_std"] == 1.0
    fresh = torch.rand(20, 64, generator=torch.Generator().manual_seed(1)) * 0.4 + 0.3
    assert copied_fraction(fresh, train) == 0.0                               # the control: new images
    assert copied_fraction(train[:20], train) == 1.0                          # plain copies stay copies


def test_a_collapsed_keep_is_named_and_small_sets_are_checked_every_few_passes():
    rule = selection.SampleCheck.__new__(selection.SampleCheck)
    rule.train, rule.checks = torch.zeros(90, 4), [(150, 0.0, 132.5, 0.07), (300, 0.25, 155.1, 0.5)]
    assert "collapse" in rule.collapse_note(150) and "90 images" in rule.collapse_note(150)
    assert rule.collapse_note(300) == ""                       # the control: a varied walk gets no warning
    data = _blobs(n=40)
    from kals_utils.model import ModelConfig, build_model
    model = build_model(ModelConfig(dim=16, depth=2, width=8, out_act="tanh"), seed=0)
    small = selection.SampleCheck(model, data.x, None, steps_per_epoch=1, start_scale=1.3)
    big = selection.SampleCheck(model, data.x, None, steps_per_epoch=50, start_scale=1.3)
    assert small.every == selection.CHECK_EPOCHS < selection.CHECK_UPDATES   # 1 update a pass: every 30 passes
    assert big.every == round(selection.CHECK_UPDATES / 50)                 # many updates a pass: every 250 updates


def test_varied_before_sharp_a_collapsed_walk_ranks_last():
    """Pixel Fréchet distance prefers one blurry mean face to varied ones; the rule's rank does not."""
    one_face, varied, fine = selection.rank(138.2, 0.01), selection.rank(169.9, 0.19), selection.rank(500.0, 0.4)
    assert varied < one_face                     # among collapsed walks: the more distinct images, the better
    assert fine < varied and fine < one_face     # any walk that does not collapse beats every one that does
    assert selection.rank(80.0, 0.5) < selection.rank(90.0, 0.9)   # the rest: by Fréchet distance alone
