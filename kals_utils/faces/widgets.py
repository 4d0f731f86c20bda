"""The "Play with it" panel: ipywidgets controls over train -> sample -> scrub -> export GIF.

This module is the view: it lays out widgets and binds them to a :class:`panel.Panel`, the
headless controller that holds the settings, the trained run, the jobs, staleness and the time
estimates (tested without a kernel). ``KaleidoscopePanel(data)`` starts from the data set's preset.

It shows, for training, a recipe menu (``paper`` / ``improved``, see :mod:`kals_utils.recipes`), an
architecture menu (``mlp``, and ``cnn`` / ``unet`` / ``transformer`` for image data, see
:data:`model.ARCH_HELP`), depth L, width H, epochs, learning rate, batch size, training seed,
device and precision; for sampling, chains, steps, eps, start noise and a sampling seed of its own;
for export, the GIF file name, fps and an explicit **overwrite** box; and the buttons **Train**,
**Stop**, **Sample** and **Export GIF**. Inside a Jupyter kernel training runs in a background
thread, so the progress line, the live loss curve and Stop keep working. Sampling renders the walk
once into PNG frames (:func:`export.frames_of`) that the scrubber only swaps. After an export the
panel shows a download link (a ``data:`` URL, for files up to :data:`DOWNLOAD_MAX`), so a GIF
written on a remote Jupyter server reaches the user's machine. Every control is an attribute, so
code (and tests) can drive the panel: ``panel.depth.value = 3; panel.train_button.click()``.

For 1D/2D points a **Basins** button maps where every start ends at a few epochs of the last
training (:meth:`panel.Panel.basins`); the maps are rendered once into PNGs
(:func:`basin_pngs`) that the **epoch** slider only swaps: the basins forming over training.
"""

import base64
import html
from pathlib import Path
from typing import Optional

import ipywidgets as W

from .. import pipeline
from ..data import Data
from .export import frames_of
from ..model import ARCH_HELP, ARCHS
from .controls import FPS_MAX, RECIPE_SAMPLER, available_devices
from .panel import SHOWN, Panel
from .plots import basin_frames, fig_to_array, plot_losses
from ..precision import PRECISIONS
from ..recipes import RECIPES, get_recipe
from ..render import gif_scale, png_bytes
from ..sample import NOISES, SAMPLERS

DOWNLOAD_MAX = 20 * 2**20   # GIFs up to this size get a download link (base64 in the page)
IMAGE_ARCHS = tuple(a for a in ARCHS if a != "mlp")
COLORS = {"info": "inherit", "ok": "green", "warn": "#b36b00", "error": "#c00"}   # status line by kind
STYLE = {"description_width": "100px"}
BASIN_DPI = 96              # the panel's basin maps: 480 x 576 px in 2D (the box's width), 614 x 442 px in 1D


def _in_kernel() -> bool:
    """True inside a running Jupyter kernel (widgets then talk to a browser)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


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


def basin_pngs(maps, *, dpi: int = BASIN_DPI) -> list:
    """PNG bytes of each (epoch, model, map) of :attr:`panel.Panel.basin_maps`, as the panel shows them."""
    return [png_bytes(f) for f in basin_frames(maps, title="basins", dpi=dpi)] if maps else []


def _note(text: str) -> str:
    return f'<div style="color:#666;font-size:11px;line-height:1.3">{text}</div>'


def _cls(w, name: str):
    w.add_class(f"kals-{name}")
    return w


def _lay(width: str = "340px", **kw):
    return W.Layout(width=width, **kw)


class KaleidoscopePanel:
    """Interactive train/sample/export panel for one data set (``kals_utils.data.Data``).

    run: an already trained :class:`pipeline.Run` for ``data`` (Sample works at once; L, H, the
    architecture and the recipe start at its settings). Every other keyword (depth, width, epochs,
    lr, batch_size, chains, steps, eps, noise, seed, device, recipe, arch, sample_seed, precision,
    fps) is a starting value; one not given is the data set's preset (:mod:`presets`). ``seed``
    seeds training and, unless ``sample_seed`` is given, sampling. ``out_dir``: where Export GIF
    writes (default :func:`files.out_dir`). ``controller`` is the :class:`panel.Panel` behind the
    widgets; ``background`` (True only inside a Jupyter kernel) trains in a thread, else every click
    finishes before it returns. ``wait()`` joins a background training.
    """

    def __init__(self, data: Data, run: Optional[pipeline.Run] = None, *, out_dir=None, **settings):
        render = lambda r, walk: frames_of(r, walk, scale=gif_scale(r.config.image_shape))  # noqa: E731
        self.controller = c = Panel(data, run, render=render,
                                    background=_in_kernel(), out_dir=out_dir, **settings)
        self._build_train()
        self._build_sample()
        self._build_export()
        self._build_basins()
        self._layout()
        self._bind()
        for name in SHOWN:
            self._show(name)
        c.observe(self._show)

    # the controller's state, read through the view (code and tests drive the panel from here)
    data = property(lambda self: self.controller.data)
    run = property(lambda self: self.controller.run)
    result = property(lambda self: self.controller.result)
    frames = property(lambda self: self.controller.frames)
    frames_png = property(lambda self: self.controller.frames_png)
    gif_path = property(lambda self: self.controller.gif_path)
    out_dir = property(lambda self: self.controller.out_dir)
    stale = property(lambda self: self.controller.stale, doc="True when L, H, arch or recipe differ from the model's")
    background = property(lambda self: self.controller.background,
                          lambda self, on: setattr(self.controller, "background", on))

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until a background training run has finished (no-op if none)."""
        self.controller.wait(timeout)

    # ------------------------------------------------------------------ layout
    def _build_train(self):
        s, n = self.controller.settings, len(self.data)
        self.recipe = _cls(W.Dropdown(options=list(RECIPES), value=s.recipe, description="recipe", style=STYLE,
                                      layout=_lay()), "recipe")
        self.arch = _cls(W.Dropdown(options=list(ARCHS), value=s.arch, description="architecture", style=STYLE,
                                    layout=_lay(), disabled=self.data.image_shape is None), "arch")
        self.arch_help = _cls(W.HTML(layout=_lay(margin="0 0 4px 4px")), "arch-help")
        self.depth = _cls(W.IntSlider(value=s.depth, min=1, max=max(20, s.depth), description="depth L",
                                      style=STYLE, layout=_lay(), continuous_update=False), "depth")
        self.width = _cls(W.IntSlider(value=s.width, min=1, max=max(1024, s.width), description="width H",
                                      style=STYLE, layout=_lay(), continuous_update=False), "width")
        self.epochs = _cls(W.BoundedIntText(value=s.epochs, min=1, max=max(10**6, s.epochs), description="epochs",
                                            style=STYLE, layout=_lay()), "epochs")
        self.lr = _cls(W.FloatLogSlider(value=s.lr, base=10, min=-6, max=-1, step=0.1, readout_format=".1e",
                                        description="learning rate", style=STYLE, layout=_lay(),
                                        continuous_update=False), "lr")
        self.batch_size = _cls(W.BoundedIntText(value=s.batch_size, min=1, max=n, description="batch size",
                                                tooltip=f"training rows per Adam step; {n} (all) = full batch",
                                                style=STYLE, layout=_lay()), "batch-size")
        self.seed = _cls(W.BoundedIntText(value=s.seed, min=0, max=2**31 - 1, description="training seed",
                                          tooltip="seeds the initial weights and the batch order",
                                          style=STYLE, layout=_lay()), "seed")
        devices = available_devices() + ([s.device] if s.device not in available_devices() else [])
        self.device = _cls(W.Dropdown(options=devices, value=s.device, description="device",
                                      tooltip="auto: CUDA, then Apple MPS, then the CPU (only devices this "
                                              "machine has are listed)", style=STYLE, layout=_lay()), "device")
        self.precision = _cls(W.Dropdown(options=PRECISIONS, value=s.precision, description="precision",
                                         tooltip="bf16: bfloat16 matrix multiplies (fp32 weights, Adam and loss); "
                                                 "auto: bf16 where the device does it natively and the net is big",
                                         style=STYLE, layout=_lay()), "precision")
        self.train_button = _cls(W.Button(description="Train", button_style="primary", icon="play"), "train")
        self.stop_button = _cls(W.Button(description="Stop", button_style="warning", icon="stop"), "stop")
        self.progress = _cls(W.IntProgress(value=0, min=0, max=1, layout=_lay("336px")), "progress")
        self.progress_text = _cls(W.HTML(layout=_lay()), "progress-text")
        self.warning = _cls(W.HTML(), "warning")

    def _build_sample(self):
        s = self.controller.settings
        self.chains = _cls(W.IntSlider(value=s.chains, min=1, max=max(256, s.chains), description="chains",
                                       style=STYLE, layout=_lay(), continuous_update=False), "chains")
        self.steps = _cls(W.IntSlider(value=s.steps, min=1, max=max(300, s.steps), description="steps",
                                      style=STYLE, layout=_lay(), continuous_update=False), "steps")
        self.eps = _cls(W.FloatSlider(value=s.eps, min=0.0, max=max(0.5, s.eps), step=0.005, readout_format=".3f",
                                      description="eps", tooltip="scale of the zero-mean noise added between steps",
                                      style=STYLE, layout=_lay(), continuous_update=False), "eps")
        self.noise = _cls(W.ToggleButtons(options=list(NOISES), value=s.noise, description="start noise",
                                          style={**STYLE, "button_width": "110px"}), "noise")
        self.noise_note = _cls(W.HTML(layout=_lay()), "noise-note")
        self.sampler = _cls(W.Dropdown(options=[RECIPE_SAMPLER] + list(SAMPLERS), value=s.sampler, description="sampler",
                                       tooltip="recipe: the trained recipe's own (paper: walk, improved: restart or "
                                               "turn); walk: the paper's z <- f(z); turn: f of a start that turns "
                                               "smoothly; walkjump: chains that slide from image to image; "
                                               "restart, dae, langevin, annealed, settle: other chains that keep moving", style=STYLE, layout=_lay()), "sampler")
        self.sample_seed = _cls(W.BoundedIntText(value=s.sample_seed, min=0, max=2**31 - 1,
                                                 description="sampling seed", style=STYLE, layout=_lay(),
                                                 tooltip="seeds the start noise and the between-step noise"),
                                "sample-seed")
        self.sample_button = _cls(W.Button(description="Sample", button_style="success", icon="random"), "sample")

    def _build_export(self):
        s = self.controller.settings
        self.filename = _cls(W.Text(value=s.filename, description="GIF file name", style=STYLE,
                                    layout=_lay("440px")), "filename")
        self.fps = _cls(W.BoundedFloatText(value=s.fps, min=0.5, max=FPS_MAX, step=0.5, description="fps",
                                           tooltip="frames per second of the exported GIF",
                                           style={"description_width": "30px"}, layout=_lay("120px")), "fps")
        self.overwrite = _cls(W.Checkbox(value=s.overwrite, description="overwrite", indent=False,
                                         tooltip="replace a GIF of the same name in the output folder",
                                         layout=_lay("110px")), "overwrite")
        self.export_button = _cls(W.Button(description="Export GIF", icon="download"), "export")
        self.saved, self.download, self.status = _cls(W.HTML(), "saved"), _cls(W.HTML(), "download"), \
            _cls(W.HTML(), "status")
        self.loss_image = _cls(W.Image(format="png", layout=_lay("360px")), "loss")
        self.frame = _cls(W.Image(format="png", layout=W.Layout(max_width="640px")), "frame")
        self.play = _cls(W.Play(value=0, min=0, max=0, interval=150, description="play"), "play")
        self.scrubber = _cls(W.IntSlider(value=0, min=0, max=0, description="frame",
                                         style={"description_width": "50px"}, layout=_lay("360px")), "scrubber")
        W.jslink((self.play, "value"), (self.scrubber, "value"))

    def _build_basins(self):
        self.basin_png, self.basin_epochs = [], []   # rendered once per Basins press; the slider swaps them
        self.basins_button = _cls(W.Button(description="Basins", icon="th",
                                           tooltip="where every start ends, at a few epochs of the last training "
                                                   "(1D/2D points)"), "basins")
        self.basin_epoch = _cls(W.IntSlider(value=0, min=0, max=0, description="epoch", readout=False, disabled=True,
                                            style={"description_width": "50px"}, layout=_lay("200px")),
                                "basin-epoch")
        self.basin_epoch_text = _cls(W.HTML(layout=_lay("110px")), "basin-epoch-text")
        self.basin_image = _cls(W.Image(format="png", layout=W.Layout(max_width="480px")), "basin-image")

    def _layout(self):
        head = lambda text: W.HTML(f"<b>{text}</b>")  # noqa: E731
        wrap = lambda align: W.Layout(flex_flow="row wrap", align_items=align)  # noqa: E731
        train_box = W.VBox([head("Train f(x) ≈ x"), self.recipe, self.arch, self.arch_help, self.depth, self.width,
                            self.epochs, self.lr, self.batch_size, self.seed, self.device, self.precision,
                            W.HBox([self.train_button, self.stop_button]), self.progress, self.progress_text],
                           layout=W.Layout(margin="0 24px 0 0"))
        sample_box = W.VBox([head("Kaleidoscopic sampling"), self.chains, self.steps, self.eps, self.noise,
                             self.noise_note, self.sampler, self.sample_seed, self.sample_button])
        export_box = W.VBox([W.HBox([self.filename, self.fps, self.overwrite, self.export_button],
                                    layout=wrap("center")), self.saved, self.download])
        self.basins_box = W.VBox([head("basins while training"), W.HBox([self.basins_button, self.basin_epoch,
                                                                         self.basin_epoch_text], layout=wrap("center")),
                                  self.basin_image],   # 1D/2D points only: images have no map to draw
                                 layout=W.Layout(display="none" if self.data.image_shape is not None else None))
        view = W.HBox([W.VBox([head("loss"), self.loss_image]),
                       W.VBox([head("walk"), self.frame, W.HBox([self.play, self.scrubber])]),
                       self.basins_box], layout=wrap("flex-start"))
        self.widget = _cls(W.VBox([W.HBox([train_box, sample_box], layout=wrap("flex-start")), self.warning,
                                   export_box, self.status, view]), "panel")

    def _repr_mimebundle_(self, **kw):
        return self.widget._repr_mimebundle_(**kw)

    # ------------------------------------------------------------------ binding
    def _bind(self):
        c = self.controller
        for name in vars(c.settings):  # every setting is the control of the same name
            getattr(self, name).observe(lambda ch, name=name: c.set(**{name: ch["new"]}), names="value")
        self.recipe.observe(self._show_recipe, names="value")
        self.arch.observe(self._show_arch, names="value")
        self.scrubber.observe(self._on_scrub, names="value")
        self.basin_epoch.observe(self._on_basin_epoch, names="value")
        self.train_button.on_click(lambda _: c.train())
        self.stop_button.on_click(lambda _: c.stop())
        self.sample_button.on_click(lambda _: c.sample())
        self.export_button.on_click(lambda _: c.export())
        self.basins_button.on_click(lambda _: c.basins())
        self._show_recipe()
        self._show_arch()

    def _show_recipe(self, change=None) -> None:
        r = get_recipe(self.recipe.value)
        self.recipe.tooltip = f"{r.name}: {r.summary}"
        self.noise.disabled = r.start_kind is not None  # the improved recipe starts from the data's covariance
        self.noise.tooltip = (f"not used: the {r.name} recipe starts chains from the data's covariance"
                              if r.start_kind == "data" else "where the chains start: uniform or clipped normal noise")
        self.noise_note.value = (_note(f"{r.name} recipe: chains start from the data's covariance (file name: _data)")
                                 if r.start_kind == "data" else "")

    def _show_arch(self, change=None) -> None:
        arch = self.arch.value
        self.arch.tooltip = f"{arch}: {ARCH_HELP[arch]}"
        only = "" if self.data.image_shape is not None else f" ({', '.join(IMAGE_ARCHS)}: image data only)"
        self.arch_help.value = _note(f"{arch}: {html.escape(ARCH_HELP[arch])}{only}")

    def _on_scrub(self, change) -> None:
        pngs = self.controller.frames_png
        if 0 <= change["new"] < len(pngs):
            self.frame.value = pngs[change["new"]]

    def _on_basin_epoch(self, change) -> None:
        i = change["new"]
        if 0 <= i < len(self.basin_png):
            self.basin_image.value = self.basin_png[i]
            self.basin_epoch_text.value = f"{self.basin_epochs[i]} of {self.basin_epochs[-1]}"

    def _show_basins(self) -> None:
        maps = self.controller.basin_maps
        self.basin_png, self.basin_epochs = basin_pngs(maps), [e for e, _, _ in maps]
        self.basin_epoch.disabled = len(maps) < 2
        self.basin_epoch.max = max(0, len(maps) - 1)
        self.basin_image.layout.display = None if maps else "none"   # no empty (broken) image before Basins
        if maps:  # start at the trained model; drag left to watch its basins form
            self.basin_epoch.value = len(maps) - 1
            self._on_basin_epoch({"new": len(maps) - 1})
        else:  # none yet, or the old maps of a retrained model
            self.basin_image.value, self.basin_epoch_text.value = b"", ""

    def _show(self, name: str) -> None:
        """Show the controller's ``name`` (one of panel.SHOWN) in its widgets."""
        c = self.controller
        if name == "status":
            self.status.value = (f'<span style="color:{COLORS[c.status_kind]}">{html.escape(c.status)}</span>' +
                                 (f"<pre>{html.escape(c.status_detail)}</pre>" if c.status_detail else ""))
        elif name == "warning":
            self.warning.value = (f'<div style="color:#b36b00;line-height:1.4">⚠ {html.escape(c.warning)}</div>'
                                  if c.warning else "")
        elif name == "progress":
            (done, total), self.progress_text.value = c.progress, c.progress_line
            self.progress.max, self.progress.value, self.progress.bar_style = max(1, total), done, c.progress_style
        elif name == "losses" and c.losses:
            fig = plot_losses(list(c.losses), title=c.losses_title)
            fig.set_dpi(64)
            self.loss_image.value = png_bytes(fig_to_array(fig))
        elif name == "busy":
            self.train_button.disabled = self.sample_button.disabled = c.busy
            self.basins_button.disabled = c.busy or self.data.image_shape is not None
            self.export_button.disabled, self.stop_button.disabled = c.busy or c.result is None, not c.busy
        elif name == "walk":
            self._show_walk()
        elif name == "basins":
            self._show_basins()
        elif name == "filename":
            self.filename.value = c.settings.filename
        elif name == "saved" and c.saved:
            s = c.saved
            self.saved.value = (f"saved <code>{html.escape(str(s['path']))}</code> ({s['kib']:.0f} KiB, "
                                f"{s['fps']:g} fps{', replaced the old file' if s['replaced'] else ''})")
            self.download.value = download_link(s["path"])

    def _show_walk(self) -> None:
        pngs = self.controller.frames_png
        self.play.playing = False
        if pngs:
            self.scrubber.value = self.play.value = 0
            self.scrubber.max = self.play.max = len(pngs) - 1
        else:  # no walk, or the old walk of a retrained model
            self.scrubber.max = self.play.max = 0
        self.frame.value = pngs[0] if pngs else b""
        self.export_button.disabled = not pngs or self.controller.busy
