"""Image architectures (kals_utils.nets): shapes, ranges, seeds, AD, autocast, errors, parameter
matching, and that each architecture learns a tiny image set and turns it into attractors."""

import math

import pytest
import torch
import torch.nn.functional as F

from kals_utils.errors import KalsError
from kals_utils.model import ARCHS, ModelConfig, build_model, build_net, width_for_params
from kals_utils.nets import UNet, ViT, n_params

IMAGE_ARCHS = ("cnn", "unet", "transformer")
SHAPES = [(1, 28, 28), (3, 32, 32), (1, 10, 14)]
# (arch, depth, extra settings): every depth the issue names, small widths for speed
CASES = [("mlp", 1, {}), ("mlp", 3, {}), ("cnn", 1, {}), ("cnn", 3, {}),
         ("unet", 1, {}), ("unet", 2, {}), ("unet", 3, {}), ("unet", 4, {}), ("unet", 3, {"top_skip": False}),
         ("transformer", 1, {}), ("transformer", 2, {"patch": 4})]


def devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def net_for(arch, shape, depth=2, width=6, out_act="tanh", seed=0, **kw):
    return build_net(arch, image_shape=shape, depth=depth, width=width, out_act=out_act, seed=seed, **kw)


# ----------------------------------------------------------------------------- shapes and ranges

@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch,depth,kw", CASES, ids=lambda c: str(c))
def test_shape_and_bounded_range(arch, depth, kw, shape):
    d = math.prod(shape)
    for out_act, (lo, hi) in (("tanh", (-1, 1)), ("sigmoid", (0, 1))):
        net = net_for(arch, shape, depth=depth, out_act=out_act, **kw)
        x = torch.randn(3, d, generator=torch.Generator().manual_seed(0)) * 5
        with torch.no_grad():
            y = net(x)
        assert y.shape == (3, d) and y.dtype == torch.float32
        assert float(y.min()) >= lo and float(y.max()) <= hi
        assert torch.isfinite(y).all()


def test_any_leading_shape_and_wrong_width():
    net = net_for("unet", (1, 10, 14), depth=3)
    x = torch.rand(2, 5, 140)
    assert net(x).shape == (2, 5, 140)
    assert torch.allclose(net(x)[1, 2], net(x[1, 2]), atol=1e-6)  # unbatched (D,) works too
    with pytest.raises(KalsError, match="expects"):
        net(torch.rand(2, 139))


def test_unet_levels_channels_and_padding():
    net = UNet(image_shape=(1, 28, 28), depth=4, width=8)
    assert [b[0].out_channels for b in net.down] == [8, 16, 32, 64]
    capped = UNet(image_shape=(1, 8, 8), depth=6, width=2)
    assert max(b[0].out_channels for b in capped.down) == 16  # capped at 8H
    assert capped(torch.rand(2, 64)).shape == (2, 64)  # 8x8 padded to 32x32 and cropped back
    no_top = UNet(image_shape=(1, 28, 28), depth=4, width=8, top_skip=False)
    assert n_params(no_top) < n_params(net) and no_top.settings["top_skip"] is False


def test_vit_tokens_padding_and_heads():
    v = ViT(image_shape=(1, 10, 14), depth=1, width=8, patch=4)
    assert v.grid == (3, 4) and v.pos.shape == (1, 12, 8)
    assert ViT(image_shape=(1, 28, 28), depth=1, width=8).grid == (7, 7)
    assert ViT(image_shape=(1, 8, 8), depth=1, width=6, heads=4).heads == 3  # largest divisor <= 4
    assert ViT(image_shape=(1, 8, 8), depth=1, width=7, heads=4).heads == 1
    assert ViT(image_shape=(1, 8, 8), depth=1, width=8, heads=4).heads == 4


@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_config_rebuilds_the_same_architecture(arch):
    net = net_for(arch, (3, 10, 14), depth=2)
    again = type(net)(**net.settings)
    assert [p.shape for p in again.parameters()] == [p.shape for p in net.parameters()]
    assert net.dim == 420 and net.value_range == (-1.0, 1.0)


# ----------------------------------------------------------------------------- seeds

@pytest.mark.parametrize("arch", ARCHS)
def test_seed_determinism_and_global_rng_untouched(arch):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = net_for(arch, (1, 12, 12), seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = net_for(arch, (1, 12, 12), seed=7)
    c = net_for(arch, (1, 12, 12), seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_mlp_is_the_projects_mlp():
    a = build_net("mlp", dim=6, depth=3, width=5, out_act="sigmoid", seed=3)
    b = build_model(ModelConfig(6, 3, 5, "sigmoid"), seed=3)
    assert str(a) == str(b)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert build_net("mlp", image_shape=(1, 2, 3), depth=1, width=9)[0].in_features == 6


# ----------------------------------------------------------------------------- AD, autocast, devices

@pytest.mark.parametrize("arch", ARCHS)
def test_jvp_matches_vjp(arch):
    """Forward-mode AD (torch.func.jvp) works and agrees with reverse mode: <u, J v> = <J^T u, v>."""
    net = net_for(arch, (1, 6, 10), depth=2).double()
    g = torch.Generator().manual_seed(0)
    x, v, u = (torch.randn(2, 60, generator=g, dtype=torch.float64) for _ in range(3))
    y, jv = torch.func.jvp(net, (x,), (v,))
    y2, vjp = torch.func.vjp(net, x)
    (jtu,) = vjp(u)
    assert torch.allclose(y, y2)
    assert torch.allclose((u * jv).sum(), (jtu * v).sum(), rtol=1e-9, atol=1e-12)
    jac = torch.func.jacrev(net)(x[0])  # per-image Jacobian, (D, D)
    assert jac.shape == (60, 60)


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_autocast_forward(arch):
    net = net_for(arch, (3, 10, 14), depth=3)
    x = torch.rand(4, 420) * 2 - 1
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if arch != "mlp":  # the image nets return float32; the plain MLP returns bf16 (castable)
        assert y.dtype == torch.float32
    assert (y.float() - net(x)).abs().max() < 0.1


@pytest.mark.parametrize("arch", ARCHS)
def test_runs_on_every_available_device(arch):
    for dev in devices():
        net = net_for(arch, (1, 10, 14), depth=2).to(dev)
        x = torch.rand(2, 140, device=dev)
        y = net(x)
        y.sum().backward()
        assert y.device.type == dev and y.shape == (2, 140)


# ----------------------------------------------------------------------------- errors

def test_errors():
    with pytest.raises(KalsError, match="mlp, cnn, unet, transformer"):
        build_net("resnet", image_shape=(1, 8, 8), depth=2, width=4)
    for arch in IMAGE_ARCHS:
        with pytest.raises(KalsError, match=f"architecture {arch} needs images .*fit only arch mlp"):
            build_net(arch, dim=2, depth=2, width=4)
        with pytest.raises(KalsError, match="needs images"):
            width_for_params(arch, target=1000, dim=2, depth=2)
    for arch in ARCHS:
        with pytest.raises(KalsError, match="depth L must be >= 1"):
            build_net(arch, image_shape=(1, 8, 8), depth=0, width=4)
        with pytest.raises(KalsError, match="width H must be >= 1"):
            build_net(arch, image_shape=(1, 8, 8), depth=2, width=0)
    with pytest.raises(KalsError, match="depth L must be an integer"):
        build_net("cnn", image_shape=(1, 8, 8), depth=2.5, width=4)
    with pytest.raises(KalsError, match="does not match"):
        build_net("cnn", image_shape=(1, 8, 8), dim=65, depth=2, width=4)
    with pytest.raises(KalsError, match="output activation"):
        build_net("unet", image_shape=(1, 8, 8), depth=2, width=4, out_act="relu")
    with pytest.raises(KalsError, match="does not match"):
        build_net("cnn", image_shape=(8, 8), depth=2, width=4)
    with pytest.raises(KalsError, match="unknown architecture setting.*heads"):
        build_net("transformer", image_shape=(1, 8, 8), depth=2, width=4, heads=3)
    with pytest.raises(KalsError, match="needs image_shape"):
        build_net("mlp", depth=2, width=4)


# ----------------------------------------------------------------------------- parameter matching

@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=["grey28", "rgb32"])
@pytest.mark.parametrize("arch", ARCHS)
def test_width_for_params_matches_the_budget(arch, shape):
    for depth, target in ((3, 20_000), (4, 100_000), (3, 300_000)):
        h = width_for_params(arch, target=target, image_shape=shape, depth=depth)
        count = lambda w: n_params(build_net(arch, image_shape=shape, depth=depth, width=w))  # noqa: E731
        n = count(h)
        assert 0.8 * target <= n <= 1.2 * target, (arch, depth, target, h, n)
        # it is the closest width: neither neighbour is nearer the target
        assert abs(n - target) <= abs(count(h + 1) - target)
        if h > 1:
            assert abs(n - target) <= abs(count(h - 1) - target)


def test_width_for_params_mlp_formula_is_exact():
    for depth in (1, 2, 5):
        for width in (1, 7, 40):
            n = n_params(build_net("mlp", dim=30, depth=depth, width=width))
            assert width_for_params("mlp", target=n, dim=30, depth=depth) == (width if depth > 1 else 1)


# ----------------------------------------------------------------------------- learning and attraction

def block_images(n=8, size=8, seed=0):
    """n grey size x size images in {-0.8, 0.8}: random 4x4 binary patterns blown up (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    low = (torch.rand(n, 1, 4, 4, generator=g) > 0.5).float() * 1.6 - 0.8
    return F.interpolate(low, size=(size, size), mode="nearest").reshape(n, -1)


def nearest_rms(z, x):
    """RMS distance of each row of z to its nearest training image."""
    return torch.cdist(z, x).min(1).values / z.shape[1] ** 0.5


def train_tiny(net, x, steps, lr=2e-3):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.mse_loss(net(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return F.mse_loss(net(x), x).item()


@torch.no_grad()
def chain(net, z, steps=30):
    for _ in range(steps):
        z = net(z)
    return z


# Settings measured on the 8 block images (8x8): all learn them in a few hundred full-batch Adam steps
LEARN = [("mlp", dict(depth=3, width=64), 300), ("cnn", dict(depth=3, width=32), 600),
         ("unet", dict(depth=2, width=8), 500), ("transformer", dict(depth=2, width=32), 300),
         ("transformer", dict(depth=2, width=32, patch=8), 300)]


@pytest.mark.parametrize("arch,kw,steps", LEARN, ids=lambda c: str(c))
def test_learns_and_training_images_are_attractors(arch, kw, steps):
    """Fit f(x) ~= x, then start chains at the training images plus noise (RMS ~0.15): 30 steps of
    z <- f(z) bring them back, far closer than they started."""
    x = block_images()
    net = build_net(arch, image_shape=(1, 8, 8), out_act="tanh", seed=0, **kw)
    loss = train_tiny(net, x, steps)
    assert loss < 1e-3, loss
    g = torch.Generator().manual_seed(1)
    z0 = (x.repeat(4, 1) + 0.15 * torch.randn(32, 64, generator=g)).clamp(-1, 1)
    d0, d30 = nearest_rms(z0, x).mean(), nearest_rms(chain(net, z0), x).mean()
    assert d30 < 0.5 * d0, (float(d0), float(d30))


@pytest.mark.parametrize("arch,kw", [("mlp", dict(depth=3, width=64)),
                                     ("transformer", dict(depth=2, width=32, patch=8))],
                         ids=["mlp", "vit1token"])
def test_global_nets_carry_uniform_noise_onto_training_images(arch, kw):
    """The kaleidoscope proper: chains from U(-1, 1) land (near) training images. Holds for nets that
    mix the whole image in every layer (MLP; a ViT whose single patch is the whole image). The
    local/weight-shared nets (cnn, unet, ViT with 4x4 patches) keep the training images as
    attractors (test above) but on this tiny set their basins do not reach uniform noise."""
    x = block_images()
    net = build_net(arch, image_shape=(1, 8, 8), out_act="tanh", seed=0, **kw)
    train_tiny(net, x, 300)
    z0 = torch.rand(64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    d0, d30 = nearest_rms(z0, x).mean(), nearest_rms(chain(net, z0), x).mean()
    assert d30 < 0.5 * d0, (float(d0), float(d30))
