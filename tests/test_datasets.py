"""The image data sets through the real torchvision loaders, on small files in the real formats
(tests/fakedata.py) and on Debian's real Fashion-MNIST."""

import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakedata  # noqa: E402

from kals_utils import KalsError, load_data  # noqa: E402
from kals_utils.data import CIFAR_DOG  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fakedata.write_all(tmp_path_factory.mktemp("data"))


@pytest.fixture
def skip_md5(monkeypatch):
    monkeypatch.setenv("KALS_SKIP_MD5", "1")


@pytest.fixture
def offline(monkeypatch):
    """Every URL torchvision opens fails, as on a machine without internet."""
    def fail(*a, **k):
        raise urllib.error.URLError("no network (test)")
    monkeypatch.setattr(urllib.request, "urlopen", fail)


def mnist_index(data):
    """The fake MNIST writes image i filled with i % 256: recover i from the first pixel ([0, 1])."""
    return (data.x[:, 0] * 255).round().long()


def test_mnist_from_idx_files(root):
    d = load_data("mnist", root=root, value_range=(0, 1), cache=False)
    assert d.x.shape == (200, 784) and d.image_shape == (1, 28, 28) and d.x.dtype == torch.float32
    assert torch.equal(mnist_index(d), torch.arange(200))  # all, in file order
    assert torch.equal(d.labels, torch.arange(200) % 10) and d.class_names[0].startswith("0")


def test_subset_is_seeded_exact_and_consistent(root):
    a = load_data("mnist", root=root, subset=30, seed=3, value_range=(0, 1), cache=False)
    b = load_data("mnist", root=root, subset=30, seed=3, value_range=(0, 1), cache=False)
    c = load_data("mnist", root=root, subset=30, seed=4, value_range=(0, 1), cache=False)
    ia, ic = mnist_index(a), mnist_index(c)
    assert torch.equal(a.x, b.x) and not torch.equal(ia, ic)
    assert len(set(ia.tolist())) == 30 and len(a) == 30 and a.subset == 30 and a.seed == 3
    assert torch.equal(a.labels, ia % 10)  # labels travel with their images
    more = load_data("mnist", root=root, subset=201, cache=False)  # more than there are: all, with a note
    assert len(more) == 200 and more.note == "subset 201 is more than the 200 images of mnist: all 200 are used"


def test_scaling_ranges(root):
    for lo, hi in ((0.0, 1.0), (-1.0, 1.0)):
        d = load_data("mnist", root=root, value_range=(lo, hi), cache=False)
        assert d.value_range == (lo, hi) and d.x.min() == lo and d.x.max() <= hi
        assert d.x[0].eq(lo).all()  # image 0 holds pixel value 0
        assert torch.allclose(d.x[100], torch.full((784,), lo + (hi - lo) * 100 / 255))


def test_mnist_from_repacked_gz(tmp_path, offline):
    """Re-packed .gz files (other MD5s than torchvision's) are unpacked, not re-downloaded."""
    fakedata.write_mnist(tmp_path, n_train=40, gz=True)
    d = load_data("mnist", root=tmp_path, subset=10, cache=False)
    assert d.x.shape == (10, 784)
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()  # read in place, nothing written


def test_fashion_mnist_debian(tmp_path, offline):
    """Debian's real Fashion-MNIST (dataset-fashion-mnist), through torchvision's FashionMNIST."""
    fakedata.link_debian_fashion(tmp_path)
    d = load_data("fashion-mnist", root=tmp_path, subset=500, seed=0, value_range=(-1, 1))
    assert d.x.shape == (500, 784) and d.image_shape == (1, 28, 28)
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"
    assert set(d.labels.tolist()) == set(range(10))          # 500 of 60,000: every class present
    assert d.x.min() == -1 and d.x.max() == 1                 # real pixels span 0..255
    assert 0.1 < float((d.x > -1).float().mean()) < 0.9        # real images, not blank or noise


def test_cifar_dogs_only_class_5(root, skip_md5):
    d = load_data("cifar-dogs", root=root, value_range=(0, 1), cache=False)
    # 5 batches x 50 images, labels k % 10: exactly the 25 images k = 5, 15, 25, ...
    assert d.x.shape == (25, 3 * 32 * 32) and d.image_shape == (3, 32, 32)
    assert d.labels.eq(CIFAR_DOG).all() and d.class_names[CIFAR_DOG] == "dog"
    imgs = (d.x.view(-1, 3, 32, 32) * 255).round().long()
    assert torch.equal(imgs[:, 0, 0, 0], torch.arange(5, 250, 10))   # red plane: image number k
    assert imgs[:, 1].eq(100).all()                                  # green plane: label * 20
    assert torch.equal(imgs[0, 2, 0], torch.linspace(0, 255, 32).to(torch.uint8).long())  # (C, H, W) order
    s = load_data("cifar-dogs", root=root, subset=7, seed=1, cache=False)
    assert s.x.shape == (7, 3072) and s.labels.eq(CIFAR_DOG).all()


def test_cifar_md5_checked_unless_skipped(root, monkeypatch):
    """torchvision checks CIFAR's MD5s (these files fail it); KALS_SKIP_MD5=1 checks only presence,
    and the patch is undone afterwards."""
    import torchvision.datasets.cifar as tv_cifar
    monkeypatch.delenv("KALS_SKIP_MD5", raising=False)
    original = tv_cifar.check_integrity
    with pytest.raises(KalsError, match="cifar-10-batches-py") as e:
        load_data("cifar-dogs", root=root, download=False, cache=False)
    assert "RuntimeError: Dataset not found or corrupted" in str(e.value)  # the cause: torchvision's MD5 check
    assert len(load_data("cifar-dogs", root=root, verify=False, cache=False)) == 25
    assert tv_cifar.check_integrity is original


def test_a_bug_in_the_loader_is_not_reported_as_missing_data(root, monkeypatch):
    """Only missing, corrupt or undownloadable files become "data missing"; a TypeError is a bug."""
    import torchvision

    def broken(*args, **kwargs):
        raise TypeError("unexpected keyword argument 'train'")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", broken)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_data("cifar-dogs", root=root, download=False, cache=False)


def test_celeba_torchvision_layout(root, skip_md5):
    d = load_data("celeba", root=root, subset=6, seed=0, value_range=(-1, 1), cache=False)
    assert d.x.shape == (6, 3 * 32 * 32) and d.image_shape == (3, 32, 32)   # default 32 x 32
    assert d.x.min() >= -1 and d.x.max() <= 1 and d.x.std() > 0.1
    more = load_data("celeba", root=root, subset=21, cache=False)  # train split: 20 of the 24 images
    assert len(more) == 20 and "all 20 are used" in more.note
    d16 = load_data("celeba", root=root, subset=6, image_size=16, cache=False)
    assert d16.image_shape == (3, 16, 16)


def test_folder_of_faces_center_crop(root):
    d = load_data(f"folder:{root / 'faces'}", subset=5, seed=2, image_size=32, value_range=(0, 1))
    assert d.x.shape == (5, 3 * 32 * 32)
    # the drawn face is centred: the middle of the crop is skin, not the background of the corners
    img = d.x.view(5, 3, 32, 32)
    assert (img[:, :, 16, 16] - img[:, :, 0, 0]).abs().sum(dim=1).gt(0.05).all()
    with pytest.raises(KalsError, match="mixed sizes"):  # 178 x 218 faces plus one other size
        from PIL import Image
        Image.new("RGB", (64, 64)).save(root / "faces" / "zz_other.png")
        try:
            load_data(f"folder:{root / 'faces'}")
        finally:
            (root / "faces" / "zz_other.png").unlink()


def test_cache_is_used_on_rerun(tmp_path, monkeypatch, skip_md5):
    fakedata.write_cifar(tmp_path)
    a = load_data("cifar-dogs", root=tmp_path, subset=12, seed=5)
    cache = list((tmp_path / "kals_cache").glob("*.pt"))
    assert len(cache) == 1 and "cifar-dogs" in cache[0].name
    import kals_utils.data as kd
    monkeypatch.setattr(kd, "_load_images", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    b = load_data("cifar-dogs", root=tmp_path, subset=12, seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels) and b.class_names == a.class_names
    b01 = load_data("cifar-dogs", root=tmp_path, subset=12, seed=5, value_range=(0, 1))  # same cache, other range
    assert torch.allclose(b01.x * 2 - 1, a.x, atol=1e-6)


@pytest.mark.parametrize("name, layout", [
    ("mnist", "MNIST/raw"),
    ("fashion-mnist", "FashionMNIST/raw"),
    ("cifar-dogs", "cifar-10-batches-py"),
    ("celeba", "celeba/ with img_align_celeba"),
])
@pytest.mark.parametrize("download", [False, True])
def test_missing_data_is_one_clear_error(tmp_path, offline, name, layout, download):
    with pytest.raises(KalsError) as err:
        load_data(name, root=tmp_path / "empty", download=download)
    msg = str(err.value)
    assert layout in msg and str(tmp_path / "empty") in msg and "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no urllib traceback chained


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_debian_flat_fashion_folder_is_read_where_it_lies(tmp_path):
    """--data-root pointed at Debian's flat folder of .gz IDX files (setup.sh --test installs it)."""
    assert (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(), "run bash setup.sh --test (as root)"
    before = sorted(p.name for p in DEBIAN_FASHION.iterdir())
    d = load_data("fashion-mnist", root=DEBIAN_FASHION, subset=20, seed=0)
    assert d.x.shape == (20, 784) and d.labels.shape == (20,) and d.class_names[0].startswith("T-shirt")
    assert sorted(p.name for p in DEBIAN_FASHION.iterdir()) == before  # nothing written there
    from kals_utils.faces.cli import main
    assert main(["train", "--data", "fashion-mnist", "--data-root", str(DEBIAN_FASHION), "--subset", "8", "-L", "2",
                 "-H", "8", "--epochs", "1", "--out", str(tmp_path / "f.pt"), "--no-progress"]) == 0


def test_failed_lookup_leaves_no_empty_folders(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist
    monkeypatch.setattr(tv_mnist.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # offline: nothing answers there
    monkeypatch.setattr(tv_mnist.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "data"
    root.mkdir()
    for name in ("fashion-mnist", "mnist"):
        with pytest.raises(KalsError, match="train-images-idx3-ubyte"):
            load_data(name, root=root, subset=5)
    assert list(root.iterdir()) == []


def test_missing_data_is_a_short_message_in_a_notebook(tmp_path):
    """IPython shows KalsError._render_traceback_ instead of a traceback through library internals;
    the message names the folder layout, where to get the files and the DATASET parameter."""
    with pytest.raises(KalsError) as e:
        load_data("cifar-dogs", root=tmp_path, download=False)
    lines = e.value._render_traceback_()
    assert len(lines) == 1 and "KalsError" in lines[0]
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and "cs.toronto.edu" in msg and 'DATASET = "folder:PATH"' in msg
    assert list(tmp_path.iterdir()) == []
