"""kals_utils: Generative Kaleidoscopic Networks (Shrivastava, 2024, arXiv 2402.11793).

data -> fit -> sample -> render: ``data.load_data`` / ``data.points``, ``pipeline.train_run``
(``train.fit``), ``pipeline.sample_run`` (``sample.kaleidoscope``), ``pipeline.export_gif``.
The core (models, train, sample, checkpoint) imports neither matplotlib nor ipywidgets.
"""

from .checkpoint import KalsConfig, load_checkpoint, save_checkpoint
from .data import Data, load_data, points
from .device import pick_device
from .errors import KalsError
from .models import ModelConfig, build_mlp
from .pipeline import Run, export_gif, frames_of, load_run, sample_run, save_run, train_run
from .sample import SampleResult, kaleidoscope, start_noise
from .train import TrainResult, fit

__version__ = "0.1.0"
__all__ = [
    "Data", "KalsConfig", "KalsError", "ModelConfig", "Run", "SampleResult", "TrainResult",
    "build_mlp", "export_gif", "fit", "frames_of", "kaleidoscope", "load_checkpoint", "load_data",
    "load_run", "pick_device", "points", "sample_run", "save_checkpoint", "save_run", "start_noise",
    "train_run",
]
