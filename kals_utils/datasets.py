"""The data sets kals knows, as one table, :data:`REGISTRY` (name, loader, shape, labels, held-out
split, source, help): the loader, the command line's help, the error messages and the docs read it,
so adding a data set is one entry. Here are the readers of each: torchvision's MNIST, Fashion-MNIST,
CIFAR-10 and CelebA (their files read where they lie, one clear error when they are missing), the
images that installed packages ship (scikit-image's LFW faces, the sample photos of scikit-image and
scikit-learn) and folders of images. :func:`data.load_data` is the one door to them."""

import os
import pickle
import tarfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .errors import KalsError, cause, check_int
from .images import _decode_images, _fit_square, image_files


CIFAR_DOG = 5


def select_subset(n_total: int, subset: Optional[int], seed: int) -> torch.Tensor:
    """Seeded choice of ``subset`` indices out of ``n_total`` (all, in order, when subset is None or
    not smaller than ``n_total``)."""
    if subset is None:
        return torch.arange(n_total)
    subset = check_int("subset", subset, 1)
    if subset >= n_total:  # all of it, in order, as subset=None; load_data's Data.note says so
        return torch.arange(n_total)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:subset].sort().values


def fetch_errors() -> tuple:
    """What a torchvision data set raises when its files are missing, corrupt, or cannot be downloaded
    (no network: URLError, an OSError; a failed MD5 or a missing file: RuntimeError; a damaged
    pickle, archive or gzip file). Anything else (a TypeError, say) is a bug and keeps its traceback."""
    errors = (OSError, RuntimeError, EOFError, ValueError, LookupError, pickle.UnpicklingError, tarfile.TarError,
              zipfile.BadZipFile)
    try:  # CelebA comes from Google Drive through gdown, which has an error type of its own
        from gdown.exceptions import FileURLRetrievalError
    except ImportError:
        return errors
    return errors + (FileURLRetrievalError,)


def _missing_message(key: str, root: Path, layout: str, err: Exception, download: bool = True) -> str:
    why = f"could not be downloaded: {cause(err)}" if download else f"download=False; {cause(err)}"
    entry = REGISTRY[key]
    return (f"{entry.title} is not under {root} ({why}). Put the files here: {layout}. Get them from "
            f"{entry.source} with internet, or use any folder of your own images: "
            f'DATASET = "folder:PATH" in a notebook (--data folder:PATH on the command line)')


@contextmanager
def _maybe_skip_md5(dataset_cls, verify: bool):
    """torchvision checks CIFAR/CelebA files by MD5; ``verify=False`` checks only that they exist
    (for re-packed copies and small test files). Like torchvision's own tests, this patches the
    ``check_integrity`` its dataset module calls (CIFAR also checks ``batches.meta`` through it)."""
    if verify:
        yield
        return
    import importlib
    module = importlib.import_module(dataset_cls.__module__)
    original = module.check_integrity
    module.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)
    try:
        yield
    finally:
        module.check_integrity = original


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format; plain or gzipped) as a uint8 array of its stored shape."""
    import gzip
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            blob = f.read()
    except (OSError, EOFError) as e:
        raise KalsError(f"cannot read {path} ({type(e).__name__}); copy it again") from None
    ndim = blob[3] if len(blob) > 4 else 0
    dims = [int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    if blob[:3] != b"\0\0\x08" or not dims or len(blob) - start != int(np.prod(dims)):
        raise KalsError(f"{path} is not a uint8 IDX file of the size its header gives; copy it again")
    return np.frombuffer(blob, dtype=np.uint8, offset=start).reshape(dims)


def _find_idx(folders, name: str) -> Optional[Path]:
    for folder in folders:
        for f in (folder / name, folder / f"{name}.gz"):
            if f.is_file():
                return f
    return None


def _folders(root: Path, depth: int = 3) -> set:
    """Folders under ``root`` down to ``depth`` levels (downloads make ``root/Name/raw``)."""
    out = set()
    for here, dirs, _ in os.walk(root):
        level = len(Path(here).relative_to(root).parts)
        out.update(Path(here) / d for d in dirs)
        if level + 1 >= depth:
            dirs.clear()
    return out


@contextmanager
def _no_new_folders(root: Path):
    """On failure, remove the (empty) folders a failed download made under ``root``."""
    before, root_existed = _folders(root), root.is_dir()
    try:
        yield
    except BaseException:
        if root.is_dir():
            made = sorted(_folders(root) - before, key=lambda p: -len(p.parts))
            for p in made + ([] if root_existed else [root]):
                try:
                    p.rmdir()  # only empty folders go
                except OSError:
                    pass
        raise


def _load_mnist_like(cls_name: str, root: Path, download: bool, train: bool = True):
    """MNIST / Fashion-MNIST training split: the IDX files (plain or .gz) read where they lie, in
    ``root`` itself (e.g. Debian's flat /usr/share/datasets/fashion-mnist) or in torchvision's
    ``root/<Name>/raw``; else torchvision downloads them."""
    import torchvision
    cls = getattr(torchvision.datasets, cls_name)
    raw = root / cls.__name__ / "raw"
    images, labels = (_find_idx((root, raw), n) for n in (MNIST_FILES[:2] if train else MNIST_FILES[2:]))
    if images is not None and labels is not None:
        u8, targets = read_idx(images), read_idx(labels)
        if u8.ndim != 3 or len(u8) != len(targets):
            raise KalsError(f"{images} and {labels} do not match ({u8.shape} images, {targets.shape} labels)")
        return torch.from_numpy(u8.copy()).unsqueeze(1), torch.from_numpy(targets.astype(np.int64)), list(cls.classes)
    try:
        with _no_new_folders(root):
            ds = cls(str(root), train=train, download=download)
    except fetch_errors() as e:  # offline download, missing files
        files = ", ".join(MNIST_FILES) + " (or the same names + .gz)"
        key = "mnist" if cls_name == "MNIST" else "fashion-mnist"
        raise KalsError(_missing_message(key, root, f"{root}/ or {raw}/ with {files}", e, download)) from None
    return ds.data.unsqueeze(1), ds.targets.clone(), list(ds.classes)


def _load_cifar(root: Path, download: bool, verify: bool, classes: Sequence[int], train: bool = True):
    import torchvision
    cls = torchvision.datasets.CIFAR10
    try:
        with _no_new_folders(root), _maybe_skip_md5(cls, verify):
            ds = cls(str(root), train=train, download=download)
    except fetch_errors() as e:
        layout = (f"{root}/cifar-10-batches-py/ with data_batch_1 … data_batch_5, test_batch and batches.meta "
                  "(MD5-checked; for a re-packed copy set KALS_SKIP_MD5=1)")
        raise KalsError(_missing_message("cifar-dogs", root, layout, e, download)) from None
    targets = torch.tensor(ds.targets)
    keep = torch.isin(targets, torch.tensor(list(classes)))
    u8 = torch.from_numpy(ds.data).permute(0, 3, 1, 2)[keep]  # (N, 3, 32, 32)
    return u8, targets[keep], list(ds.classes)


def _load_celeba(root: Path, download: bool, verify: bool, subset, seed, size, train: bool = True):
    import torchvision
    cls = torchvision.datasets.CelebA
    try:
        with _no_new_folders(root), _maybe_skip_md5(cls, verify):
            ds = cls(str(root), split="train", target_type="identity", download=download)
    except fetch_errors() as e:
        layout = (f"{root}/celeba/ with img_align_celeba/ (the JPEGs), list_eval_partition.txt, "
                  "identity_CelebA.txt, list_attr_celeba.txt, list_bbox_celeba.txt, "
                  "list_landmarks_align_celeba.txt — or point at the JPEG folder with folder:PATH")
        raise KalsError(_missing_message("celeba", root, layout, e, download)) from None
    idx = select_subset(len(ds.filename), subset, seed)
    folder = Path(ds.root) / ds.base_folder / "img_align_celeba"
    u8 = _decode_images([folder / ds.filename[i] for i in idx], size or 32)
    return u8, None, None


def _load_folder(folder: str, subset, seed, size):
    files = image_files(Path(folder).expanduser())
    idx = select_subset(len(files), subset, seed)
    return _decode_images([files[i] for i in idx], size), None, None


# ---------------------------------------------------------------- sets bundled with installed packages
LFW_FACES = 100          # lfw_subset(): its first 100 images are faces, the last 100 background (its docstring)
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "china.jpg", "flower.jpg")
CROPS_PER_PHOTO = 64     # 7 x 64 = 448 crops: see _load_sample_photos
CROP_SIDES = (1 / 4, 1 / 2)   # a crop's side, as a fraction of its photo's shorter side
CROP_SEED = 31           # the crops are the same on every machine and call (numpy's PCG64 stream)


def _package(module: str, pip: str, name: str):
    """Import ``module`` (of the package ``pip`` that data set ``name`` loads from), or one KalsError
    naming the package and the extra that installs it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise KalsError(f"{name} loads from the {pip} package, which is not installed here: "
                        f"pip install -e '.[samples]' in the kals folder (or pip install {pip})") from None


def _load_lfw_faces(size: Optional[int]) -> torch.Tensor:
    """The 100 faces of scikit-image's ``lfw_subset`` (Labeled Faces in the Wild, 25 x 25 grey;
    its last 100 images are not faces and are left out) as uint8 (100, 1, S, S)."""
    from PIL import Image
    faces = _package("skimage.data", "scikit-image", "lfw-faces").lfw_subset()[:LFW_FACES]   # float in [0, 1]
    u8 = np.round(np.clip(faces, 0, 1) * 255).astype(np.uint8)
    if size is not None and size != u8.shape[-1]:
        u8 = np.stack([np.asarray(_fit_square(Image.fromarray(f), size)) for f in u8])
    return torch.from_numpy(np.ascontiguousarray(u8)).unsqueeze(1)


def _photos() -> list:
    """The seven colour photographs of SAMPLE_PHOTOS as (H, W, 3) uint8 arrays."""
    skdata = _package("skimage.data", "scikit-image", "sample-photos")
    sk = _package("sklearn.datasets", "scikit-learn", "sample-photos").load_sample_images()
    by_file = {Path(f).name: im for f, im in zip(sk.filenames, sk.images)}

    def photo(n):
        if n in by_file:
            return by_file[n]
        return skdata.stereo_motorcycle()[0] if n == "motorcycle" else getattr(skdata, n)()
    return [photo(n) for n in SAMPLE_PHOTOS]


def _load_sample_photos(size: Optional[int]) -> torch.Tensor:
    """448 square crops of seven colour photographs bundled with scikit-image (astronaut, Chelsea the
    cat, coffee, rocket, motorcycle) and scikit-learn (china, flower), resized to ``size`` (default 32).

    Each photo gives CROPS_PER_PHOTO crops at seeded random places (CROP_SEED), in photo order, with
    sides drawn between a quarter and a half of its shorter side (75-256 pixels): big enough that a
    crop shows a part one can name (an eye, a cup's rim, a wheel, a roof) rather than flat texture.
    Shrunk 2.3-8x to 32 x 32, they are sharp like CIFAR-10's images. 7 x 64 = 448 images: between
    the 100 LFW faces and the 1,000-image subsets the image notebooks take, and no crop is a near-copy
    of another by the 1/3 nearest-neighbour rule that flags copying (tests/test_packaged_data.py), so
    that rule reads the net's copying, not the set's. Not CIFAR-10: seven scenes, not thousands of objects."""
    from PIL import Image
    rng, out = np.random.default_rng(CROP_SEED), []
    for photo in _photos():
        h, w = photo.shape[:2]
        lo, hi = (int(f * min(h, w)) for f in CROP_SIDES)
        im = Image.fromarray(photo)
        for _ in range(CROPS_PER_PHOTO):
            side = int(rng.integers(lo, hi + 1))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            out.append(np.asarray(_fit_square(im.crop((left, top, left + side, top + side)), size or 32)))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class DataSet:
    """One entry of :data:`REGISTRY`: everything kals knows about a data set."""

    name: str                       # what the command line and DATASET take
    title: str                      # its usual name, for messages
    help: str                       # one line for the command line's help and the docs
    shape: str                      # C x H x W of its images ("" for points, "any" for folders)
    source: str                     # where its files come from
    load: Optional[Callable] = None  # (root, download, verify, train, size) -> uint8 (N,C,H,W), labels, classes
    held_out: bool = False          # a test split kals can read (the metrics' ceilings)
    labelled: bool = False          # several classes (class histograms, classifier features)
    cached: bool = False            # decoded subsets cached under <root>/kals_cache (slow formats)


REGISTRY = {d.name: d for d in (
    DataSet("points1d", "1D points", "the paper's 1D points {0.2, 0.8} (or your own: --points / POINTS)", "", "built in"),
    DataSet("points2d", "2D points", "the paper's four 2D points (0.2/0.8, 0.2/0.8) (or your own)", "", "built in"),
    DataSet("mnist", "MNIST", "MNIST handwritten digits, 60,000 training images", "1x28x28",
            "https://yann.lecun.com/exdb/mnist/ (torchvision downloads it)",
            lambda root, download, verify, train, _: _load_mnist_like("MNIST", root, download, train),
            held_out=True, labelled=True),
    DataSet("fashion-mnist", "Fashion-MNIST", "Zalando's Fashion-MNIST clothes, 60,000 training images", "1x28x28",
            "https://github.com/zalandoresearch/fashion-mnist (torchvision downloads it; Debian: dataset-fashion-mnist)",
            lambda root, download, verify, train, _: _load_mnist_like("FashionMNIST", root, download, train),
            held_out=True, labelled=True),
    DataSet("cifar-dogs", "CIFAR-10", "the 5,000 dogs (class 5) of CIFAR-10's training set", "3x32x32",
            "https://www.cs.toronto.edu/~kriz/cifar.html (torchvision downloads it)",
            lambda root, download, verify, train, _: _load_cifar(root, download, verify, [CIFAR_DOG], train),
            held_out=True, cached=True),
    DataSet("celeba", "CelebA", "CelebA faces (train split), centre-cropped to 32 x 32", "3x32x32",
            "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive; torchvision's download is often "
            "refused, so fetch img_align_celeba.zip and the .txt lists by hand)", cached=True),
    DataSet("lfw-faces", "LFW faces", "the 100 faces (25 x 25 grey) of scikit-image's lfw_subset, from Labeled "
            "Faces in the Wild: an offline stand-in for CelebA", "1x25x25",
            "scikit-image (skimage.data.lfw_subset; pip install -e '.[samples]')",
            lambda root, download, verify, train, size: (_load_lfw_faces(size), None, None)),
    DataSet("sample-photos", "sample photos", "448 crops (32 x 32) of 7 colour photographs bundled with scikit-image "
            "and scikit-learn: an offline stand-in for CIFAR-10", "3x32x32",
            "scikit-image and scikit-learn (their sample images; pip install -e '.[samples]')",
            lambda root, download, verify, train, size: (_load_sample_photos(size), None, None)),
    DataSet("folder:PATH", "an image folder", "any folder of images, centre-cropped and resized to the image size",
            "any", "your own files"),
)}
DATASETS = tuple(REGISTRY)                                           # the names the command line takes
HELD_OUT = tuple(n for n, d in REGISTRY.items() if d.held_out)     # with a test split kals can read
LABELLED = tuple(n for n, d in REGISTRY.items() if d.labelled)     # ... and with classes


def dataset_help() -> str:
    """'points1d (the paper's 1D points ...), mnist (...), ...': the registry in one line."""
    return "; ".join(f"{d.name}: {d.help}" for d in REGISTRY.values())
