"""Measures that see collapse: do the samples spread over many training images, and are they as
sharp as real images?

Pixel precision and coverage reward blur: in 1,024 dimensions a blurry mean face lies closer to every
training face than most faces do to each other, so a generator whose chains all end on a few blurry
faces can read pixel precision and coverage 1.0 (issue #29). Three numbers catch that:

* :func:`distinct_nearest` — how many *different* training images the samples are nearest to, over
  min(#samples, #train), after standardising every image (minus its mean, over its standard
  deviation). Standardising removes brightness and contrast, so a handful of faces that differ only
  in brightness count as a handful, and a flat grey sample does not land near every dark image.
  1 = every sample nearest to its own training image; 1/#samples = all on one.
* :func:`sharpness_ratio` — the mean image gradient (RMS of horizontal and vertical neighbour
  differences, per image) of the samples over that of the training images: about 1 for real-looking
  images, well below 1 for blur, above 1 for noise.
* ``memorized_std`` — the 1/3 copy test (:func:`neighbours.memorization`) on standardised images: a
  walk that ends on its training faces with their contrast raised reads 6% copies in pixels and 60%
  here (100 LFW faces, issue #29).

All are cheap (one nearest-neighbour search, one difference per pixel) and take flat (N, D) data.

What do real images read? :func:`real_at_ratio` splits the training set into a reference part and a
held-out part at the samples-to-training ratio of the evaluation and measures the held-out real images
as if they were samples: coverage and distinct nearest images both grow with the number of samples per
training image, and nearest neighbours in pixels crowd onto a few "hub" images, so real, unseen faces do
not read 1.0 either (100 LFW faces at 3 samples per image: about 0.7).
"""

from typing import Optional

import torch

from ..errors import KalsError, check_int
from ..neighbours import (REAL_MAX, REAL_SPLITS, _float2d, distinct_nearest, memorized_std_fraction,  # noqa: F401
                          nearest_neighbours, real_at_ratio, standardise)                               # (re-exported)


def _grid(x, image_shape) -> torch.Tensor:
    """Flat (N, D) -> (N, C, H, W); data without an image shape count as one row of pixels."""
    x = _float2d(x, "images")
    if image_shape is None:
        return x[:, None, None, :]
    c, h, w = (int(v) for v in image_shape)
    if x.shape[1] != c * h * w:
        raise KalsError(f"data of shape {tuple(x.shape)} do not match image shape {(c, h, w)}")
    return x.reshape(len(x), c, h, w)


def sharpness(x, image_shape=None) -> torch.Tensor:
    """(N,) mean image gradient per image: RMS of the differences between horizontal and vertical
    neighbours, over every channel, on the data's own scale."""
    g = _grid(x, image_shape)
    parts = [g[..., :, 1:] - g[..., :, :-1]]
    if g.shape[2] > 1:
        parts.append(g[..., 1:, :] - g[..., :-1, :])
    sq = sum(p.pow(2).sum(dim=(1, 2, 3)) for p in parts)
    n = sum(p[0].numel() for p in parts)
    return (sq / n).sqrt()


def sharpness_ratio(samples, train, image_shape=None) -> float:
    """Mean :func:`sharpness` of the samples / that of the training images (nan if the training
    images are flat)."""
    ref = float(sharpness(train, image_shape).mean())
    return float(sharpness(samples, image_shape).mean()) / ref if ref > 0 else float("nan")


def collapse_measures(samples, train, image_shape: Optional[tuple] = None) -> dict:
    """``{"distinct": distinct_nearest, "sharpness": sharpness_ratio, "memorized_std": the copy test on
    standardised images}`` of ``samples`` (memorized_std nan with fewer than 2 training images)."""
    return {"distinct": distinct_nearest(samples, train),
            "sharpness": sharpness_ratio(samples, train, image_shape),
            "memorized_std": memorized_std_fraction(samples, train) if len(train) >= 2 else float("nan")}
