import pytest
import torch
from torch import nn

from kals_utils import KalsError, ModelConfig, build_model
from kals_utils.device import pick_device
from kals_utils.model import config_of, n_weights


@pytest.mark.parametrize("depth", [1, 2, 3, 7, 10])
def test_depth_counts_linear_layers(depth):
    m = build_model(ModelConfig(dim=3, depth=depth, width=5, out_act="sigmoid"))
    assert sum(isinstance(l, nn.Linear) for l in m) == depth
    assert sum(isinstance(l, nn.ReLU) for l in m) == depth - 1
    assert config_of(m) == ModelConfig(3, depth, 5, "sigmoid")  # the net carries the config it was built with


@pytest.mark.parametrize("act,lo,hi", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_output_is_bounded(act, lo, hi):
    m = build_model(ModelConfig(4, 3, 8, act))
    y = m(torch.randn(100, 4) * 100)
    assert y.min() >= lo and y.max() <= hi


def test_weight_counts_and_the_papers_3_04m():
    """L counts Linear layers: L=10, H=500 on MNIST has 2.79M weights. The paper's "3.04M" is
    3,039,784 exactly = 11 Linear layers (10 hidden ReLU layers), i.e. L=11 here."""
    assert n_weights(build_model(ModelConfig(784, 10, 500, "tanh"))) == 2_789_284
    assert n_weights(build_model(ModelConfig(784, 11, 500, "tanh"))) == 3_039_784


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(ModelConfig(2, 3, 4), seed=7)
    after = torch.rand(1)
    b = build_model(ModelConfig(2, 3, 4), seed=7)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = build_model(ModelConfig(2, 3, 4), seed=8)
    assert not any(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("kw", [dict(depth=0), dict(width=0), dict(out_act="relu"), dict(depth=2.5)])
def test_bad_shapes_raise(kw):
    args = dict(dim=2, depth=3, width=4, out_act="sigmoid") | kw
    with pytest.raises(KalsError):
        ModelConfig(**args)


def test_device_pick():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(KalsError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(KalsError, match="not available"):
            pick_device("cuda")
