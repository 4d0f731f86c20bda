"""The panel's Train and Stop buttons: :class:`Training`, the part of :class:`panel.Panel` that fits
a model with the controls' settings (in a thread inside a Jupyter kernel), reports each epoch
through :class:`pace.Trainer`, keeps the weights at a few epochs for the basin maps (1D/2D points)
and hands the run to the panel. Plain Python, no widgets."""

import threading
from typing import Callable, Optional

from .. import pipeline
from ..errors import check_int
from ..device import pick_device
from ..model import build_model
from ..precision import precision_note
from ..studies.capacity import SNAPSHOTS, snapshot_epochs
from .controls import describe
from .pace import Trainer


class Training:
    """Train, stop and wait, for :class:`panel.Panel` (which holds the state these methods read and
    write: ``settings``, ``data``, ``run``, ``losses``, the status and progress lines)."""

    def train(self) -> None:
        """Fit a model with the current settings (in a thread when ``background``; ``wait()`` joins it)."""
        if not self.busy:
            self._guard(self._start_training)

    def _start_training(self) -> None:
        s = self.settings
        self._check_arch()
        self.device_used = pick_device(s.device).type  # "auto" resolved, for the messages
        epochs = check_int("epochs", s.epochs, 1)
        batch = check_int("batch size", s.batch_size, 1)
        kw = dict(depth=s.depth, width=s.width, arch=s.arch, epochs=epochs, lr=s.lr, seed=s.seed, device=s.device,
                  batch_size=None if batch >= len(self.data) else batch, recipe=s.recipe, precision=s.precision,
                  note=None)  # the note is in the status line instead
        self._stop.clear()
        self._progress(0, epochs, f"epoch 0 / {epochs} · starting …", "")
        self._set_busy(True)
        note = precision_note(s.precision, self.device_used)
        self._say(f"training {describe(self.controls())} for {epochs} epochs on {self.device_used} … {note}".strip(),
                  "warn" if note else "info")
        job = Trainer(epochs, progress=lambda done, line: self._progress(done, epochs, line), warn=self._warn,
                      draw=self._draw if self.background else None, device=self.device_used)
        self.losses = job.losses
        if self.background:
            self._thread = threading.Thread(target=self._train_job, args=(job, kw), daemon=True, name="kals-train")
            self._thread.start()
        else:
            self._train_job(job, kw)

    def _draw(self, losses: list, done: int) -> None:
        self.losses_title = f"training loss (epoch {done})"
        self._notify("losses")

    def _keeper(self, kw: dict, kept: dict) -> Optional[Callable[[int], None]]:
        """For 1D/2D points: build the net ``train_run`` would build into ``kw`` and return
        ``keep(epoch)``, which copies its weights into ``kept`` at :func:`snapshot_epochs`; else None."""
        if self.data.image_shape is not None or self.data.dim > 2:
            return None
        when = set(snapshot_epochs(kw["epochs"], SNAPSHOTS))
        kw["model"] = model = build_model(pipeline.make_config(self.data, kw["depth"], kw["width"],
                                                               arch=kw["arch"]).model, seed=kw["seed"])

        def keep(epoch: int) -> None:  # epoch is 0-based: the weights after epoch + 1 epochs
            if epoch + 1 in when:
                kept[epoch + 1] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return keep

    def _train_job(self, job: Trainer, kw: dict) -> None:
        kept: dict = {}
        keep = self._keeper(kw, kept)

        def epoch(i: int, loss: float) -> None:
            job.epoch(i, loss)
            if keep is not None:
                keep(i)

        def finish():
            run = pipeline.train_run(self.data, progress=False, callback=epoch, on_start=job.started,
                                     should_stop=self._stop.is_set, **kw)
            self.run, self.result, self.frames, self.frames_png = run, None, None, []
            self.snapshots, self.basin_maps = kept, []
            self._notify("walk")  # the old walk and basins belonged to the old model
            self._notify("basins")
            r = run.result
            self._progress(r.epochs_done, job.total, job.line(r.epochs_done, "done" if r.epochs_done == job.total
                                                               else r.status), "success" if r.ok else "warning")
            self.losses, self.losses_title = list(r.losses), "training loss"
            self._notify("losses")
            self._say(f"trained {describe(self.trained())}: {r.report()}", "ok" if r.ok else "warn")
        try:
            self._guard(finish)
        finally:
            self._set_busy(False)
            self.estimate()  # the pace warning was about this training; the next one gets the estimate

    def stop(self) -> None:
        """Ask a running training to stop; it keeps the best weights so far."""
        self._stop.set()
        self._say("stopping … (the best weights so far are kept)", "warn")

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until a background training has finished (no-op if none)."""
        if self._thread is not None:
            self._thread.join(timeout)
