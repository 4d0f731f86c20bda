"""The field's sample metrics wired into evaluate (issue #16): JSON layout, ceilings from a held-out
split, the feature spaces, and spurious vs novel fixed points."""
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakedata  # noqa: E402
from reference import naive_memorized, naive_prdc  # noqa: E402

from kals_utils.faces.cli import main  # noqa: E402
from kals_utils.measures.evaluate import evaluate_samples  # noqa: E402


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    fakedata.write_mnist(root, n_train=200, n_test=60)
    ck, npz = root / "r.pt", root / "s.npz"
    assert main(["train", "--data", "mnist", "--data-root", str(root), "--subset", "40", "-L", "3", "-H", "32",
                 "--epochs", "30", "--out", str(ck), "--no-progress"]) == 0
    assert main(["sample", "--checkpoint", str(ck), "--chains", "40", "--steps", "10", "--save-samples", str(npz)]) == 0
    return root, ck, npz


@pytest.mark.parametrize("features", ["pixels", "randcnn", "classifier"])
def test_evaluate_json_has_prdc_memorized_and_ceilings(mnist_run, features, capsys):
    root, ck, npz = mnist_run
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--data-root", str(root),
                 "--features", features, "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    p = out["prdc"]
    assert set(p) >= {"precision", "recall", "density", "coverage", "k", "features"} and p["k"] == 3
    assert p["features"] == features and 0 <= p["precision"] <= 1 and "training set" in p["real"]
    assert 0 <= out["memorized"] <= 1
    c = out["prdc_ceiling"]
    assert c["n_real"] == 40 and 0 <= c["precision"] <= 1 and "held-out" in c["real"]
    assert 0 <= out["visited_mean"] and "spurious" in out and "novel_fixed" in out
    if features == "classifier":  # trained once, then cached under the data root
        assert list((root / "kals_cache").glob("classifier_mnist_1x28x28.pt"))
    if features == "pixels":  # known answers: the numbers recomputed from the samples file by definition
        from kals_utils.measures.evaluate import load_samples
        z = load_samples(npz)
        want = naive_prdc(z["train"], z["samples"], k=3)   # 40 samples, 40 training images: all are the reference
        assert [p[m] for m in want] == pytest.approx(list(want.values()), abs=1e-9)
        assert out["memorized"] == pytest.approx(naive_memorized(z["samples"], z["train"]), abs=1e-9)
    if features != "pixels":  # the flag changes the space the numbers are measured in, not only the label
        assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--data-root", str(root),
                     "--k", "3", "--json"]) == 0
        pix = json.loads(capsys.readouterr().out)
        assert p["frechet"] != pytest.approx(pix["prdc"]["frechet"], rel=1e-3)
        assert c["frechet"] != pytest.approx(pix["prdc_ceiling"]["frechet"], rel=1e-3)
    if features == "randcnn":  # known answer: the Fréchet distance of the random CNN's features, by hand
        from kals_utils.measures.evaluate import load_samples
        from kals_utils.measures.features import embed
        from kals_utils.measures.prdc import frechet_distance
        z = load_samples(npz)
        assert len(z["train"]) == len(z["samples"]) == 40  # so the real set is the whole training set
        emb = [embed(v, kind="randcnn", image_shape=(1, 28, 28), value_range=z["value_range"])
               for v in (z["train"], z["samples"])]
        assert p["frechet"] == pytest.approx(frechet_distance(*emb), rel=1e-4)


def test_table_prints_ceilings_beside_values(mnist_run, capsys):
    root, ck, npz = mnist_run
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "sample metrics in pixel space, k=5" in out and "ceiling" in out and "memorised" in out


def test_classifier_needs_labelled_data(tmp_path, capsys):
    ck, npz = tmp_path / "p.pt", tmp_path / "s.npz"
    main(["train", "--data", "points2d", "-L", "2", "-H", "4", "--epochs", "3", "--out", str(ck), "--no-progress"])
    main(["sample", "--checkpoint", str(ck), "--chains", "10", "--steps", "2", "--save-samples", str(npz)])
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--features", "classifier"]) == 2
    assert "labelled data set" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(ck), "--samples", str(npz), "--features", "randcnn"]) == 2
    assert "randcnn needs images" in capsys.readouterr().err


def test_stopped_chain_inside_the_manifold_is_novel_not_spurious():
    """f = identity: every chain stops where it starts. Samples between close training points are
    inside real k-NN balls (novel); samples far away are spurious."""
    g = torch.Generator().manual_seed(0)
    train = torch.rand(60, 2, generator=g) * 0.4 + 0.3          # a blob in the middle of [0, 1]^2
    inside = torch.rand(30, 2, generator=g) * 0.3 + 0.35        # between training points
    outside = torch.rand(30, 2, generator=g) * 0.05 + 0.92      # in a far corner
    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            from kals_utils.model import ModelConfig
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.config = ModelConfig(2, 1, 1, "sigmoid")

        def forward(self, x):
            return x + 0 * self.w

    ev = evaluate_samples(torch.cat([inside, outside]), train, model=Identity(), k=3, method="exact", tol=0.005)
    s = ev.summary()
    assert s["novel_fixed"] == pytest.approx(0.5, abs=0.07)
    assert s["spurious"] == pytest.approx(0.5, abs=0.07)
