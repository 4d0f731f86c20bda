"""How long a training takes: a rough CPU estimate before it starts, a progress line and a warning
from the measured pace while it runs (:class:`Trainer`), and times in words. Used by :mod:`panel`;
plain Python, nothing drawn."""

import math
import time
from typing import Callable, Optional

from ..model import count_weights

CPU_FLOPS = 1.4e11      # fp32 rate of the 2-core Xeon in the README's Speed table (a train step ran at ~1.2x
                        # its 6 x rows x weights floor): the up-front estimate of a CPU training's time
LONG_TRAIN_S = 120.0    # a training expected to take longer than this gets a one-line warning
PROGRESS_S = 0.1        # progress line: at most one update per this many seconds
LOSS_REDRAW_S = 1.0     # live loss curve: at most one redraw per this many seconds
PACE_EPOCHS = 5         # epochs (and PACE_S seconds) before the measured pace replaces the estimate
PACE_S = 1.0
PACE_MAX_S = 10.0       # ... or after this many seconds, however few epochs are done


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


def long_training(cfg, rows: int, epochs: int, what: str = "points") -> str:
    """A one-line warning when the training of ``cfg`` on ``rows`` rows looks long on a CPU, else ''."""
    seconds = cpu_train_seconds(cfg, rows, epochs)
    if seconds <= LONG_TRAIN_S:
        return ""
    return (f"about {about(seconds)} of CPU time: {epochs} epochs × {rows} {what} × "
            f"{count_text(count_weights(cfg))} weights; lower epochs, width H or depth L for a quick look")


class Trainer:
    """The clock of one training of ``epochs`` epochs: pass :meth:`epoch` as ``train_run``'s callback
    and :meth:`started` as its ``on_start``. It calls ``progress(done, line)`` at most every
    PROGRESS_S, ``warn(text)`` once after the first epochs (text '' when the pace is fine), and
    ``draw(losses, done)`` for a live loss curve at most every LOSS_REDRAW_S and at most ~20% of the
    time (only when ``draw`` is given: when someone can watch)."""

    def __init__(self, epochs: int, *, progress: Callable[[int, str], None], warn: Callable[[str], None],
                 draw: Optional[Callable[[list, int], None]] = None, device: str = "cpu"):
        self.total, self.progress, self.warn, self.draw, self.device = epochs, progress, warn, draw, device
        self.losses: list = []
        self.t0 = self.last_bar = self.last_plot = time.monotonic()
        self.gap, self.paced = LOSS_REDRAW_S, False

    def started(self) -> None:
        self.t0 = time.monotonic()

    def line(self, done: int, tail: Optional[str] = None) -> str:
        """``epoch 40 / 80 · 0:03 elapsed · ~0:03 left`` (or ``tail`` instead of the time left)."""
        elapsed = time.monotonic() - self.t0
        if tail is None:
            tail = f"~{duration(elapsed / done * (self.total - done))} left" if done else "…"
        return f"epoch {done} / {self.total} · {duration(elapsed)} elapsed · {tail}"

    def epoch(self, epoch: int, loss: float) -> None:
        self.losses.append(loss)
        now = time.monotonic()
        done, elapsed = epoch + 1, now - self.t0
        if not self.paced and (done >= PACE_EPOCHS and elapsed >= PACE_S or elapsed >= PACE_MAX_S):
            self.paced = True
            projected = elapsed / done * self.total
            self.warn(f"at the pace of the first {done} epochs this training takes about {about(projected)} on "
                      f"{self.device}; Stop keeps the best weights so far" if projected > LONG_TRAIN_S else "")
        if now - self.last_bar >= PROGRESS_S:
            self.last_bar = now
            self.progress(done, self.line(done))
        if self.draw is not None and now - self.last_plot >= self.gap:
            self.draw(self.losses, done)
            self.last_plot = time.monotonic()
            self.gap = max(LOSS_REDRAW_S, 4 * (self.last_plot - now))
