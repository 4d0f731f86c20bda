"""The "Play with it" panel: ipywidgets controls over train -> sample -> scrub -> export GIF.

``KaleidoscopePanel(data)`` shows, for training, a recipe menu (``paper`` / ``improved``, see
:mod:`kals_utils.recipes`), an architecture menu (``mlp``, and ``cnn`` / ``unet`` /
``transformer`` for image data, see :data:`model.ARCH_HELP`), depth L, width H, epochs, learning
rate, batch size, training seed and device; for sampling, chains, steps, eps, start noise and a
sampling seed of its own; for export, the GIF file name, fps and an explicit **overwrite** box;
and the buttons **Train**, **Stop**, **Sample** and **Export GIF**.

Expensive work only runs on a button press: training (:func:`pipeline.train_run`) runs in a
background thread inside a Jupyter kernel, so the progress line ("epoch N / total", elapsed and
remaining time), the live loss curve and Stop keep working; a training that would take long on a
CPU is flagged before it starts (a rough FLOP count) and again from the pace of its first epochs.
Sampling (:func:`pipeline.sample_run`) renders the walk once into PNG frames
(:func:`export.frames_of`) that the scrubber only swaps. Changing L, H, the architecture or the
recipe after training marks the model stale: Sample then asks to retrain. The ``improved`` recipe
starts chains from the data's covariance, so it disables the start-noise toggle. After an export
the panel shows a download link (a ``data:`` URL, for files up to :data:`DOWNLOAD_MAX`), so a GIF
written on a remote Jupyter server reaches the user's machine. The file name is filled in by Sample
only until the user types one. Every control is an attribute, so code (and tests) can drive the
panel: ``panel.depth.value = 3; panel.train_button.click()``.
"""

import base64
import html
import math
import re
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

import ipywidgets as W
import numpy as np

from . import pipeline
from .data import Data
from .device import DEVICES, pick_device
from .errors import KalsError, check_int
from .export import frames_of
from .model import ARCH_HELP, ARCHS, count_weights
from .plots import fig_to_array, plot_losses
from .precision import PRECISIONS
from .recipes import RECIPES, get_recipe
from .render import GIF_CHAINS, GIF_FPS, GIF_HOLD_LAST, GIF_SCALE, gif_name, png_bytes, save_gif
from .sample import NOISES

MAX_FRAMES = 100        # recorded steps shown by the scrubber (every k-th step beyond that)
LOSS_REDRAW_S = 1.0     # live loss curve: at most one redraw per this many seconds
PROGRESS_S = 0.1        # progress line: at most one update per this many seconds
CPU_FLOPS = 1.4e11      # fp32 rate of the 2-core Xeon in the README's Speed table (a train step ran at ~1.2x
                        # its 6 x rows x weights floor): the up-front estimate of a CPU training's time
LONG_TRAIN_S = 120.0    # a training expected to take longer than this gets a one-line warning
PACE_EPOCHS = 5         # epochs (and PACE_S seconds) before the measured pace replaces the estimate
PACE_S = 1.0
PACE_MAX_S = 10.0       # ... or after this many seconds, however few epochs are done
DOWNLOAD_MAX = 20 * 2**20   # GIFs up to this size get a download link (base64 in the page)
FPS_MAX = 100.0         # GIF timing is in hundredths of a second
IMAGE_ARCHS = tuple(a for a in ARCHS if a != "mlp")
_FLAG_NAMES = {"device": "device", "batch-size": "batch size", "depth": "depth L", "width": "width H",
               "epochs": "epochs", "lr": "learning rate", "seed": "training seed", "arch": "architecture",
               "recipe": "recipe", "chains": "chains", "steps": "steps", "eps": "eps", "noise": "start noise"}


def _in_kernel() -> bool:
    """True inside a running Jupyter kernel (widgets then talk to a browser)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def panel_words(message: str) -> str:
    """A library message in the panel's words: command-line flags become control names
    (``--device auto`` -> ``device auto``); flags in brackets, with no control here, are dropped."""
    message = re.sub(r"\s*\(--[a-z][a-z-]*[^()]*\)", "", message)            # "SUBSET (--subset)"
    message = re.sub(r",\s*--[a-z][a-z-]*(\s+[^\s,;)]+)?(?=[;)])", "", message)  # "(out_act=..., --out-act tanh;"
    return re.sub(r"--([a-z][a-z-]*)", lambda m: _FLAG_NAMES.get(m.group(1), m.group(1).replace("-", " ")), message)


def duration(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a number of seconds."""
    s = max(0, int(round(seconds)))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def about(seconds: float) -> str:
    """A long time in round words: ``45 s``, ``20 min``, ``3.5 h``, ``12 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def count_text(n: int) -> str:
    """``2.8M``, ``340k``, ``912``: a weight count at a glance."""
    return f"{n / 1e6:,.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else f"{n}"


def macs_per_row(cfg) -> float:
    """Rough multiply-adds of one forward pass of one row through the net of ``cfg`` (a ModelConfig):
    every weight once for the MLP, once per pixel (cnn) or per patch token (transformer); a U-Net's
    levels do about equal work (4x the weights on 1/4 of the pixels)."""
    w = count_weights(cfg)
    if cfg.arch == "mlp":
        return float(w)
    _, h, wd = cfg.image_shape
    if cfg.arch == "transformer":
        return float(w * math.ceil(h / cfg.patch) * math.ceil(wd / cfg.patch))
    if cfg.arch == "unet":
        return float(max(w, w * h * wd * cfg.depth / 4 ** (cfg.depth - 1)))
    return float(w * h * wd)


def cpu_train_seconds(cfg, rows: int, epochs: int, flops: float = CPU_FLOPS) -> float:
    """Rough CPU time of ``epochs`` passes over ``rows`` rows: 6 FLOPs per multiply-add and row
    (forward and backward), at ``flops`` per second. The 03 notebook's MNIST net (2.79M weights,
    1000 images, 10,000 epochs) comes out at about 20 minutes."""
    return 6.0 * rows * macs_per_row(cfg) * epochs / flops


def available_devices() -> list:
    """The device menu: auto and cpu, plus cuda / mps where this machine has them."""
    found = []
    for name in DEVICES:
        try:
            pick_device(name)
            found.append(name)
        except KalsError:
            pass
    return found


def download_link(path: Path, limit: int = DOWNLOAD_MAX) -> str:
    """HTML: a link that downloads ``path`` (a GIF) from the page itself (a base64 ``data:`` URL), so
    it works on a remote Jupyter server; files over ``limit`` bytes get a note instead."""
    size = path.stat().st_size
    name = html.escape(path.name, quote=True)
    if size > limit:
        return (f'<span style="color:#666">no download link: {size / 2**20:.1f} MiB is over '
                f'{limit / 2**20:.0f} MiB; the file is in the folder above</span>')
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<a class="kals-download-link" download="{name}" href="data:image/gif;base64,{data}" '
            f'style="color:#1565c0;text-decoration:underline">⬇ download {name}</a>')


def _cls(w, name: str):
    w.add_class(f"kals-{name}")
    return w


class KaleidoscopePanel:
    """Interactive train/sample/export panel for one data set (``kals_utils.data.Data``).

    run: an already trained :class:`pipeline.Run` for ``data`` (Sample works at once; L, H, the
    architecture and the recipe start at its settings). ``seed`` seeds training and, unless
    ``sample_seed`` is given, sampling. ``device``: auto, cpu, cuda or mps (only those this machine
    has). ``fps``: the exported GIF's frame rate. ``out_dir``: where Export GIF writes (created if
    missing). The attribute ``background`` (True only inside a Jupyter kernel) trains in a thread;
    with it False every click finishes before it returns. ``wait()`` joins a background training.
    """

    def __init__(self, data: Data, run: Optional[pipeline.Run] = None, depth: int = 7, width: int = 50,
                 epochs: int = 2000, lr: float = 1e-3, batch_size: Optional[int] = None, chains: int = 64,
                 steps: int = 30, eps: float = 0.0, noise: str = "normal", seed: int = 0,
                 device="auto", out_dir="../saved_samples", recipe: Optional[str] = None,
                 arch: Optional[str] = None, sample_seed: Optional[int] = None, fps: float = GIF_FPS):
        if not isinstance(data, Data):
            raise KalsError(f"KaleidoscopePanel needs a kals_utils.data.Data, got {type(data).__name__}; "
                            "load it with kals_utils.points(...) or kals_utils.load_data(...)")
        if noise not in NOISES:
            raise KalsError(f"unknown start noise {noise!r}; choose uniform or normal")
        if run is not None:
            depth, width = run.config.depth, run.config.width
        recipe = get_recipe(recipe or (run.config.recipe if run is not None else "paper")).name
        arch = arch or (run.config.model.arch if run is not None else "mlp")
        if arch not in ARCHS:
            raise KalsError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        self.data, self.run, self.result = data, run, None
        self.out_dir = Path(out_dir)
        self.background = _in_kernel()
        self.frames: Optional[np.ndarray] = None   # uint8 (F, H, W[, 3]) of the last walk
        self.frames_png: list = []                 # the same frames as PNG bytes, for the scrubber
        self.gif_path: Optional[Path] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._losses: list = []
        self._busy = False
        self._device_used = "cpu"
        self._name_auto, self._filling = True, False   # Sample names the GIF until the user types a name
        self._build_train(recipe, arch, depth, width, epochs, lr, batch_size, seed, self._device_choice(device))
        self._build_sample(chains, steps, eps, noise, seed if sample_seed is None else sample_seed)
        self._build_export(fps)
        self._layout()
        self._on_recipe()
        self._on_arch()
        if run is not None:
            self._draw_losses(run.result.losses)
            done = run.result.epochs_done
            self.progress.max, self.progress.value = max(1, done), done
            self.progress.bar_style = "success" if run.result.ok else "warning"
            self.progress_text.value = f"epoch {done} / {done} · trained before this panel opened"
            self._say(f"loaded model {self._describe(self._trained())}: {run.result.report()} — press Sample")
        else:
            self._say("press Train to fit the model (changing L, H, the architecture or the recipe later "
                      "needs a retrain)")

    @staticmethod
    def _device_choice(device) -> str:
        """The device menu's value for ``device``: checked now, so a device this machine lacks fails
        here with one line naming the device setting."""
        name = str(device or "auto").lower()
        pick_device(name)
        return name

    # ------------------------------------------------------------------ layout
    def _build_train(self, recipe, arch, depth, width, epochs, lr, batch_size, seed, device):
        style, lay = {"description_width": "100px"}, W.Layout(width="340px")
        n, images = len(self.data), self.data.image_shape is not None
        self.recipe = _cls(W.Dropdown(options=list(RECIPES), value=recipe, description="recipe", style=style,
                                      layout=lay), "recipe")
        self.arch = _cls(W.Dropdown(options=list(ARCHS), value=arch, description="architecture", style=style,
                                    layout=lay, disabled=not images), "arch")
        self.arch_help = _cls(W.HTML(layout=W.Layout(width="340px", margin="0 0 4px 4px")), "arch-help")
        self.depth = _cls(W.IntSlider(value=depth, min=1, max=max(20, depth), description="depth L",
                                      style=style, layout=lay, continuous_update=False), "depth")
        self.width = _cls(W.IntSlider(value=width, min=1, max=max(1024, width), description="width H",
                                      style=style, layout=lay, continuous_update=False), "width")
        self.epochs = _cls(W.BoundedIntText(value=epochs, min=1, max=max(10**6, epochs), description="epochs",
                                            style=style, layout=lay), "epochs")
        self.lr = _cls(W.FloatLogSlider(value=lr, base=10, min=-6, max=-1, step=0.1, readout_format=".1e",
                                        description="learning rate", style=style, layout=lay,
                                        continuous_update=False), "lr")
        self.batch_size = _cls(W.BoundedIntText(value=min(batch_size or n, n), min=1, max=n, description="batch size",
                                                tooltip=f"training rows per Adam step; {n} (all) = full batch",
                                                style=style, layout=lay), "batch-size")
        self.seed = _cls(W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="training seed",
                                          tooltip="seeds the initial weights and the batch order",
                                          style=style, layout=lay), "seed")
        devices = available_devices() + ([device] if device not in available_devices() else [])
        self.device = _cls(W.Dropdown(options=devices, value=device, description="device",
                                      tooltip="auto: CUDA, then Apple MPS, then the CPU (only devices this "
                                              "machine has are listed)", style=style, layout=lay), "device")
        self.precision = _cls(W.Dropdown(options=PRECISIONS, value="fp32", description="precision",
                                         tooltip="bf16: bfloat16 matrix multiplies (fp32 weights, Adam and loss); "
                                                 "auto: bf16 where the device does it natively and the net is big",
                                         style=style, layout=lay), "precision")
        self.train_button = _cls(W.Button(description="Train", button_style="primary", icon="play"), "train")
        self.stop_button = _cls(W.Button(description="Stop", button_style="warning", icon="stop",
                                         disabled=True), "stop")
        self.progress = _cls(W.IntProgress(value=0, min=0, max=max(1, epochs), layout=W.Layout(width="336px")),
                             "progress")
        self.progress_text = _cls(W.HTML(f"epoch 0 / {epochs}", layout=W.Layout(width="340px")), "progress-text")
        self.warning = _cls(W.HTML(), "warning")

    def _build_sample(self, chains, steps, eps, noise, sample_seed):
        style, lay = {"description_width": "100px"}, W.Layout(width="340px")
        self.chains = _cls(W.IntSlider(value=chains, min=1, max=max(256, chains), description="chains",
                                       style=style, layout=lay, continuous_update=False), "chains")
        self.steps = _cls(W.IntSlider(value=steps, min=1, max=max(300, steps), description="steps",
                                      style=style, layout=lay, continuous_update=False), "steps")
        self.eps = _cls(W.FloatSlider(value=eps, min=0.0, max=max(0.5, eps), step=0.005, readout_format=".3f",
                                      description="eps", tooltip="scale of the zero-mean noise added between steps",
                                      style=style, layout=lay, continuous_update=False), "eps")
        self.noise = _cls(W.ToggleButtons(options=list(NOISES), value=noise, description="start noise",
                                          style={**style, "button_width": "110px"}), "noise")
        self.noise_note = _cls(W.HTML(layout=W.Layout(width="340px")), "noise-note")
        self.sample_seed = _cls(W.BoundedIntText(value=sample_seed, min=0, max=2**31 - 1, description="sampling seed",
                                                 tooltip="seeds the start noise and the between-step noise",
                                                 style=style, layout=lay), "sample-seed")
        self.sample_button = _cls(W.Button(description="Sample", button_style="success", icon="random"), "sample")

    def _build_export(self, fps):
        self.filename = _cls(W.Text(value="kaleidoscope.gif", description="GIF file name",
                                    style={"description_width": "100px"}, layout=W.Layout(width="440px")),
                             "filename")
        self.fps = _cls(W.BoundedFloatText(value=fps, min=0.5, max=FPS_MAX, step=0.5, description="fps",
                                           tooltip="frames per second of the exported GIF",
                                           style={"description_width": "30px"}, layout=W.Layout(width="120px")),
                        "fps")
        self.overwrite = _cls(W.Checkbox(value=False, description="overwrite", indent=False,
                                         tooltip="replace a GIF of the same name in the output folder",
                                         layout=W.Layout(width="110px")), "overwrite")
        self.export_button = _cls(W.Button(description="Export GIF", icon="download", disabled=True), "export")
        self.saved = _cls(W.HTML(), "saved")
        self.download = _cls(W.HTML(), "download")
        self.status = _cls(W.HTML(), "status")
        self.loss_image = _cls(W.Image(format="png", layout=W.Layout(width="360px")), "loss")
        self.frame = _cls(W.Image(format="png", layout=W.Layout(max_width="640px")), "frame")
        self.play = _cls(W.Play(value=0, min=0, max=0, interval=150, description="play"), "play")
        self.scrubber = _cls(W.IntSlider(value=0, min=0, max=0, description="frame",
                                         style={"description_width": "50px"}, layout=W.Layout(width="360px")),
                             "scrubber")
        W.jslink((self.play, "value"), (self.scrubber, "value"))

    def _layout(self):
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.sample_button.on_click(self._on_sample)
        self.export_button.on_click(self._on_export)
        self.scrubber.observe(self._on_scrub, names="value")
        self.filename.observe(self._on_name, names="value")
        for w in (self.depth, self.width, self.arch, self.recipe):
            w.observe(self._on_model_control, names="value")
        self.recipe.observe(self._on_recipe, names="value")
        self.arch.observe(self._on_arch, names="value")
        for w in (self.epochs, self.depth, self.width, self.device, self.batch_size):
            w.observe(self._estimate, names="value")

        head = lambda text: W.HTML(f"<b>{text}</b>")  # noqa: E731
        wrap = lambda align: W.Layout(flex_flow="row wrap", align_items=align)  # noqa: E731
        train_box = W.VBox([head("Train f(x) ≈ x"), self.recipe, self.arch, self.arch_help, self.depth, self.width,
                            self.epochs, self.lr, self.batch_size, self.seed, self.device, self.precision,
                            W.HBox([self.train_button, self.stop_button]), self.progress, self.progress_text],
                           layout=W.Layout(margin="0 24px 0 0"))
        sample_box = W.VBox([head("Kaleidoscopic sampling"), self.chains, self.steps, self.eps, self.noise,
                             self.noise_note, self.sample_seed, self.sample_button])
        export_box = W.VBox([W.HBox([self.filename, self.fps, self.overwrite, self.export_button],
                                    layout=wrap("center")),
                             self.saved, self.download])
        view = W.HBox([W.VBox([head("loss"), self.loss_image]),
                       W.VBox([head("walk"), self.frame, W.HBox([self.play, self.scrubber])])],
                      layout=wrap("flex-start"))
        self.widget = _cls(W.VBox([W.HBox([train_box, sample_box], layout=wrap("flex-start")), self.warning,
                                   export_box, self.status, view]), "panel")

    def _repr_mimebundle_(self, **kw):
        return self.widget._repr_mimebundle_(**kw)

    # ------------------------------------------------------------------ state
    def _controls(self) -> dict:
        return {"L": self.depth.value, "H": self.width.value, "arch": self.arch.value, "recipe": self.recipe.value}

    def _trained(self) -> dict:
        cfg = self.run.config
        return {"L": cfg.depth, "H": cfg.width, "arch": cfg.model.arch, "recipe": cfg.recipe}

    @staticmethod
    def _describe(c: dict) -> str:
        return f"L={c['L']}, H={c['H']}, {c['arch']}, {c['recipe']} recipe"

    @property
    def stale(self) -> bool:
        """True when depth L, width H, the architecture or the recipe differ from the trained model's
        (or nothing is trained)."""
        return self.run is None or self._controls() != self._trained()

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until a background training run has finished (no-op if none)."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _say(self, text: str, kind: str = "info") -> None:
        color = {"info": "inherit", "ok": "green", "warn": "#b36b00", "error": "#c00"}[kind]
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _warn(self, text: str = "") -> None:
        self.warning.value = (f'<div style="color:#b36b00;line-height:1.4">⚠ {html.escape(text)}</div>'
                              if text else "")

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
            self._say(panel_words(str(e)), "error")
        except Exception as e:  # a bug: keep the traceback visible in the panel
            self.status.value = (f'<span style="color:#c00">{html.escape(type(e).__name__)}: '
                                 f'{html.escape(str(e))}</span><pre>{html.escape(traceback.format_exc())}</pre>')

    # ------------------------------------------------------------------ controls
    def _on_model_control(self, change=None) -> None:
        if self.run is not None and not self._busy:
            if self.stale:
                changed = [k for k, v in self._controls().items() if v != self._trained()[k]]
                names = {"L": "depth L", "H": "width H", "arch": "architecture", "recipe": "recipe"}
                self._say(f"{', '.join(names[k] for k in changed)} changed: the trained model is "
                          f"{self._describe(self._trained())}; the controls say {self._describe(self._controls())}"
                          " — press Train to retrain", "warn")
            else:
                self._say(f"the controls match the trained model again ({self._describe(self._trained())})")

    def _on_recipe(self, change=None) -> None:
        r = get_recipe(self.recipe.value)
        self.recipe.tooltip = f"{r.name}: {r.summary}"
        self.noise.disabled = r.start_kind is not None
        self.noise.tooltip = (f"not used: the {r.name} recipe starts chains from the data's covariance"
                              if r.start_kind == "data" else "where the chains start: uniform or clipped normal noise")
        self.noise_note.value = (f'<div style="color:#666;font-size:11px;line-height:1.3">{r.name} recipe: chains '
                                 f'start from the data\'s covariance (file name: _data)</div>'
                                 if r.start_kind == "data" else "")

    def _on_arch(self, change=None) -> None:
        arch = self.arch.value
        self.arch.tooltip = f"{arch}: {ARCH_HELP[arch]}"
        note = "" if self.data.image_shape is not None else f" ({', '.join(IMAGE_ARCHS)}: image data only)"
        self.arch_help.value = (f'<div style="color:#666;font-size:11px;line-height:1.3">{arch}: '
                                f'{html.escape(ARCH_HELP[arch])}{note}</div>')
        self._estimate()

    def _check_arch(self) -> None:
        if self.arch.value != "mlp" and self.data.image_shape is None:
            raise KalsError(f"architecture {self.arch.value} needs image data; these are {self.data.dim}D points: "
                            "set architecture to mlp")

    def _batch(self) -> Optional[int]:
        b = check_int("batch size", self.batch_size.value, 1)
        return None if b >= len(self.data) else b

    def _estimate(self, change=None) -> None:
        """The up-front warning: a rough CPU time of the configured training (no work is done)."""
        if self._busy:
            return
        try:
            self._check_arch()
            if pick_device(self.device.value).type != "cpu":
                return self._warn()
            cfg = pipeline.make_config(self.data, self.depth.value, self.width.value, arch=self.arch.value).model
            seconds = cpu_train_seconds(cfg, len(self.data), self.epochs.value)
            weights = count_weights(cfg)
        except KalsError:
            return self._warn()
        rows = "images" if self.data.image_shape is not None else "points"
        self._warn(f"about {about(seconds)} of CPU time: {self.epochs.value} epochs × {len(self.data)} {rows} "
                   f"× {count_text(weights)} weights; lower epochs, width H or depth L for a quick look"
                   if seconds > LONG_TRAIN_S else "")

    def _on_name(self, change) -> None:
        if not self._filling:  # the user typed: keep their name (an emptied box hands naming back to Sample)
            self._name_auto = not change["new"].strip()

    def _fill_name(self, name: str) -> None:
        if self._name_auto:
            self._filling = True
            try:
                self.filename.value = name
            finally:
                self._filling = False

    # ------------------------------------------------------------------ training
    def _on_train(self, _=None) -> None:
        if self._busy:
            return
        self._guard(self._start_training)

    def _start_training(self) -> None:
        self._check_arch()
        self._device_used = pick_device(self.device.value).type  # "auto" resolved, for the messages
        epochs = check_int("epochs", self.epochs.value, 1)
        kw = dict(depth=self.depth.value, width=self.width.value, arch=self.arch.value, epochs=epochs,
                  lr=self.lr.value, batch_size=self._batch(), seed=self.seed.value, device=self.device.value,
                  recipe=self.recipe.value, precision=self.precision.value)
        self._stop.clear()
        self._losses = []
        self.progress.max, self.progress.value, self.progress.bar_style = epochs, 0, ""
        self.progress_text.value = f"epoch 0 / {epochs} · starting …"
        self._set_busy(True)
        self._say(f"training {self._describe(self._controls())} for {epochs} epochs on {self._device_used} …")
        if self.background:
            self._thread = threading.Thread(target=self._train_job, args=(kw,), daemon=True,
                                            name="kals-train")
            self._thread.start()
        else:
            self._train_job(kw)

    def _progress_line(self, done: int, total: int, elapsed: float, tail: Optional[str] = None) -> str:
        if tail is None:
            tail = f"~{duration(elapsed / done * (total - done))} left" if done else "…"
        return f"epoch {done} / {total} · {duration(elapsed)} elapsed · {tail}"

    def _pace(self, done: int, total: int, elapsed: float) -> None:
        """Once, after the first epochs: warn if the measured pace makes the whole training long."""
        projected = elapsed / done * total
        if projected > LONG_TRAIN_S:
            self._warn(f"at the pace of the first {done} epochs this training takes about {about(projected)} "
                       f"on {self._device_used}; Stop keeps the best weights so far")
        else:
            self._warn()

    def _train_job(self, kw: dict) -> None:
        # live loss curve only when someone can watch it (background), and at most ~20% of the time
        now0 = time.monotonic()
        last = {"bar": 0.0, "plot": now0, "gap": LOSS_REDRAW_S, "t0": now0, "paced": False}
        total = kw["epochs"]

        def started() -> None:
            last["t0"] = time.monotonic()

        def callback(epoch: int, loss: float) -> None:
            self._losses.append(loss)
            now = time.monotonic()
            done, elapsed = epoch + 1, now - last["t0"]
            if not last["paced"] and (done >= PACE_EPOCHS and elapsed >= PACE_S or elapsed >= PACE_MAX_S):
                last["paced"] = True
                self._pace(done, total, elapsed)
            if now - last["bar"] >= PROGRESS_S:
                last["bar"] = now
                self.progress.value = done
                self.progress_text.value = self._progress_line(done, total, elapsed)
            if self.background and now - last["plot"] >= last["gap"]:
                self._draw_losses(self._losses, title=f"training loss (epoch {done})")
                last["plot"] = time.monotonic()
                last["gap"] = max(LOSS_REDRAW_S, 4 * (last["plot"] - now))

        def job():
            run = pipeline.train_run(self.data, progress=False, callback=callback, on_start=started,
                                     should_stop=self._stop.is_set, **kw)
            self.run, self.result, self.frames, self.frames_png = run, None, None, []
            self._clear_walk()
            r = run.result
            self.progress.value = r.epochs_done
            self.progress.bar_style = "success" if r.ok else "warning"
            self.progress_text.value = self._progress_line(r.epochs_done, total, time.monotonic() - last["t0"],
                                                           "done" if r.epochs_done == total else r.status)
            self._draw_losses(r.losses)
            self._say(f"trained {self._describe(self._trained())}: {r.report()}", "ok" if r.ok else "warn")

        try:
            self._guard(job)
        finally:
            self._set_busy(False)
            self._estimate()  # the pace warning was about this training; the next one gets the estimate

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
            raise KalsError(f"the model is stale: it was trained with {self._describe(self._trained())} but the "
                            f"controls say {self._describe(self._controls())} — press Train to retrain "
                            "(or set them back)")
        chains, steps = check_int("chains", self.chains.value, 1), check_int("steps", self.steps.value, 1)
        seed = check_int("sampling seed", self.sample_seed.value, 0)
        every = max(1, math.ceil(steps / MAX_FRAMES))
        record = min(chains, GIF_CHAINS) if self.run.config.image_shape is not None else None
        recipe = get_recipe(self.recipe.value)
        self._say(f"sampling {chains} chains for {steps} steps …")
        self._set_busy(True)
        try:
            res = pipeline.sample_run(self.run, chains=chains, steps=steps, every=every, noise=self.noise.value,
                                      eps=self.eps.value, seed=seed, record=record, recipe=recipe.name,
                                      precision=self.precision.value)
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
        arch = self.run.config.model.arch
        self._fill_name(gif_name(self.run.config, chains, steps, self.eps.value, recipe.start_kind or self.noise.value,
                                 extra="" if arch == "mlp" else f"_{arch}"))
        start = "the data's covariance" if recipe.start_kind == "data" else f"{self.noise.value} noise"
        self._say(f"sampled {chains} chains x {steps} steps from {start}, sampling seed {seed} ({len(pngs)} frames, "
                  f"every {every} step(s)): drag the frame slider or press play", "ok")

    def _on_scrub(self, change) -> None:
        i = change["new"]
        if 0 <= i < len(self.frames_png):
            self.frame.value = self.frames_png[i]

    # ------------------------------------------------------------------ export
    def _on_export(self, _=None) -> None:
        self._guard(self._export)

    def _free_name(self, name: str) -> str:
        stem, k = name[:-4], 2
        while (self.out_dir / f"{stem}_{k}.gif").exists():
            k += 1
        return f"{stem}_{k}.gif"

    def _export(self) -> None:
        if self.result is None:
            raise KalsError("nothing to export yet: press Sample first")
        name = self.filename.value.strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise KalsError(f"GIF file name {name!r} is not a plain file name; type one like 'walk.gif'")
        if not name.lower().endswith(".gif"):
            name += ".gif"
        fps = self.fps.value
        if not (isinstance(fps, (int, float)) and 0 < fps <= FPS_MAX):
            raise KalsError(f"fps must be a number above 0 and at most {FPS_MAX:g}, got {fps!r}")
        path = self.out_dir / name
        existed = path.exists()
        if existed and not self.overwrite.value:
            raise KalsError(f"{name} already exists in {self.out_dir}: tick 'overwrite' to replace it, or change "
                            f"the GIF file name (e.g. {self._free_name(name)})")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # the frames shown are the GIF's frames (export.frames_of at export_gif's scale): write them
        path = save_gif(self.frames, path, fps=fps, hold_last=GIF_HOLD_LAST)
        self.gif_path = path.resolve()
        kb = path.stat().st_size / 1024
        self.saved.value = (f"saved <code>{html.escape(str(self.gif_path))}</code> ({kb:.0f} KiB, {fps:g} fps"
                            f"{', replaced the old file' if existed else ''})")
        self.download.value = download_link(self.gif_path)
        self._say(f"wrote {self.gif_path}", "ok")
