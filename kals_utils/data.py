"""Training data as one flat tensor: points, torchvision data sets and folders of images.

Every loader returns a :class:`Data`: ``x`` (N, D) float32 in ``value_range`` ([0, 1] or [-1, 1]),
``image_shape`` (C, H, W) for images (None for points), optional integer ``labels``.

The data sets kals knows are one table, :data:`REGISTRY` (name, loader, shape, labels, held-out
split, source, help): the loader, the command line's help, the error messages and the docs read it,
so adding a data set is one entry. Subsets of the slow formats are seeded and cached on disk under
``<root>/kals_cache`` so a re-run does not decode the whole data set again.
"""

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
from .files import atomic_torch_save

PAPER_POINTS = {1: "0.2;0.8", 2: "0.2,0.2;0.2,0.8;0.8,0.2;0.8,0.8"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CIFAR_DOG = 5


@dataclass
class Data:
    """A training set: ``x`` (N, D) in ``value_range``; ``image_shape`` (C, H, W) or None."""

    x: torch.Tensor
    value_range: tuple
    name: str
    image_shape: Optional[tuple] = None
    labels: Optional[torch.Tensor] = None
    class_names: Optional[list] = None
    subset: Optional[int] = None
    seed: int = 0

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def __len__(self) -> int:
        return len(self.x)


# ---------------------------------------------------------------- points
def parse_points(text: str) -> torch.Tensor:
    """Parse ``"0.2;0.8"`` (1D) or ``"0.2,0.2;0.8,0.8"`` (2D, ...) into an (N, D) tensor."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in str(text).strip().split(";") if row.strip()]
    except ValueError:
        raise KalsError(f"cannot read points {text!r}: write them like '0.2;0.8' or '0.2,0.2;0.8,0.8'") from None
    if not rows:
        raise KalsError("no training points given; write them like '0.2;0.8'")
    if len({len(r) for r in rows}) != 1:
        raise KalsError(f"points {text!r} have different numbers of coordinates; every point needs the same")
    return torch.tensor(rows, dtype=torch.float32)


def points(pts=None, dim: int = 1, value_range=(0.0, 1.0)) -> Data:
    """Training points: ``pts`` as text, a nested list or an (N, D) tensor; default the paper's."""
    if pts is None:
        pts = PAPER_POINTS.get(dim)
        if pts is None:
            raise KalsError(f"no default points for dim {dim}; pass them explicitly")
    x = parse_points(pts) if isinstance(pts, str) else torch.as_tensor(pts, dtype=torch.float32).reshape(len(pts), -1)
    return Data(x=x, value_range=tuple(map(float, value_range)), name=f"points{x.shape[1]}d")


# ---------------------------------------------------------------- images
def quantize(x: torch.Tensor, value_range=(0.0, 1.0)) -> torch.Tensor:
    """Map values in ``value_range`` to uint8 0..255 (clipped, rounded): the one value -> pixel map."""
    lo, hi = value_range
    return ((x.float() - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


def dequantize(u8: torch.Tensor, value_range=(0.0, 1.0)) -> torch.Tensor:
    """The inverse of :func:`quantize`: uint8 0..255 -> float32 in ``value_range``."""
    lo, hi = value_range
    return u8.float() * ((hi - lo) / 255.0) + lo


def _to_range(u8: torch.Tensor, value_range) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, C*H*W) in value_range."""
    lo, hi = value_range
    return dequantize(u8.reshape(len(u8), -1), value_range)


def select_subset(n_total: int, subset: Optional[int], seed: int, what: str = "data set") -> torch.Tensor:
    """Seeded choice of ``subset`` indices out of ``n_total`` (all, in order, when subset is None)."""
    if subset is None:
        return torch.arange(n_total)
    subset = check_int("subset", subset, 1)
    if subset > n_total:
        raise KalsError(f"subset {subset} is larger than the {what} ({n_total} items); set SUBSET (--subset) to {n_total} or less")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:subset].sort().values


def _resize_u8(u8: torch.Tensor, size: Optional[int]) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, antialiased (no-op if size is None or equal)."""
    if size is None or (u8.shape[-1] == size and u8.shape[-2] == size):
        return u8
    import torch.nn.functional as F
    out = F.interpolate(u8.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


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


def _center_square(img):
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def _read_image(path: Path, size: Optional[int]):
    """One image file as a PIL image (centre-cropped and resized to ``size`` if given). A file PIL
    cannot decode safely (not an image, truncated, empty, a decompression bomb) is one KalsError."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.load()
            if size is not None:  # resize at once: a folder of big photos never sits in memory whole
                return _center_square(im).resize((size, size), Image.BICUBIC)
            return im.copy()
    except Image.DecompressionBombError as e:
        raise KalsError(f"image {path} is too large to decode safely ({e}); shrink it or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise KalsError(f"cannot read image {path} ({type(e).__name__}: not an image, truncated or empty); "
                        "remove or replace it") from None


def _decode_images(paths, size: Optional[int]) -> torch.Tensor:
    """Decode image files to uint8 (N, C, H, W); C=1 if all are greyscale, else RGB."""
    imgs = [_read_image(p, size) for p in paths]
    mode = "L" if all(im.mode in ("L", "1", "I;16") for im in imgs) else "RGB"
    sizes = sorted({im.size for im in imgs})
    if len(sizes) > 1:
        raise KalsError(f"images have mixed sizes {sizes[:3]}{'…' if len(sizes) > 3 else ''}; "
                        "set IMAGE_SIZE = N (--image-size N) to resize them all to N x N")
    arr = np.stack([np.asarray(im.convert(mode)) for im in imgs])
    if arr.ndim == 3:
        arr = arr[:, None]
    else:
        arr = arr.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr))


def image_files(folder: Path) -> list:
    """Sorted image files under ``folder`` (recursive)."""
    if not folder.is_dir():
        raise KalsError(f"image folder {folder} does not exist; check the path after 'folder:'")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise KalsError(f"image folder {folder} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    return files


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
    idx = select_subset(len(ds.filename), subset, seed, "CelebA train split")
    folder = Path(ds.root) / ds.base_folder / "img_align_celeba"
    u8 = _decode_images([folder / ds.filename[i] for i in idx], size or 32)
    return u8, None, None


def _load_folder(folder: str, subset, seed, size):
    files = image_files(Path(folder).expanduser())
    idx = select_subset(len(files), subset, seed, f"folder ({len(files)} images)")
    return _decode_images([files[i] for i in idx], size), None, None


@dataclass(frozen=True)
class DataSet:
    """One entry of :data:`REGISTRY`: everything kals knows about a data set."""

    name: str                       # what the command line and DATASET take
    title: str                      # its usual name, for messages
    help: str                       # one line for the command line's help and the docs
    shape: str                      # C x H x W of its images ("" for points, "any" for folders)
    source: str                     # where its files come from
    load: Optional[Callable] = None  # (root, download, verify, train) -> uint8 (N,C,H,W), labels, class names
    held_out: bool = False          # a test split kals can read (the metrics' ceilings)
    labelled: bool = False          # several classes (class histograms, classifier features)
    cached: bool = False            # decoded subsets cached under <root>/kals_cache (slow formats)


REGISTRY = {d.name: d for d in (
    DataSet("points1d", "1D points", "the paper's 1D points {0.2, 0.8} (or your own: --points / POINTS)", "", "built in"),
    DataSet("points2d", "2D points", "the paper's four 2D points (0.2/0.8, 0.2/0.8) (or your own)", "", "built in"),
    DataSet("mnist", "MNIST", "MNIST handwritten digits, 60,000 training images", "1x28x28",
            "https://yann.lecun.com/exdb/mnist/ (torchvision downloads it)",
            lambda root, download, verify, train: _load_mnist_like("MNIST", root, download, train),
            held_out=True, labelled=True),
    DataSet("fashion-mnist", "Fashion-MNIST", "Zalando's Fashion-MNIST clothes, 60,000 training images", "1x28x28",
            "https://github.com/zalandoresearch/fashion-mnist (torchvision downloads it; Debian: dataset-fashion-mnist)",
            lambda root, download, verify, train: _load_mnist_like("FashionMNIST", root, download, train),
            held_out=True, labelled=True),
    DataSet("cifar-dogs", "CIFAR-10", "the 5,000 dogs (class 5) of CIFAR-10's training set", "3x32x32",
            "https://www.cs.toronto.edu/~kriz/cifar.html (torchvision downloads it)",
            lambda root, download, verify, train: _load_cifar(root, download, verify, [CIFAR_DOG], train),
            held_out=True, cached=True),
    DataSet("celeba", "CelebA", "CelebA faces (train split), centre-cropped to 32 x 32", "3x32x32",
            "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive; torchvision's download is often "
            "refused, so fetch img_align_celeba.zip and the .txt lists by hand)", cached=True),
    DataSet("folder:PATH", "an image folder", "any folder of images, centre-cropped and resized to the image size",
            "any", "your own files"),
)}
DATASETS = tuple(REGISTRY)                                           # the names the command line takes
HELD_OUT = tuple(n for n, d in REGISTRY.items() if d.held_out)     # with a test split kals can read
LABELLED = tuple(n for n, d in REGISTRY.items() if d.labelled)     # ... and with classes


def dataset_help() -> str:
    """'points1d (the paper's 1D points ...), mnist (...), ...': the registry in one line."""
    return "; ".join(f"{d.name}: {d.help}" for d in REGISTRY.values())


def load_data(name: str, *, root="data", subset: Optional[int] = None, seed: int = 0,
              value_range=(-1.0, 1.0), image_size: Optional[int] = None, pts=None,
              download: bool = True, verify: Optional[bool] = None, cache: bool = True, train: bool = True) -> Data:
    """Load data set ``name`` (a :data:`REGISTRY` name) as a :class:`Data` with values in ``value_range``.

    subset: seeded random subset of that many items (None = all); image_size: resize images to
    N x N (CelebA defaults to 32, center-cropped); pts: points for points1d/points2d;
    verify=False skips torchvision's MD5 checks (also set by the env var KALS_SKIP_MD5=1);
    train=False reads the held-out (test) split, for the data sets in HELD_OUT.
    """
    value_range = tuple(float(v) for v in value_range)
    if name in ("points1d", "points2d"):
        data = points(pts, dim=int(name[6]), value_range=value_range)
        if data.dim != int(name[6]):
            raise KalsError(f"data set {name} needs {name[6]}D points, but the points given are {data.dim}D "
                            f"({pts!r}); write them like {PAPER_POINTS[int(name[6])]!r} or use points{data.dim}d")
        return data
    if image_size is not None:
        image_size = check_int("image size", image_size, 1)
    root = Path(root).expanduser()
    if verify is None:
        verify = os.environ.get("KALS_SKIP_MD5", "") not in ("1", "true", "yes")
    cache = cache and name in REGISTRY and REGISTRY[name].cached
    key = f"{name}{'' if train else '-test'}-n{subset}-s{seed}-px{image_size}"
    cache_file = root / "kals_cache" / f"{key}.pt"
    if cache and cache_file.is_file():
        blob = torch.load(cache_file, weights_only=True)
        u8, labels, class_names = blob["u8"], blob.get("labels"), blob.get("class_names")
    else:
        u8, labels, class_names = _load_images(name, root, subset, seed, image_size, download, verify, train)
        if cache:
            _try_cache({"u8": u8, "labels": labels, "class_names": class_names}, cache_file)
    x = _to_range(u8, value_range)
    return Data(x=x, value_range=value_range, name=name, image_shape=tuple(u8.shape[1:]),
                labels=labels, class_names=class_names, subset=subset, seed=seed)


def _try_cache(blob: dict, path: Path) -> None:
    """Save ``blob`` for next time; a read-only data folder just means no cache."""
    try:
        atomic_torch_save(blob, path)
    except KalsError:
        pass


def _load_images(name, root, subset, seed, image_size, download, verify, train=True):
    """uint8 (N, C, H, W), labels or None, class names or None for an image data set name."""
    if name.startswith("folder:"):  # the folder and CelebA read only the subset's files
        return _load_folder(name[len("folder:"):], subset, seed, image_size)
    if name not in REGISTRY or name in ("points1d", "points2d"):
        raise KalsError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if not train and not REGISTRY[name].held_out:
        raise KalsError(f"{name} has no held-out split kals can read; held-out images come from {', '.join(HELD_OUT)}")
    if name == "celeba":
        return _load_celeba(root, download, verify, subset, seed, image_size)
    u8, labels, classes = REGISTRY[name].load(root, download, verify, train)
    idx = select_subset(len(u8), subset, seed, name)
    return _resize_u8(u8[idx], image_size), (None if labels is None else labels[idx]), classes
