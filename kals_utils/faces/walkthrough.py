"""The steps every image notebook takes, as one call each: data -> f(x) during training -> the walk
-> its measures -> the GIF -> the paper's recipe beside it -> the panel.

``04_cifar_dogs`` and ``05_celeba`` keep their own names, prose and presets; their code cells are
these calls, so the two notebooks share no code of their own. ``ImageNotebook.from_parameters(globals())``
reads the notebook's ``parameters`` cell (upper-case names) and applies ``QUICK`` / ``SMOKE``.
"""

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Optional

from IPython.display import Image, display

from ..data import REGISTRY, Data, load_data
from ..measures.evaluate import evaluate_run
from .export import export_gif, frames_of
from ..files import data_dir, out_dir
from ..pipeline import Run, sample_run, train_run
from .plots import plot_frames, plot_images, plot_losses, plot_reconstructions
from ..presets import EPOCHS, MIRROR, QUICK_IMAGES, SMOKE_IMAGES
from ..recipes import start_label
from ..render import gif_name
from ..sample import RESTART_BURN, SampleResult
from ..studies.sweeps import train_with_reconstructions
from ..measures.tables import format_evaluation
from .widgets import KaleidoscopePanel

SHOWN = 32  # training images drawn by load()


@dataclass
class ImageNotebook:
    """An image notebook's settings (its ``parameters`` cell) and what its steps made so far."""

    dataset: str
    subset: Optional[int]
    image_size: Optional[int]
    depth: int
    width: int
    lr: float
    batch_size: Optional[int]
    chains: int
    steps: int
    every: int
    eps: float
    noise: str
    recipe: str
    seed: int
    device: str
    epochs: int = EPOCHS            # passes over the data (the budget when ``updates`` is None)
    updates: Optional[int] = None   # the budget in optimizer updates (wins over epochs)
    sampler: Optional[str] = None   # None: the recipe's own (sample.SAMPLERS)
    mirror: str = MIRROR            # the improved recipe on the images' left-right mirrors too (mirror.py)
    data_root: str = ""
    out_dir: str = ""
    snapshots: int = 6
    show_steps: tuple = (0, 5, 15, 30, 100, 300)
    gif_fps: float = 8.0
    quick: bool = False
    smoke: bool = False
    data: Optional[Data] = field(default=None, repr=False)
    run: Optional[Run] = field(default=None, repr=False)
    walk: Optional[SampleResult] = field(default=None, repr=False)

    @classmethod
    def from_parameters(cls, params: dict) -> "ImageNotebook":
        """The settings from a notebook's upper-case names (``DEPTH`` -> depth, ...); ``QUICK`` and then
        ``SMOKE`` replace some of them (:data:`presets.QUICK_IMAGES`, :data:`presets.SMOKE_IMAGES`)."""
        names = {f.name for f in fields(cls) if f.name not in ("data", "run", "walk")}
        nb = cls(**{k.lower(): v for k, v in params.items() if k.lower() in names and k.isupper()})
        nb = replace(nb, **(QUICK_IMAGES if nb.quick else {}))
        nb = replace(nb, **(SMOKE_IMAGES if nb.smoke else {}))
        return replace(nb, data_root=str(data_dir(nb.data_root)), out_dir=str(out_dir(nb.out_dir)))

    def load(self) -> None:
        """Load the data set and draw some training images."""
        self.data = load_data(self.dataset, root=self.data_root, subset=self.subset, seed=self.seed,
                              value_range=(-1, 1), image_size=self.image_size)
        d = self.data
        if self.dataset in REGISTRY:   # what the set is (an offline stand-in says so)
            print(f"{self.dataset}: {REGISTRY[self.dataset].help}")
        classes = "" if d.labels is None else f", classes {sorted(set(d.labels.tolist()))}"
        size = f" (IMAGE_SIZE = {self.image_size}: resized to it)" if self.image_size else ""
        print(f"{self.dataset}: {len(d)} images of shape {d.image_shape}{size}, values in {d.value_range}{classes}")
        if d.note:
            print(f"note: {d.note}")
        display(plot_images(d.x[:SHOWN], d.image_shape, d.value_range, title=f"training images ({len(d)} in all)"))

    def train(self) -> None:
        """Fit f(x) ~= x with the notebook's recipe, keeping f of a few training images along the way."""
        self.run, rec = train_with_reconstructions(
            self.data, depth=self.depth, width=self.width, epochs=self.epochs, updates=self.updates, lr=self.lr,
            batch_size=self.batch_size, seed=self.seed, device=self.device, snapshots=self.snapshots,
            recipe=self.recipe, mirror=self.mirror)
        print(self.run.result.report())
        display(plot_losses(self.run.result.losses, title=f"training loss, L={self.depth}, H={self.width}"))
        display(plot_reconstructions(rec, self.data.image_shape, self.data.value_range))

    def sample(self, run: Optional[Run] = None, title: Optional[str] = None) -> SampleResult:
        """Walk the chains of ``run`` (default: the trained one, kept as ``self.walk``) and draw a few of
        its steps; returns the walk."""
        run = run or self.run
        walk = sample_run(run, chains=self.chains, steps=self.steps, every=self.every, noise=self.noise,
                          eps=self.eps, seed=self.seed, sampler=self.sampler if run is self.run else None)
        burn = run.config.extra.get("burn", RESTART_BURN)   # chosen by the selection rule (improved)
        print(f"sampler: {walk.sampler}" + {"restart": f", {burn} hidden burn-in step(s) after each restart",
                                            "turn": f", f applied {burn + 1} time(s) to a start that turns "
                                                    "smoothly (the selection rule saw the walk collapse)"}
              .get(walk.sampler, ""))
        if run is self.run:
            self.walk = walk
        display(plot_frames(frames_of(run, walk, title=title), walk.steps, show=self.show_steps))
        return walk

    def measure(self) -> None:
        """Print the measures of the walk (evaluate_run)."""
        print(format_evaluation(evaluate_run(self.run, self.walk)))

    def gif(self, run: Optional[Run] = None, walk: Optional[SampleResult] = None, extra: str = "") -> Image:
        """Write the walk as a GIF under ``out_dir`` and show it."""
        run, walk = run or self.run, walk or self.walk
        name = gif_name(run.config, self.chains, self.steps, self.eps, start_label(run.config.recipe, self.noise),
                        extra=extra)
        path = export_gif(run, walk, Path(self.out_dir) / name, fps=self.gif_fps)
        print(f"GIF written to {path.name} in OUT_DIR ({path.stat().st_size / 1e6:.2f} MB)")
        return Image(filename=str(path))

    def paper(self) -> Image:
        """The same net and schedule trained the paper's way, walked, measured as :meth:`measure` measures
        the recipe's walk, and written as a GIF."""
        run = train_run(self.data, depth=self.depth, width=self.width, epochs=self.epochs, updates=self.updates,
                        lr=self.lr, batch_size=self.batch_size, seed=self.seed, device=self.device, recipe="paper")
        print(run.result.report())
        walk = self.sample(run, title="paper recipe")
        print(format_evaluation(evaluate_run(run, walk)))
        return self.gif(run, walk, extra="_paper")

    def panel(self) -> KaleidoscopePanel:
        """The control panel over the data, starting from the trained net."""
        return KaleidoscopePanel(self.data, run=self.run, depth=self.depth, width=self.width, epochs=self.epochs,
                                 lr=self.lr, batch_size=self.batch_size, chains=self.chains, steps=self.steps,
                                 eps=self.eps, noise=self.noise, seed=self.seed, device=self.device,
                                 out_dir=self.out_dir)
