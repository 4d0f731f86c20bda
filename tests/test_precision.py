"""precision.py and the ``precision`` keyword of fit / kaleidoscope (issue #15, speed)."""

import math

import pytest
import torch

from kals_utils import KalsError, ModelConfig, build_model, fit, kaleidoscope
from kals_utils import precision as P
from kals_utils.train import make_adam


def test_resolve_explicit_and_unknown():
    assert P.PRECISIONS == ("fp32", "bf16", "auto")
    assert P.resolve_precision("fp32", device="cpu", n_weights=10) == "fp32"
    assert P.resolve_precision("bf16", device="cpu", n_weights=10) == "bf16"  # every CPU can (maybe slowly)
    with pytest.raises(KalsError, match="fp32, bf16, auto"):
        P.resolve_precision("fp16", device="cpu", n_weights=10)


def test_resolve_auto_needs_native_bf16_and_a_big_net(monkeypatch):
    big = P.AUTO_BF16_MIN_WEIGHTS
    monkeypatch.setattr(P, "bf16_native", lambda device: True)
    assert P.resolve_precision("auto", device="cpu", n_weights=big) == "bf16"
    assert P.resolve_precision("auto", device="cpu", n_weights=big - 1) == "fp32"
    monkeypatch.setattr(P, "bf16_native", lambda device: False)
    assert P.resolve_precision("auto", device="cpu", n_weights=10 * big) == "fp32"


def test_explicit_bf16_on_a_device_without_it_is_an_error(monkeypatch):
    monkeypatch.setattr(P, "bf16_supported", lambda device: False)
    with pytest.raises(KalsError, match="bf16"):
        P.resolve_precision("bf16", device="cpu", n_weights=10)


def test_bf16_native_reads_cpu_flags(monkeypatch):
    monkeypatch.setattr(P, "_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert P.bf16_native("cpu") is True
    monkeypatch.setattr(P, "_cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert P.bf16_native("cpu") is True
    monkeypatch.setattr(P, "_cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert P.bf16_native("cpu") is False
    assert P.bf16_native(torch.device("mps")) is False  # documented: auto keeps fp32 on Apple GPUs


def test_autocast_context():
    lin = torch.nn.Linear(4, 4)
    x = torch.rand(3, 4)
    with P.autocast("fp32", "cpu"):
        assert lin(x).dtype == torch.float32
    with P.autocast("bf16", "cpu"):
        assert lin(x).dtype == torch.bfloat16
    with pytest.raises(KalsError):
        P.autocast("auto", "cpu")


def _reference_fit(model, x, epochs, lr, batch_size, seed):
    """Today's fit (before the precision keyword), reduced to its arithmetic: the losses it records."""
    opt = make_adam(model, lr)
    n = len(x)
    bs = n if batch_size is None else min(batch_size, n)
    gen = torch.Generator()
    losses = []
    for epoch in range(epochs):
        gen.manual_seed(seed * 1_000_003 + epoch)
        if bs >= n:
            loss = ((model(x) - x) ** 2).mean()
            losses.append(float(loss.detach()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, bs):
                xb = x[perm[i:i + bs]]
                loss = ((model(xb) - xb) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                losses.append(float(((model(x) - x) ** 2).sum()) / x.numel())  # = train.full_loss
    return losses, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("batch_size", [None, 16])
def test_fp32_fit_is_bit_exact_with_todays_arithmetic(batch_size):
    x = torch.rand(40, 3, generator=torch.Generator().manual_seed(1))
    cfg = ModelConfig(3, 4, 24, "sigmoid")
    ref_losses, ref_weights = _reference_fit(build_model(cfg, seed=2), x, 30, 1e-3, batch_size, 5)
    for prec in ("fp32", "auto"):  # auto on a tiny net is fp32
        m = build_model(cfg, seed=2)
        r = fit(m, x, epochs=30, lr=1e-3, batch_size=batch_size, seed=5, progress=False, precision=prec)
        assert r.losses == ref_losses
        last = r.train_state["last_state_dict"]
        assert all(torch.equal(a, b) for a, b in zip(last.values(), ref_weights))


def _linear_dtypes(model) -> set:
    """Record the dtype of every Linear layer's output while ``model`` runs: the precision actually used."""
    seen = set()
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    return seen


def test_bf16_fit_keeps_fp32_weights_and_learns():
    x = torch.rand(64, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cfg = ModelConfig(8, 4, 64, "tanh")
    m32 = build_model(cfg, seed=0)
    dtypes32 = _linear_dtypes(m32)
    r32 = fit(m32, x, epochs=300, lr=1e-3, progress=False)
    m = build_model(cfg, seed=0)
    dtypes16 = _linear_dtypes(m)
    r16 = fit(m, x, epochs=300, lr=1e-3, progress=False, precision="bf16")
    assert dtypes32 == {torch.float32} and torch.bfloat16 in dtypes16  # bf16 really ran ...
    assert r16.losses[0] != r32.losses[0] and r16.losses != r32.losses  # ... and changed the arithmetic
    assert all(p.dtype == torch.float32 for p in m.parameters())
    state = r16.train_state["optimizer"]["state"]
    assert all(t.dtype == torch.float32 for s in state.values() for t in s.values())
    assert all(math.isfinite(v) for v in r16.losses)
    assert r16.losses[-1] < 0.1 * r16.losses[0]
    assert r16.best_loss < 3 * r32.best_loss + 1e-4  # bf16 rounding: close, not equal


def test_bf16_sampling_keeps_an_fp32_state_and_uint8_frames():
    x = torch.rand(16, 6, generator=torch.Generator().manual_seed(0))
    m = build_model(ModelConfig(6, 4, 64, "sigmoid"), seed=0)
    fit(m, x, epochs=400, lr=1e-3, progress=False)
    kw = dict(chains=64, steps=30, eps=0.01, seed=3, frame_dtype=torch.uint8)
    dtypes = _linear_dtypes(m)
    s32 = kaleidoscope(m, **kw)
    assert dtypes == {torch.float32}
    s16 = kaleidoscope(m, precision="bf16", **kw)
    assert dtypes == {torch.float32, torch.bfloat16}  # bf16 really ran
    assert not torch.equal(s16.final, s32.final)     # the negative control: bf16 is not fp32 bit for bit
    assert s16.final.dtype == torch.float32 and s16.frames.dtype == torch.uint8
    assert torch.equal(s16.start, s32.start) and s16.frames.shape == s32.frames.shape
    assert 0.0 <= float(s16.final.min()) and float(s16.final.max()) <= 1.0
    # same chains, same attractors: bf16 rounds f's output to ~3 significant digits
    assert float((s16.final - s32.final).abs().mean()) < 0.02
    auto = kaleidoscope(m, precision="auto", **kw)  # tiny net: fp32, bit for bit
    assert torch.equal(auto.final, s32.final) and torch.equal(auto.frames, s32.frames)


def test_bad_precision_is_a_kals_error():
    m = build_model(ModelConfig(2, 3, 8), seed=0)
    with pytest.raises(KalsError, match="precision"):
        fit(m, torch.rand(4, 2), epochs=1, progress=False, precision="half")
    with pytest.raises(KalsError, match="precision"):
        kaleidoscope(m, chains=2, steps=1, precision="half")
