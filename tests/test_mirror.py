"""kals_utils.mirror: images and their left-right mirrors, decided from the data."""
import pytest
import torch

from kals_utils.data import Data
from kals_utils.errors import KalsError
from kals_utils.mirror import MIRROR_RATIO, mirror_ratio, mirrored, use_mirror
from kals_utils.pipeline import train_run

SHAPE = (1, 8, 8)


def _symmetric(n=60, seed=0):
    """Images whose mirrors are images of the same kind: random left halves mirrored, then each flipped or not."""
    g = torch.Generator().manual_seed(seed)
    half = torch.rand(n, 1, 8, 4, generator=g) * 2 - 1
    x = torch.cat([half, half.flip(-1)], dim=-1) + 0.3 * (torch.rand(n, 1, 8, 8, generator=g) - 0.5)
    return x.reshape(n, -1).clamp(-1, 1)


def _facing_left(n=60, seed=0):
    """Images with a bright left edge (all 'face' one way): their mirrors are another thing."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.4 - 1
    x[..., :3] += 1.6
    return x.reshape(n, -1).clamp(-1, 1)


def test_mirrored_flips_columns_and_twice_is_the_identity():
    x = torch.arange(2 * 64, dtype=torch.float).reshape(2, 64)
    m = mirrored(x, SHAPE)
    assert torch.equal(m.reshape(2, 8, 8)[:, :, 0], x.reshape(2, 8, 8)[:, :, 7])
    assert torch.equal(mirrored(m, SHAPE), x) and not torch.equal(m, x)


def test_auto_mirrors_where_mirrors_are_the_same_kind_of_image_only():
    assert mirror_ratio(_symmetric(), SHAPE) < MIRROR_RATIO < mirror_ratio(_facing_left(), SHAPE)
    assert use_mirror("auto", _symmetric(), SHAPE)[0] and not use_mirror("auto", _facing_left(), SHAPE)[0]
    assert use_mirror("on", _facing_left(), SHAPE)[0]                      # asked for: always
    assert use_mirror("off", _symmetric(), SHAPE) == (False, None)
    assert use_mirror("auto", _symmetric()[:, :8], None) == (False, None)  # points have no mirror
    with pytest.raises(KalsError, match="auto, on or off"):
        use_mirror("yes", _symmetric(), SHAPE)


def test_a_run_with_mirrors_trains_and_checks_on_both_and_says_so():
    data = Data(x=_symmetric(120), value_range=(-1, 1), name="sym", image_shape=SHAPE)
    kw = dict(depth=2, width=16, updates=150, batch_size=50, lr=1e-3, seed=0, device="cpu", progress=False,
              recipe="improved", note=None)
    run = train_run(data, mirror="on", **kw)
    ex = run.config.extra
    assert ex["mirror"] and ex["holdout"] == 12 and len(run.data) == 120        # the run's data stays the images
    assert "kept the weights" in run.result.message
    plain = train_run(data, mirror="off", **kw)
    assert not plain.config.extra["mirror"] and plain.config.extra["holdout"] == 12
    assert not torch.equal(next(run.model.parameters()), next(plain.model.parameters()))  # the control
    paper = train_run(data, depth=2, width=16, updates=20, batch_size=50, seed=0, device="cpu", progress=False,
                      recipe="paper", note=None, mirror="on")
    assert "mirror" not in paper.config.extra                                   # the paper's recipe is the paper's


def test_the_rule_checks_copies_against_the_mirrors_and_keeps_the_held_out_mirrors_out():
    from kals_utils.model import ModelConfig, build_model
    from kals_utils.recipes import selection_rule, split_holdout
    x = _symmetric(120)
    model = build_model(ModelConfig(dim=64, depth=2, width=8, out_act="tanh"), seed=0)
    x_fit, stop = selection_rule("improved", model, x, batch=50, seed=0, image_shape=SHAPE, mirror="on")
    keep, held = split_holdout(120, 0.1, 0)
    assert torch.equal(x_fit, torch.cat([x[keep], mirrored(x[keep], SHAPE)])) and torch.equal(stop.train, x_fit)
    assert stop.mirror[0] and stop.held == len(held) == 12
    for h in mirrored(x[held], SHAPE):                                           # no held-out image's mirror trained
        assert not (x_fit == h).all(dim=1).any()
    plain, _ = selection_rule("improved", model, x, batch=50, seed=0, image_shape=SHAPE)
    assert torch.equal(plain, x[keep])                                           # the control: without mirrors


def test_by_default_a_set_whose_mirrors_look_like_it_is_mirrored_and_the_run_says_so():
    kw = dict(depth=2, width=16, updates=60, batch_size=50, lr=1e-3, seed=0, device="cpu", progress=False,
              recipe="improved")
    said = []
    run = train_run(Data(x=_symmetric(120), value_range=(-1, 1), name="sym", image_shape=SHAPE), note=said.append, **kw)
    assert run.config.extra["mirror"] and any("left-right mirrors" in s and 'mirror "off"' in s for s in said)
    said.clear()
    run = train_run(Data(x=_facing_left(120), value_range=(-1, 1), name="left", image_shape=SHAPE), note=said.append,
                    **kw)
    assert not run.config.extra["mirror"] and not any("mirrors" in s for s in said)     # the control
