"""The offline image sets that installed packages ship (issue #31): lfw-faces (scikit-image's LFW
faces) and sample-photos (crops of scikit-image's and scikit-learn's colour photographs). The test
extra installs both packages, so these tests need no network and no data folder."""

import sys

import numpy as np
import pytest
import torch

from kals_utils import KalsError, load_data
from kals_utils.faces.cli import build_parser, main
from kals_utils.data import quantize
from kals_utils.datasets import CROPS_PER_PHOTO, SAMPLE_PHOTOS
from kals_utils.presets import preset_for


def _u8(d):
    return quantize(d.x, d.value_range).reshape(len(d), *d.image_shape)


def test_lfw_faces_are_the_first_100_images_of_lfw_subset():
    from skimage.data import lfw_subset
    d = load_data("lfw-faces", value_range=(0, 1))
    assert d.x.shape == (100, 625) and d.image_shape == (1, 25, 25) and d.labels is None
    assert d.x.min() >= 0 and d.x.max() <= 1 and d.x.std() > 0.1
    every = torch.from_numpy(np.round(lfw_subset() * 255).astype(np.uint8))  # 100 faces, then 100 non-faces
    assert torch.equal(_u8(d)[:, 0], every[:100])
    assert torch.equal(load_data("lfw-faces", value_range=(0, 1)).x, d.x)  # the same on every call


def test_lfw_faces_resize_like_a_folder(tmp_path):
    """image_size takes the folder loader's path: the same faces as PNG files in a folder give the
    same 32 x 32 images."""
    from PIL import Image
    native = _u8(load_data("lfw-faces", value_range=(-1, 1)))
    for i, face in enumerate(native[:5, 0].numpy()):
        Image.fromarray(face).save(tmp_path / f"{i:03d}.png")
    big = load_data("lfw-faces", image_size=32, value_range=(-1, 1))
    assert big.x.shape == (100, 1024) and big.image_shape == (1, 32, 32)
    assert big.x.min() >= -1 and big.x.max() <= 1
    assert torch.equal(load_data(f"folder:{tmp_path}", image_size=32).x, big.x[:5])


def test_sample_photos_are_distinct_colour_crops():
    d = load_data("sample-photos", value_range=(-1, 1))
    n = len(SAMPLE_PHOTOS) * CROPS_PER_PHOTO
    assert d.x.shape == (n, 3 * 32 * 32) and d.image_shape == (3, 32, 32) and n == 448
    assert d.x.min() >= -1 and d.x.max() <= 1
    u8 = _u8(d).float()
    assert (u8[:, 0] - u8[:, 2]).abs().mean() > 20  # colour: red and blue differ (they are equal in grey)
    assert torch.equal(load_data("sample-photos", value_range=(-1, 1)).x, d.x)  # seeded: the same every call
    dist = torch.cdist(d.x, d.x).fill_diagonal_(float("inf"))
    first, second = dist.topk(2, largest=False).values.T
    assert not (first < second / 3).any()  # no crop is a near-copy of another (the 1/3 rule of copying)
    assert load_data("sample-photos", image_size=16).x.shape == (n, 3 * 16 * 16)


def test_sample_photos_crop_the_bundled_photos(monkeypatch):
    """The seven photos are the packages' own, in SAMPLE_PHOTOS's order, and crop group k (64 crops)
    comes from photo k alone."""
    from skimage.data import astronaut, stereo_motorcycle
    from sklearn.datasets import load_sample_images
    import kals_utils.datasets as data
    photos = data._photos()
    assert [p.shape[2] for p in photos] == [3] * 7 and np.array_equal(photos[0], astronaut())
    assert np.array_equal(photos[4], stereo_motorcycle()[0])
    assert np.array_equal(photos[6], load_sample_images().images[1])  # flower.jpg
    flat = [np.full((300 + 40 * k, 400, 3), 30 * k, np.uint8) for k in range(7)]  # photo k: grey level 30k
    monkeypatch.setattr(data, "_photos", lambda: flat)
    u8 = _u8(load_data("sample-photos"))
    assert torch.equal(u8.reshape(7, CROPS_PER_PHOTO, -1), torch.arange(7).mul(30).reshape(7, 1, 1).expand(7, 64, 3072))


@pytest.mark.parametrize("name, module, package", [
    ("lfw-faces", "skimage.data", "scikit-image"),
    ("sample-photos", "skimage.data", "scikit-image"),
    ("sample-photos", "sklearn.datasets", "scikit-learn"),
])
def test_missing_package_is_one_clear_line(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    with pytest.raises(KalsError) as err:
        load_data(name)
    msg = str(err.value)
    assert package in msg and ".[samples]" in msg and name in msg and "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_subset_larger_than_the_data_uses_all_of_it(tiny_folder):
    d = load_data("lfw-faces", subset=1000, seed=3)
    assert len(d) == 100 and torch.equal(d.x, load_data("lfw-faces").x)
    assert d.note == "subset 1000 is more than the 100 images of lfw-faces: all 100 are used"
    assert load_data("lfw-faces", subset=100).note == "" and len(load_data("lfw-faces", subset=40)) == 40
    f = load_data(f"folder:{tiny_folder}", subset=50)
    assert len(f) == 12 and "subset 50 is more than the 12 images" in f.note


def test_presets_and_help_name_them():
    for name in ("lfw-faces", "sample-photos"):
        p = preset_for(name)
        assert p.data == name and p.subset is None and p.image_size == 32
    assert (preset_for("lfw-faces").width, preset_for("sample-photos").width) == (1000, 2000)
    train = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "lfw-faces" in train and "sample-photos" in train


@pytest.mark.parametrize("name, shape", [("lfw-faces", (1, 8, 8)), ("sample-photos", (3, 8, 8))])
def test_cli_trains_and_samples_them(tmp_path, capsys, name, shape):
    ck, npz = tmp_path / "f.pt", tmp_path / "s.npz"
    assert main(["train", "--data", name, "--image-size", "8", "--subset", "5000", "-L", "2", "-H", "16",
                 "--epochs", "1", "--batch-size", "100", "--out", str(ck), "--no-progress"]) == 0
    assert "note: subset 5000 is more than the" in capsys.readouterr().out
    assert main(["sample", "--checkpoint", str(ck), "--chains", "4", "--steps", "2", "--save-samples", str(npz)]) == 0
    assert np.load(npz)["samples"].shape == (4, int(np.prod(shape)))
