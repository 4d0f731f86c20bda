"""Image files as uint8 tensors: decode any file Pillow reads (16-bit, float, palette, alpha, EXIF
orientation) as 8-bit RGB or grey, centre-crop it square, resize it, and list a folder's images.
:mod:`.datasets` reads its data sets' files with these; nothing here knows a data set."""

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .errors import KalsError


IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _resize_u8(u8: torch.Tensor, size: Optional[int]) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, antialiased (no-op if size is None or equal)."""
    if size is None or (u8.shape[-1] == size and u8.shape[-2] == size):
        return u8
    import torch.nn.functional as F
    out = F.interpolate(u8.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _center_square(img):
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


_INT16_MAX, _INT32_MAX = 65535, 2**31 - 1
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")


def _scaled_to_8bit(im):
    """An ``I;16*``, ``I`` or ``F`` (one-channel, deeper than 8 bits) image as ``L``, scaled from its
    value range to 0..255 (see :func:`_decode_images` for the ranges)."""
    from PIL import Image
    a = np.nan_to_num(np.asarray(im, dtype=np.float64))
    low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "F":
        lo, hi = (0.0, 1.0) if 0.0 <= low and high <= 1.0 else (low, high)
    elif im.mode == "I" and not (0 <= low and high <= _INT16_MAX):  # 32-bit values beyond 16 bits
        lo, hi = 0.0, float(_INT32_MAX)
    else:  # I;16, I;16B, ... and a 16-bit image read as 32-bit I
        lo, hi = 0.0, float(_INT16_MAX)
    u8 = np.clip(np.round((a - lo) * (255.0 / max(hi - lo, 1e-12))), 0, 255).astype(np.uint8)
    return Image.fromarray(u8)


def _as_8bit(im):
    """``im`` as an 8-bit ``L`` (greyscale) or ``RGB`` image: deeper images scaled, alpha composited on black."""
    from PIL import Image
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in _ALPHA_MODES:
        grey = im.mode in ("LA", "La")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im.convert("RGBA"))
        return im.convert("L" if grey else "RGB")
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return _scaled_to_8bit(im)
    return im.convert("L" if im.mode in ("1", "L") else "RGB")


def _upright(im):
    """``im`` turned the way its EXIF orientation tag says (phone photos); unchanged if it has none
    or the tag cannot be read."""
    from PIL import ImageOps
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a broken EXIF block: keep the pixels as stored
        return im


def _fit_square(img, size: int):
    """A PIL image centre-cropped to a square and resized to ``size`` x ``size`` (bicubic; PIL
    antialiases when it shrinks): the one resize of the folder loader and the packaged sets."""
    from PIL import Image
    return _center_square(img).resize((size, size), Image.BICUBIC)


def _read_image(path: Path, size: Optional[int]):
    """One image file as an 8-bit ``L`` or ``RGB`` PIL image (:func:`_decode_images` says how), upright,
    centre-cropped and resized to ``size`` if given. A file PIL cannot decode safely (not an image,
    truncated, empty, a decompression bomb) is one KalsError."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.load()
            im = _as_8bit(_upright(im))
            if size is not None:  # resize at once: a folder of big photos never sits in memory whole
                return _fit_square(im, size)
            return im.copy()
    except Image.DecompressionBombError as e:
        raise KalsError(f"image {path} is too large to decode safely ({e}); shrink it or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise KalsError(f"cannot read image {path} ({type(e).__name__}: not an image, truncated or empty); "
                        "remove or replace it") from None


def _decode_images(paths, size: Optional[int]) -> torch.Tensor:
    """Decode image files to uint8 (N, C, H, W); C=1 if all are greyscale, else RGB.

    Each image is read at its own depth and scaled to kals' 256 levels, never clipped: 8-bit as is;
    16-bit (``I;16``, ``I;16B`` ...) divided by 65535; 32-bit integer (``I``) divided by 65535 if
    its values lie in 0..65535 (a 16-bit image read as 32 bits), else by 2^31 - 1 (negatives become 0);
    float (``F``) taken as [0, 1] if its values lie there, else stretched from its own min to max.
    16-bit RGB PNGs PIL already reads scaled to 8 bits. Transparency (RGBA, LA, a palette's
    transparent colour) is composited on **black**: a pixel keeps ``alpha * colour``, so a fully
    transparent pixel is 0 whatever colour it stores (for a white background, flatten the images
    yourself first). The EXIF orientation tag (phone photos) is applied before the centre crop.
    """
    imgs = [_read_image(p, size) for p in paths]
    mode = "L" if all(im.mode == "L" for im in imgs) else "RGB"
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
