"""kals_utils: Generative Kaleidoscopic Networks (Shrivastava, 2024, arXiv 2402.11793).

data -> fit -> sample -> render: ``load_data`` / ``points``, ``train_run`` (``train.fit``),
``sample_run`` (``sample.kaleidoscope``), ``export_gif``; ``evaluate_run`` measures a walk.
Four layers, each importing only those before it (tests/test_layout.py):
- the core helper: errors, presets (every default), files, device, precision, nets, model, data,
  checkpoint, train, sample, recipes, render, pipeline — no metrics, no studies, no matplotlib;
- measures: prdc, features, metrics, evaluate, tables;
- studies (``kals_utils.studies``): ensemble, corner, sweeps, compare, architectures;
- faces: plots, export, pace, panel, widgets, walkthrough, cli.
"""

from .data import Data, load_data, points
from .device import pick_device
from .errors import KalsError
from .model import ModelConfig, RunConfig, build_model
from .evaluate import evaluate_run
from .pipeline import Run, load_run, sample_run, save_run, train_run
from .export import export_gif, frames_of
from .render import gif_name
from .sample import SampleResult, kaleidoscope, start_noise
from .train import TrainResult, fit

__version__ = "0.2.0"
__all__ = [
    "Data", "KalsError", "ModelConfig", "Run", "RunConfig", "SampleResult", "TrainResult", "build_model",
    "evaluate_run", "export_gif", "fit", "frames_of", "gif_name", "kaleidoscope", "load_data", "load_run",
    "pick_device", "points", "sample_run", "save_run", "start_noise", "train_run",
]
