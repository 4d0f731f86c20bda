"""Manifold learning: fit ``f(x) ~= x`` on a small training set with MSE and Adam.

One loop, :func:`fit`, for full-batch (points) and mini-batch (images) training. It keeps the best weights by
the loss on the *whole* training set (not a noisy mini-batch), shows a ``tqdm.auto`` bar, can be interrupted
(Ctrl-C) or resumed without losing the best model, stops on NaN/inf, and reports collapsed nets.
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from .device import threads_for
from .ema import Ema, averaged
from .errors import KalsError, check_float, check_int
from .model import config_of, model_device, n_weights, residual, rms
from .precision import autocast, resolve_precision
from .presets import EPOCHS, LR, PRECISION

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
            fix = "use the tanh output (out_act=\"tanh\", --out-act tanh; range [-1, 1])"
        elif xmin >= -1e-6:
            fix = f"rescale it, e.g. x / {xmax:.3g} into [0, 1], with the sigmoid output"
        else:
            fix = "rescale it into [0, 1] (sigmoid output) or [-1, 1] (tanh output)"
        raise KalsError(f"{what} spans [{xmin:.3g}, {xmax:.3g}] but the output activation only reaches "
                        f"[{lo:g}, {hi:g}]; {fix}")


def make_adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam (betas 0.9/0.999); the fused kernel where this torch/device has one (one pass over the
    weights instead of a dozen: ~1/3 of a CPU training step for the paper's MNIST net)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))


def full_loss(model: nn.Module, x: torch.Tensor, target: Optional[torch.Tensor] = None) -> float:
    """Mean squared error of f(x) vs x (or vs ``target``) over all rows of ``x`` (N, D): a float32
    sum, divided in double (ensemble.fit_many measures its nets the same way, so the two agree bit for bit)."""
    return float(miss(model, x, target).float().pow(2).sum()) / x.numel()


@torch.no_grad()
def miss(model: nn.Module, x: torch.Tensor, target: Optional[torch.Tensor] = None, chunk: int = 4096) -> torch.Tensor:
    """``f(x) - target`` per row; without a target ``f(x) - x`` (:func:`model.residual`)."""
    if target is None:
        return residual(model, x)
    return torch.cat([model(x[i:i + chunk]) - target[i:i + chunk] for i in range(0, len(x), chunk)])


@torch.no_grad()
def diagnose(model: nn.Module, x: torch.Tensor, target: Optional[torch.Tensor] = None) -> tuple:
    """(status, message, learnt): ``collapsed`` if f(x) barely varies over distinct training points,
    ``partial`` if some training points are not reproduced (f(x) within CONVERGED_TOL of x, or of
    their ``target``), else ``ok``."""
    res = miss(model, x, target)
    learnt = int((rms(res) < CONVERGED_TOL).sum())
    if len(x) > 1:
        x = x.to(res.device)
        out = x + res if target is None else target.to(res.device) + res
        spread_x, spread_y = float(x.var(dim=0).sum()), float(out.var(dim=0).sum())
        if spread_x > 1e-8 and spread_y < 1e-3 * spread_x:
            return "collapsed", ("the net maps every input to nearly the same output (dead ReLUs?); "
                                 "retrain with another seed or a smaller depth / larger width"), learnt
    if learnt < len(x):
        return "partial", (f"{len(x) - learnt} training point(s) are not fixed points of f; "
                           "train longer, change the seed, or widen the net"), learnt
    return "ok", "", learnt


def _mse(model: nn.Module, xb: torch.Tensor, gen: torch.Generator, target: Optional[torch.Tensor] = None):
    # .float(): a no-op in fp32, an fp32 loss under bf16
    return ((model(xb).float() - (xb if target is None else target)) ** 2).mean()


def _loss(loss_fn, model, xb, gen, target):
    """The objective on one batch: ``loss_fn(model, xb, gen)``, with ``target=`` only when there is one."""
    return loss_fn(model, xb, gen) if target is None else loss_fn(model, xb, gen, target=target)


class _Best:
    """The best weights so far (by the clean whole-set MSE), copied into one reused buffer."""

    def __init__(self, loss: float = math.inf, epoch: int = 0, state: Optional[dict] = None):
        self.loss, self.epoch, self.state = loss, epoch, state

    def offer(self, model: nn.Module, value: float, epochs_done: int) -> None:
        """``value``: the loss of the weights after ``epochs_done`` epochs (0 = untrained)."""
        if not (math.isfinite(value) and value < self.loss):
            return
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            for k, v in model.state_dict().items():
                self.state[k].copy_(v)
        self.loss, self.epoch = value, epochs_done


def _checked_target(target: Optional[torch.Tensor], x: torch.Tensor, value_range) -> Optional[torch.Tensor]:
    """``target`` on x's device as float32, the shape of ``x`` and in range, or KalsError."""
    if target is None:
        return None
    target = torch.as_tensor(target).to(device=x.device, dtype=torch.float32)
    if target.shape != x.shape:
        raise KalsError(f"the target has shape {tuple(target.shape)} but the training data {tuple(x.shape)}; "
                        "give one target row per training row")
    check_in_range(target, value_range, "the target")
    return target


def _checked_data(model: nn.Module, x: torch.Tensor, batch_size: Optional[int]) -> tuple:
    """(x on the model's device as float32, batch size) or KalsError."""
    cfg = config_of(model)
    x = x.to(device=model_device(model), dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != cfg.dim:
        raise KalsError(f"training data has shape {tuple(x.shape)} but the model expects (N, {cfg.dim})")
    if len(x) == 0:
        raise KalsError("training data is empty")
    check_in_range(x, cfg.value_range)
    bs = len(x) if batch_size is None else check_int("batch size", batch_size, 1)
    return x, min(bs, len(x))


def _epoch(model, opt, x, bs: int, gen, loss_fn, measure_first: bool, precision: str, best: _Best,
           epoch: int, target: Optional[torch.Tensor] = None, ema: Optional[Ema] = None) -> float:
    """One pass over ``x``; returns the clean whole-set MSE and offers the weights it measured to
    ``best``: before the step when the step's own loss is that MSE (full batch, plain MSE: the
    weights after ``epoch`` epochs), else after the epoch (``epoch + 1``). Forward passes run under
    ``precision`` (bf16: autocast; weights, Adam and the loss stay fp32). ``target``: the rows
    f(x) should reach (None: x itself), batched with x. ``ema``: updated after every step; the MSE
    after the epoch is then measured on, and offered to ``best`` as, the averaged weights."""
    device = x.device
    if measure_first:
        with autocast(precision, device):
            loss = _loss(loss_fn, model, x, gen, target)
        value = float(loss.detach())
        best.offer(model, value, epoch)  # the weights before this step
        if math.isfinite(value):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return value
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    for i in range(0, len(x), bs):
        with autocast(precision, device):
            rows = perm[i:i + bs]
            loss = _loss(loss_fn, model, x[rows], gen, None if target is None else target[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update()
    with averaged(ema), autocast(precision, device):
        value = full_loss(model, x, target)  # whole-set clean MSE after the epoch, not a batch's or a custom loss's
        best.offer(model, value, epoch + 1)
    return value


def _resume(model, opt, resume: dict, lr: float) -> tuple:
    """Load a ``TrainResult.train_state``; returns (start epoch, losses, best)."""
    model.load_state_dict(resume["last_state_dict"])
    opt.load_state_dict(resume["optimizer"])
    for g in opt.param_groups:
        g["lr"] = lr
    best = _Best(float(resume.get("best_loss", math.inf)), int(resume.get("best_epoch", 0)),
                 resume.get("best_state_dict"))
    return int(resume["epoch"]), list(resume["losses"]), best


def fit(model: nn.Module, x: torch.Tensor, *, epochs: int = EPOCHS, lr: float = LR, batch_size: Optional[int] = None,
        seed: int = 0, progress: bool = True, resume: Optional[dict] = None,
        callback: Optional[Callable[[int, float], None]] = None, loss_fn: Optional[Callable] = None,
        should_stop: Optional[Callable[[], bool]] = None, precision: str = PRECISION,
        target: Optional[torch.Tensor] = None, ema: float = 0.0) -> TrainResult:
    """Fit ``model`` so that ``model(x) ~= x`` (MSE, Adam). Trains in place; returns the best weights.

    x: (N, D) float tensor in the output activation's range, on any device (moved to the model's).
    epochs: passes over the data; with ``batch_size`` None (or >= N) one epoch is one full-batch step.
    seed: fixes the mini-batch order (epoch e uses seed*1_000_003 + e, so resumed runs match).
    resume: a ``TrainResult.train_state`` dict (last weights, Adam state, epoch, losses) to continue.
    callback(epoch, loss) is called after each epoch; ``should_stop()`` True ends training early
    (like Ctrl-C, status ``interrupted``). ``loss_fn(model, xb, generator)`` overrides the MSE
    objective (recipes use it). The best weights and ``losses`` are always judged on the plain MSE
    of the clean data; ``best_epoch`` counts the epochs completed when the best weights were measured.
    precision: ``fp32`` | ``bf16`` | ``auto`` (:mod:`precision`): bf16 runs every forward under
    autocast with fp32 master weights, fp32 Adam state and an fp32 loss; fp32 is today's arithmetic.
    target: (N, D) rows that f(x) should reach instead of x itself — e.g. the next point of an
    ordered set, so that iterating f replays a sequence (Radhakrishnan, Belkin, Uhler, PNAS 2020,
    https://doi.org/10.1073/pnas.2005013117); the loss, the best weights and the diagnosis are then
    judged against it. A custom ``loss_fn`` gets it as ``target=``. None: the identity, as always.
    ema: gamma of a power-function moving average of the weights (:class:`Ema`; 0: none). With one,
    the loss, the best weights and the callback see the averaged weights; training steps the model's own.
    """
    epochs = check_int("epochs", epochs, 0)
    lr = check_float("learning rate", lr, 0.0, strict=True)
    x, bs = _checked_data(model, x, batch_size)
    target = _checked_target(target, x, config_of(model).value_range)
    precision = resolve_precision(precision, device=x.device, n_weights=n_weights(model))
    opt = make_adam(model, lr)
    start, losses, best = _resume(model, opt, resume, lr) if resume else (0, [], _Best())
    ema = Ema(model, check_float("ema", ema, 0.0, strict=True), (resume or {}).get("ema")) if ema else None
    measure_first = bs >= len(x) and loss_fn is None and ema is None
    loss_fn = loss_fn or _mse
    gen = torch.Generator(device="cpu")
    status, message, done = "ok", "", start
    model.train()
    with threads_for(model), tqdm(total=start + epochs, initial=start, disable=not progress, desc="fit f(x)≈x",
                                  unit="epoch", leave=False) as bar:
        try:
            for epoch in range(start, start + epochs):
                gen.manual_seed(seed * 1_000_003 + epoch)
                value = _epoch(model, opt, x, bs, gen, loss_fn, measure_first, precision, best, epoch, target, ema)
                if not math.isfinite(value):
                    status, message = "diverged", f"loss became {value} at epoch {epoch}; kept the last good weights"
                    break
                done = epoch + 1
                losses.append(value)
                bar.update(1)
                if epoch % 20 == 0:
                    bar.set_postfix(loss=f"{value:.3g}", refresh=False)
                if callback is not None:
                    with averaged(ema):
                        callback(epoch, value)
                if should_stop is not None and should_stop():
                    status, message = "interrupted", f"stopped at epoch {done}; kept the best weights so far"
                    break
        except KeyboardInterrupt:
            status, message = "interrupted", f"interrupted at epoch {done}; kept the best weights so far"
    if measure_first and status != "diverged" and done > start:
        best.offer(model, full_loss(model, x, target), done)  # the weights after the last step, never measured in the loop
    return _finish(model, x, opt, best, losses, done, status, message, target, ema)


def _finish(model, x, opt, best: _Best, losses: list, done: int, status: str, message: str,
            target: Optional[torch.Tensor] = None, ema: Optional[Ema] = None) -> TrainResult:
    """Keep the resume state, load the best weights, diagnose them."""
    train_state = {"last_state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                   "optimizer": copy.deepcopy(opt.state_dict()), "epoch": done, "losses": list(losses),
                   "best_loss": best.loss, "best_epoch": best.epoch}
    if ema is not None:
        train_state["ema"] = ema.state()
    if best.state is not None:
        model.load_state_dict(best.state)
    elif status == "diverged":
        message += "; no finite loss was ever reached: the weights are unusable"
    train_state["best_state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    diag_status, diag_message, learnt = diagnose(model, x, target)
    if status == "ok":
        status, message = diag_status, diag_message
    return TrainResult(model=model, losses=losses, best_loss=best.loss, best_epoch=best.epoch,
                       epochs_done=done, status=status, message=message, learnt=learnt,
                       n_train=len(x), train_state=train_state)
