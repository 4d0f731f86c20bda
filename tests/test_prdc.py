"""Known answers for the sample metrics in kals_utils.measures.prdc (precision/recall/density/coverage,
memorisation, Fréchet distance, reference sets, ceilings)."""

import pytest
import torch

from kals_utils.errors import KalsError
from kals_utils.measures.prdc import (ceilings, frechet_distance, knn_radii, memorization, memorized_fraction, prdc,
                             real_reference, sample_metrics)
from reference import naive_prdc   # tests/reference.py: the metrics straight from their definitions


def gauss(n, d=4, seed=0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) + shift


KEYS = ("precision", "recall", "density", "coverage")


# ---------------------------------------------------------------- PRDC
def test_identical_sets():
    x = gauss(200)
    out = prdc(x, x.clone(), k=5)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    # each real ball holds its own centre and its k-1 nearer neighbours: exactly k per ball
    assert out["density"] == pytest.approx(1.0, abs=1e-12)
    assert (out["k"], out["n_real"], out["n_fake"]) == (5, 200, 200)
    perm = prdc(x, x[torch.randperm(200, generator=torch.Generator().manual_seed(0))], k=5, chunk=333)
    assert perm == out


def test_disjoint_far_apart_sets():
    out = prdc(gauss(100, seed=1), gauss(120, seed=2, shift=1000.0), k=3)
    assert all(out[key] == 0.0 for key in KEYS)


@pytest.mark.parametrize("n_real,n_fake,k,dim", [(50, 70, 1, 2), (80, 40, 5, 10), (33, 33, 7, 784)])
def test_matches_definition(n_real, n_fake, k, dim):
    real, fake = gauss(n_real, dim, seed=3), gauss(n_fake, dim, seed=4, shift=0.3)
    got, want = prdc(real, fake, k=k), naive_prdc(real, fake, k)
    for key in KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key


def test_chunking_does_not_change_results():
    real, fake = gauss(150, 6, seed=5), gauss(130, 6, seed=6, shift=0.5)
    full = prdc(real, fake, k=4)
    for chunk in (1, 7, 150 * 13):
        small = prdc(real, fake, k=4, chunk=chunk)
        assert all(small[key] == full[key] for key in KEYS)


def test_shifted_cluster_loses_precision_and_coverage_monotonically():
    real, base = gauss(300, 2, seed=7), gauss(300, 2, seed=8)
    shifts = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    runs = [prdc(real, base + torch.tensor([s, 0.0]), k=5) for s in shifts]
    for key in ("precision", "coverage", "density", "recall"):
        vals = [r[key] for r in runs]
        assert all(a >= b for a, b in zip(vals, vals[1:])), (key, vals)
        assert vals[0] > 0.8 if key != "density" else vals[0] > 0.7
        assert vals[-1] == 0.0
    assert runs[2]["precision"] < runs[0]["precision"] and runs[2]["coverage"] < runs[0]["coverage"]


def test_k_validation():
    real, fake = gauss(10), gauss(6)
    for bad in (0, -1):
        with pytest.raises(KalsError, match="k must be >= 1"):
            prdc(real, fake, k=bad)
    with pytest.raises(KalsError, match="k must be an integer"):
        prdc(real, fake, k=2.5)
    with pytest.raises(KalsError, match="lower k"):
        prdc(real, fake, k=6)           # k == number of fakes
    with pytest.raises(KalsError, match="lower k"):
        prdc(gauss(5), gauss(50), k=5)  # k == number of reals
    assert prdc(real, fake, k=5)["k"] == 5
    with pytest.raises(KalsError, match="lower k"):
        knn_radii(gauss(3), 3)


def test_input_validation():
    with pytest.raises(KalsError, match="same feature extractor"):
        prdc(gauss(10, 3), gauss(10, 4), k=2)
    bad = gauss(10)
    bad[3, 1] = float("nan")
    with pytest.raises(KalsError, match="NaN"):
        prdc(gauss(10), bad, k=2)
    with pytest.raises(KalsError, match="2D"):
        prdc(torch.zeros(4, 2, 2), torch.zeros(4, 4), k=1)


def test_knn_radii_excludes_self():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


# ---------------------------------------------------------------- memorisation
def test_copies_are_memorized():
    train = gauss(50, 16, seed=9)
    idx = torch.tensor([3, 3, 10, 49, 0])
    mem = memorization(train[idx], train)
    assert mem.fraction == 1.0 and mem.flags.all()
    assert mem.nearest.tolist() == idx.tolist() and mem.distinct == 4
    assert (mem.d1 == 0).all() and (mem.d2 > 0).all()
    assert memorized_fraction(train + 1e-4, train) == 1.0


def test_far_and_equidistant_samples_are_not_memorized():
    train = gauss(50, 16, seed=10)
    assert memorized_fraction(gauss(20, 16, seed=11, shift=100.0), train) == 0.0
    two = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    mid = torch.tensor([[1.0, 0.0], [1.0, 5.0], [1.0, -0.3]])
    assert memorized_fraction(mid, two) == 0.0


def test_memorized_ratio_threshold():
    two = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    # d1 / d2: 0.4/1.6 = 0.25 < 1/3 (copy); 0.6/1.4 = 0.43 (not); with ratio 0.5 both count
    s = torch.tensor([[0.4, 0.0], [0.6, 0.0]])
    assert memorization(s, two).flags.tolist() == [True, False]
    assert memorization(s, two, ratio=0.5).flags.tolist() == [True, True]
    with pytest.raises(KalsError, match="at least 2 training samples"):
        memorized_fraction(s, two[:1])
    with pytest.raises(KalsError, match="ratio"):
        memorized_fraction(s, two, ratio=0)


# ---------------------------------------------------------------- Fréchet distance
def test_frechet_identical_is_zero():
    x = gauss(300, 8, seed=12)
    assert frechet_distance(x, x.clone()) == pytest.approx(0.0, abs=1e-9)


def test_frechet_equal_covariance_shift_is_squared_mean_distance():
    x = gauss(300, 8, seed=13).double()
    delta = torch.linspace(-1, 2, 8, dtype=torch.float64)
    assert frechet_distance(x, x + delta) == pytest.approx(delta.double().pow(2).sum().item(), rel=1e-9)


def test_frechet_scaled_covariance_and_singular_covariance():
    x = gauss(400, 5, seed=14).double()
    cov = torch.cov(x.T)
    # b = 2a + c: Σb = 4Σa, (ΣaΣb)^½ = 2Σa -> FD = ||c + μa||² + tr(Σa)
    c = torch.tensor([1.0, 0, 0, 0, 2.0], dtype=torch.float64)
    want = (c + x.mean(0)).pow(2).sum() + cov.trace()
    assert frechet_distance(x, 2 * x + c) == pytest.approx(want.item(), rel=1e-8)
    few = gauss(10, 50, seed=15)  # 10 samples in 50 dimensions: rank-deficient covariances
    assert frechet_distance(few, few + 1.0) == pytest.approx(50.0, rel=1e-6)
    with pytest.raises(KalsError, match="at least 2 samples"):
        frechet_distance(few[:1], few)


# ---------------------------------------------------------------- reference set and ceilings
def test_real_reference_is_a_seeded_subset():
    train = torch.arange(100.0)[:, None].repeat(1, 3)
    state = torch.random.get_rng_state()
    a, idx = real_reference(train, 30, seed=1, return_indices=True)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert len(a) == 30 and len(torch.unique(idx)) == 30 and torch.equal(a, train[idx])
    assert (idx[1:] > idx[:-1]).all()
    assert torch.equal(real_reference(train, 30, seed=1), a)
    assert not torch.equal(real_reference(train, 30, seed=2), a)
    assert torch.equal(real_reference(train, 100, seed=1), train)
    assert torch.equal(real_reference(train, 500, seed=1), train)
    with pytest.raises(KalsError, match="n must be >= 1"):
        real_reference(train, 0)


def test_ceilings_real_vs_real():
    train, heldout = gauss(600, 3, seed=16), gauss(200, 3, seed=17)
    ceil = ceilings(train, heldout, k=5)
    assert set(ceil) >= set(KEYS) | {"frechet", "memorized", "k", "n_real", "n_fake"}
    assert ceil["n_real"] == ceil["n_fake"] == 200
    assert ceil["precision"] > 0.8 and ceil["recall"] > 0.8 and ceil["coverage"] > 0.8
    assert 0.7 < ceil["density"] < 1.3
    # new samples pass the 1/3 ratio test only by chance: rare in 3D, ~never in image dimensions
    assert ceil["memorized"] < 0.05 and ceil["frechet"] < 0.2
    # the features callable is applied to both sets; n limits the count
    doubled = ceilings(train, heldout, k=5, features=lambda x: 2 * x, n=100)
    assert doubled["n_real"] == doubled["n_fake"] == 100
    copies = sample_metrics(train[:200], real_reference(train, 200, seed=0), train=train)
    assert copies["memorized"] == 1.0
