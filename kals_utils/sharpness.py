"""How sharp images are: the mean image gradient, per image and against the training images'.

Pixel distances reward blur (a soft average lies near many images), so variety alone is not quality:
the selection rule (:mod:`.selection`) and the evaluation (:mod:`.measures.collapse`) both read this.
"""

import torch

from .errors import KalsError
from .neighbours import _float2d


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
    images are flat): about 1 for real-looking images, well below 1 for blur, above 1 for noise."""
    ref = float(sharpness(train, image_shape).mean())
    return float(sharpness(samples, image_shape).mean()) / ref if ref > 0 else float("nan")
