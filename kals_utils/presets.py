"""Every default, once. The command line, the panel, the demo and the notebooks' ``parameters``
cells read them from here; change a value here and all of them follow.

A :class:`Preset` is the paper's settings for one notebook / data set (arXiv 2402.11793, its
experiments table: ../shared/paper-facts.md); :func:`preset_for` picks the one for a data set name.
"""

import os
from dataclasses import dataclass
from typing import Optional

# ---- training
EPOCHS = 2000            # passes over the data (the paper's 1D/2D budget)
LR = 1e-3                # Adam learning rate (the paper's 1D/2D value; its MNIST net used 1e-4)
SEED = 0                 # weights, batches, start noise and jitter
PRECISION = "auto"       # bf16 matmuls where the device has them natively and the net is big; else fp32
RECIPE = "paper"         # how f is trained and where chains start (recipes.RECIPES)
MIRROR = "auto"          # train the improved recipe on the images' left-right mirrors too: auto, on, off (mirror.py)
ARCH = "mlp"             # the net f (model.ARCHS)
ARCH_DEPTHS = {"mlp": 4, "cnn": 4, "unet": 3, "transformer": 4}   # L per architecture at ~60K weights

# ---- sampling
CHAINS = 100             # chains in a walk
STEPS = 100              # applications of f
EVERY = 1                # record every k-th step
EPS = 0.0                # between-step zero-mean jitter scale
NOISE = "uniform"        # start noise: uniform over the range, or "normal" (clipped N(mid, half-width))
JITTER = "uniform"       # between-step jitter: zero-mean uniform[-1, 1] or N(0, 1), times eps

# ---- files
OUT_DIR = "saved_samples"   # GIFs, PNGs, JSON: <repo>/saved_samples (or $KALS_OUT), see files.out_dir
DATA_DIR = "data"           # data sets: <repo>/data (or $KALS_DATA), see files.data_dir


@dataclass(frozen=True)
class Preset:
    """The paper's settings for one data set (a notebook's ``parameters`` cell starts from them)."""

    data: str                          # data set name (data.DATASETS)
    depth: int                         # L: Linear layers
    width: int                         # H: hidden width
    epochs: int = EPOCHS
    updates: Optional[int] = None      # budget in optimizer updates, wins over epochs (the image presets')
    lr: float = LR
    batch_size: Optional[int] = None   # None: full batch
    subset: Optional[int] = None       # seeded random subset of a large data set (None: all)
    image_size: Optional[int] = None   # resize images to N x N (None: native)
    recipe: str = RECIPE
    chains: int = CHAINS
    steps: int = STEPS
    every: int = EVERY
    eps: float = EPS
    noise: str = NOISE


_IMAGES = dict(depth=10, epochs=10_000, updates=10_000, lr=1e-4, batch_size=1000, subset=1000, recipe="improved",
               chains=48, steps=300, every=5, eps=0.01, noise="uniform")   # the paper's MNIST net and walk
QUICK_UPDATES = 5000     # QUICK's budget: Adam updates of batch 100, a few CPU minutes on any number of images
PRESETS = {
    "points1d": Preset("points1d", depth=7, width=10, chains=10, steps=30, noise="normal"),
    "points2d": Preset("points2d", depth=7, width=50, chains=100, steps=15, noise="normal"),
    "mnist": Preset("mnist", width=500, **_IMAGES),
    "fashion-mnist": Preset("fashion-mnist", width=500, **_IMAGES),
    "cifar-dogs": Preset("cifar-dogs", width=2000, image_size=32, **_IMAGES),
    "celeba": Preset("celeba", width=1000, image_size=32, **_IMAGES),
    # offline stand-ins (datasets.REGISTRY), all of their images, at CelebA's and CIFAR-10's settings
    "lfw-faces": Preset("lfw-faces", width=1000, image_size=32, **{**_IMAGES, "subset": None}),
    "sample-photos": Preset("sample-photos", width=2000, image_size=32, **{**_IMAGES, "subset": None}),
    # any folder of images: a first try that finishes on a laptop CPU (QUICK's net and schedule, all images);
    # the paper's own schedule is celeba's (H = 1000, 10,000 updates of batch 1000 at lr 1e-4)
    "folder": Preset("folder", image_size=32, **{**_IMAGES, "subset": None, "width": 500, "updates": QUICK_UPDATES,
                                                 "lr": 1e-3, "batch_size": 100}),
}

# What the image notebooks' QUICK and SMOKE switches change (walkthrough.ImageNotebook):
QUICK_IMAGES = dict(width=500, updates=QUICK_UPDATES, lr=1e-3, batch_size=100, steps=60, every=2,
                    show_steps=(0, 2, 5, 10, 30, 60))   # recognisable samples in minutes on a CPU
SMOKE_IMAGES = dict(subset=16, width=64, updates=40, batch_size=8, snapshots=3, chains=16, steps=20, every=2,
                    show_steps=(0, 10, 20))              # every cell runs in seconds (CI)


def smoke() -> bool:
    """True when ``$KALS_SMOKE`` is ``1``: a notebook's ``SMOKE`` switch (CI sizes, every cell in seconds)."""
    return os.environ.get("KALS_SMOKE", "0") == "1"


def preset_for(name: str) -> Preset:
    """The preset of data set ``name``; ``folder:PATH`` (and any name without one) gets ``folder``'s."""
    key = "folder" if str(name).startswith("folder:") else str(name)
    return PRESETS.get(key, PRESETS["folder"])

