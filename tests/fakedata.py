"""Small fake data sets written in the real on-disk formats that torchvision (and kals) read.

Every writer puts its files where ``torchvision.datasets`` looks for them under ``root``, so the
real loader code runs on them. The pixel values encode which item an image is, so tests can check
that a subset or a class filter picked exactly the right images:

- MNIST-format IDX: image i is filled with the value ``i % 256``; its label is ``i % 10``.
- CIFAR-10 pickles: image k of the whole training set has red channel ``k % 256``, green ``label*20``;
  labels cycle ``k % 10`` (so every 10th image is a dog, class 5).
- CelebA: face-sized (178 x 218) JPEGs of drawn faces, plus torchvision's five txt files.
"""

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np

FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def _idx_images(n: int, offset: int = 0) -> bytes:
    pixels = np.repeat(((np.arange(n) + offset) % 256).astype(np.uint8), 28 * 28)
    return struct.pack(">IIII", 0x803, n, 28, 28) + pixels.tobytes()


def _idx_labels(n: int, offset: int = 0) -> bytes:
    return struct.pack(">II", 0x801, n) + ((np.arange(n) + offset) % 10).astype(np.uint8).tobytes()


def write_mnist(root, n_train: int = 200, n_test: int = 20, folder: str = "MNIST", gz: bool = False) -> Path:
    """IDX files (big-endian headers, uint8 pixels) in ``root/<folder>/raw/``; ``gz`` writes only
    the ``.gz`` files (with other MD5s than torchvision's downloads, like a re-packed copy)."""
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    blobs = [_idx_images(n_train), _idx_labels(n_train), _idx_images(n_test, 7), _idx_labels(n_test, 7)]
    for name, blob in zip(MNIST_FILES, blobs):
        if gz:
            with gzip.open(raw / f"{name}.gz", "wb") as f:
                f.write(blob)
        else:
            (raw / name).write_bytes(blob)
    return raw


def link_debian_fashion(root) -> Path:
    """Symlink Debian's real Fashion-MNIST .gz files into ``root/FashionMNIST/raw/``."""
    if not FASHION_DEBIAN.is_dir():
        raise RuntimeError(f"{FASHION_DEBIAN} is missing: install Debian's dataset-fashion-mnist "
                           "(bash setup.sh --test as root does)")
    raw = Path(root) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        os.symlink(FASHION_DEBIAN / f"{name}.gz", raw / f"{name}.gz")
    return raw


def cifar_image(k: int) -> np.ndarray:
    """The (3, 32, 32) uint8 image number k of the fake CIFAR training set."""
    img = np.zeros((3, 32, 32), np.uint8)
    img[0] = k % 256
    img[1] = (k % 10) * 20
    img[2] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]
    return img


def write_cifar(root, per_batch: int = 50, n_test: int = 10) -> Path:
    """``root/cifar-10-batches-py/`` with data_batch_1..5, test_batch and batches.meta, pickled as
    the real files are: dicts with 'data' (N, 3072) uint8 (R, G, B planes) and 'labels'."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(ks, label):
        data = np.stack([cifar_image(k).reshape(-1) for k in ks])
        return {"batch_label": label, "labels": [k % 10 for k in ks], "data": data,
                "filenames": [f"fake_{k:05d}.png" for k in ks]}

    for b in range(5):
        ks = range(b * per_batch, (b + 1) * per_batch)
        with open(folder / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump(batch(ks, f"training batch {b + 1} of 5"), f, protocol=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch(range(n_test), "testing batch 1 of 1"), f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}, f,
                    protocol=2)
    return folder


def face(rng: np.random.Generator, size=(178, 218)):
    """A drawn face (PIL RGB image, CelebA's aligned size 178 x 218)."""
    from PIL import Image, ImageDraw
    w, h = size
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(40, 220, 3)))
    d = ImageDraw.Draw(img)
    skin = tuple(int(v) for v in rng.integers(120, 240, 3))
    cx, cy = w // 2 + int(rng.integers(-8, 9)), h // 2 + int(rng.integers(-8, 9))
    d.ellipse([cx - 55, cy - 75, cx + 55, cy + 75], fill=skin)
    d.pieslice([cx - 60, cy - 85, cx + 60, cy + 10], 180, 360, fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    for ex in (cx - 25, cx + 25):
        d.ellipse([ex - 8, cy - 12, ex + 8, cy], fill=(255, 255, 255))
        d.ellipse([ex - 4, cy - 9, ex + 4, cy - 3], fill=(30, 30, 30))
    d.arc([cx - 25, cy + 20, cx + 25, cy + 50], 20, 160, fill=(150, 30, 40), width=4)
    return img


def write_faces(folder, n: int = 24, seed: int = 0) -> list:
    """``n`` face JPEGs ``000001.jpg``... in ``folder`` (CelebA's names); returns the file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        face(rng).save(folder / name, quality=90)
    return names


ATTRS = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
         "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
         "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
         "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
         "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
LANDMARKS = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"


def write_celeba(root, n: int = 24, n_valid: int = 2, n_test: int = 2, seed: int = 0) -> Path:
    """torchvision's CelebA layout: ``root/celeba/img_align_celeba/*.jpg`` and the five txt files
    (partition: the first n - n_valid - n_test images are the train split)."""
    base = Path(root) / "celeba"
    names = write_faces(base / "img_align_celeba", n, seed)
    n_train = n - n_valid - n_test
    part = [0] * n_train + [1] * n_valid + [2] * n_test
    rows = lambda vals: "\n".join(f"{nm} {' '.join(map(str, v))}" for nm, v in zip(names, vals)) + "\n"
    (base / "list_eval_partition.txt").write_text(rows([[p] for p in part]))
    (base / "identity_CelebA.txt").write_text(rows([[1 + i % 5] for i in range(n)]))
    (base / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n" + rows([[95, 71, 226, 313]] * n))
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{LANDMARKS}\n" + rows([[69, 109, 106, 113, 77, 142, 73, 152, 108, 154]] * n))
    attrs = [[1 if (i + j) % 3 == 0 else -1 for j in range(len(ATTRS))] for i in range(n)]
    (base / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(ATTRS)}\n" + rows(attrs))
    return base


def write_all(root) -> Path:
    """A data root holding fake MNIST, CIFAR-10 and CelebA (torchvision layouts) and a plain folder
    of faces at ``root/faces``. Returns ``root``."""
    root = Path(root)
    write_mnist(root)
    write_cifar(root)
    write_celeba(root)
    write_faces(root / "faces", n=20, seed=1)
    return root

