"""Training data as one flat tensor: points, torchvision data sets, images that installed packages
ship (scikit-image, scikit-learn) and folders of images.

Every loader returns a :class:`Data`: ``x`` (N, D) float32 in ``value_range`` ([0, 1] or [-1, 1]),
``image_shape`` (C, H, W) for images (None for points), optional integer ``labels``.

:func:`load_data` is the one door. The data sets it knows are one table, :data:`REGISTRY`, in
:mod:`.datasets` with their readers (image files are decoded by :mod:`.images`); their names are
importable from here too. Subsets of the slow formats are seeded and cached on disk under
``<root>/kals_cache`` so a re-run does not decode the whole data set again.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .datasets import (CIFAR_DOG, DATASETS, HELD_OUT, LABELLED, REGISTRY, DataSet,  # noqa: F401 (re-exported)
                       _load_celeba, _load_folder, dataset_help, select_subset)
from .errors import KalsError, check_int
from .files import atomic_torch_save
from .images import IMAGE_EXTS, _resize_u8, image_files  # noqa: F401 (re-exported)


PAPER_POINTS = {1: "0.2;0.8", 2: "0.2,0.2;0.2,0.8;0.8,0.2;0.8,0.8"}


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
    note: str = ""                      # one line the caller should show (e.g. a subset larger than the data)

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


# ---------------------------------------------------------------- values <-> pixels
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


def load_data(name: str, *, root="data", subset: Optional[int] = None, seed: int = 0,
              value_range=(-1.0, 1.0), image_size: Optional[int] = None, pts=None,
              download: bool = True, verify: Optional[bool] = None, cache: bool = True, train: bool = True) -> Data:
    """Load data set ``name`` (a :data:`REGISTRY` name) as a :class:`Data` with values in ``value_range``.

    subset: seeded random subset of that many items (None = all; more than there are = all, and
    ``Data.note`` says so in one line for the caller to show); image_size: resize images to
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
    note = (f"subset {subset} is more than the {len(u8)} images of {name}: all {len(u8)} are used"
            if subset is not None and subset > len(u8) else "")
    return Data(x=x, value_range=value_range, name=name, image_shape=tuple(u8.shape[1:]),
                labels=labels, class_names=class_names, subset=subset, seed=seed, note=note)


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
    u8, labels, classes = REGISTRY[name].load(root, download, verify, train, image_size)
    idx = select_subset(len(u8), subset, seed)
    return _resize_u8(u8[idx], image_size), (None if labels is None else labels[idx]), classes
