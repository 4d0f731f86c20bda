"""The "Play with it" panel: ipywidgets controls over train -> sample -> scrub -> export GIF.

``KaleidoscopePanel(data)`` shows a recipe dropdown (``paper`` / ``improved``, see
:mod:`kals_utils.recipes`; used for training and for sampling), sliders for depth L, width H,
epochs, learning rate, chains, steps, eps, start noise and seed, and the buttons **Train**, **Stop**, **Sample** and **Export
GIF**. Expensive work only runs on a button press: training (:func:`pipeline.train_run`) runs in a
background thread inside a Jupyter kernel, so the progress bar, the live loss curve and Stop keep
working; sampling (:func:`pipeline.sample_run`) renders the walk once into PNG frames
(:func:`pipeline.frames_of`) that the scrubber only swaps. Changing L or H after training marks the
model stale: Sample then asks to retrain. Every control is an attribute, so code (and tests) can
drive the panel: ``panel.depth.value = 3; panel.train_button.click()``.
"""

import html
import math
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

import ipywidgets as W
import numpy as np

from . import pipeline
from .data import Data
from .errors import KalsError, check_int
from .export import frames_of
from .plots import fig_to_array, plot_losses
from .recipes import RECIPES, get_recipe
from .render import GIF_CHAINS, GIF_FPS, GIF_HOLD_LAST, GIF_SCALE, gif_name, png_bytes, save_gif
from .sample import NOISES

MAX_FRAMES = 100        # recorded steps shown by the scrubber (every k-th step beyond that)
LOSS_REDRAW_S = 1.0     # live loss curve: at most one redraw per this many seconds
PROGRESS_S = 0.1        # progress bar: at most one update per this many seconds


def _in_kernel() -> bool:
    """True inside a running Jupyter kernel (widgets then talk to a browser)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


class KaleidoscopePanel:
    """Interactive train/sample/export panel for one data set (``kals_utils.data.Data``).

    run: an already trained :class:`pipeline.Run` for ``data`` (Sample works at once; the L/H
    sliders start at its shape). ``out_dir``: where Export GIF writes (created if missing).
    The attribute ``background`` (True only inside a Jupyter kernel) trains in a thread; with it
    False every click finishes before it returns. ``wait()`` joins a background training.
    """

    def __init__(self, data: Data, run: Optional[pipeline.Run] = None, depth: int = 7, width: int = 50,
                 epochs: int = 2000, lr: float = 1e-3, batch_size: Optional[int] = None, chains: int = 64,
                 steps: int = 30, eps: float = 0.0, noise: str = "normal", seed: int = 0,
                 device="auto", out_dir="../saved_samples", recipe: Optional[str] = None):
        if not isinstance(data, Data):
            raise KalsError(f"KaleidoscopePanel needs a kals_utils.data.Data, got {type(data).__name__}; "
                            "load it with kals_utils.points(...) or kals_utils.load_data(...)")
        if noise not in NOISES:
            raise KalsError(f"unknown start noise {noise!r}; choose uniform or normal")
        if run is not None:
            depth, width = run.config.depth, run.config.width
        recipe = get_recipe(recipe or (run.config.recipe if run is not None else "paper")).name
        self.data, self.run, self.result = data, run, None
        self.batch_size, self.device, self.out_dir = batch_size, device, Path(out_dir)
        self.background = _in_kernel()
        self.frames: Optional[np.ndarray] = None   # uint8 (F, H, W[, 3]) of the last walk
        self.frames_png: list = []                 # the same frames as PNG bytes, for the scrubber
        self.gif_path: Optional[Path] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._losses: list = []
        self._busy = False
        self._build(depth, width, epochs, lr, chains, steps, eps, noise, seed, recipe)
        if run is not None:
            self._draw_losses(run.result.losses)
            self._say(f"loaded model L={depth}, H={width}: {run.result.report()} — press Sample")
        else:
            self._say("press Train to fit the model (changing L or H later needs a retrain)")

    # ------------------------------------------------------------------ layout
    def _build(self, depth, width, epochs, lr, chains, steps, eps, noise, seed, recipe):
        style = {"description_width": "90px"}
        lay = W.Layout(width="330px")

        def cls(w, name):
            w.add_class(f"kals-{name}")
            return w

        self.depth = cls(W.IntSlider(value=depth, min=1, max=max(20, depth), description="depth L",
                                     style=style, layout=lay, continuous_update=False), "depth")
        self.width = cls(W.IntSlider(value=width, min=1, max=max(1024, width), description="width H",
                                     style=style, layout=lay, continuous_update=False), "width")
        self.epochs = cls(W.BoundedIntText(value=epochs, min=1, max=max(10**6, epochs), description="epochs",
                                           style=style, layout=lay), "epochs")
        self.lr = cls(W.FloatLogSlider(value=lr, base=10, min=-6, max=-1, step=0.1, readout_format=".1e",
                                       description="learning rate", style=style, layout=lay,
                                       continuous_update=False), "lr")
        self.seed = cls(W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                         style=style, layout=lay), "seed")
        self.chains = cls(W.IntSlider(value=chains, min=1, max=max(256, chains), description="chains",
                                      style=style, layout=lay, continuous_update=False), "chains")
        self.steps = cls(W.IntSlider(value=steps, min=1, max=max(300, steps), description="steps",
                                     style=style, layout=lay, continuous_update=False), "steps")
        self.eps = cls(W.FloatSlider(value=eps, min=0.0, max=max(0.5, eps), step=0.005, readout_format=".3f",
                                     description="eps", style=style, layout=lay,
                                     continuous_update=False), "eps")
        self.noise = cls(W.ToggleButtons(options=list(NOISES), value=noise, description="start noise",
                                         style={**style, "button_width": "100px"}), "noise")
        self.recipe = cls(W.Dropdown(options=list(RECIPES), value=recipe, description="recipe", style=style,
                                     layout=lay), "recipe")
        self.train_button = cls(W.Button(description="Train", button_style="primary", icon="play"), "train")
        self.stop_button = cls(W.Button(description="Stop", button_style="warning", icon="stop",
                                        disabled=True), "stop")
        self.sample_button = cls(W.Button(description="Sample", button_style="success", icon="random"), "sample")
        self.export_button = cls(W.Button(description="Export GIF", icon="download", disabled=True), "export")
        self.filename = cls(W.Text(value="kaleidoscope.gif", description="GIF file name", style=style,
                                   layout=W.Layout(width="480px")), "filename")
        self.progress = cls(W.IntProgress(value=0, min=0, max=max(1, epochs), description="epoch 0",
                                          style=style, layout=lay), "progress")
        self.status = cls(W.HTML(), "status")
        self.saved = cls(W.HTML(), "saved")
        self.loss_image = cls(W.Image(format="png", layout=W.Layout(width="360px")), "loss")
        self.frame = cls(W.Image(format="png", layout=W.Layout(max_width="640px")), "frame")
        self.play = cls(W.Play(value=0, min=0, max=0, interval=150, description="play"), "play")
        self.scrubber = cls(W.IntSlider(value=0, min=0, max=0, description="frame", style=style,
                                        layout=W.Layout(width="400px")), "scrubber")
        W.jslink((self.play, "value"), (self.scrubber, "value"))

        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.sample_button.on_click(self._on_sample)
        self.export_button.on_click(self._on_export)
        self.scrubber.observe(self._on_scrub, names="value")
        self.depth.observe(self._on_shape, names="value")
        self.width.observe(self._on_shape, names="value")

        head = lambda text: W.HTML(f"<b>{text}</b>")  # noqa: E731
        train_box = W.VBox([head("Train f(x) ≈ x"), self.recipe, self.depth, self.width, self.epochs, self.lr,
                            self.seed, W.HBox([self.train_button, self.stop_button]), self.progress])
        sample_box = W.VBox([head("Kaleidoscopic sampling"), self.chains, self.steps, self.eps, self.noise,
                             self.sample_button])
        export_box = W.VBox([W.HBox([self.filename, self.export_button]), self.saved])
        view = W.HBox([W.VBox([head("loss"), self.loss_image]),
                       W.VBox([head("walk"), self.frame, W.HBox([self.play, self.scrubber])])])
        self.widget = cls(W.VBox([W.HBox([train_box, sample_box]), export_box, self.status, view]), "panel")

    def _repr_mimebundle_(self, **kw):
        return self.widget._repr_mimebundle_(**kw)

    # ------------------------------------------------------------------ state
    @property
    def stale(self) -> bool:
        """True when the L/H sliders differ from the trained model's shape (or nothing is trained)."""
        return self.run is None or (self.depth.value, self.width.value) != (self.run.config.depth,
                                                                            self.run.config.width)

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until a background training run has finished (no-op if none)."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _say(self, text: str, kind: str = "info") -> None:
        color = {"info": "inherit", "ok": "green", "warn": "#b36b00", "error": "#c00"}[kind]
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for b in (self.train_button, self.sample_button):
            b.disabled = busy
        self.export_button.disabled = busy or self.result is None
        self.stop_button.disabled = not busy

    def _guard(self, job):
        """Run ``job()``; a KalsError becomes a status line, anything else a traceback in the status."""
        try:
            job()
        except KalsError as e:
            self._say(str(e), "error")
        except Exception as e:  # a bug: keep the traceback visible in the panel
            self.status.value = (f'<span style="color:#c00">{html.escape(type(e).__name__)}: '
                                 f'{html.escape(str(e))}</span><pre>{html.escape(traceback.format_exc())}</pre>')

    # ------------------------------------------------------------------ training
    def _on_shape(self, change=None) -> None:
        if self.run is not None and not self._busy:
            if self.stale:
                self._say(f"L/H changed to {self.depth.value}/{self.width.value}: the trained model is "
                          f"L={self.run.config.depth}, H={self.run.config.width} — press Train to retrain", "warn")
            else:
                self._say(f"L/H match the trained model again (L={self.depth.value}, H={self.width.value})")

    def _on_train(self, _=None) -> None:
        if self._busy:
            return
        epochs = self.epochs.value
        self._stop.clear()
        self._losses = []
        self.progress.max, self.progress.value, self.progress.description = epochs, 0, "epoch 0"
        self._set_busy(True)
        self._say(f"training L={self.depth.value}, H={self.width.value} for {epochs} epochs …")
        kw = dict(depth=self.depth.value, width=self.width.value, epochs=epochs, lr=self.lr.value,
                  batch_size=self.batch_size, seed=self.seed.value, device=self.device, recipe=self.recipe.value)
        if self.background:
            self._thread = threading.Thread(target=self._train_job, args=(kw,), daemon=True,
                                            name="kals-train")
            self._thread.start()
        else:
            self._train_job(kw)

    def _train_job(self, kw: dict) -> None:
        # live loss curve only when someone can watch it (background), and at most ~20% of the time
        last = {"bar": 0.0, "plot": time.monotonic(), "gap": LOSS_REDRAW_S}

        def callback(epoch: int, loss: float) -> None:
            self._losses.append(loss)
            now = time.monotonic()
            if now - last["bar"] >= PROGRESS_S:
                last["bar"] = now
                self.progress.value = epoch + 1
                self.progress.description = f"epoch {epoch + 1}"
            if self.background and now - last["plot"] >= last["gap"]:
                self._draw_losses(self._losses, title=f"training loss (epoch {epoch + 1})")
                last["plot"] = time.monotonic()
                last["gap"] = max(LOSS_REDRAW_S, 4 * (last["plot"] - now))

        def job():
            run = pipeline.train_run(self.data, progress=False, callback=callback,
                                     should_stop=self._stop.is_set, **kw)
            self.run, self.result, self.frames, self.frames_png = run, None, None, []
            self._clear_walk()
            self.progress.value = run.result.epochs_done
            self.progress.description = f"epoch {run.result.epochs_done}"
            self._draw_losses(run.result.losses)
            kind = "ok" if run.result.ok else "warn"
            self._say(f"trained L={kw['depth']}, H={kw['width']} ({kw['recipe']} recipe): {run.result.report()}", kind)

        try:
            self._guard(job)
        finally:
            self._set_busy(False)

    def _on_stop(self, _=None) -> None:
        self._stop.set()
        self._say("stopping … (the best weights so far are kept)", "warn")

    def _draw_losses(self, losses, title: str = "training loss") -> None:
        if not len(losses):
            return
        fig = plot_losses(losses, title=title)
        fig.set_dpi(64)
        self.loss_image.value = png_bytes(fig_to_array(fig))

    # ------------------------------------------------------------------ sampling
    def _clear_walk(self) -> None:
        self.play.playing = False
        self.scrubber.max = self.play.max = 0
        self.frame.value = b""
        self.export_button.disabled = True

    def _on_sample(self, _=None) -> None:
        if self._busy:
            self._say("training is running: wait for it or press Stop", "warn")
            return
        self._guard(self._sample)

    def _sample(self) -> None:
        if self.run is None:
            raise KalsError("no model yet: press Train first")
        if self.stale:
            raise KalsError(f"the model is stale: it was trained with L={self.run.config.depth}, "
                            f"H={self.run.config.width} but the sliders say L={self.depth.value}, "
                            f"H={self.width.value} — press Train to retrain (or set L/H back)")
        chains, steps = check_int("chains", self.chains.value, 1), check_int("steps", self.steps.value, 1)
        every = max(1, math.ceil(steps / MAX_FRAMES))
        record = min(chains, GIF_CHAINS) if self.run.config.image_shape is not None else None
        self._say(f"sampling {chains} chains for {steps} steps …")
        self._set_busy(True)
        try:
            res = pipeline.sample_run(self.run, chains=chains, steps=steps, every=every, noise=self.noise.value,
                                      eps=self.eps.value, seed=self.seed.value, record=record,
                                      recipe=self.recipe.value)
            frames = frames_of(self.run, res, scale=GIF_SCALE)
            pngs = [png_bytes(f) for f in frames]
        finally:
            self._set_busy(False)
        self.result, self.frames, self.frames_png = res, frames, pngs
        self.play.playing = False
        self.scrubber.value = self.play.value = 0
        self.scrubber.max = self.play.max = len(pngs) - 1
        self.frame.value = pngs[0]
        self.export_button.disabled = False
        self.filename.value = gif_name(self.run.config, chains, steps, self.eps.value, self.noise.value)
        self._say(f"sampled {chains} chains x {steps} steps ({len(pngs)} frames, every {every} step(s)): "
                  "drag the frame slider or press play", "ok")

    def _on_scrub(self, change) -> None:
        i = change["new"]
        if 0 <= i < len(self.frames_png):
            self.frame.value = self.frames_png[i]

    # ------------------------------------------------------------------ export
    def _on_export(self, _=None) -> None:
        self._guard(self._export)

    def _export(self) -> None:
        if self.result is None:
            raise KalsError("nothing to export yet: press Sample first")
        name = self.filename.value.strip()
        if not name or "/" in name or "\\" in name:
            raise KalsError(f"file name {name!r} is not a plain file name; type one like 'walk.gif'")
        if not name.lower().endswith(".gif"):
            name += ".gif"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # the frames shown are the GIF's frames (pipeline.frames_of at export_gif's scale): write them
        path = save_gif(self.frames, self.out_dir / name, fps=GIF_FPS, hold_last=GIF_HOLD_LAST)
        self.gif_path = path.resolve()
        kb = path.stat().st_size / 1024
        self.saved.value = f"saved <code>{html.escape(str(self.gif_path))}</code> ({kb:.0f} KiB)"
        self._say(f"wrote {self.gif_path}", "ok")
