"""Feature spaces for the sample metrics (kals_utils.measures.features): pixels, random CNN, a classifier
kals trains and caches itself; never a download."""

import socket
import urllib.request

import pytest
import torch

from kals_utils import features as feats
from kals_utils.errors import KalsError
from kals_utils.measures.features import (FEATURES, classifier_cache_path, class_histogram, embed, embedder,
                                 load_or_train_classifier, recognisable_fraction, train_classifier)
from kals_utils.measures.prdc import ceilings


def blobs(n, shape=(1, 8, 8), seed=0, value_range=(0.0, 1.0)):
    """Two easy classes: a bright left half (0) or a bright right half (1), plus noise."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    labels = torch.randint(0, 2, (n,), generator=g)
    img = 0.2 * torch.rand(n, c, h, w, generator=g)
    left = labels == 0
    img[left, :, :, : w // 2] += 0.7
    img[~left, :, :, w // 2:] += 0.7
    lo, hi = value_range
    return (img * (hi - lo) + lo).reshape(n, -1), labels


@pytest.fixture
def no_network(monkeypatch):
    """Any download or connection attempt fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(urllib.request, "urlretrieve", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)


@pytest.fixture
def tiny_classifier_data():
    x, y = blobs(240, seed=1)
    xt, yt = blobs(100, seed=2)
    return dict(x=x, labels=y, image_shape=(1, 8, 8), x_test=xt, labels_test=yt, epochs=4, seed=0)


def test_pixels_are_the_data():
    x = torch.rand(5, 3)
    assert torch.equal(embed(x, kind="pixels"), x)
    assert embed(torch.rand(4), kind="pixels").shape == (4, 1)
    with pytest.raises(KalsError, match="choose one of pixels, randcnn, classifier"):
        embed(x, kind="inception")
    assert FEATURES == ("pixels", "randcnn", "classifier")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 9, 13)])
def test_randcnn_shapes_and_determinism(shape, no_network):
    x = torch.rand(6, shape[0] * shape[1] * shape[2])
    state = torch.random.get_rng_state()
    f = embed(x, kind="randcnn", image_shape=shape)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert f.shape == (6, 512) and f.dtype == torch.float32 and torch.isfinite(f).all()
    assert f.std(dim=0).sum() > 0  # not constant
    feats._RANDCNN.clear()  # rebuilt from the seed: identical
    assert torch.equal(embed(x, kind="randcnn", image_shape=shape), f)
    assert not torch.equal(embed(x, kind="randcnn", image_shape=shape, seed=1), f)
    # the same images in (-1, 1) embed the same
    same = embed(2 * x - 1, kind="randcnn", image_shape=shape, value_range=(-1, 1))
    assert torch.allclose(same, f, atol=1e-5)


def test_randcnn_needs_images():
    with pytest.raises(KalsError, match="randcnn needs images; use pixels"):
        embed(torch.rand(4, 2), kind="randcnn", image_shape=None)
    with pytest.raises(KalsError, match="at least 8x8"):
        embed(torch.rand(4, 16), kind="randcnn", image_shape=(1, 4, 4))
    with pytest.raises(KalsError, match="do not match image shape"):
        embed(torch.rand(4, 10), kind="randcnn", image_shape=(1, 8, 8))


def test_classifier_trains_and_embeds(tiny_classifier_data, no_network):
    d = tiny_classifier_data
    state = torch.random.get_rng_state()
    model, acc = train_classifier(d["x"], d["labels"], image_shape=d["image_shape"], x_test=d["x_test"],
                                  labels_test=d["labels_test"], epochs=4, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert acc > 0.9
    f = embed(d["x_test"], kind="classifier", image_shape=(1, 8, 8), classifier=model)
    assert f.shape == (100, 128)
    assert 0.0 <= recognisable_fraction(model, d["x_test"]) <= 1.0
    hist = class_histogram(model, d["x_test"])
    assert hist.shape == (2,) and hist.sum() == 100
    assert class_histogram(model, d["x_test"], threshold=1.01).sum() == 0
    # outlier exposure: noise is not recognisable, the test images are
    noise = torch.rand(100, 64, generator=torch.Generator().manual_seed(3))
    assert recognisable_fraction(model, noise) < 0.2 < 0.8 < recognisable_fraction(model, d["x_test"])
    # (-1, 1) data are mapped to the range the classifier was trained on
    f2 = embed(2 * d["x_test"] - 1, kind="classifier", image_shape=(1, 8, 8), value_range=(-1, 1), classifier=model)
    assert torch.allclose(f, f2, atol=1e-5)
    # same seed, same net
    again, acc2 = train_classifier(d["x"], d["labels"], image_shape=(1, 8, 8), x_test=d["x_test"],
                                   labels_test=d["labels_test"], epochs=4, seed=0)
    assert acc2 == acc and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                  again.state_dict().values()))
    with pytest.raises(KalsError, match="need a trained classifier"):
        embed(d["x_test"], kind="classifier", image_shape=(1, 8, 8))
    with pytest.raises(KalsError, match="trained on images of shape"):
        embed(torch.rand(3, 3 * 64), kind="classifier", image_shape=(3, 8, 8), classifier=model)
    with pytest.raises(KalsError, match="one label per image"):
        train_classifier(d["x"], d["labels"][:10], image_shape=(1, 8, 8))


def test_outliers():
    imgs, labels = blobs(20, shape=(3, 8, 8), seed=4)
    imgs = imgs.reshape(20, 3, 8, 8) * 2 - 1
    out = feats.outliers(imgs, labels, 30, torch.Generator().manual_seed(0))
    assert out.shape[1:] == (3, 8, 8) and 20 < len(out) <= 30
    assert out.min() >= -1 and out.max() <= 1
    same = torch.zeros(20, dtype=torch.long)  # one class: no blends
    assert len(feats.outliers(imgs, same, 30, torch.Generator().manual_seed(0))) == 20


def test_classifier_cache(tmp_path, monkeypatch, tiny_classifier_data, no_network):
    d = tiny_classifier_data
    path = classifier_cache_path(tmp_path, "fashion-mnist", (1, 8, 8))
    assert path == tmp_path / "kals_cache" / "classifier_fashion-mnist_1x8x8.pt"
    model, meta = load_or_train_classifier(path, log=None, **d)
    assert path.is_file() and not meta["cached"] and meta["test_acc"] > 0.9 and meta["train_seconds"] >= 0

    loads = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache is valid")

    monkeypatch.setattr(torch, "load", spy_load)
    monkeypatch.setattr(feats, "train_classifier", no_training)
    cached, meta2 = load_or_train_classifier(path, log=None, **d)
    assert loads == [True]
    assert meta2["cached"] and meta2["test_acc"] == meta["test_acc"]
    x = d["x_test"]
    assert torch.equal(embed(x, kind="classifier", image_shape=(1, 8, 8), classifier=cached),
                       embed(x, kind="classifier", image_shape=(1, 8, 8), classifier=model))
    # other settings: the cache does not apply -> trains (here: the trainer refuses)
    with pytest.raises(AssertionError, match="retrained"):
        load_or_train_classifier(path, log=None, **dict(d, epochs=5))
    monkeypatch.undo()


def test_corrupt_cache_is_retrained(tmp_path, tiny_classifier_data, no_network):
    d = tiny_classifier_data
    path = classifier_cache_path(tmp_path, "blobs", (1, 8, 8))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    messages = []
    model, meta = load_or_train_classifier(path, log=messages.append, **d)
    assert not meta["cached"] and any("unreadable" in m and "retraining" in m for m in messages)
    _, meta2 = load_or_train_classifier(path, log=messages.append, **d)
    assert meta2["cached"]
    # a torch file of the wrong structure is also retrained
    torch.save({"something": 1}, path)
    _, meta3 = load_or_train_classifier(path, log=None, **d)
    assert not meta3["cached"]


def test_unwritable_cache_is_said_and_not_fatal(tmp_path, tiny_classifier_data):
    """A read-only data folder (e.g. Debian's) just means no cache: the classifier is still trained."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    said = []
    model, meta = load_or_train_classifier(blocker / "kals_cache" / "c.pt", log=said.append, **tiny_classifier_data)
    assert model is not None and not meta["cached"] and "not cached" in said[-1]


def test_embedder_feeds_ceilings(no_network):
    x, _ = blobs(60, seed=5)
    held, _ = blobs(30, seed=6)
    f = embedder("randcnn", image_shape=(1, 8, 8))
    assert torch.equal(f(x), embed(x, kind="randcnn", image_shape=(1, 8, 8)))
    ceil = ceilings(x, held, k=3, features=f)
    assert ceil["n_fake"] == 30 and 0 <= ceil["precision"] <= 1
    with pytest.raises(KalsError, match="randcnn needs images; use pixels"):
        embedder("randcnn", image_shape=None)
    with pytest.raises(KalsError, match="need a trained classifier"):
        embedder("classifier", image_shape=(1, 8, 8))
