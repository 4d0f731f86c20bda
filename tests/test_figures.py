"""Figures and GIF frames people look at (issue #12): legible 1D frames with one step label, 2D
maps with a visible chain, a legend and one colour bar, smooth heat-map GIFs, step counters and
recipe names in image GIFs, readable depth-sweep axes, grouped sample | nearest pairs."""
import numpy as np
import pytest
import torch

from kals_utils import Data, points, sample_run, train_run
from kals_utils import export, plots, studies
from kals_utils.faces.export import export_gif, frames_of
from kals_utils.errors import KalsError
from kals_utils.render import grid_frames, label_frames, label_height, read_gif


@pytest.fixture(scope="module")
def run1d():
    return train_run(points(dim=1), depth=7, width=10, epochs=600, device="cpu", progress=False)


@pytest.fixture(scope="module")
def run2d():
    return train_run(points(dim=2), depth=5, width=30, epochs=600, device="cpu", progress=False)


def _toy_images(n: int = 6) -> Data:
    """n distinct 8x8 greyscale images in [-1, 1] (bars at different places)."""
    x = -torch.ones(n, 1, 8, 8)
    for i in range(n):
        x[i, 0, i % 8, :] = 1.0
        x[i, 0, :, (3 * i) % 8] = 0.5
    return Data(x=x.reshape(n, -1), value_range=(-1.0, 1.0), name="toy", image_shape=(1, 8, 8))


@pytest.fixture(scope="module")
def image_run():
    return train_run(_toy_images(), depth=3, width=32, epochs=60, device="cpu", progress=False)


def _band(frames):
    return frames[:, :label_height(frames.shape[2])]


# ---------------------------------------------------------------- 1D frames
def test_1d_frames_are_notebook_width_with_one_step_label(run1d):
    walk = sample_run(run1d, chains=6, steps=10, noise="normal", seed=0)
    frames = frames_of(run1d, walk, title="1D")
    assert frames.shape[1:] == (360, 900, 3)          # FRAME_SIZE[1] at FRAME_DPI: full notebook width
    label = frames[:, :28, -120:]                     # the step label, top right
    assert not np.array_equal(label[0], label[-1])    # "step 0" vs "step 10"
    assert (label[-1] < 128).any()                    # dark text on the white figure
    title = frames[:, :28, :120]
    assert np.array_equal(title[0], title[-1]) and (title[0] < 128).any()
    fig = plots.plot_frames(frames, walk.steps, show=[0, 1, 10])
    assert len(fig.axes) == 3 and fig.get_size_inches()[0] >= 9.0     # one wide frame per row
    assert all(a.get_title() == "" for a in fig.axes)                  # the frame carries its own label
    shown = plots.fig_to_array(fig)
    assert shown.shape[1] >= 900


def test_1d_legend_names_start_chain_and_training_point(run1d):
    walk = sample_run(run1d, chains=6, steps=5, noise="normal", seed=0)
    fig = plots.plot_1d(run1d.model, run1d.data.x, noise=walk.start, samples=walk.final)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[-3:] == ["start", "chain", "training point"]


# ---------------------------------------------------------------- 2D figures
def _pixel(fig, ax, xy):
    """The RGB pixel of the rendered ``fig`` at data point ``xy`` of ``ax``."""
    img = plots.fig_to_array(fig)
    x, y = ax.transData.transform(xy)
    return img[int(round(img.shape[0] - y)), int(round(x))].astype(int)


def test_2d_chain_stands_out_on_the_heat_map(run2d):
    fig = plots.plot_2d(run2d.model, run2d.data.x, noise=torch.tensor([[0.5, 0.1]]),
                        samples=torch.tensor([[0.5, 0.5], [0.35, 0.65]]))
    ax = fig.axes[0]
    assert ax.images[0].get_cmap().name == plots.HEAT_CMAP
    for xy in ((0.5, 0.5), (0.35, 0.65)):
        r, g, b = _pixel(fig, ax, xy)
        assert r - b > 150 and r > 200                    # orange chain marker on a grey map
    bg = _pixel(fig, ax, (0.05, 0.5))
    assert abs(bg[0] - bg[2]) < 10                        # the map itself is grey
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["start", "chain", "training point"]
    assert len(fig.axes) == 1 and len(ax.child_axes) == 1   # its own colour bar, inset beside it


def test_stored_loop_figure_is_returned(run2d):
    """plot_sequence_2d returns its figure (a notebook cell that ends with the call shows it)."""
    walk = sample_run(run2d, chains=5, steps=3, noise="normal", seed=0)
    fig = plots.plot_sequence_2d(run2d.model, run2d.data.x, walk, title="loop")
    assert fig is not None and fig.axes[0].get_title() == "loop"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["start", "chain", "training point"]

def test_walk_2d_has_one_colour_bar_and_one_legend(run2d):
    walk = sample_run(run2d, chains=20, steps=5, noise="normal", seed=0)
    fig = plots.plot_walk_2d(run2d.model, run2d.data.x, walk, show=(0, 1, 2, 5))
    colorbars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and len(fig.axes) == 5
    assert [a.get_title() for a in fig.axes[:4]] == ["step 0", "step 1", "step 2", "step 5"]
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["start", "chain", "training point"]
    assert all(a.get_legend() is None for a in fig.axes)


def test_2d_heat_map_gif_has_no_palette_banding(run2d, tmp_path):
    walk = sample_run(run2d, chains=30, steps=3, noise="normal", seed=0)
    frames = frames_of(run2d, walk)
    assert frames.shape[1:] == (560, 560, 3)
    back = read_gif(export_gif(run2d, walk, tmp_path / "w.gif"))
    assert back.shape == frames.shape
    err = np.abs(back.astype(int) - frames.astype(int)).max(axis=-1)
    assert np.percentile(err, 99) <= 4 and err.mean() < 0.3   # viridis gave 20 and 0.7
    # the map's grey levels survive the GIF palette: many distinct levels, no coarse bands
    g = back[1, 120:420, 120:400]
    grey = g[(np.abs(g[..., 0].astype(int) - g[..., 2]) < 3)][:, 0]
    assert len(np.unique(grey)) >= 100


# ---------------------------------------------------------------- image GIFs
def test_label_frames_draws_a_band():
    frames = np.full((3, 20, 120), 128, np.uint8)
    out = label_frames(frames, ["step 0", "step 1", "step 100"], "paper")
    band = label_height(120)
    assert out.shape == (3, band + 20, 120) and band >= 12
    assert np.array_equal(out[:, band:], frames)
    assert (out[:, :band] > 200).any(axis=(1, 2)).all()      # white text on the black band
    assert (out[:, :band] == 0).mean() > 0.6
    assert not np.array_equal(out[1, :band], out[2, :band])
    assert np.array_equal(out[1, :band, :40], out[2, :band, :40])   # the title stays put
    rgb = label_frames(np.zeros((2, 10, 300, 3), np.uint8), ["step 1", "step 2"], "a title " * 30)
    assert rgb.shape == (2, label_height(300) + 10, 300, 3)   # a long title is cut, not an error
    with pytest.raises(KalsError, match="one label per frame"):
        label_frames(frames, ["step 0"])


def test_image_gif_frames_carry_a_step_counter(image_run, tmp_path):
    walk = sample_run(image_run, chains=6, steps=4, every=2, eps=0.01, seed=0)
    frames = frames_of(image_run, walk)
    grids = grid_frames(walk.frames[:, :6], (1, 8, 8), (-1, 1), nrow=8)
    band = label_height(grids.shape[2])
    assert frames.shape == (3, band + grids.shape[1], grids.shape[2])
    assert np.array_equal(frames[:, band:], grids)
    assert (_band(frames) > 200).any(axis=(1, 2)).all()
    assert not np.array_equal(_band(frames)[0], _band(frames)[2])   # step 0 vs step 4
    gif = read_gif(export_gif(image_run, walk, tmp_path / "w.gif"))   # 8 px images: upscaled 2x by default
    w = 2 + 8 * (2 * 8 + 2)                               # GIF_COLUMNS cells a row
    assert gif.shape == (3, label_height(w) + 2 * 8 + 4, w, 3)
    from kals_utils.render import GIF_SCALE, gif_scale
    assert gif_scale((1, 28, 28)) == gif_scale((3, 32, 32)) == gif_scale(None) == GIF_SCALE == 2
    assert gif_scale((1, 48, 48)) == gif_scale((3, 64, 40)) == 1     # larger images: not upscaled (file size)


def test_comparison_gifs_name_the_recipe(image_run, tmp_path):
    rows = [{"recipe": "paper", "run": image_run}, {"recipe": "improved", "run": image_run},
            {"recipe": "paper", "run": None}]
    gifs = export.comparison_gifs(rows, tmp_path, chains=6, steps=2, every=1)
    assert sorted(gifs) == ["improved", "paper"]
    bands = {k: read_gif(p)[0, :label_height(read_gif(p).shape[2])] for k, p in gifs.items()}
    left = {k: b[:, :60] for k, b in bands.items()}
    assert all((b > 200).any() for b in left.values())               # the recipe's name is drawn
    assert not np.array_equal(left["paper"], left["improved"])
    assert np.array_equal(bands["paper"][:, -50:], bands["improved"][:, -50:])   # same "step 0"


# ---------------------------------------------------------------- sweeps
def test_depth_sweep_axes_are_readable():
    rows = [{"data": d, "depth": L, "seed": s, "converged": 0.9, "converged_at_5": 0.4 + 0.05 * L,
             "coverage": 1.0, "radius_median": 0.3, "attractor_fraction": 0.75}
            for d in ("points1d", "points2d") for L in (2, 5, 7, 10) for s in (0, 1)]
    keys = ("converged", "converged_at_5", "radius_median", "attractor_fraction")
    fig = plots.plot_depth_sweep(rows, keys=keys)
    axes = fig.axes[:4]
    for ax, k in zip(axes, keys):
        ticks = ax.get_xticks()
        assert list(ticks) == [2, 5, 7, 10] and all(float(t).is_integer() for t in ticks)
        assert ax.get_xlabel() == "depth L"
        assert "_" not in ax.get_title()
        if plots.is_fraction(k):
            assert ax.get_ylim() == (0.0, 1.0)
    assert axes[1].get_title() == "converged after 5 steps"
    assert plots.metric_label("converged_at_10") == "converged after 10 steps"
    assert not plots.is_fraction("radius_median") and axes[2].get_ylim()[0] == 0
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["points1d", "points2d"]


# ---------------------------------------------------------------- sample | nearest pairs
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 6)])
def test_pairs_are_framed_and_set_apart(shape):
    d = int(np.prod(shape))
    pairs = torch.rand(10, d) * 2 - 1                      # 5 pairs
    img, centres = plots.pair_grid(pairs, shape, (-1, 1), per_row=2)
    h, w = shape[1:]
    assert img.shape[:2] == (3 * (h + 2) + 2 * max(3, h // 5), 2 * (2 * w + 3) + max(4, w // 2))
    gap = img[:, 2 * w + 3:2 * w + 3 + max(4, w // 2)]
    assert (gap == 255).all()                              # white between the pairs
    assert (img[0, :2 * w + 3] == 40).all()                # each pair's dark frame
    assert len(centres) == 4 and centres[1] - centres[0] == w + 1
    fig = plots.plot_images(pairs, shape, (-1, 1), nrow=4, pairs=True, title="sample | nearest")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == list(plots.PAIR_HEADERS) * 2
    assert fig._suptitle.get_text() == "sample | nearest"


def test_nearest_image_pairs_plot_as_pairs(image_run):
    walk = sample_run(image_run, chains=6, steps=3, seed=0)
    rows = [{"recipe": "paper", "samples": walk}, {"recipe": "paper", "samples": walk}]
    pairs = studies.nearest_image_pairs(rows, image_run.data.x, k=4)
    assert list(pairs) == ["paper"] and pairs["paper"].shape == (8, 64)
    fig = plots.plot_images(pairs["paper"], (1, 8, 8), (-1, 1), nrow=8, pairs=True)
    assert len(fig.axes[0].texts) == 8                     # 4 pairs in one row, two headers each
