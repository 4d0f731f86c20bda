"""Matplotlib figures for 1D/2D kaleidoscopes, images, sweeps, basins and studies.

Every function draws into the axes it is given, or into a new ``matplotlib.figure.Figure`` it makes
itself (no pyplot, no "current figure"), and returns that figure: nothing is ever drawn into a
figure the caller did not hand over. In a notebook, ``%matplotlib inline`` then ``fig`` shows it.

One module per subject, each name importable from here (``from kals_utils.faces.plots import plot_frames``):

- :mod:`.figure`: the shared look (point styles, the heat map's colours), a fresh figure, a figure as pixels;
- :mod:`.images`: images, grids of images and of sample / nearest-training-image pairs, walk frames;
- :mod:`.walks`: 1D/2D landscapes and walks, and a walk as GIF frames;
- :mod:`.curves`: loss curves, the corner loss, depth sweeps, the coverage/memorisation frontier;
- :mod:`.basins`: basin maps, basin sizes, capacity, a stored loop (what a net stores);
- :mod:`.compare`: runs side by side by label (architectures, kals against diffusion).
"""

from .figure import (CHAIN_STYLE, FRAME_DPI, FRAME_SIZE, HEAT_CMAP, LEGEND_LABELS, NOISE_COLOR, SAMPLE_COLOR,
                     START_STYLE, TRAIN_COLOR, TRAIN_HALO, TRAIN_STYLE, fig_to_array, new_figure)
from .images import PAIR_HEADERS, pair_grid, plot_frames, plot_images, plot_reconstructions, show_image
from .walks import loss_surface, plot_1d, plot_2d, plot_trajectories, plot_walk_2d, walk_frames
from .curves import (FRACTION_KEYS, SWEEP_LABELS, SWEEP_UNITS, is_fraction, metric_label, plot_corner_loss,
                     plot_depth_sweep, plot_frontier, plot_losses)
from .basins import (BASIN_ALPHA, BASIN_FRAME_SIZE, CONTOUR_LEVELS, SPURIOUS_COLOR, UNSETTLED_COLOR, basin_colors,
                     basin_frames, plot_basin_stats, plot_basins_1d, plot_basins_2d, plot_basins_by_depth,
                     plot_capacity, plot_sequence_2d)
from .compare import plot_final_samples, plot_loss_curves, plot_versus, plot_versus_grids

__all__ = [
    "BASIN_ALPHA", "BASIN_FRAME_SIZE", "CHAIN_STYLE", "CONTOUR_LEVELS", "FRACTION_KEYS", "FRAME_DPI", "FRAME_SIZE",
    "HEAT_CMAP", "LEGEND_LABELS", "NOISE_COLOR", "PAIR_HEADERS", "SAMPLE_COLOR", "SPURIOUS_COLOR", "START_STYLE",
    "SWEEP_LABELS", "SWEEP_UNITS", "TRAIN_COLOR", "TRAIN_HALO", "TRAIN_STYLE", "UNSETTLED_COLOR",
    "basin_colors", "basin_frames", "fig_to_array", "is_fraction", "loss_surface", "metric_label", "new_figure",
    "pair_grid", "plot_1d", "plot_2d", "plot_basin_stats", "plot_basins_1d", "plot_basins_2d", "plot_basins_by_depth",
    "plot_capacity", "plot_corner_loss", "plot_depth_sweep", "plot_final_samples", "plot_frames", "plot_frontier",
    "plot_images", "plot_loss_curves", "plot_losses", "plot_reconstructions", "plot_sequence_2d", "plot_trajectories",
    "plot_versus", "plot_versus_grids", "plot_walk_2d", "show_image", "walk_frames",
]
