"""Each metric against a hand-made case with a known answer, plus `evaluate` end to end."""
import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kals_utils import KalsError, ModelConfig, build_model, fit, kaleidoscope, points
from kals_utils.faces.cli import main
from kals_utils.measures.metrics import (burn_in, class_histogram, coverage, data_spread, nearest_neighbours,
                                         nearest_pairs, novelty)
from kals_utils.measures.attractors import (attractor_stability, jacobians, power_radius, residual_rms,
                                            spectral_norm, spectral_radius, spurious_fixed_points)
from kals_utils.measures.mixing import transition_counts
from kals_utils.measures.evaluate import evaluate_samples


def linear_tanh(W: torch.Tensor) -> nn.Sequential:
    """f(x) = tanh(W x): 0 is a fixed point and J_f(0) = W exactly."""
    m = nn.Sequential(nn.Linear(len(W), len(W), bias=False), nn.Tanh())
    with torch.no_grad():
        m[0].weight.copy_(W)
    return m


@pytest.fixture(scope="module")
def net1d():
    """The paper's 1D net ({0.2, 0.8}, L=7, H=10, sigmoid), 500 epochs at lr 5e-3 (fast)."""
    d = points(dim=1)
    m = build_model(ModelConfig(1, 7, 10, "sigmoid"), seed=0)
    r = fit(m, d.x, epochs=500, lr=5e-3, seed=0, progress=False)
    assert r.learnt == 2
    return m, d


# ---------------------------------------------------------------- distances
def test_nearest_neighbours_coverage_novelty_by_hand():
    train = torch.tensor([[0.2, 0.2], [0.2, 0.8], [0.8, 0.2], [0.8, 0.8]])
    samples = torch.tensor([[0.2, 0.2], [0.2, 0.2], [0.21, 0.79], [0.45, 0.4], [0.8, 0.2]])
    dist, idx = nearest_neighbours(samples, train, chunk=2)  # chunked
    assert idx.tolist() == [0, 0, 1, 0, 2]
    # RMS per coordinate: sqrt((0.01² + 0.01²) / 2) = 0.01; sqrt((0.25² + 0.2²) / 2)
    assert dist[0] == 0 and dist[1] == 0 and dist[4] == 0
    assert dist[2].item() == pytest.approx(0.01, abs=1e-6)
    assert dist[3].item() == pytest.approx(math.sqrt((0.25 ** 2 + 0.2 ** 2) / 2), abs=1e-6)
    assert coverage(idx, len(train)) == 3 / 4               # points 0, 1, 2 of min(5 samples, 4)
    conv = dist < 0.05
    assert conv.tolist() == [True, True, True, False, True]
    assert coverage(idx, len(train), conv) == 3 / 4
    assert coverage(idx[:2], len(train)) == 1 / 2            # 1 distinct of min(2 samples, 4)
    far = torch.tensor([0.3, 0.3, 0.3, 0.6])
    nov = novelty(far, train, tol=0.05)
    assert nov.spread == pytest.approx(math.sqrt(0.36 / 2), abs=1e-6)
    assert nov.median_ratio == pytest.approx(0.3 / nov.spread) and nov.copies == 0
    assert novelty(dist, train, tol=0.05).copies == pytest.approx(4 / 5)


def test_data_spread_is_rms_per_coordinate():
    # neighbours 0.6 apart in one of two coordinates: RMS = sqrt(0.36 / 2)
    train = torch.tensor([[0.2, 0.2], [0.2, 0.8], [0.8, 0.2], [0.8, 0.8]])
    assert data_spread(train) == pytest.approx(math.sqrt(0.36 / 2), abs=1e-6)
    assert math.isnan(data_spread(train[:1]))


def test_exact_copies_read_zero_in_high_dimension():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, 784, generator=g) * 2 - 1
    samples = torch.cat([train[[3, 7, 7]], train[[10]] + 0.1])
    dist, idx = nearest_neighbours(samples, train)
    assert idx.tolist() == [3, 7, 7, 10]
    assert dist[:3].tolist() == [0.0, 0.0, 0.0]
    assert dist[3].item() == pytest.approx(0.1, abs=1e-5)
    pairs = nearest_pairs(samples, train, idx, k=2)
    assert pairs.shape == (4, 784) and torch.equal(pairs[1], train[3]) and torch.equal(pairs[0], samples[0])


def test_class_histogram_total_variation():
    labels = torch.tensor([0, 0, 1, 1])        # training set: 50% / 50%
    idx = torch.tensor([0, 1, 2, 0, 0, 1, 3, 0])  # nearest neighbours: 6 of class 0, 2 of class 1
    cb = class_histogram(idx, labels)
    assert cb.sample == [0.75, 0.25] and cb.train == [0.5, 0.5]
    assert cb.tv == pytest.approx(0.25) and cb.top == 0 and cb.top_ratio == pytest.approx(1.5)


# ---------------------------------------------------------------- burn-in
def test_burn_in_of_a_geometric_walk():
    z = torch.tensor([0.5 ** t for t in range(12)])[:, None, None].expand(12, 3, 2)  # step t->t+1 moves 0.5^(t+1)
    b = burn_in(z, tol=0.01)
    assert b.step_size[0] == pytest.approx(0.5) and b.step_size[6] == pytest.approx(0.5 ** 7)
    assert b.burn_in == 6  # 0.5^6 = 0.0156 >= 0.01, 0.5^7 < 0.01
    b = burn_in(z[::2], steps=list(range(0, 12, 2)), tol=0.01)  # per step: (0.5^k - 0.5^(k+2)) / 2
    assert b.step_size[2] == pytest.approx(0.375 * 0.5 ** 4) and b.burn_in == 6
    assert burn_in(z, tol=1e-9).burn_in is None


def test_burn_in_from_a_real_walk():
    res = kaleidoscope(build_model(ModelConfig(3, 2, 8, "tanh"), seed=0), chains=20, steps=30, seed=0)
    b = burn_in(res.frames, res.steps)
    assert b.burn_in is not None and b.burn_in < 30 and b.step_size[-1] < b.tol


# ---------------------------------------------------------------- Jacobians
def test_exact_jacobian_and_radius_of_known_linear_maps():
    c, s = math.cos(1.0), math.sin(1.0)
    rot = 0.9 * torch.tensor([[c, -s], [s, c]])       # eigenvalues 0.9 e^{±i}: a complex pair
    jordan = torch.tensor([[0.5, 3.0], [0.0, 0.5]])    # radius 0.5 but norm ~3.08 (non-normal)
    x0 = torch.zeros(1, 2)
    for W, rho, sigma in ((rot, 0.9, 0.9), (jordan, 0.5, float(torch.linalg.matrix_norm(jordan, 2)))):
        m = linear_tanh(W)
        assert torch.allclose(jacobians(m, x0)[0], W, atol=1e-6)
        r, method = spectral_radius(m, x0)
        assert method == "exact" and r.item() == pytest.approx(rho, abs=1e-5)
        assert power_radius(m, x0, iters=200).item() == pytest.approx(rho, rel=0.03)
        assert spectral_norm(m, x0).item() == pytest.approx(sigma, rel=1e-3)
    # away from 0, J = diag(1 - tanh²(Wx)) W: check against finite differences
    m = linear_tanh(rot)
    x = torch.tensor([[0.3, -0.4]])
    J = jacobians(m, x)[0]
    eps = 1e-3
    fd = torch.stack([(m(x + eps * e) - m(x - eps * e))[0] / (2 * eps) for e in torch.eye(2)], dim=1)
    assert torch.allclose(J, fd, atol=1e-3)


def test_power_iteration_matches_exact_eigenvalues_in_high_dimension():
    g = torch.Generator().manual_seed(0)
    D = 100
    S = torch.randn(D, D, generator=g) / math.sqrt(D) + torch.eye(D)
    lam = torch.linspace(-0.6, 0.6, D)
    lam[0] = 1.4                                            # one dominant real eigenvalue
    W = S @ torch.diag(lam) @ torch.linalg.inv(S)
    m = linear_tanh(W)
    x0 = torch.zeros(1, D)
    exact, method = spectral_radius(m, x0, method="exact")
    assert method == "exact" and exact.item() == pytest.approx(1.4, abs=1e-3)
    est, method = spectral_radius(m, x0)                    # D > 64: power iteration
    assert method == "power" and est.item() == pytest.approx(1.4, rel=0.02)
    assert spectral_norm(m, x0).item() >= est.item() * 0.999


def test_attractors_and_spurious_fixed_points_by_hand():
    m = linear_tanh(0.5 * torch.eye(2))                    # one fixed point, 0, stable (radius 0.5)
    train = torch.tensor([[0.0, 0.0], [0.5, 0.5]])          # the second one is not a fixed point
    a = attractor_stability(m, train, with_norm=True)
    assert a.radius.tolist() == pytest.approx([0.5, 0.5 * (1 - math.tanh(0.25) ** 2)], abs=1e-5)
    assert a.stable.tolist() == [True, False] and a.fraction == 0.5 and a.method == "exact"
    assert a.norm[0].item() == pytest.approx(0.5, abs=1e-4)
    assert residual_rms(m, train)[0] == 0
    # the only fixed point away from the data: all chains end there
    m2 = linear_tanh(0.5 * torch.eye(2))
    far = torch.tensor([[0.8, 0.8], [0.8, -0.8]])
    start = torch.tensor([[0.9, 0.1], [-0.5, 0.3], [0.2, -0.7]])
    z = start
    with torch.no_grad():
        for _ in range(60):
            z = m2(z)
    sp = spurious_fixed_points(m2, z, far)
    assert sp.fraction == 1.0 and sp.counts == [3] and sp.centres.abs().max() < 1e-6
    assert spurious_fixed_points(m2, z, torch.zeros(1, 2)).fraction == 0.0  # at a training point: not spurious


def test_trained_1d_net_has_attractors_at_the_training_points(net1d):
    m, d = net1d
    a = attractor_stability(m, d.x)
    # D=1: the spectral radius is |f'(x)|; check it against finite differences
    m64, x64, h = copy.deepcopy(m).double(), d.x.double(), 1e-7
    with torch.no_grad():
        fd = ((m64(x64 + h) - m64(x64 - h)) / (2 * h)).abs()[:, 0]
    assert torch.allclose(a.radius.double(), fd, atol=1e-4)
    assert a.fraction == 1.0 and (a.radius < 1).all() and (a.residual < 1e-3).all()
    res = kaleidoscope(m, chains=300, steps=60, seed=0)
    ev = evaluate_samples(res.final, d.x, model=m, frames=res.frames, steps=res.steps)
    assert ev.converged > 0.95 and ev.coverage == 1.0 and ev.attractors.fraction == 1.0
    assert ev.spurious.fraction < 0.05 and ev.burn.burn_in is not None and ev.burn.burn_in < 30
    curve = ev.convergence  # fraction within tol per step: none at the start (uniform noise), then rising
    assert len(curve) == 61 and curve[0] < 0.3 and curve[-1] == ev.converged and curve[10] >= curve[1]
    assert ev.summary()["converged_at_10"] == curve[10]


# ---------------------------------------------------------------- mixing
def test_transition_counts_by_hand():
    train = torch.tensor([[0.0], [1.0]])
    seqs = [[0, 0, 1, 1, 0], [0, 0, 0.5, 1, 1], [1, 1, 1, 1, 1]]  # columns are chains
    frames = torch.tensor(seqs, dtype=torch.float32).T[:, :, None]  # (F=5, R=3, D=1)
    mix = transition_counts(frames, train)
    assert mix.counts.tolist() == [[0, 2], [1, 0]]
    assert mix.hops.tolist() == [2, 1, 0] and mix.visited.tolist() == [2, 2, 1]
    assert mix.unassigned == pytest.approx(1 / 15)
    assert mix.occupancy.tolist() == pytest.approx([5 / 14, 9 / 14])
    assert mix.hop_rate == pytest.approx(3 / (3 * 4))
    late = transition_counts(frames, train, burn=3)  # steps 3, 4 only: chain 0 hops 1 -> 0
    assert late.counts.tolist() == [[0, 0], [1, 0]]


def test_mixing_sweep_more_noise_more_hops(net1d):
    from kals_utils.studies import mixing_sweep
    from kals_utils.model import RunConfig, config_of
    from kals_utils.pipeline import Run
    m, d = net1d
    # burn=30: past the burn-in (a slow chain drifts from near 0.8 to 0.2 until step ~20 without jitter)
    rows = mixing_sweep(Run(model=m, config=RunConfig(model=config_of(m)), result=None, data=d), eps_values=(0.0, 0.5), chains=40,
                        steps=80, burn=30)
    assert rows[0]["hops_per_chain"] == 0 and rows[0]["moved"] == 0
    assert rows[1]["hops_per_chain"] > 0 and rows[1]["visited"] > 1
    assert np.array(rows[1]["counts"]).sum() == pytest.approx(rows[1]["hops_per_chain"] * 40)


def test_walk_moves_tells_a_cut_from_a_slide():
    from kals_utils.sample import SampleResult
    from kals_utils.studies import walk_moves
    train = torch.tensor([[0.0], [1.0]])  # spread 1
    cut = [0, 0, 0, 0, 1, 1, 1, 1, 1]          # one hop in one step
    slide = [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1]  # the same hop in 8 steps

    def walk(seq, sampler):
        frames = torch.tensor(seq, dtype=torch.float32)[:, None, None]  # (F, R=1, D=1)
        return SampleResult(start=frames[0], final=frames[-1], frames=frames, steps=list(range(len(seq))),
                            value_range=(0.0, 1.0), sampler=sampler, scale=0.2)
    rows = walk_moves({"cut": walk(cut, "dae"), "slide": walk(slide, "walkjump")}, train, burn=0)
    assert [(r["walk"], r["sampler"], r["scale"], r["hops_per_chain"]) for r in rows] == [
        ("cut", "dae", 0.2, 1.0), ("slide", "walkjump", 0.2, 1.0)]
    assert rows[0]["step_max"] == pytest.approx(1.0) and rows[0]["step_median"] == 0
    assert rows[1]["step_max"] == pytest.approx(0.125) and rows[1]["continuity"] == pytest.approx(0.125)
    assert rows[1]["step_median"] == pytest.approx(0.125)


# ---------------------------------------------------------------- sweeps and the command line
def test_depth_sweep_rows_and_summary():
    from kals_utils.measures.tables import format_rows
    from kals_utils.studies import depth_sweep
    from kals_utils.measures.tables import summarise
    rows = depth_sweep(points(dim=1), depths=(2, 4), width=8, seeds=(0, 1), epochs=300, lr=1e-2, chains=40,
                       steps=30, device="cpu")
    assert [(r["depth"], r["seed"]) for r in rows] == [(2, 0), (2, 1), (4, 0), (4, 1)]
    for r in rows:
        assert 0 <= r["converged"] <= 1 and 0 <= r["coverage"] <= 1 and 0 <= r["attractor_fraction"] <= 1
    s = summarise(rows)
    assert [(r["depth"], r["runs"]) for r in s] == [(2, 2), (4, 2)]
    conv = [r["converged"] for r in rows[:2]]
    assert s[0]["converged"] == pytest.approx(sum(conv) / 2)
    assert s[0]["converged_sd"] == pytest.approx(abs(conv[0] - conv[1]) / math.sqrt(2))
    assert "| depth |" in format_rows(s, ["depth", "converged", "converged_sd"])


def test_plot_depth_sweep():
    from kals_utils.faces.plots import plot_depth_sweep
    rows = [{"data": "points1d", "depth": L, "seed": s, "converged": 0.5, "coverage": 1.0, "median_nn": 0.01,
             "attractor_fraction": 1.0} for L in (2, 3) for s in (0, 1)]
    fig = plot_depth_sweep(rows)
    assert len(fig.axes) == 4 and fig.axes[0].get_xlabel() == "depth L"


def test_evaluate_cli_on_points(net1d, tmp_path, capsys):
    from kals_utils import ModelConfig, RunConfig
    from kals_utils.checkpoint import save_checkpoint
    m, d = net1d
    ck, npz = tmp_path / "p1.pt", tmp_path / "s.npz"
    save_checkpoint(ck, m, RunConfig(model=ModelConfig(dim=1, depth=7, width=10), dataset="points1d"), train_data=d.x)
    assert main(["sample", "--checkpoint", str(ck), "--chains", "100", "--steps", "40", "--save-samples", str(npz)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] > 0.9 and out["coverage"] == 1 and out["attractor_fraction"] == 1
    assert out["jacobian"] == "exact" and out["tol"] == 0.05 and out["burn_in"] < 40
    assert len(out["burn_curve"]["step_size"]) == 40
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--tol", "0.2"]) == 0
    table = capsys.readouterr().out
    assert "tol=0.2" in table and "attractor fraction" in table and "burn-in step" in table
    assert main(["evaluate", "--samples", str(npz)]) == 0   # distances only, no model
    assert "attractor" not in capsys.readouterr().out


def test_evaluate_cli_on_images_uses_power_iteration(tmp_path, tiny_folder, capsys):
    ck, npz = tmp_path / "f.pt", tmp_path / "s.npz"
    assert main(["train", "--data", f"folder:{tiny_folder}", "--depth", "3", "--width", "32", "--epochs", "30",
                 "--batch-size", "4", "--out", str(ck), "--no-progress"]) == 0
    assert main(["sample", "--checkpoint", str(ck), "--chains", "10", "--steps", "5", "--eps", "0.01",
                 "--save-samples", str(npz)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dim"] == 192 and out["jacobian"] == "power" and out["value_range"] == [-1.0, 1.0]
    assert out["norm_median"] >= out["radius_median"] * 0.99
    assert out["samples"] == 10
    # known answers: converged and coverage recomputed from the samples file by their definitions
    sys.path.insert(0, str(Path(__file__).parent))
    from reference import naive_nearest
    from kals_utils.measures.evaluate import load_samples
    z = load_samples(npz)
    dist, idx = naive_nearest(z["samples"], z["train"])
    assert out["converged"] == pytest.approx(float((dist < out["tol"]).double().mean()))
    assert out["coverage"] == pytest.approx(len(set(idx.tolist())) / min(10, len(z["train"])))


def test_evaluate_cli_errors(tmp_path, capsys):
    npz = tmp_path / "bad.npz"
    np.savez(npz, samples=np.zeros((3, 2)))
    other = tmp_path / "s.npz"
    np.savez(other, samples=np.zeros((3, 1)), train=np.zeros((5, 1)))
    ck = tmp_path / "p.pt"
    assert main(["train", "--data", "points1d", "--depth", "2", "--width", "4", "--epochs", "5", "--out", str(ck),
                 "--no-progress"]) == 0
    capsys.readouterr()
    for argv, msg in ((["evaluate", "--samples", str(tmp_path / "none.npz")], "not found"),
                      (["evaluate", "--samples", str(npz)], "lacks ['train']"),
                      (["evaluate", "--samples", str(other), "--checkpoint", str(ck)], "was not sampled from"),
                      (["evaluate", "--samples", str(other), "--tol", "0"], "--tol must be > 0")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("kals: error:") and msg in err and "\n" not in err
    with pytest.raises(KalsError, match="D=2"):
        nearest_neighbours(torch.zeros(2, 2), torch.zeros(3, 1))
