"""The control panel without widgets: settings, a trained run, the train / sample / export jobs,
progress, staleness and time estimates, in plain Python (:mod:`widgets` only shows it).

``Panel(data, render=...)`` starts from the data set's preset (:func:`presets.preset_for`); code
changes a setting with ``panel.set(depth=3)`` and presses a button with ``panel.train()``,
``panel.sample()``, ``panel.basins()``, ``panel.export()`` or ``panel.stop()``. A view subscribes with
``panel.observe(fn)``: after each change the panel calls ``fn(name)`` with one of :data:`SHOWN`
and the view reads the attribute of that name. Frames are drawn by the ``render(run, walk)``
callable the view passes in (:func:`export.frames_of` in the widgets), so this module imports
neither ipywidgets nor matplotlib. A user's mistake never raises: it becomes the ``status`` line.

For 1D/2D points, training keeps the weights at a few log-spaced epochs
(:func:`studies.capacity.snapshot_epochs`) and ``basins()`` maps where every start ends for each of
them (:func:`basins.basin_map`): the basins forming over training, for the view's epoch slider.

The controls' values and checks are :mod:`.controls`; the Train and Stop buttons are
:class:`training.Training`, which :class:`Panel` extends.
"""

import copy
import math
import threading
import traceback
from typing import Callable, Optional

import numpy as np

from .. import pipeline
from ..measures.basins import basin_map
from ..data import Data
from ..device import pick_device
from ..errors import KalsError, check_int
from ..files import out_dir as default_out_dir
from ..recipes import get_recipe
from ..render import GIF_CHAINS, GIF_HOLD_LAST, gif_name, png_bytes, save_gif
from ..precision import precision_note
from .controls import (COST, FILENAME, FPS_MAX, MODEL, RECIPE_SAMPLER, Settings,  # noqa: F401 (re-exported)
                       available_devices, describe, gif_target, panel_words, settings_for)
from .pace import long_training
from .training import Training

MAX_FRAMES = 100        # recorded steps a walk keeps for the scrubber (every k-th step beyond that)
BASIN_GRID = 96         # starts per side of the panel's 2D basin maps (96 x 96; 1D: basins.GRID_1D)
SHOWN = ("status", "warning", "progress", "losses", "busy", "walk", "filename", "saved",
         "basins")   # what observers hear


class Panel(Training):
    """Train / sample / export for one data set, with no widgets (see the module docstring).

    run: an already trained :class:`pipeline.Run` for ``data``; render: ``(run, walk) -> uint8
    frames``; background: train in a thread (the widgets do inside a Jupyter kernel); out_dir:
    where export writes (default :func:`files.out_dir`); every other keyword: a :class:`Settings`
    field, None meaning the preset's value."""

    def __init__(self, data: Data, run: Optional[pipeline.Run] = None, *, render: Callable, background=False,
                 out_dir=None, **settings):
        self.settings = settings_for(data, run, **settings)
        self.data, self.run, self.render, self.background = data, run, render, background
        self.out_dir = default_out_dir(out_dir or "")
        self.result, self.frames, self.frames_png, self.gif_path, self.saved = None, None, [], None, None
        self.snapshots, self.basin_maps = {}, []   # {epoch: weights} of the last training; [(epoch, model, map)]
        self.status, self.status_kind, self.status_detail, self.warning = "", "info", "", ""
        self.losses, self.losses_title, self.busy, self.device_used = [], "training loss", False, "cpu"
        epochs = self.settings.epochs
        self.progress, self.progress_line, self.progress_style = (0, epochs), f"epoch 0 / {epochs}", ""
        self._observers, self._stop, self._thread = [], threading.Event(), None
        self._name_auto = self.settings.filename == FILENAME   # Sample names the GIF until someone names it
        self.estimate()
        if run is not None:
            r = run.result
            self.losses = list(r.losses)
            self._progress(r.epochs_done, r.epochs_done, f"epoch {r.epochs_done} / {r.epochs_done} · trained "
                           "before this panel opened", "success" if r.ok else "warning")
            self._say(f"loaded model {describe(self.trained())}: {r.report()} — press Sample")
        else:
            self._say("press Train to fit the model (changing L, H, the architecture or the recipe later needs a "
                      "retrain)")

    # ------------------------------------------------------------------ state
    def observe(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(name)`` after each change of one of :data:`SHOWN`."""
        self._observers.append(fn)

    def _notify(self, name: str) -> None:
        for fn in self._observers:
            fn(name)

    def _say(self, text: str, kind: str = "info", detail: str = "") -> None:
        self.status, self.status_kind, self.status_detail = text, kind, detail
        self._notify("status")

    def _warn(self, text: str = "") -> None:
        self.warning = text
        self._notify("warning")

    def _progress(self, done: int, total: int, line: str, style: Optional[str] = None) -> None:
        self.progress, self.progress_line = (done, total), line
        self.progress_style = self.progress_style if style is None else style
        self._notify("progress")

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self._notify("busy")  # the view enables and disables its buttons

    def controls(self) -> dict:
        s = self.settings
        return {"L": s.depth, "H": s.width, "arch": s.arch, "recipe": s.recipe}

    def trained(self) -> dict:
        c = self.run.config
        return {"L": c.depth, "H": c.width, "arch": c.model.arch, "recipe": c.recipe}

    @property
    def stale(self) -> bool:
        """True when L, H, the architecture or the recipe differ from the trained model's (or nothing is trained)."""
        return self.run is None or self.controls() != self.trained()

    def set(self, **values) -> None:
        """Change settings (:class:`Settings` fields); says when the model turns stale, re-estimates the cost."""
        for k, v in values.items():
            old = getattr(self.settings, k)  # an unknown name is a bug: AttributeError
            setattr(self.settings, k, v)
            if k == "filename" and v != old:  # the user named the GIF (an emptied name hands naming back to Sample)
                self._name_auto = not str(v).strip()
        if set(values) & set(MODEL) and self.run is not None and not self.busy:
            if self.stale:
                names = {"L": "depth L", "H": "width H", "arch": "architecture", "recipe": "recipe"}
                changed = [names[k] for k, v in self.controls().items() if v != self.trained()[k]]
                self._say(f"{', '.join(changed)} changed: the trained model is {describe(self.trained())}; the "
                          f"controls say {describe(self.controls())} — press Train to retrain", "warn")
            else:
                self._say(f"the controls match the trained model again ({describe(self.trained())})")
        if set(values) & set(COST):
            self.estimate()

    def _check_arch(self) -> None:
        if self.settings.arch != "mlp" and self.data.image_shape is None:
            raise KalsError(f"architecture {self.settings.arch} needs image data; these are {self.data.dim}D "
                            "points: set architecture to mlp")

    def estimate(self) -> None:
        """The up-front warning: a rough CPU time of the configured training (no work is done), and
        :func:`precision.precision_note` when bf16 is chosen where it is emulated."""
        if self.busy:
            return
        s = self.settings
        try:
            self._check_arch()
            device = pick_device(s.device)
            cfg = pipeline.make_config(self.data, s.depth, s.width, arch=s.arch).model
        except KalsError:
            return self._warn()
        rows = "images" if self.data.image_shape is not None else "points"
        pace = long_training(cfg, len(self.data), s.epochs, rows) if device.type == "cpu" else ""
        self._warn(" ".join(t for t in (pace, precision_note(s.precision, device)) if t))

    def _guard(self, job: Callable[[], None]) -> None:
        """Run ``job()``; a KalsError becomes the status line, anything else the status with its traceback."""
        try:
            job()
        except KalsError as e:
            self._say(panel_words(str(e)), "error")
        except Exception as e:  # a bug: keep the traceback visible
            self._say(f"{type(e).__name__}: {e}", "error", traceback.format_exc())

    # ------------------------------------------------------------------ sampling and export
    def sample(self) -> None:
        """Run the chains of the trained model and render the walk into frames (PNG bytes too)."""
        if self.busy:
            return self._say("training is running: wait for it or press Stop", "warn")
        self._guard(self._sample)

    def _sample(self) -> None:
        if self.run is None:
            raise KalsError("no model yet: press Train first")
        if self.stale:
            raise KalsError(f"the model is stale: it was trained with {describe(self.trained())} but the controls "
                            f"say {describe(self.controls())} — press Train to retrain (or set them back)")
        s = self.settings
        chains, steps = check_int("chains", s.chains, 1), check_int("steps", s.steps, 1)
        seed = check_int("sampling seed", s.sample_seed, 0)
        every = max(1, math.ceil(steps / MAX_FRAMES))
        recipe = get_recipe(s.recipe)
        self._say(f"sampling {chains} chains for {steps} steps …")
        self._set_busy(True)
        try:
            res = pipeline.sample_run(self.run, chains=chains, steps=steps, every=every, noise=s.noise, eps=s.eps,
                                      seed=seed, recipe=recipe.name, precision=s.precision, note=None,
                                      sampler=None if s.sampler == RECIPE_SAMPLER else s.sampler,
                                      record=min(chains, GIF_CHAINS) if self.run.config.image_shape else None)
            frames = np.asarray(self.render(self.run, res))
            pngs = [png_bytes(f) for f in frames]
        finally:
            self._set_busy(False)
        self.result, self.frames, self.frames_png = res, frames, pngs
        self._notify("walk")
        if self._name_auto:
            arch = self.run.config.model.arch
            self.settings.filename = gif_name(self.run.config, chains, steps, s.eps, recipe.start_kind or s.noise,
                                              extra="" if arch == "mlp" else f"_{arch}")
            self._notify("filename")
        start = "the data's covariance" if recipe.start_kind == "data" else f"{s.noise} noise"
        self._say(f"sampled {chains} chains x {steps} steps from {start} with the {res.sampler} sampler, "
                  f"sampling seed {seed} ({len(pngs)} frames, "
                  f"every {every} step(s)): drag the frame slider or press play", "ok")

    def basins(self, *, grid: Optional[int] = None) -> None:
        """Map the basins of attraction (1D/2D points) of each kept snapshot: ``basin_maps`` becomes
        [(epoch, model, :class:`basins.BasinMap`)], ``grid`` starts per side (default :data:`BASIN_GRID`
        in 2D, :data:`basins.GRID_1D` in 1D)."""
        if self.busy:
            return self._say("training is running: wait for it or press Stop", "warn")
        self._guard(lambda: self._basins(grid))

    def _basins(self, grid: Optional[int]) -> None:
        if self.data.image_shape is not None or self.data.dim > 2:
            kind = "images" if self.data.image_shape is not None else "points"
            raise KalsError(f"basin maps are drawn for 1D and 2D points; these are {self.data.dim}-dimensional {kind} "
                            "(for images, kals_utils.measures.basins.basin_statistics gives each training image's "
                            "share of random starts)")
        if self.run is None:
            raise KalsError("no model yet: press Train first")
        if self.stale:
            raise KalsError(f"the model is stale: it was trained with {describe(self.trained())} — press Train to "
                            "retrain (or set the controls back)")
        kept = self.snapshots or {self.run.result.epochs_done: self.run.model.state_dict()}  # a loaded run: its end
        grid = grid or (BASIN_GRID if self.data.dim == 2 else None)
        self._say(f"mapping basins at {len(kept)} epoch(s) …")
        self._set_busy(True)
        try:
            maps = []
            for e in sorted(kept):
                m = copy.deepcopy(self.run.model).cpu()
                m.load_state_dict(kept[e])
                maps.append((e, m, basin_map(m, self.data.x, grid=grid)))
        finally:
            self._set_busy(False)
        self.basin_maps = maps
        self._notify("basins")
        more = ": drag the epoch slider" if len(maps) > 1 else (
            "" if self.snapshots else " (the model was trained before this panel opened: press Train to watch them "
                                      "form)")
        self._say(f"mapped the basins at epoch(s) {', '.join(str(e) for e, _, _ in maps)}{more}", "ok")

    def export(self) -> None:
        """Write the walk as a GIF to ``out_dir``; an existing file only with ``overwrite`` set."""
        self._guard(self._export)

    def _export(self) -> None:
        if self.result is None:
            raise KalsError("nothing to export yet: press Sample first")
        s = self.settings
        path, existed = gif_target(self.out_dir, s.filename, fps=s.fps, overwrite=s.overwrite)
        # the frames shown are the GIF's frames: write them
        self.gif_path = save_gif(self.frames, path, fps=s.fps, hold_last=GIF_HOLD_LAST).resolve()
        self.saved = {"path": self.gif_path, "kib": path.stat().st_size / 1024, "fps": s.fps, "replaced": existed}
        self._notify("saved")
        self._say(f"wrote {self.gif_path}", "ok")
