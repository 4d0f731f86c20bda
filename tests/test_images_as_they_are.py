"""A folder of images is read as the images are (issue #35): 16-bit, 32-bit integer and float images
scaled to their value range (not clipped), transparency composited on black, phone photos turned
upright by their EXIF orientation tag."""

import numpy as np
import pytest
from PIL import Image

from kals_utils import load_data

LEVEL = 1 / 255 + 1e-6   # one grey level of the [0, 1] scale
RAMP = np.linspace(0.0, 1.0, 32 * 48).reshape(32, 48)   # 0 .. 1, left to right, top to bottom


def _load(folder, **kw):
    return load_data(f"folder:{folder}", value_range=(0, 1), **kw)


def _twins(tmp_path, deep: np.ndarray, ext: str):
    """The ramp written once at its own depth (``deep``) and once as 8 bits: (deep folder, 8-bit folder)."""
    a, b = tmp_path / "deep", tmp_path / "eight"
    a.mkdir()
    b.mkdir()
    Image.fromarray(deep).save(a / f"ramp.{ext}")
    Image.fromarray(np.round(RAMP * 255).astype(np.uint8)).save(b / "ramp.png")
    return a, b


@pytest.mark.parametrize("deep,ext,mode", [
    (np.round(RAMP * 65535).astype(np.uint16), "png", "I;16"),            # microscopes, medical, astronomy
    (np.round(RAMP * 65535).astype(">u2"), "tif", "I;16B"),                # big-endian 16-bit TIFF
    (np.round(RAMP * 65535).astype(np.int32), "tif", "I"),                 # 16-bit values read as 32 bits
    (np.round(RAMP * (2**31 - 1)).astype(np.int32), "tif", "I"),          # the whole 32-bit range
    (RAMP.astype(np.float32), "tif", "F"),                                 # float in [0, 1]
])
@pytest.mark.parametrize("size", [None, 16])
def test_a_deep_ramp_loads_as_its_8bit_twin(tmp_path, deep, ext, mode, size):
    a, b = _twins(tmp_path, deep, ext)
    with Image.open(next(a.iterdir())) as im:
        assert im.mode == mode  # the file really is what the case says
    x, x8 = _load(a, image_size=size).x, _load(b, image_size=size).x
    assert x.shape == x8.shape and (x - x8).abs().max() <= LEVEL
    assert abs(float(x.mean()) - 0.5) < 0.02  # not white (the clipped 16-bit ramp read 0.998)


def test_a_float_image_outside_0_1_is_stretched_from_its_min_to_its_max(tmp_path):
    a, b = _twins(tmp_path, (RAMP * 7.0 - 3.0).astype(np.float32), "tif")
    assert (_load(a).x - _load(b).x).abs().max() <= LEVEL


def test_transparency_is_composited_on_black(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)        # opaque red
    rgba[:, 2] = (0, 255, 0, 0)           # fully transparent, storing green
    rgba[:, 3] = (200, 100, 50, 128)      # half transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    d = _load(tmp_path)
    img = d.x.reshape(d.image_shape).numpy() * 255
    assert d.image_shape == (3, 4, 4)
    assert np.allclose(img[:, :, :2], np.array([255, 0, 0])[:, None, None])
    assert np.allclose(img[:, :, 2], 0)
    assert np.abs(img[:, :, 3] - np.array([200, 100, 50])[:, None] * 128 / 255).max() <= 1


def test_grey_with_alpha_stays_grey_on_black(tmp_path):
    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 0], la[:2, :, 1] = 200, 255   # top half opaque, bottom half transparent
    Image.fromarray(la).save(tmp_path / "la.png")
    d = _load(tmp_path)
    img = d.x.reshape(4, 4).numpy() * 255
    assert d.image_shape == (1, 4, 4) and np.allclose(img[:2], 200) and np.allclose(img[2:], 0)


def _upright_marked(h=24, w=40):
    """An upright RGB picture, wider than tall: dark, with a bright block at the top-left corner of its
    centre square (columns 8 to 32)."""
    up = np.full((h, w, 3), 30, np.uint8)
    up[:8, 8:16] = 250
    return up


@pytest.mark.parametrize("orientation,stored", [(6, lambda up: np.rot90(up, 1)), (8, lambda up: np.rot90(up, -1))])
def test_an_exif_rotated_photo_loads_upright(tmp_path, orientation, stored):
    up = _upright_marked()
    exif = Image.Exif()
    exif[0x0112] = orientation  # what a phone held upright writes with its sideways sensor data
    Image.fromarray(np.ascontiguousarray(stored(up))).save(tmp_path / "photo.jpg", quality=95, exif=exif)
    d = _load(tmp_path)
    assert d.image_shape == (3, 24, 40)  # the upright shape, not the stored 40 x 24
    img = d.x.reshape(d.image_shape).numpy().mean(axis=0) * 255
    assert np.abs(img - up.mean(axis=2)).max() < 40  # JPEG's ringing at the block's edge stays well below
    assert img[:6, 8:14].min() > 200 and img[-8:, -8:].max() < 60
    square = _load(tmp_path, image_size=24).x.reshape(3, 24, 24).numpy().mean(axis=0) * 255
    assert square[:6, :6].min() > 200 and square[8:].max() < 60  # the centre square, upright
