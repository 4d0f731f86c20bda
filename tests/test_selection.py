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
    rule.burn, rule.sampler, rule.kept_sampler = selection.RESTART_BURN, "restart", "restart"
    rule.real, rule.collapse = 0.8, selection.COLLAPSE
    assert "collapse" in rule.burn_note(0.07) and "90 images" in rule.burn_note(0.07)
    assert rule.burn_note(0.5) == ""                           # the control: a varied walk gets no warning
    rule.burn = 0
    assert "burn-in" in rule.burn_note(0.5) and "collapse" not in rule.burn_note(0.5)
    rule.kept_sampler = "turn"
    assert "turn sampler" in rule.burn_note(0.5) and "collapse" not in rule.burn_note(0.5)
    assert "as sharp" in rule.burn_note(0.5, widened=True) and "fall onto" not in rule.burn_note(0.5, widened=True)
    rule.burn, rule.kept_sampler = 1, "restart"                # a widened view is not said to collapse or be softer
    assert rule.burn_note(0.5, widened=True).startswith("shown after 1 hidden step(s), not 5: as sharp")
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
    assert selection.rank(90.0, 0.5) < selection.rank(80.0, 0.9, soft=True) < varied   # soft reads count SOFT times
    assert selection.rank(40.0, 0.9, soft=True) < selection.rank(90.0, 0.5)              # ... a far better one wins


def test_a_blurred_check_ranks_after_every_sharp_one_and_never_ends_training():
    """Pixel Fréchet distance prefers soft frames (1,000 colour crops, seed 0: a blurred check after 56 passes, then the
    patience ran out before the sharp checks came). Blurred ranks after sharp, before collapsed; patience runs only
    once a sharp walk that varies is kept."""
    assert selection.rank(500.0, 0.4) < selection.rank(100.0, 0.4, blurred=True) < selection.rank(100.0, 0.1)
    assert selection.rank(500.0, 0.4, soft=True) < selection.rank(100.0, 0.4, blurred=True)
    assert selection.rank(100.0, 0.4, blurred=True) < selection.rank(80.0, 0.4, soft=True, blurred=True)
    rule = selection.SampleCheck.__new__(selection.SampleCheck)
    rule.model, rule.every, rule.line, rule.collapse, rule.sampler = torch.nn.Linear(2, 2), 1, 0.05, 0.3, "restart"
    rule.checks, rule.least, rule.best, rule.over, rule.stale = [], (math.inf, None, None), ((math.inf,), None, None), 0, 0
    script = [(100.0, True)] + [(200.0, True)] * (selection.PATIENCE + 2) + [(300.0, False)] + [(400.0, False)] * 8

    def measure():
        (quality, rule.blurred), rule.was_widened, rule.shortened = script[len(rule.checks)], False, False
        return (0.0, quality, 0.4, 5, "restart"), (0.4, 5, "restart")
    rule.measure = measure
    for epoch in range(1 + selection.PATIENCE + 2):
        rule.callback(epoch, 0.0)
    assert not rule.should_stop() and rule.kept()[0] == 1 and "blurred" in rule.kept()[2]  # blur never stops it
    rule.callback(len(rule.checks), 0.0)
    assert rule.kept()[0] == len(rule.checks) and "blurred" not in rule.kept()[2]         # the sharp check wins
    for _ in range(selection.PATIENCE - 1):
        rule.callback(len(rule.checks), 0.0)
    assert not rule.should_stop()
    rule.callback(len(rule.checks), 0.0)
    assert rule.should_stop()                                   # then PATIENCE checks without a better one stop it


def test_a_later_check_as_good_within_the_noise_is_kept_instead():
    """Digits, seed 1: the rule kept 108 passes (6.85) over 234 (6.97) and stopped; a later tie that shows at least as
    many distinct images now replaces the best, measured against the best quality itself, so ties cannot drift
    upwards; collapsed walks and other tiers never tie."""
    best = selection.rank(6.85, 0.47)
    assert selection.ties(selection.rank(6.97, 0.59), best)
    assert not selection.ties(selection.rank(8.0, 0.59), best)                       # the control: clearly worse
    assert selection.ties(selection.rank(72.6, 0.66), selection.rank(68.6, 0.59))   # Fashion-MNIST, seed 0: 266 vs 210
    assert not selection.ties(selection.rank(6.9, 0.59, blurred=True), best)         # another tier
    assert not selection.ties(selection.rank(6.9, 0.1), selection.rank(6.85, 0.12))  # collapsed: by variety alone
    rule = selection.SampleCheck.__new__(selection.SampleCheck)
    rule.model, rule.every, rule.line, rule.collapse, rule.sampler = torch.nn.Linear(2, 2), 1, 0.05, 0.3, "restart"
    rule.checks, rule.least, rule.best, rule.over, rule.stale = [], (math.inf, None, None), ((math.inf,), None, None), 0, 0
    script = iter([(100.0, 0.4), (104.0, 0.4), (116.0, 0.5), (109.5, 0.45), (101.0, 0.3)])

    def measure():
        rule.blurred, rule.was_widened, rule.shortened = False, False, False
        quality, shown = next(script)
        return (0.0, quality, 0.4, 5, "restart"), (shown, 5, "restart")
    rule.measure = measure
    for epoch in range(4):
        rule.callback(epoch, 0.0)
    epoch, _state, why = rule.kept()
    assert epoch == 4 and rule.best[0] == (0, 100.0) and rule.stale == 0 and "within 10%" in why   # 116: no tie
    rule.callback(4, 0.0)
    assert rule.kept()[0] == 4 and rule.stale == 1     # as good, but shows fewer distinct images (sneakers): no tie


def test_a_read_before_the_full_walk_counts_its_frechet_distance_1_3_times():
    """Fashion-MNIST with mirrors, seed 1: a check after 28 passes read only after 0 hidden steps had the lowest
    pixel Fréchet distance (87 against 103-125: soft frames), was kept and the patience stopped the run (classifier
    Fréchet distance 294). Counted 1.3 times, the full walks rank first; a read before the full walk that is
    clearly better (500 sneakers, seed 1: 29 against 41; 448 photo crops, seed 1: 151 against 345-413) still wins."""
    def run(script):
        rule = selection.SampleCheck.__new__(selection.SampleCheck)
        rule.model, rule.every, rule.line, rule.collapse, rule.sampler = torch.nn.Linear(2, 2), 1, 0.05, 0.3, "restart"
        rule.checks, rule.least, rule.best, rule.over, rule.stale = [], (math.inf, None, None), ((math.inf,), None, None), 0, 0
        rows = iter(script)

        def measure():
            quality, burn = next(rows)
            rule.blurred, rule.was_widened, rule.shortened = False, False, burn < selection.RESTART_BURN
            return (0.0, quality, 0.4, burn, "restart"), (0.4, burn, "restart")
        rule.measure = measure
        for epoch in range(len(script)):
            rule.callback(epoch, 0.0)
        return rule.kept()
    full = selection.RESTART_BURN
    assert run([(87.0, 0), (101.0, full)])[0] == 2                 # the full walk wins, though its FD reads worse
    assert run([(101.0, full), (87.0, 0)])[0] == 1                 # ... and is not replaced by a read before it
    assert run([(87.0, 0), (103.0, full)])[0] == 2                 # Fashion-MNIST: 87 × SOFT must pass 103
    epoch, _state, why = run([(41.0, full), (29.0, 0)])
    assert epoch == 2 and "29, counted ×1.3" in why                   # sneakers: 29 × SOFT must stay under 41
    assert run([(345.0, full), (151.0, 0)])[0] == 2                # far better: it wins
    assert run([(50.0, 0), (100.0, 2)])[0] == 1                    # control: two soft reads rank by quality


class _Pull(torch.nn.Module):
    """f(z) = z + rate * (x0 - z): every chain slides onto x0."""

    def __init__(self, x0, rate):
        super().__init__()
        from kals_utils.model import ModelConfig
        self.config = ModelConfig(dim=len(x0), depth=2, width=8, out_act="tanh")
        self.x0, self.rate, self.unused = x0, rate, torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return z + self.rate * (self.x0 - z)


def test_a_walk_that_collapses_with_age_gets_a_shorter_burn_in():
    """The restart sampler hides RESTART_BURN applications of f; where frames that old all lie near
    one image, the rule picks the longest burn-in whose frames still vary (and do not copy)."""
    data = _blobs(n=40)
    centre = data.x.mean(dim=0)                  # near no training point more than the others: no copies
    pull = selection.SampleCheck(_Pull(centre, 0.5), data.x, None, steps_per_epoch=1, start_scale=1.3)
    (copying, _quality, distinct, burn, sampler), _shown = pull.measure()
    assert (burn, sampler) == (2, "restart") and distinct >= selection.COLLAPSE and copying <= pull.line  # ages 3..12
    still = selection.SampleCheck(_Pull(centre, 0.0), data.x, None, steps_per_epoch=1, start_scale=1.3)
    assert still.measure()[0][3:] == (selection.RESTART_BURN, "restart")   # the control: a walk that does not collapse
    fast = selection.SampleCheck(_Pull(centre, 0.9), data.x, None, steps_per_epoch=1, start_scale=1.3)
    (_copying, _quality, distinct, burn, sampler), _shown = fast.measure()     # every restart read collapses (ages 1..10: 28%)
    assert (burn, sampler) == (0, "turn") and distinct >= selection.COLLAPSE    # f's first output alone: 50%


def test_pick_burn_prefers_the_longest_burn_in_that_neither_collapses_nor_copies():
    line, c = 0.05, selection.COLLAPSE
    reads = [(0.0, c - 0.2, 5, "a"), (0.2, c + 0.1, 4, "b"), (0.0, c + 0.1, 3, "c"), (0.0, c + 0.3, 0, "d")]
    assert selection.pick_burn(reads, line)[2] == 3          # 5 collapses, 4 copies
    assert selection.pick_burn([(0.0, c, 5, "a")], line)[2] == 5
    collapsed = [(0.0, 0.1, 5, "a"), (0.0, 0.2, 2, "b"), (0.3, 0.25, 0, "c")]
    assert selection.pick_burn(collapsed, line)[2] == 2      # each collapses: the most varied under the line
    assert selection.pick_burn([(0.3, 0.1, 5, "a"), (0.4, 0.5, 0, "b")], line)[2] == 5   # each copies


def test_where_the_walk_collapses_the_most_varied_read_that_is_not_blurred_wins():
    """Past a collapsed RESTART_BURN read, the rule takes the most varied read that neither copies nor blurs
    (sharpness >= SHARP of the training images'), not the longest that passes (100 faces, seed 1: 26% vs 34%)."""
    line, c, s = 0.05, selection.COLLAPSE, selection.SHARP
    sharpness = {"a": 1.2, "b": 1.1, "c": 1.0, "turn": s + 0.05, "blur": s - 0.05}.get
    reads = [(0.0, c - 0.1, 5, "a"), (0.0, c + 0.01, 1, "b"), (0.0, c + 0.05, 0, "c"), (0.0, c + 0.2, 0, "turn")]
    assert selection.pick_burn(reads, line, c, sharpness)[3] == "turn"
    assert selection.pick_burn(reads, line, c)[3] == "b"                        # without images: the longest
    blurred = reads[:3] + [(0.0, c + 0.2, 0, "blur")]
    assert selection.pick_burn(blurred, line, c, sharpness)[3] == "c"           # the blurred one is passed over
    copying = reads[:3] + [(0.2, c + 0.3, 0, "turn")]
    assert selection.pick_burn(copying, line, c, sharpness)[3] == "c"           # ... and the one that copies
    varied_first = [(0.0, c + 0.01, 5, "a")] + reads[1:]
    assert selection.pick_burn(varied_first, line, c, sharpness)[3] == "a"      # a varied walk stays as it was
    all_blur = [(0.0, c - 0.1, 5, "a"), (0.0, c + 0.2, 0, "blur")]
    assert selection.pick_burn(all_blur, line, c, sharpness)[3] == "blur"       # varied, if only blurred, beats collapse
    rule = _scripted([[(0.0, c - 0.1, 5, "restart"), (0.0, c + 0.05, 2, "restart"), (0.0, c + 0.2, 0, "turn")]] * 3,
                     shortened=True, sharp_ref=1.0)   # a check: ranked as before, shown as above
    rule.sharp = lambda f: 1.0 if f[0, 0] < 2 else rule.turn_sharpness
    rule.turn_sharpness = s + 0.1
    assert rule.measure()[0][3:] == (2, "restart") and rule.measure()[1] == (c + 0.2, 0, "turn")
    rule.turn_sharpness = s - 0.1
    assert rule.measure()[1] == (c + 0.05, 2, "restart")                           # a blurred turn is not shown


def _scripted(script: list, *, shortened: bool = False, sharp_ref: float = 0.0):
    """A SampleCheck whose walk reads, check after check, the next of ``script`` [[(copying, distinct, burn,
    sampler)], one row per view, the longest first]; the frames of the k-th view are all k."""
    rule = selection.SampleCheck.__new__(selection.SampleCheck)
    rule.sampler, rule.shortened, rule.line, rule.sharp_ref = "restart", shortened, 0.05, sharp_ref
    rule.collapse, rule.reference, rule.read_views = selection.COLLAPSE, torch.rand(6, 4), []
    rows = iter(script)
    rule.views = lambda: [(smp, b) for _cp, _d, b, smp in script[0]]

    def walk(views):
        rule.now = {(smp, b): (cp, d) for cp, d, b, smp in next(rows)}
        return torch.stack([torch.full((6, 4), float(k)) for k in range(len(views))])

    def read(frames, burn, sampler):
        rule.read_views.append((sampler, burn))
        return (*rule.now[(sampler, burn)], burn, frames, sampler)
    rule.walk, rule.read = walk, read
    return rule


def test_sampling_a_run_uses_the_burn_in_its_rule_chose():
    data = _blobs(n=40)
    run = train_run(data, depth=2, width=16, updates=60, batch_size=20, lr=1e-3, seed=0, device="cpu",
                    progress=False, recipe="improved")
    assert run.config.extra["burn"] in range(selection.RESTART_BURN + 1)
    run.config.extra["burn"] = 1
    own = sample_run(run, chains=4, steps=25, seed=0, record=4).frames
    assert torch.equal(own, sample_run(run, chains=4, steps=25, seed=0, record=4, burn=1).frames)
    assert not torch.equal(own, sample_run(run, chains=4, steps=25, seed=0, record=4, burn=4).frames)  # control


def test_real_images_are_measured_at_the_evaluations_ratio():
    """real_at_ratio reads held-out training images as samples, split so that held-out / rest is the
    evaluation's samples / training images: what real, unseen images read on coverage and distinct nearest."""
    from kals_utils.measures.collapse import real_at_ratio
    from kals_utils.measures.metrics import coverage
    from kals_utils.neighbours import nearest_neighbours
    train = torch.rand(200, 64, generator=torch.Generator().manual_seed(0))
    got = real_at_ratio(train, 600, splits=1, seed=3)
    order = torch.randperm(200, generator=torch.Generator().manual_seed(3))
    rest, held = train[order[:50]], train[order[50:]]                       # 600 samples on 200: 150 held-out on 50
    assert got["coverage_real"] == coverage(nearest_neighbours(held, rest)[1], 50)
    assert real_at_ratio(train, 600, seed=3) == real_at_ratio(train, 600, seed=3)     # seeded
    assert real_at_ratio(train, 600, seed=3) != real_at_ratio(train, 600, seed=4)     # the control: other splits
    assert math.isnan(real_at_ratio(train, 1)["coverage_real"])             # one held-out image: no reading
    collapsed = train[torch.arange(600) % 3]                                  # a walk on three images
    from kals_utils.measures.evaluate import evaluate_samples
    s = evaluate_samples(collapsed, train).summary()
    assert s["coverage"] == 3 / 200 < 0.5 < s["coverage_real"] and s["distinct_real"] > 0.5


def test_after_a_check_that_needed_a_shorter_walk_the_next_reads_them_all():
    """A net that begins to copy also varies its old frames (100 LFW faces): after a check that needed a
    shorter burn-in or the turn sampler, the next one reads every view, so old frames that vary only because
    they copy do not pass for variety; once the longest walk is varied and under the line, it is read alone."""
    c = selection.COLLAPSE
    rule = _scripted([[(0.0, c - 0.2, 5, "restart"), (0.0, c + 0.2, 0, "turn")],    # collapsed at 5
                      [(0.2, c + 0.2, 5, "restart"), (0.0, c + 0.1, 0, "turn")],    # varied at 5: copies
                      [(0.0, c + 0.2, 5, "restart"), (0.0, c + 0.1, 0, "turn")],    # varied, no copies
                      [(0.0, c + 0.2, 5, "restart"), (0.0, c + 0.1, 0, "turn")]])
    assert rule.measure()[0][3:] == (0, "turn") and rule.shortened
    (copying, _q, _d, burn, sampler), shown = rule.measure()
    assert (copying, burn, sampler) == (0.0, 0, "turn") and shown[1:] == (0, "turn")  # read them all: the turn does not copy
    assert rule.measure()[0][3:] == (5, "restart") and not rule.shortened
    rule.read_views.clear()
    rule.measure()
    assert rule.read_views == [("restart", 5)]          # a varied longest walk after one that was: read alone


def test_a_shorter_walk_as_sharp_and_more_varied_is_shown_instead():
    """1,000 colour crops, seed 0: the 5-step walk varied (42% distinct nearest images) and after 0 hidden steps it was
    as sharp and more varied (57%; coverage 0.55 against 0.41). Where the longest walk varies and stays under the
    line, the most varied shorter view that is as sharp (within AS_SHARP, and not blurred) and stays under the line is
    shown; the check is still ranked on the longest walk."""
    c, s = selection.COLLAPSE, selection.SHARP
    row = [(0.0, c + 0.1, 5, "restart"), (0.0, c + 0.2, 2, "restart"), (0.0, c + 0.3, 0, "restart"), (0.2, c + 0.4, 0, "turn")]
    rule = _scripted([row] * 5, sharp_ref=1.0)
    sharp = [0.9, 0.9, 0.87, 0.9]                                   # per view: 0 hidden steps is within 5% of 0.9
    rule.sharp = lambda f: sharp[int(f[0, 0])]
    ranked, shown = rule.measure()
    assert ranked[2:] == (c + 0.1, 5, "restart") and shown == (c + 0.3, 0, "restart") and rule.was_widened
    sharp[2] = 0.8                                                  # softer: the next most varied that is as sharp
    assert rule.measure()[1] == (c + 0.2, 2, "restart")
    sharp[1] = s - 0.01                                             # ... never a blurred one, nor one that copies
    assert rule.measure()[1] == (c + 0.1, 5, "restart") and not rule.was_widened
    sharp[:] = [s - 0.1] * 4                                        # a blurred longest walk: nothing shorter is shown
    assert rule.measure()[1] == (c + 0.1, 5, "restart")
    row[0], sharp[:] = (0.0, c - 0.1, 5, "restart"), [0.9] * 4      # the control: a collapsed walk is not widened,
    assert rule.measure()[1] == (c + 0.3, 0, "restart") and not rule.was_widened   # but picked among all (pick_burn)


def test_the_turn_sampler_turns_through_its_starts_without_a_cut():
    """turn_input passes through each chain's k-th start every TURN steps, in small steps between them; each
    frame of the turn sampler is f applied burn + 1 times to it; a run whose rule chose it samples with it."""
    from kals_utils.moves import TURN, turn_input
    from kals_utils.sample import data_start
    starts = torch.randn(3 * 4, 6, generator=torch.Generator().manual_seed(0))     # 4 chains, 3 starts each
    assert torch.allclose(turn_input(starts, 4, 0), starts[:4])
    assert torch.allclose(turn_input(starts, 4, TURN), starts[4:8])
    path = torch.stack([turn_input(starts, 4, t) for t in range(2 * TURN + 1)])
    assert (path[1:] - path[:-1]).norm(dim=-1).max() < 0.5 * (starts[4:8] - starts[:4]).norm(dim=-1).min()
    data = _blobs(n=40)
    run = train_run(data, depth=2, width=16, updates=60, batch_size=20, lr=1e-3, seed=0, device="cpu",
                    progress=False, recipe="improved")
    run.config.extra.update(sampler="turn", burn=2)
    walk = sample_run(run, chains=4, steps=12, seed=0, record=4)
    assert walk.sampler == "turn"
    fresh = torch.cat([walk.start, data_start(data.x, 4 * (12 // TURN + 1), scale=1.3, seed=1,
                                              value_range=run.config.value_range)])
    with torch.no_grad():
        z = turn_input(fresh, 4, 5).clamp(-1, 1)
        for _ in range(3):
            z = run.model(z)
    assert torch.allclose(walk.frames[6], z, atol=1e-5)          # step 6 shows f^3 of the input after step 5
    restart = sample_run(run, chains=4, steps=12, seed=0, record=4, sampler="restart")
    assert not torch.allclose(restart.frames[6], z, atol=1e-3)   # the control: the restart sampler's frame differs


def test_collapse_means_fewer_distinct_images_than_real_ones_read():
    """Crops of a few textures crowd onto a few "hub" images: real held-out ones read 17-20% distinct nearest
    images (300 grey crops of scikit-image's pictures), so a walk there that reaches 25% has not collapsed; on
    varied images the line stays COLLAPSE, and its warning says what real images read."""
    from kals_utils.model import ModelConfig, build_model
    g = torch.Generator().manual_seed(0)
    model = build_model(ModelConfig(dim=16, depth=2, width=8, out_act="tanh"), seed=0)
    hubs = (torch.rand(4, 16, generator=g) * 2 - 1).repeat(30, 1)               # 4 images, 30 times each
    crowded = selection.SampleCheck(model, hubs, None, steps_per_epoch=1, start_scale=1.3)
    varied = selection.SampleCheck(model, torch.rand(120, 16, generator=g) * 2 - 1, None, steps_per_epoch=1,
                                   start_scale=1.3)
    assert crowded.collapse == crowded.real < 0.2 and varied.collapse == selection.COLLAPSE < varied.real
    for rule in (crowded, varied):
        rule.burn, rule.sampler, rule.kept_sampler = selection.RESTART_BURN, "restart", "restart"
    assert "collapse" not in crowded.burn_note(0.25) and "collapse" in varied.burn_note(0.25)
    assert "real ones" in varied.burn_note(0.25) and "collapse" in crowded.burn_note(crowded.real / 2)
    assert selection.rank(100.0, 0.25, collapse=crowded.collapse)[0] == 0 < selection.rank(100.0, 0.25)[0]
