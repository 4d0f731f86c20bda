"""Three folders of images a newcomer might bring, built from data on this machine (issue #29: "checked on
image sets you have not seen"), for ``python benchmarks/selection.py travel --data folder:DIR/NAME --size 0``.

    python benchmarks/folders.py DIR [--fashion /usr/share/datasets/fashion-mnist]

- ``grey-crops``: 300 random 48 x 48 crops (seeded) of scikit-image's grey pictures (camera, coins, moon, page,
  text, brick, grass, gravel, clock, horse, checkerboard), about 28 from each: a few textures, many crops;
- ``lfw-background``: the 100 images of scikit-image's ``lfw_subset`` that are *not* faces (its last 100, 25 x 25);
- ``sneakers``: the first 500 sneakers (class 7) of Fashion-MNIST's test split, 28 x 28 (Debian's IDX files);
- ``colour-mix``: 1,000 random crops (seeded, sides 40 px to a quarter of the picture), resized to 40 x 40, of five
  colour pictures that scikit-image ships without a download: the Hubble deep field, an immunohistochemistry
  slide, a retina, a colour wheel and the scikit-image logo, 200 from each.
PNG files, one per image.
"""

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

GREY = ("camera", "coins", "moon", "page", "text", "brick", "grass", "gravel", "clock", "horse", "checkerboard")
CROP, CROPS = 48, 300


def grey_crops(out: Path, seed: int = 0) -> int:
    import skimage.data as sk
    rng, pics = np.random.default_rng(seed), []
    for name in GREY:
        a = getattr(sk, name)()
        pics.append((name, (a * 255).astype(np.uint8) if a.dtype == bool else a.astype(np.uint8)))
    per, k = -(-CROPS // len(pics)), 0
    for name, a in pics:
        for j in range(per):
            if k < CROPS:
                y, x = rng.integers(0, a.shape[0] - CROP), rng.integers(0, a.shape[1] - CROP)
                Image.fromarray(a[y:y + CROP, x:x + CROP]).save(out / f"{name}_{j:03d}.png")
                k += 1
    return k


def lfw_background(out: Path) -> int:
    import skimage.data as sk
    imgs = np.clip(np.round(sk.lfw_subset()[100:] * 255), 0, 255).astype(np.uint8)
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(out / f"background_{i:03d}.png")
    return len(imgs)


def sneakers(out: Path, root: Path) -> int:
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    for i, j in enumerate(np.where(y == 7)[0][:500]):
        Image.fromarray(x[j]).save(out / f"sneaker_{i:03d}.png")
    return min(500, int((y == 7).sum()))


COLOUR = ("hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "logo")
COLOUR_CROPS, COLOUR_SIDE = 1000, 40


def colour_mix(out: Path, seed: int = 5) -> int:
    import skimage.data as sk
    rng, per, k = np.random.default_rng(seed), COLOUR_CROPS // len(COLOUR), 0
    for name in COLOUR:
        a = getattr(sk, name)()[..., :3]          # the logo has an alpha channel
        h, w = a.shape[:2]
        for j in range(per):
            s = int(rng.integers(COLOUR_SIDE, max(COLOUR_SIDE + 1, min(h, w) // 4)))
            y, x = rng.integers(0, h - s), rng.integers(0, w - s)
            crop = Image.fromarray(np.ascontiguousarray(a[y:y + s, x:x + s]))
            crop.resize((COLOUR_SIDE, COLOUR_SIDE), Image.LANCZOS).save(out / f"{name}_{j:03d}.png")
            k += 1
    return k


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--fashion", default="/usr/share/datasets/fashion-mnist", help="folder of Fashion-MNIST's IDX .gz")
    args = p.parse_args(argv)
    for name, make in (("grey-crops", grey_crops), ("lfw-background", lfw_background),
                       ("sneakers", lambda d: sneakers(d, Path(args.fashion))), ("colour-mix", colour_mix)):
        d = Path(args.out) / name
        d.mkdir(parents=True, exist_ok=True)
        print(f"{d}: {make(d)} images")


if __name__ == "__main__":
    main()
