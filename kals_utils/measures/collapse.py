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

from ..neighbours import (REAL_MAX, REAL_SPLITS, distinct_nearest, memorized_std_fraction,  # noqa: F401
                          nearest_neighbours, real_at_ratio, standardise)                               # (re-exported)
from ..sharpness import sharpness, sharpness_ratio  # noqa: F401 (re-exported)


def collapse_measures(samples, train, image_shape: Optional[tuple] = None) -> dict:
    """``{"distinct": distinct_nearest, "sharpness": sharpness_ratio, "memorized_std": the copy test on
    standardised images}`` of ``samples`` (memorized_std nan with fewer than 2 training images)."""
    return {"distinct": distinct_nearest(samples, train),
            "sharpness": sharpness_ratio(samples, train, image_shape),
            "memorized_std": memorized_std_fraction(samples, train) if len(train) >= 2 else float("nan")}
