"""Every frame kals shows or writes: image grids, walk frames, GIF/PNG files and their names.

Image frames go tensor -> uint8 in one batched reshape (the layout of ``torchvision.utils.make_grid``:
``padding`` pixels around every cell), never through a figure per frame; values map to pixels only
through :func:`data.quantize`. A label band (a title and "step N") goes on top of image frames with
Pillow (:func:`label_frames`). Headless: no matplotlib (1D/2D walks are drawn in :mod:`plots`).
"""

import io
import math
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .errors import KalsError, check_float
from .files import atomic_path
from .data import quantize

GIF_CHAINS = 48        # chains shown in an image GIF ...
GIF_COLUMNS = 8        # ... as a grid 8 wide (48 chains: 8 x 6)
GIF_SCALE = 2          # nearest-neighbour pixel upscaling of image GIFs ...
GIF_UPSCALE_MAX = 32   # ... of images up to this many px a side (a 48-px grid at 2x: 30 MB for 100 frames)
GIF_FPS = 8.0          # frames per second
GIF_HOLD_LAST = 4      # extra frame-times the last frame stays
LABEL_MIN_FONT, LABEL_MAX_FONT = 11, 18   # label band text size in px (grows with the frame's width)
LABEL_PAD = 3          # px around the label band's text


def to_uint8(x: torch.Tensor, value_range=(0.0, 1.0)) -> torch.Tensor:
    """uint8 0..255 for values in ``value_range``; uint8 input is returned as is."""
    return x if x.dtype == torch.uint8 else quantize(x, value_range)


def grid_frames(frames: torch.Tensor, image_shape, value_range=(0.0, 1.0), nrow: Optional[int] = None,
                padding: int = 2, scale: int = 1) -> np.ndarray:
    """Tile flat images into one grid per frame.

    frames: (F, R, D) or (R, D) with D = C*H*W, values in ``value_range`` (or uint8 0..255); ``nrow`` images per row
    (default ~sqrt(R)); ``scale`` integer nearest-neighbour upscaling.
    Returns uint8 (F, GH, GW) for C=1 or (F, GH, GW, 3) for C=3 (no F axis for a (R, D) input).
    """
    single = frames.ndim == 2
    if single:
        frames = frames[None]
    c, h, w = image_shape
    f, r, d = frames.shape
    if d != c * h * w:
        raise KalsError(f"frames have {d} values per image but image_shape {tuple(image_shape)} needs {c * h * w}")
    ncol = nrow or max(1, math.ceil(math.sqrt(r)))
    nrows = max(1, math.ceil(r / ncol))
    u8 = to_uint8(frames, value_range).view(f, r, c, h, w)
    if scale > 1:
        u8 = u8.repeat_interleave(scale, dim=3).repeat_interleave(scale, dim=4)
        h, w = h * scale, w * scale
    p = padding
    cells = torch.zeros((f, nrows * ncol, c, h + p, w + p), dtype=torch.uint8)
    cells[:, :r, :, p:, p:] = u8
    grid = cells.view(f, nrows, ncol, c, h + p, w + p).permute(0, 3, 1, 4, 2, 5)
    grid = grid.reshape(f, c, nrows * (h + p), ncol * (w + p))
    grid = torch.nn.functional.pad(grid, (0, p, 0, p))
    out = grid[:, 0] if c == 1 else grid.permute(0, 2, 3, 1)
    out = out.contiguous().numpy()
    return out[0] if single else out


def _font(size: int):
    """Pillow's bundled scalable font at ``size`` px (Pillow >= 10.1 with FreeType), else its fixed bitmap font."""
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError, AttributeError):
        return ImageFont.load_default()


def _label_font(width: int):
    """The font for a label band over frames ``width`` px wide, and the band's height."""
    font = _font(int(min(LABEL_MAX_FONT, max(LABEL_MIN_FONT, width // 24))))
    top, bottom = font.getbbox("Ag0")[1::2]
    return font, int(bottom - top + 2 * LABEL_PAD + 2)


def label_height(width: int) -> int:
    """Height in pixels of the band :func:`label_frames` puts above frames ``width`` pixels wide."""
    return _label_font(width)[1]


def _fit(draw, text: str, font, room: float) -> str:
    """``text``, cut with an ellipsis until it is at most ``room`` px wide ("" if nothing fits)."""
    while text and draw.textlength(text, font=font) > room:
        text = text[:-2] + "…" if len(text) > 1 else ""
    return text


def label_frames(frames, labels, title: str = "", *, fg: int = 255, bg: int = 0) -> np.ndarray:
    """uint8 frames (F, H, W[, 3]) with a band on top: ``title`` on the left, ``labels[i]`` (e.g.
    ``"step 15"``) right-aligned on frame i, drawn with Pillow (text colour ``fg`` on ``bg``).

    Returns (F, label_height(W) + H, W[, 3]); a text too wide for the band is cut with an ellipsis.
    """
    from PIL import Image, ImageDraw
    frames = np.asarray(frames)
    labels = list(labels)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(labels) != len(frames):
        raise KalsError(f"label_frames needs uint8 frames (F, H, W[, 3]) and one label per frame; got "
                        f"{frames.dtype} {frames.shape} and {len(labels)} labels")
    f, _, w = frames.shape[:3]
    font, band = _label_font(w)
    top = np.full((band, w) + frames.shape[3:], bg, np.uint8)
    base = Image.fromarray(top)
    draw = ImageDraw.Draw(base)
    y = LABEL_PAD + 1 - font.getbbox("Ag0")[1]   # the ink of "Ag0" centred in the band
    right = max((draw.textlength(t, font=font) for t in labels), default=0.0)
    title = _fit(draw, title, font, w - right - 3 * LABEL_PAD)
    if title:
        draw.text((LABEL_PAD, y), title, fill=fg, font=font)
    out = np.empty((f, band + frames.shape[1]) + frames.shape[2:], np.uint8)
    out[:, band:] = frames
    cache = {}
    for i, text in enumerate(labels):
        if text not in cache:
            img = base.copy()
            d = ImageDraw.Draw(img)
            text_fit = _fit(d, text, font, w - 2 * LABEL_PAD)
            d.text((w - LABEL_PAD - d.textlength(text_fit, font=font), y), text_fit, fill=fg, font=font)
            cache[text] = np.asarray(img)
        out[i, :band] = cache[text]
    return out


def gif_scale(image_shape) -> int:
    """The pixel upscaling of an image GIF: GIF_SCALE for images up to GIF_UPSCALE_MAX px a side, else 1."""
    return GIF_SCALE if image_shape is None or max(image_shape[-2:]) <= GIF_UPSCALE_MAX else 1


def save_gif(frames, path, fps: float = 10.0, loop: int = 0, hold_last: int = 0) -> Path:
    """Write uint8 frames (F, H, W) or (F, H, W, 3) to an animated GIF; the last frame stays
    ``hold_last`` frame-times longer. Returns the path.

    GIF writers merge identical consecutive frames into one (longer) frame, so a chain that has
    converged adds no frames: the file's frame count is that of the *distinct* consecutive frames.
    """
    import imageio.v3 as iio
    fps = check_float("fps", fps, 0.0, strict=True)
    if fps > 100:
        raise KalsError(f"fps must be at most 100 (GIF timing is in hundredths of a second), got {fps:g}")
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0:
        raise KalsError(f"GIF frames must be a non-empty uint8 array (F, H, W[, 3]); got {frames.dtype} {frames.shape}")
    ms = int(round(1000 / fps))
    durations = [ms] * (len(frames) - 1) + [ms * (1 + hold_last)]
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=durations, loop=loop)
    return Path(path)


def save_png(image, path) -> Path:
    """Write one uint8 image (H, W) or (H, W, 3|4) to PNG. Returns the path."""
    import imageio.v3 as iio
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.asarray(image), extension=".png")
    return Path(path)


def read_gif(path) -> np.ndarray:
    """Decode a GIF to uint8 RGB (F, H, W, 3) (for checks and tests). Uses Pillow directly: imageio's
    reader fails on greyscale GIFs (Pillow mode L has no palette)."""
    from PIL import Image, ImageSequence
    with Image.open(path) as im:
        return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)])


def png_bytes(img: np.ndarray) -> bytes:
    """A uint8 image (H, W) or (H, W, 3) as PNG file bytes (for widgets and downloads)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def safe_name(text: str) -> str:
    """``text`` made safe for a file name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "data"


def gif_name(config, chains: int, steps: int, eps: float, start: str, extra: str = "") -> str:
    """A file name that says the data set and the settings, e.g.
    ``mnist_L10_H500_c48_T300_eps0.01_uniform.gif``; a ``folder:PATH`` data set is named by the
    folder's base name. ``start``: the start noise, or the recipe's start (e.g. ``data``)."""
    ds = config.dataset
    if ds.startswith("folder:"):
        ds = "folder-" + Path(ds[len("folder:"):].rstrip("/\\")).name
    return f"{safe_name(ds)}_L{config.depth}_H{config.width}_c{chains}_T{steps}_eps{eps:g}_{start}{re.sub(r'[^A-Za-z0-9._-]+', '_', extra)}.gif"
