"""kals_utils: Generative Kaleidoscopic Networks (Shrivastava, 2024, arXiv 2402.11793).

A notebook opens with::

    import kals_utils as kals
    from kals_utils import plots, studies

and then calls ``kals.<name>`` for the path data -> fit -> sample -> measure -> GIF, ``plots.<name>``
for figures and ``studies.<name>`` for the studies over many runs. The names of this top level:

- the path: ``points``, ``load_data``, ``train_run``, ``sample_run``, ``evaluate_run``, ``save_run``,
  ``load_run``, ``export_gif``, ``frames_of``, ``save_gif``, ``gif_name``, ``start_label``, ``show``,
  and the studies' GIFs ``comparison_gifs``, ``architecture_gifs``;
- settings: ``PRESETS``, ``preset_for``, ``smoke``, ``data_dir``, ``out_dir``;
- reading a run: ``format_rows``, ``format_evaluation``, ``summarise``, ``basin_map``,
  ``sequence_replay``, ``transition_counts``, ``nearest_pairs``;
- faces: ``KaleidoscopePanel`` (the control panel), ``ImageNotebook`` (the image notebooks' steps);
- the objects and the lower layer: ``Data``, ``Run``, ``RunConfig``, ``ModelConfig``, ``SampleResult``,
  ``TrainResult``, ``KalsError``, ``fit``, ``kaleidoscope``, ``start_noise``, ``build_model``,
  ``pick_device``;
- every module by its name (``kals.plots``, ``kals.studies``, ``kals.tables``, ...).

``import kals_utils`` loads the core helper only (torch, numpy; no matplotlib, no ipywidgets): the
names from the measures, the studies and the faces are imported on first use (PEP 562).

Four layers, each importing only those before it (tests/test_layout.py); the folders show them:
- the core helper, at the top of ``kals_utils/``: errors, presets (every default), files, device,
  precision, nets, model, neighbours, images, datasets, data, checkpoint, ema, train, moves, sample,
  selection, recipes, render, pipeline — no metrics, no studies, no matplotlib;
- ``kals_utils/measures/``: collapse, prdc, features, metrics, attractors, mixing, basins, evaluate,
  tables;
- ``kals_utils/studies/``: ensemble, corner, sweeps, compare, architectures, capacity, versus, mixing;
- ``kals_utils/faces/``: plots, export, pace, controls, training, panel, widgets, walkthrough, cli,
  results, book.
``kals.<module>`` finds a module by its short name wherever it lives (``kals.metrics`` is
``kals_utils.measures.metrics``); ``python -m kals_utils`` and ``python -m kals_utils.book`` are the
command lines of ``faces.cli`` and ``faces.book``.
"""

import importlib

from .data import Data, load_data, points
from .device import pick_device
from .errors import KalsError
from .files import data_dir, out_dir
from .model import ModelConfig, RunConfig, build_model
from .pipeline import Run, load_run, sample_run, save_run, train_run
from .presets import PRESETS, preset_for, smoke
from .recipes import start_label
from .render import gif_name, save_gif
from .sample import SampleResult, kaleidoscope, start_noise
from .train import TrainResult, fit

__version__ = "0.2.0"

# name -> the module that holds it, imported when the name is first used (measures, studies, faces)
LAZY = {
    "evaluate_run": "measures.evaluate",
    "format_rows": "measures.tables", "format_evaluation": "measures.tables", "summarise": "measures.tables",
    "basin_map": "measures.basins", "sequence_replay": "measures.basins",
    "transition_counts": "measures.mixing", "nearest_pairs": "measures.metrics",
    "export_gif": "faces.export", "frames_of": "faces.export", "show": "faces.export",
    "comparison_gifs": "faces.export", "architecture_gifs": "faces.export",
    "KaleidoscopePanel": "faces.widgets",
    "ImageNotebook": "faces.walkthrough",
}
# every module by its short name (``kals.plots``, ``kals.metrics``, ``kals.book``) -> where it lives:
# the core at the top of the package, the measures in measures/, the studies in studies/, the faces in faces/
MODULES = {
    **{m: m for m in ("errors", "presets", "files", "device", "precision", "nets", "model", "neighbours", "sharpness",
                      "images", "datasets", "data", "checkpoint", "ema", "train", "moves", "sample", "mirror", "selection",
                      "recipes", "render", "pipeline")},
    **{m: f"measures.{m}" for m in ("collapse", "prdc", "features", "metrics", "attractors", "mixing", "basins",
                                    "evaluate", "tables")},
    "studies": "studies",
    **{m: f"faces.{m}" for m in ("plots", "export", "pace", "controls", "training", "panel", "widgets",
                                 "walkthrough", "cli", "results", "book")},
}

__all__ = sorted([
    "Data", "KalsError", "ModelConfig", "PRESETS", "Run", "RunConfig", "SampleResult", "TrainResult",
    "build_model", "data_dir", "fit", "gif_name", "kaleidoscope", "load_data", "load_run", "out_dir",
    "pick_device", "points", "preset_for", "sample_run", "save_gif", "save_run", "smoke", "start_label",
    "start_noise", "train_run", *LAZY])


def __getattr__(name: str):
    """``kals.format_rows``, ``kals.plots``, ...: a measure, study or face, imported on first use."""
    if name in LAZY:
        value = getattr(importlib.import_module(f".{LAZY[name]}", __name__), name)
    elif name in MODULES:
        value = importlib.import_module(f".{MODULES[name]}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(LAZY) | set(MODULES))
