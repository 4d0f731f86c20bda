"""Studies over many runs, apart from the helper: each returns a list of dicts (one per run), so a
notebook cell is one call plus a table (:mod:`kals_utils.measures.tables`) or a plot (:mod:`kals_utils.faces.plots`).

- :mod:`.corner`: the paper's loss at the cube's corners against the number of training points.
- :mod:`.sweeps`: reconstructions during training, the depth sweep, the mixing sweep, cut or slide.
- :mod:`.compare`: recipes side by side; the frontier of coverage against memorisation.
- :mod:`.architectures`: MLP, CNN, U-Net and transformer at matched sizes.
- :mod:`.ensemble`: many small nets trained at once (stacked weights, one Adam), for the sweeps.
- :mod:`.capacity`: basins by depth and over training, stored sequences (points round a circle, one
  image per class), and how many points or steps a net holds.
- :mod:`.versus`: the kaleidoscope beside small diffusion models at equal training CPU time.
- :mod:`.mixing`: how well the samplers' chains move between training images.

A notebook reads them as ``from kals_utils import studies`` and ``studies.depth_sweep(...)``; a
study's settings stay in its module (``studies.versus.UNET``, ...).
"""

from .architectures import (ARCH_KEYS, PARAM_SLACK, arch_label, compare_architectures, final_samples, kept_runs,
                            matched_sizes, matched_width)
from .compare import (COMPARE_KEYS, FRONTIER_TARGETS, TARGETS, compare_recipes, meets, nearest_image_pairs,
                      recipe_frontier)
from .corner import PAPER_CORNER_LOSS, PAPER_NS, CornerPoint, corner_loss, corner_loss_vs_points, corner_table, cube_corners
from .ensemble import fit_many, train_many
from . import capacity, mixing, versus
from .capacity import basin_rows, basins_by_depth, basins_over_training, circle_points, class_sequence, replay_walk
from .sweeps import (DEPTHS, Reconstructions, depth_sweep, mixing_sweep, snapshot_epochs, train_with_reconstructions,
                     walk_moves)
from .versus import first_images, json_rows, kept_run, versus_diffusion
