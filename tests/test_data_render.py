import numpy as np
import pytest
import torch

from kals_utils import KalsError, load_data, points
from kals_utils.data import parse_points, select_subset
from kals_utils.render import grid_frames, read_gif, save_gif, save_png, to_uint8


def test_parse_points():
    assert parse_points("0.2;0.8").tolist() == [[0.2], [0.8]] or torch.allclose(
        parse_points("0.2;0.8"), torch.tensor([[0.2], [0.8]]))
    assert parse_points("0.2,0.2;0.8,0.8").shape == (2, 2)
    for bad in ("a;b", "0.1,0.2;0.3", ""):
        with pytest.raises(KalsError):
            parse_points(bad)
    assert points(dim=2).x.shape == (4, 2)


def test_subset_is_seeded_sized_and_checked():
    a, b, c = select_subset(100, 10, 0), select_subset(100, 10, 0), select_subset(100, 10, 1)
    assert torch.equal(a, b) and not torch.equal(a, c) and len(set(a.tolist())) == 10
    for n in (5, 6, None):  # as large as the data or larger: all of it, in order (load_data notes it)
        assert select_subset(5, n, 0).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(KalsError, match="subset"):
        select_subset(5, 0, 0)


def test_folder_loader(tiny_folder):
    d = load_data(f"folder:{tiny_folder}", value_range=(-1, 1))
    assert d.x.shape == (12, 3 * 8 * 8) and d.image_shape == (3, 8, 8)
    assert d.x.min() >= -1 and d.x.max() <= 1
    s = load_data(f"folder:{tiny_folder}", subset=5, seed=1, value_range=(0, 1), image_size=4)
    assert s.x.shape == (5, 3 * 4 * 4) and s.x.min() >= 0


def test_folder_errors(tmp_path, tiny_folder):
    with pytest.raises(KalsError, match="does not exist"):
        load_data(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KalsError, match="no images"):
        load_data(f"folder:{tmp_path / 'empty'}")
    from PIL import Image
    Image.new("RGB", (5, 9)).save(tiny_folder / "odd.png")
    with pytest.raises(KalsError, match="mixed sizes"):
        load_data(f"folder:{tiny_folder}")
    (tiny_folder / "odd.png").write_bytes(b"not a png")
    with pytest.raises(KalsError, match="cannot read image"):
        load_data(f"folder:{tiny_folder}")
    with pytest.raises(KalsError, match="unknown data set"):
        load_data("imagenet")


def test_grid_frames_layout_matches_make_grid():
    from torchvision.utils import make_grid
    x = torch.rand(2, 5, 3 * 4 * 4)
    g = grid_frames(x, (3, 4, 4), (0, 1), nrow=3)
    assert g.shape == (2, 2 * 6 + 2, 3 * 6 + 2, 3) and g.dtype == np.uint8
    ref = make_grid(to_uint8(x[1]).view(5, 3, 4, 4), nrow=3, padding=2)
    assert np.array_equal(g[1], ref.permute(1, 2, 0).numpy())
    grey = grid_frames(torch.zeros(4, 16) - 1, (1, 4, 4), (-1, 1))
    assert grey.ndim == 2 and grey.max() == 0


def test_gif_and_png_roundtrip(tmp_path):
    frames = np.stack([np.full((10, 12, 3), 20 * i, np.uint8) for i in range(6)])
    p = save_gif(frames, tmp_path / "a.gif", fps=5)
    back = read_gif(p)
    assert back.shape[:3] == (6, 10, 12)
    save_png(frames[2], tmp_path / "a.png")
    assert save_gif(frames, tmp_path / "new" / "sub" / "a.gif").is_file()  # missing folders are made
    with pytest.raises(KalsError, match="is a file, not a folder"):
        save_gif(frames, tmp_path / "a.png" / "a.gif")
