"""ensemble.fit_many: N nets trained together equal N one-by-one ``fit`` calls (issue #15, speed)."""

import pytest
import torch

from kals_utils import KalsError, ModelConfig, build_model, fit, points
from kals_utils.studies.ensemble.plan import _Net, plan_groups
from kals_utils.studies import fit_many


def _one_by_one(cfgs, data, epochs, seeds, batch_sizes=None, lr=1e-3):
    batch_sizes = batch_sizes or [None] * len(cfgs)
    return [fit(build_model(c, seed=s), x, epochs=epochs, lr=lr, batch_size=b, seed=s, progress=False)
            for c, x, s, b in zip(cfgs, data, seeds, batch_sizes)]


def _max_weight_diff(a, b):
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_seed_sweep_is_bit_exact_with_fit():
    """Same data, different seeds and depths (a depth/seed sweep), full batch, exact=True."""
    x = points(dim=2).x
    cfgs = [ModelConfig(2, L, 50, "sigmoid") for L in (3, 7) for _ in range(3)]
    seeds = [0, 1, 2, 0, 1, 2]
    many = fit_many(cfgs, [x] * 6, epochs=200, lr=1e-3, seeds=seeds, progress=False, exact=True)
    ref = _one_by_one(cfgs, [x] * 6, 200, seeds)
    for a, b in zip(many, ref):
        assert a.losses == b.losses
        assert (a.best_loss, a.best_epoch, a.epochs_done, a.status, a.learnt) == \
               (b.best_loss, b.best_epoch, b.epochs_done, b.status, b.learnt)
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
        assert isinstance(a.model, torch.nn.Sequential)


def test_minibatch_is_bit_exact_with_fit():
    """Mini-batches (batch 16 of n=40 and 48: a short last batch), exact=True."""
    g = torch.Generator().manual_seed(0)
    data = [torch.rand(40, 3, generator=g), torch.rand(48, 3, generator=g), torch.rand(48, 3, generator=g)]
    cfgs = [ModelConfig(3, 4, 20, "sigmoid")] * 3
    seeds = [1, 2, 3]
    many = fit_many(cfgs, data, epochs=30, lr=1e-3, batch_sizes=16, seeds=seeds, progress=False, exact=True)
    ref = _one_by_one(cfgs, data, 30, seeds, [16] * 3)
    for a, b in zip(many, ref):
        assert a.losses == b.losses and a.best_epoch == b.best_epoch
        assert _max_weight_diff(a, b) == 0.0


def test_padded_groups_match_fit_within_rounding():
    """Default (fast) mode: nets of different D, L and n padded into shared groups.

    Not bit-exact, for two reasons: (1) the fused Adam and sigmoid kernels round an element in
    the scalar tail of a tensor differently from one in its vector body, and a stacked tensor puts
    each net's elements elsewhere; (2) padded products (zero rows / columns) sum in another order.
    Both are last-bit differences per step; Adam's normalised steps can grow them where a gradient
    component hovers around 0, so the check is on well-conditioned nets and short runs.
    """
    g = torch.Generator().manual_seed(0)
    cfgs, data, seeds = [], [], []
    for dim, n in ((2, 4), (2, 8), (4, 4), (4, 8), (2, 16)):
        cfgs.append(ModelConfig(dim, 7, 50, "sigmoid"))
        data.append(torch.rand(n, dim, generator=g))
        seeds.append(n + dim)
    cfgs.append(ModelConfig(2, 3, 50, "sigmoid"))  # depth-padded into the L=7 group
    data.append(torch.rand(8, 2, generator=g))
    seeds.append(9)
    nets = [_Net(i, c, x, len(x), 100, 1e-3, s, None) for i, (c, x, s) in enumerate(zip(cfgs, data, seeds))]
    assert len(plan_groups(nets)) < len(cfgs)  # really padded together
    many = fit_many(cfgs, data, epochs=100, lr=1e-3, seeds=seeds, progress=False)
    ref = _one_by_one(cfgs, data, 100, seeds)
    for a, b in zip(many, ref):
        assert _max_weight_diff(a, b) < 1e-5
        assert a.best_epoch == b.best_epoch and a.status == b.status
        assert a.best_loss == pytest.approx(b.best_loss, rel=1e-3, abs=1e-9)


def test_train_state_resumes_in_fit():
    x = points(dim=2).x
    cfg = ModelConfig(2, 5, 50, "sigmoid")
    first = fit_many([cfg, cfg], [x, x], epochs=50, lr=1e-3, seeds=[0, 1], progress=False, exact=True)
    for r, s in zip(first, (0, 1)):
        m = build_model(cfg, seed=99)
        cont = fit(m, x, epochs=50, lr=1e-3, seed=s, progress=False, resume=r.train_state)
        straight = fit(build_model(cfg, seed=s), x, epochs=100, lr=1e-3, seed=s, progress=False)
        assert cont.losses == straight.losses
        assert all(torch.equal(p, q) for p, q in zip(m.parameters(), straight.model.parameters()))


def test_models_are_trained_in_place_and_per_net_settings():
    x = points(dim=1).x
    models = [build_model(ModelConfig(1, 3, 8), seed=s) for s in (0, 1)]
    res = fit_many(models, [x, x[:1]], epochs=[20, 30], lr=[1e-3, 1e-2], seeds=[0, 0], progress=False)
    assert res[0].model is models[0] and res[1].model is models[1]
    assert [len(r.losses) for r in res] == [20, 30]
    assert res[1].n_train == 1


def test_bad_arguments():
    x = torch.rand(4, 2)
    cfg = ModelConfig(2, 3, 8)
    with pytest.raises(KalsError, match="data sets"):
        fit_many([cfg, cfg], [x], epochs=1, lr=1e-3, seeds=0, progress=False)
    with pytest.raises(KalsError, match="expects"):
        fit_many([cfg], [torch.rand(4, 3)], epochs=1, lr=1e-3, seeds=0, progress=False)
    with pytest.raises(KalsError, match="seeds"):
        fit_many([cfg, cfg], [x, x], epochs=1, lr=1e-3, seeds=[0], progress=False)
    with pytest.raises(KalsError, match="spans"):
        fit_many([cfg], [x * 3], epochs=1, lr=1e-3, seeds=0, progress=False)
    assert fit_many([], [], epochs=1, lr=1e-3, seeds=0) == []


@pytest.mark.parametrize("improved", [[2], [0, 3], [0, 1, 3, 4], [1, 2, 3, 4], [0, 1, 2, 3, 4]])
def test_keep_copies_exactly_the_improved_nets(improved):
    """The best-weights copy of some nets of a depth-padded group (both copy strategies), NaNs too."""
    from kals_utils.studies.ensemble.stack import _Stack
    cfgs = [ModelConfig(2 + i % 2, 3 + i, 20, "sigmoid") for i in range(5)]
    nets = [_Net(i, c, torch.rand(4, c.dim), 4, 1, 1e-3, i, build_model(c, seed=i)) for i, c in enumerate(cfgs)]
    st = _Stack(nets, 3, 7, 20, torch.device("cpu"))
    best = st.flat.clone()
    st.flat.copy_(torch.randn(st.total))
    st.flat[:5] = float("nan")  # a diverged net's weights must not leak into the others' best
    before = best.clone()
    st.keep(best, improved)
    for i, net in enumerate(nets):
        got = st.net_state(best, i, net.model)
        want = st.net_state(st.flat if i in improved else before, i, net.model)
        assert all(torch.equal(a, b) or (a.isnan() == b.isnan()).all() and torch.equal(a.nan_to_num(), b.nan_to_num())
                   for a, b in zip(got, want))


def test_minibatch_fast_mode_matches_fit_within_rounding():
    """Default (feature-major, padded) mode with mini-batches: n=40 and 48 in batches of 16."""
    g = torch.Generator().manual_seed(1)
    data = [torch.rand(40, 3, generator=g), torch.rand(48, 3, generator=g)]
    cfgs = [ModelConfig(3, 4, 20, "sigmoid")] * 2
    many = fit_many(cfgs, data, epochs=20, lr=1e-3, batch_sizes=16, seeds=[1, 2], progress=False)
    ref = _one_by_one(cfgs, data, 20, [1, 2], [16, 16])
    for a, b in zip(many, ref):
        assert _max_weight_diff(a, b) < 1e-5 and a.best_epoch == b.best_epoch
        assert a.losses == pytest.approx(b.losses, rel=1e-4)
