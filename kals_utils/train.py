"""Manifold learning: fit ``f(x) ~= x`` on a small training set with MSE and Adam.

One loop, :func:`fit`, for full-batch (points) and mini-batch (images) training. It keeps the best
weights by the loss on the *whole* training set (not a noisy mini-batch), shows a ``tqdm.auto``
bar, can be interrupted (Ctrl-C) or resumed without losing the best model, stops on NaN/inf, and
reports collapsed nets.
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from .device import threads_for
from .errors import KalsError, check_float, check_int
from .models import config_of, model_device

CONVERGED_TOL = 0.05  # |f(x) - x| (RMS over dims) under which a training point counts as learnt


@dataclass
class TrainResult:
    """What :func:`fit` did. ``model`` holds the best weights; ``losses[i]`` is epoch i's loss.

    status: ``ok`` | ``interrupted`` (Ctrl-C) | ``diverged`` (NaN/inf loss) | ``collapsed`` (output
    no longer depends on the input) | ``partial`` (some training points are not fixed points).
    """

    model: nn.Module
    losses: list
    best_loss: float
    best_epoch: int
    epochs_done: int
    status: str = "ok"
    message: str = ""
    learnt: int = 0          # training points with RMS |f(x)-x| < CONVERGED_TOL
    n_train: int = 0
    train_state: dict = field(default_factory=dict, repr=False)  # for resuming

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def report(self) -> str:
        """One readable line about the run."""
        return (f"{self.status}: best loss {self.best_loss:.3g} at epoch {self.best_epoch} of "
                f"{self.epochs_done}; {self.learnt}/{self.n_train} training points reproduced within "
                f"{CONVERGED_TOL}" + (f" — {self.message}" if self.message else ""))


def check_in_range(x: torch.Tensor, value_range: tuple, what: str = "training data") -> None:
    """Raise KalsError if ``x`` has non-finite values or values outside ``value_range``."""
    if not torch.isfinite(x).all():
        raise KalsError(f"{what} contains NaN or inf values; clean or drop those rows first")
    lo, hi = value_range
    xmin, xmax = float(x.min()), float(x.max())
    if xmin < lo - 1e-6 or xmax > hi + 1e-6:
        if xmin >= -1 - 1e-6 and xmax <= 1 + 1e-6:
            fix = "use --out-act tanh (range [-1, 1])"
        elif xmin >= -1e-6:
            fix = f"rescale it, e.g. x / {xmax:.3g} into [0, 1] with --out-act sigmoid"
        else:
            fix = "rescale it into [0, 1] (--out-act sigmoid) or [-1, 1] (--out-act tanh)"
        raise KalsError(f"{what} spans [{xmin:.3g}, {xmax:.3g}] but the output activation only reaches "
                        f"[{lo:g}, {hi:g}]; {fix}")


def make_adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam (betas 0.9/0.999); the fused kernel where this torch/device has one (one pass over the
    weights instead of a dozen: ~1/3 of a CPU training step for the paper's MNIST net)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))


@torch.no_grad()
def full_loss(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> float:
    """Mean squared error of f(x) vs x over all rows of ``x`` (N, D), in batches."""
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        total += float(((model(xb) - xb) ** 2).sum())
    return total / x.numel()


@torch.no_grad()
def diagnose(model: nn.Module, x: torch.Tensor) -> tuple:
    """(status, message, learnt): ``collapsed`` if f(x) barely varies over distinct training points,
    ``partial`` if some training points are not reproduced within CONVERGED_TOL, else ``ok``."""
    y = torch.cat([model(x[i:i + 4096]) for i in range(0, len(x), 4096)])
    err = ((y - x) ** 2).mean(dim=1).sqrt()
    learnt = int((err < CONVERGED_TOL).sum())
    if len(x) > 1:
        spread_x = float(x.var(dim=0).sum())
        spread_y = float(y.var(dim=0).sum())
        if spread_x > 1e-8 and spread_y < 1e-3 * spread_x:
            return "collapsed", ("the net maps every input to nearly the same output (dead ReLUs?); "
                                 "retrain with another seed or a smaller depth / larger width"), learnt
    if learnt < len(x):
        return "partial", (f"{len(x) - learnt} training point(s) are not fixed points of f; "
                           "train longer, change the seed, or widen the net"), learnt
    return "ok", "", learnt


def fit(
    model: nn.Module,
    x: torch.Tensor,
    epochs: int = 2000,
    lr: float = 1e-3,
    batch_size: Optional[int] = None,
    seed: int = 0,
    progress: bool = True,
    resume: Optional[dict] = None,
    callback: Optional[Callable[[int, float], None]] = None,
    loss_fn: Optional[Callable] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> TrainResult:
    """Fit ``model`` so that ``model(x) ~= x`` (MSE, Adam). Trains in place; returns the best weights.

    x: (N, D) float tensor in the output activation's range, on any device (moved to the model's).
    epochs: passes over the data; with ``batch_size`` None (or >= N) one epoch is one full-batch step.
    seed: fixes the mini-batch order (epoch e uses seed*1_000_003 + e, so resumed runs match).
    resume: a ``TrainResult.train_state`` dict (last weights, Adam state, epoch, losses) to continue.
    callback(epoch, loss) is called after each epoch; ``should_stop()`` True ends training early
    (like Ctrl-C, status ``interrupted``). ``loss_fn(model, xb, generator)`` overrides the MSE
    objective (recipes use it); it must return a scalar tensor. With it the best weights and
    ``losses`` are still judged on the plain MSE of the clean data, measured after each epoch.
    """
    epochs = check_int("epochs", epochs, 0)
    lr = check_float("learning rate", lr, 0.0, strict=True)
    device = model_device(model)
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != config_of(model).dim:
        raise KalsError(f"training data has shape {tuple(x.shape)} but the model expects (N, {config_of(model).dim})")
    if len(x) == 0:
        raise KalsError("training data is empty")
    check_in_range(x, config_of(model).value_range)
    n = len(x)
    bs = n if batch_size is None else check_int("batch size", batch_size, 1)
    bs = min(bs, n)
    full_batch = bs >= n

    opt = make_adam(model, lr)
    start, losses = 0, []
    best_loss, best_epoch, best_state = math.inf, 0, None
    if resume:
        model.load_state_dict(resume["last_state_dict"])
        opt.load_state_dict(resume["optimizer"])
        for g in opt.param_groups:
            g["lr"] = lr
        start, losses = int(resume["epoch"]), list(resume["losses"])
        best_loss, best_epoch = float(resume.get("best_loss", math.inf)), int(resume.get("best_epoch", 0))
        best_state = resume.get("best_state_dict")

    def snapshot():
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    best_buf = {}

    def keep_best():
        """Copy the weights into one reused buffer: no new memory each time the loss improves."""
        for k, v in model.state_dict().items():
            if k in best_buf:
                best_buf[k].copy_(v)
            else:
                best_buf[k] = v.detach().clone()
        return best_buf

    plain_mse = loss_fn is None  # a custom objective is judged (best weights, losses) on the clean MSE
    if loss_fn is None:
        def loss_fn(m, xb, gen):
            return ((m(xb) - xb) ** 2).mean()

    gen = torch.Generator(device="cpu")
    status, message = "ok", ""
    done = start  # epochs completed
    model.train()
    bar = None
    with threads_for(model):  # tiny nets: one CPU thread
        try:
            bar = tqdm(total=start + epochs, initial=start, disable=not progress, desc="fit f(x)≈x", leave=False)
            for epoch in range(start, start + epochs):
                gen.manual_seed(seed * 1_000_003 + epoch)
                if full_batch and plain_mse:
                    loss = loss_fn(model, x, gen)
                    value = float(loss.detach())  # measured at the weights *before* this step: exact for the best
                    if math.isfinite(value) and value < best_loss:
                        best_loss, best_epoch, best_state = value, epoch, keep_best()
                    if math.isfinite(value):
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                else:
                    perm = torch.randperm(n, generator=gen).to(device)
                    for i in range(0, n, bs):
                        loss = loss_fn(model, x[perm[i:i + bs]], gen)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                    value = full_loss(model, x)  # whole-set clean MSE after the epoch, not a batch's or a custom loss's
                    if math.isfinite(value) and value < best_loss:
                        best_loss, best_epoch, best_state = value, epoch + 1, keep_best()
                if not math.isfinite(value):
                    status, message = "diverged", f"loss became {value} at epoch {epoch}; kept the last good weights"
                    break
                done = epoch + 1
                losses.append(value)
                bar.update(1)
                if epoch % 20 == 0:
                    bar.set_postfix(loss=f"{value:.3g}", refresh=False)
                if callback is not None:
                    callback(epoch, value)
                if should_stop is not None and should_stop():
                    status, message = "interrupted", f"stopped at epoch {done}; kept the best weights so far"
                    break
        except KeyboardInterrupt:
            status, message = "interrupted", f"interrupted at epoch {done}; kept the best weights so far"
        finally:
            if bar is not None:
                bar.close()

    if full_batch and status != "diverged" and done > start:
        # the weights after the last step were never measured inside the loop
        value = full_loss(model, x)
        if math.isfinite(value) and value < best_loss:
            best_loss, best_epoch, best_state = value, done, keep_best()
    train_state = {
        "last_state_dict": snapshot(),
        "optimizer": copy.deepcopy(opt.state_dict()),
        "epoch": done,
        "losses": list(losses),
        "best_loss": best_loss,
        "best_epoch": best_epoch,
    }
    if best_state is not None:
        model.load_state_dict(best_state)
    elif status == "diverged":
        message += "; no finite loss was ever reached: the weights are unusable"
    train_state["best_state_dict"] = snapshot()
    model.eval()
    diag_status, diag_message, learnt = diagnose(model, x)
    if status == "ok":
        status, message = diag_status, diag_message
    return TrainResult(model=model, losses=losses, best_loss=best_loss, best_epoch=best_epoch,
                       epochs_done=done, status=status, message=message, learnt=learnt,
                       n_train=n, train_state=train_state)
