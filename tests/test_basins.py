"""Basins of attraction, stored sequences and capacity (issue #24): known answers on small cases."""
import json

import pytest
import torch

from kals_utils import KalsError, ModelConfig, build_model, fit, kaleidoscope, load_run, points, train_run
from kals_utils.measures.basins import (UNSETTLED, basin_map, basin_statistics, capacity, grid_starts, label_ends,
                               neighbour_distances, sequence_replay, spearman)
from kals_utils.faces.cli import main
from kals_utils.studies.capacity import (capacity_sweep, circle_points, holding_limits, longest_replay,
                                         sequence_sweep, snapshot_epochs, uniform_points)


@pytest.fixture(scope="module")
def two_points():
    """{0.2, 0.8}, L=4, H=10, sigmoid: both points learnt (seeded)."""
    d = points(dim=1)
    return d, train_run(d, depth=4, width=10, epochs=1000, seed=0, device="cpu", progress=False)


def test_1d_basin_boundary_lies_between_two_points(two_points):
    d, run = two_points
    assert run.result.learnt == 2
    b = basin_map(run.model, d.x, grid=400)
    assert abs(float(b.fractions.sum()) - 1) < 1e-9
    runs = b.intervals()
    assert [lab for _, _, lab in runs] == [0, 1]        # two basins, nothing else, in order
    boundary = runs[0][1]
    assert 0.2 < boundary < 0.8 and runs[0][0] == 0.0 and runs[1][1] == 1.0
    assert abs(boundary - float(b.fractions[0])) < 1e-6  # its left basin's length is its area share
    js = b.to_json()
    assert [a["kind"] for a in js["attractors"]] == ["train", "train", "unsettled"]
    assert all(a["stable"] for a in js["attractors"][:2]) and js["fraction_sum"] == pytest.approx(1.0)


def test_2d_map_labels_each_point_and_counts_a_spurious_fixed_point():
    d = points(dim=2)
    run = train_run(d, depth=3, width=32, epochs=1500, seed=0, device="cpu", progress=False)
    b = basin_map(run.model, d.x, grid=64)
    assert b.labels.shape == (64, 64) and abs(float(b.fractions.sum()) - 1) < 1e-9
    for i, (x, y) in enumerate(d.x.tolist()):  # the start at a training point ends there (rows: z2, cols: z1)
        assert int(b.labels[int(y * 64), int(x * 64)]) == i
    # an untrained net maps everything to one point that is no training point: one spurious basin, area 1
    m = build_model(ModelConfig(2, 3, 16), seed=0)
    u = basin_map(m, d.x, grid=32)
    assert len(u.spurious) == 1 and float(u.fractions[len(d.x)]) == 1.0
    assert (u.labels == len(d.x)).all() and [a["kind"] for a in u.attractors()][-2:] == ["spurious", "unsettled"]


def test_grid_and_labels_of_cycles():
    axes, starts = grid_starts((0.0, 1.0), 2, 4)
    assert torch.allclose(axes[0], torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert starts[1].tolist() == [0.375, 0.125]          # z1 varies fastest
    seq = points("0.2,0.2;0.8,0.5;0.5,0.85", dim=2)
    run = train_run(seq, depth=4, width=32, epochs=1500, seed=0, recipe="sequence", device="cpu", progress=False)
    labels, centres = label_ends(run.model, seq.x, seq.x)
    assert (labels == UNSETTLED).all() and len(centres) == 0  # on a loop through the points: never settled


def test_three_cycle_is_replayed_exactly():
    seq = points("0.2,0.2;0.8,0.5;0.5,0.85", dim=2)
    run = train_run(seq, depth=4, width=32, epochs=1500, seed=0, recipe="sequence", device="cpu", progress=False)
    assert run.config.recipe == "sequence" and run.result.learnt == 3
    walk = kaleidoscope(run.model, start=seq.x[:1], steps=9)
    expect = seq.x[torch.arange(10) % 3]
    assert (walk.frames[:, 0] - expect).abs().max() < 1e-3
    r = sequence_replay(run.model, seq.x, chains=64, burn=60)
    assert r.one_step == 1.0 and r.from_points == 1.0 and r.replays and r.max_error < 1e-3
    assert r.from_random > 0.9


def test_fit_target_none_is_the_identity_and_a_target_is_learnt():
    """Known answers: with target = the rows rolled by one, f maps each point to the one before it;
    without a target (the default, None), each point to itself."""
    x = torch.tensor([[0.2, 0.2], [0.8, 0.3], [0.7, 0.8], [0.3, 0.7]])
    for target, want in ((x.roll(1, 0), [3, 0, 1, 2]), (None, [0, 1, 2, 3])):
        m = build_model(ModelConfig(2, 4, 32), seed=0)
        fit(m, x, epochs=1500, seed=0, progress=False, target=target)
        with torch.no_grad():
            y = m(x)
        assert torch.cdist(y, x).argmin(dim=1).tolist() == want
        assert (y - x[want]).abs().max() < 0.05
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2
    m = build_model(ModelConfig(2, 3, 32), seed=0)
    r = fit(m, x, epochs=400, batch_size=8, seed=0, progress=False, target=x.flip(1))
    assert r.losses[-1] < 0.2 * r.losses[0]
    assert ((m(x) - x.flip(1)).pow(2).mean() - r.best_loss).abs() < 1e-6  # best loss is measured on the target
    with pytest.raises(KalsError, match="one target row per training row"):
        fit(m, x, epochs=1, progress=False, target=x[:3])


def test_capacity_on_tiny_cases(two_points):
    d, run = two_points
    c = capacity(run.model, d.x)
    assert (c.n, c.fixed, c.attractors) == (2, 1.0, 1.0) and c.radius_median < 1
    untrained = capacity(build_model(ModelConfig(1, 3, 8), seed=0), d.x)
    assert untrained.fixed == 0.0 and untrained.attractors == 0.0
    rows = capacity_sweep(lambda n, s: uniform_points(n, seed=s), ns=(1, 3), depths=(2,), widths=(8,), seeds=(0,),
                          epochs=300)
    assert [(r["n"], r["depth"], r["width"]) for r in rows] == [(1, 2, 8), (3, 2, 8)]
    assert all(0 <= r["attractors"] <= r["fixed"] <= 1 for r in rows)
    lim = holding_limits([{**r, "attractors": v} for r, v in zip(rows, (1.0, 0.4))])[0]
    assert (lim["holds_up_to"], lim["first_lost"], lim["half_at"]) == (1, 3, 3)


def test_sequence_sweep_and_circle():
    c = circle_points(4)
    assert torch.allclose(c.x, torch.tensor([[0.8, 0.5], [0.5, 0.8], [0.2, 0.5], [0.5, 0.2]]), atol=1e-6)
    rows = sequence_sweep(circle_points, ns=(3,), depths=(3,), widths=(32,), seeds=(0,), epochs=1500, chains=32,
                          burn=50)
    assert rows[0]["from_points"] == 1.0
    assert longest_replay(rows)[0]["median_from_points"] == 3
    assert snapshot_epochs(100, 3) == [1, 10, 100]


def test_basin_statistics_sum_to_one_and_neighbours():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 16, generator=g) * 1.6 - 0.8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    m = build_model(ModelConfig(16, 3, 64, "tanh"), seed=0)
    fit(m, x, epochs=800, seed=0, progress=False)
    s = basin_statistics(m, x, labels=labels, chains=200, steps=100, seed=0)
    assert abs(float(s.fraction.sum()) + s.spurious + s.unsettled - 1) < 1e-6
    assert sum(s.by_class.values()) == pytest.approx(float(s.fraction.sum()))
    d = torch.cdist(x, x) / 4
    d.fill_diagonal_(float("inf"))
    nn, knn = neighbour_distances(x, k=2)
    assert torch.allclose(nn, d.min(dim=1).values, atol=1e-5)
    assert torch.allclose(knn, d.topk(2, largest=False).values.mean(dim=1), atol=1e-5)
    js = json.loads(json.dumps(s.to_json()))
    assert js["n_train"] == 6 and len(js["fraction"]) == 6
    assert spearman(torch.tensor([1., 2., 3.]), torch.tensor([2., 4., 9.])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1., 2., 3.]), torch.tensor([3., 2., 1.])) == pytest.approx(-1.0)


def test_cli_basins_json_and_png(tmp_path, capsys):
    ck = tmp_path / "p.pt"
    assert main(["train", "--data", "points1d", "-L", "4", "-H", "10", "--epochs", "1000", "--out", str(ck),
                 "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    png = tmp_path / "b.png"
    assert main(["basins", "--checkpoint", str(ck), "--json", "--grid", "200", "--png", str(png),
                 "--device", "cpu"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["dim"] == 1 and js["starts"] == 200 and png.stat().st_size > 1000
    assert sum(a["fraction"] for a in js["attractors"]) == pytest.approx(1.0)
    assert [a["location"] for a in js["attractors"] if a["kind"] == "train"] == [[pytest.approx(0.2)],
                                                                                [pytest.approx(0.8)]]
    # the PNG read back: a picture whose two basin colours cover equal areas, like the shares (0.5 / 0.5)
    import numpy as np
    from PIL import Image
    from kals_utils.faces.plots import BASIN_ALPHA, basin_colors
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (460, 640, 3)
    area = [int((np.abs(img - np.round(255 * (1 - BASIN_ALPHA * (1 - np.array(c))))).max(-1) <= 2).sum())
            for c in basin_colors(2)]
    assert min(area) > 5000 and abs(area[0] - area[1]) < 0.05 * sum(area), area
    assert main(["basins", "--checkpoint", str(ck)]) == 2
    assert "pass --png" in capsys.readouterr().err


def test_cli_train_sequence_then_sample_replays(tmp_path, capsys):
    ck, npz = tmp_path / "s.pt", tmp_path / "s.npz"
    assert main(["train", "--data", "points2d", "--points", "0.2,0.2;0.8,0.5;0.5,0.85", "-L", "4", "-H", "32",
                 "--epochs", "1500", "--recipe", "sequence", "--out", str(ck), "--no-progress",
                 "--device", "cpu"]) == 0
    run = load_run(ck, device="cpu")
    assert run.config.recipe == "sequence"
    assert main(["sample", "--checkpoint", str(ck), "--chains", "16", "--steps", "80", "--save-samples", str(npz),
                 "--no-progress", "--device", "cpu"]) == 0
    w = kaleidoscope(run.model, start=run.data.x[1:2], steps=3)
    assert (w.final - run.data.x[1:2]).abs().max() < 1e-3   # three steps: once round the loop
    import numpy as np
    with np.load(npz) as z:  # the samples file: 16 chains, each ended on one of the three points
        samples, train = z["samples"], z["train"]
        assert int(z["steps"]) == 80 and samples.shape == (16, 2)
    assert np.allclose(train, run.data.x.numpy())
    assert (np.linalg.norm(samples[:, None] - train[None], axis=-1).min(axis=1) < 0.05).mean() >= 0.9


def test_cli_train_sequence_on_a_folder_keeps_file_order(tiny_folder, tmp_path):
    ck = tmp_path / "f.pt"
    assert main(["train", "--data", f"folder:{tiny_folder}", "-L", "2", "-H", "16", "--epochs", "3",
                 "--recipe", "sequence", "--out", str(ck), "--no-progress", "--device", "cpu"]) == 0
    run = load_run(ck, device="cpu")
    import numpy as np
    from PIL import Image
    first = np.asarray(Image.open(sorted(tiny_folder.glob("*.png"))[0]), dtype=np.float32)
    assert run.config.recipe == "sequence"
    assert np.allclose((run.data.x[0].reshape(3, 8, 8).permute(1, 2, 0).numpy() + 1) * 127.5, first, atol=1)
