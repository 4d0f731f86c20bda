"""When to stop training and which weights to keep: the ``improved`` recipe's selection rule (issue #29).

A denoiser trained on a small set first learns to make images, then learns to make *its training
images*. The rule watches both directly. Every CHECK_UPDATES optimizer updates it walks CHECK_CHAINS
chains from fixed starts of the recipe's start distribution and reads, on each chain's frame at its
own age (:func:`check_ages`: RESTART_BURN + 1 .. CHECK_STEPS applications of f, evenly over the
chains: the ages of the frames the restart sampler shows):

* **copying** — the memorised fraction (nearest training image closer than 1/3 of the second
  nearest; Gu et al. 2025), in pixels or on standardised images, whichever is larger
  (:func:`neighbours.copied_fraction`: a copy with raised contrast is a copy), against the same for the
  held-out tenth's real images (a data set's own near-duplicates: not 0 on Fashion-MNIST) plus
  COPY_MARGIN (the check's own sampling noise at CHECK_CHAINS chains);
* **quality** — the Fréchet distance in pixels between the samples and as many training images
  (Gaussians fitted to each; :func:`frechet_rows`, exact and cheap at any image size). Against the
  training set it would reward copies, which is why copying is watched on its own.

It keeps the weights of best quality among the checks whose copying stayed under the line (a walk
that collapses onto a few images ranks last, a blurred one after every sharp one, :func:`rank`; a later
check within TIE of the best quality that shows at least as many distinct images replaces it: the check's own
noise, and trained longer, :func:`ties`),
and stops once copying has been over it COPY_PATIENCE checks in a row, or the budget is spent, or quality
has not improved for PATIENCE checks since a sharp walk that varies was found: blurred or collapsed weights
are never a reason to stop (1,000 colour crops, seed 0: pixel Fréchet distance preferred a blurred check
after 56 passes, the patience ran out at 308, and the sharper checks came after 330). Without any check
under the line, it keeps the checked weights that copied least. Checks come every CHECK_UPDATES updates or CHECK_EPOCHS passes over the
data, whichever is sooner: 100 faces copy within 250 passes. Each check also counts the distinct
nearest training images of its samples: under COLLAPSE, or under what real images read at the check's
samples per image where that is lower (:func:`neighbours.real_at_ratio`: texture crops crowd onto a few
"hub" images, real ones 17%), the walk *collapses*; kept weights that collapse get a warning.
On 100-450 images the nets here collapse onto a few images until they copy (Results → faces and
colour): the rule then keeps the uncopied, collapsed weights and says so. Where the walk collapses
at RESTART_BURN, a check also reads it after shorter hidden burn-ins, and last f's first output alone,
which the turn sampler shows (:func:`moves.turn_input`): it ranks the check on the longest read that varies
(a read before the full walk counts its Fréchet distance SOFT times: softer frames read lower, :func:`rank`),
and a run kept on it samples with the most varied read that is not blurred (:func:`pick_burn`; sharpness, the
mean image gradient, at least SHARP of the training images'). Where the longest walk varies, a shorter one that is as sharp (within AS_SHARP) and more varied is shown instead
(:meth:`SampleCheck.widen`). The kept check's burn-in and sampler become the
run's (``config.extra["burn"]``, ``config.extra["sampler"]``). On the 100 faces
f's first output of the starts varies most and copies least (Results → selection, *Where the collapse
comes from*): later applications fall onto a few images, and onto copies once the net has learnt them.

Weighed against (measured on Fashion-MNIST, Results → selection): the lowest held-out *denoising
loss* (the rule before: it bottoms out long before the samples stop improving, and says nothing
about copying); Meehan et al. 2020's C_T (compares sample-to-training distances with held-out ones:
blurry early samples lie *closer* to the training images than real held-out images do, so it reads
blur as copying); Kadkhodaie et al. 2024's two disjoint halves (two nets: twice the training).
Cost of a check: CHECK_CHAINS x CHECK_STEPS forward rows (about a dozen updates of batch 100) and
three nearest-neighbour searches (two more per shorter burn-in read where the walk collapses).
"""

import math
from typing import Callable, Optional

import torch
from torch import nn

from .neighbours import copied_fraction, distinct_nearest, real_at_ratio
from .sample import RESTART, RESTART_BURN, data_start
from .sharpness import sharpness
from .train import TrainResult, diagnose, full_loss

CHECK_UPDATES = 250                   # optimizer updates between two checks
CHECK_EPOCHS = 30                     # ... or passes over the data, whichever comes first (small sets copy within few)
CHECK_CHAINS = 256                    # chains of the check walk (fixed starts)
CHECK_STEPS = RESTART_BURN + RESTART  # applications of f: the restart sampler's oldest frame
COPY_MARGIN = 0.05                    # copying may exceed the held-out images' memorised fraction by this
COPY_PATIENCE = 2                     # checks in a row over the line before training stops
PATIENCE = 8                          # checks without better quality before training stops
TIE = 0.10                            # a later check within this share of the best quality replaces it (noise)
AS_SHARP = 0.05                       # a shorter view this close to the longer walk's sharpness is as sharp
COLLAPSE = 0.3                        # a check walk nearest fewer distinct images (or fewer than real ones) collapses
SHARP = 0.6                           # ... and one under this share of the training images' mean image gradient blurs
SOFT = 1.3                            # a read before the full walk ranks on its Fréchet distance times this


def check_ages(chains: int, burn: int = RESTART_BURN, sampler: str = "restart") -> torch.Tensor:
    """(chains,) applications of f after which each check chain is read: burn + 1 .. burn + RESTART
    in turn, as the restart sampler's frames are (a chain restarted t steps ago shows f applied
    burn + t times); burn + 1 for every chain of the turn sampler, which shows only those. The oldest
    frame alone read more copies than the sampler shows (Fashion-MNIST, seed 0: the rule stopped on it
    while the walk copied 2-3%)."""
    age = torch.arange(chains) % RESTART if sampler == "restart" else torch.zeros(chains, dtype=torch.long)
    return burn + 1 + age


def pick_burn(reads: list, line: float, collapse: float = COLLAPSE, sharp: Optional[Callable] = None) -> tuple:
    """The check walk's read the rule uses, from ``reads`` [(copying, distinct, burn, frames, ...)] with the
    longest burn-in first: the first if it neither collapses nor copies over ``line``. Else, with ``sharp``
    (frames -> sharpness ratio against the training images), the most varied read under the line that
    neither collapses nor blurs (ratio >= SHARP); failing that, the longest that neither collapses nor
    copies; if each collapses, the most varied under the line; if each copies, the longest.
    f's early outputs are softer (its first is a posterior mean) but lie near more training images: on 100 LFW
    faces and 448 photo crops, burn 0 read 21-32% and 31-37% distinct nearest images against 12-21% at 5.
    The most varied sharp read, not the longest that passes: on the 100 faces, seed 1, a walk read just over
    the line after 1 hidden step was kept (then 26% distinct nearest images, coverage 0.27) where f's first
    output reads 41% / 0.54 at sharpness 0.62; on the photo crops f's first output reads 0.45-0.48: blur.
    Only walks that collapse at RESTART_BURN get a shorter burn-in: chosen on every walk, it raised
    Fashion-MNIST's classifier Fréchet distance from 74 to 85-132 (seed 0; pixel Fréchet distance,
    the rule's quality, prefers the softer frames)."""
    under = [r for r in reads if r[0] <= line] or reads[:1]
    varied = [r for r in under if r[1] >= collapse]
    if varied and varied[0] is reads[0]:
        return reads[0]
    crisp = [r for r in varied if sharp is not None and sharp(r[3]) >= SHARP]
    if crisp:
        return max(crisp, key=lambda r: r[1])
    return varied[0] if varied else max(under, key=lambda r: r[1])


def rank(quality: float, distinct: float, soft: bool = False, collapse: float = COLLAPSE,
         blurred: bool = False) -> tuple:
    """How a check under the copy line ranks (lower is better): varied, then sharp, then by pixel Fréchet distance,
    counted SOFT times for a read before the full walk (``soft``: after a shortened burn-in, or f's first output
    alone). A check walk nearest fewer than ``collapse`` distinct training images (COLLAPSE, or what
    real images read where that is lower) ranks below every one that is not, and among those by how many it reaches;
    one that is ``blurred`` (sharpness under SHARP of the training images') below every sharp one; the rest by pixel
    Fréchet distance. Pixel Fréchet distance at 256 samples in thousands of dimensions prefers soft frames (1,000
    colour crops, seed 0: 346 for a blurred check after 56 passes against 371 for a sharp one after 336, coverage
    0.30 against 0.40), and f's early outputs are softer than a full walk's frames: Fashion-MNIST with mirrors,
    seed 1, read 87 after 0 hidden steps at 28 passes against 101-125 for the full walks of the next checks, was
    kept, and the patience stopped the run (classifier Fréchet distance 294; 81 once the full walks rank first).
    Counted 1.3 times, a shorter read still wins where the full walk is worse, not just sharper (500 sneakers,
    seed 1: f's first outputs read 24-29 against 41-43 for the full walks, coverage 0.49 against 0.36 when a full
    walk was kept; 448 photo crops, seed 1: 151-178 against 345-413). SOFT lies where both hold: above 103/87,
    under 41/29. Fréchet distance alone prefers one blurry mean face to
    varied, imperfect ones (100 LFW faces: 138 with 1% distinct vs 170 with 19%)."""
    return (4, -distinct) if distinct < collapse else (2 * int(blurred), quality * (SOFT if soft else 1.0))


def ties(score: tuple, best: tuple, tie: float = TIE) -> bool:
    """Does a later check's :func:`rank` ``score`` tie with ``best``: the same tier, not a collapsed one, and quality
    within ``tie`` of it? The check's Fréchet distance is noisy at 256 chains (eight draws of the check's starts and
    reference for one net: digits 3.6-4.5, standard deviation 9%; Fashion-MNIST 61.8-75.1, 6%: ``benchmarks/
    selection.py noise``), and a net trained longer is more varied until it copies, which the copy line watches.
    At 5% (under one standard deviation) Fashion-MNIST with mirrors, seed 0, kept the check after 210 passes (68.6)
    over the one after 266 (72.6) and stopped: classifier Fréchet distance 109; at 10% it keeps 266: 79.5.
    The caller also asks the later check to show at least as many distinct nearest images (500 sneakers, seed 0:
    a tie without it kept a later check whose walk varied just enough to be shown instead of f's first output:
    coverage 0.34 against 0.45). Without ties, on scikit-learn's digits (seed 1) the rule kept the weights of 108
    passes (6.85) over those of 234 (6.97) and stopped: coverage 0.45; with them it trains on, keeps 288 passes
    (3.87) and reads 0.66."""
    return score[0] == best[0] < 4 and score[1] <= best[1] + tie * abs(best[1])


def frechet_rows(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` (n, D) and ``b`` (m, D):
    ``|mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr (S_a S_b)^(1/2)``, the last term as the nuclear norm
    of ``A B^T / sqrt((n-1)(m-1))`` (A, B centred): an n x m SVD instead of D x D square roots."""
    a, b = a.double(), b.double()
    ca, cb = a - a.mean(dim=0), b - b.mean(dim=0)
    na, nb = len(a) - 1, len(b) - 1
    cross = torch.linalg.svdvals(ca @ cb.T).sum() / math.sqrt(na * nb)
    mean = (a.mean(dim=0) - b.mean(dim=0)).pow(2).sum()
    return float(mean + ca.pow(2).sum() / na + cb.pow(2).sum() / nb - 2 * cross)


class SampleCheck:
    """The selection rule. Plug ``wrap(fit_kw)`` into :func:`train.fit`, then :meth:`finish`."""

    def __init__(self, model: nn.Module, train: torch.Tensor, heldout: Optional[torch.Tensor], *,
                 steps_per_epoch: int, start_scale: float, seed: int = 0, sampler: str = "restart",
                 image_shape: Optional[tuple] = None):
        dev = next(model.parameters()).device
        self.model, self.train = model, train.detach().float()
        self.image_shape = image_shape   # images (C, H, W): reads are also judged by sharpness; None: points
        self.sharp_ref = float(sharpness(self.train.cpu(), image_shape).mean()) if image_shape else 0.0
        vr = model.config.value_range
        self.starts = data_start(self.train.cpu(), CHECK_CHAINS, scale=start_scale, seed=seed + 11,
                                 value_range=vr).to(dev)
        ref = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 13))[:CHECK_CHAINS]
        self.reference = self.train[ref].cpu()
        self.baseline = copied_fraction(heldout, self.train.cpu()) if heldout is not None and len(heldout) else 0.0
        self.line = self.baseline + COPY_MARGIN
        self.real = real_at_ratio(self.train.cpu(), CHECK_CHAINS, seed=seed)["distinct_real"]
        self.collapse = COLLAPSE if math.isnan(self.real) else min(COLLAPSE, self.real)   # what collapse means here
        self.every = max(1, min(round(CHECK_UPDATES / max(1, steps_per_epoch)), CHECK_EPOCHS))
        self.steps_per_epoch = steps_per_epoch
        self.checks = []          # (epoch, copying, quality, distinct nearest, burn-in, sampler shown) per check
        self.best = ((math.inf,), None, None)   # (rank, epoch, state) under the line, rank from :func:`rank`
        self.scored = (None, 1.0)               # (epoch, SOFT or 1) of the check whose read set the best rank
        self.least = (math.inf, None, None)     # (copying, epoch, state): the fallback
        self.over = self.stale = 0
        self.burn = RESTART_BURN                # the kept check's burn-in, for the restart and turn samplers
        self.sampler, self.kept_sampler = sampler, sampler   # the run's sampler; the kept check's
        self.shortened = False                  # did the last check need a shorter burn-in (or the turn)?
        self.blurred = False                    # was the last check's ranked read blurred?
        self.widened = set()                    # epochs whose shown read is a shorter, as sharp, more varied one
        self.was_widened = False                # ... and was the last check's?

    def views(self) -> list:
        """[(sampler, burn-in)] a check reads, the longest walk first: the run's sampler after RESTART_BURN
        .. 0 hidden steps; for the restart sampler, then f's first output alone (the turn sampler)."""
        burns = [(self.sampler, b) for b in range(RESTART_BURN, -1, -1)]
        return burns + [("turn", 0)] if self.sampler == "restart" else burns

    @torch.no_grad()
    def walk(self, views) -> torch.Tensor:
        """(len(views), chains, D): the check walk's frames at the ages each of ``views`` [(sampler, burn-in)] shows."""
        was = self.model.training
        self.model.eval()
        ages = torch.stack([check_ages(len(self.starts), b, smp) for smp, b in views]).to(self.starts.device)
        z, shown = self.starts, self.starts.expand(len(views), *self.starts.shape).clone()
        for t in range(1, int(ages.max()) + 1):
            z = self.model(z).float()
            for k in range(len(views)):
                shown[k, ages[k] == t] = z[ages[k] == t]
        self.model.train(was)
        return shown.cpu()

    def read(self, frames: torch.Tensor, burn: int, sampler: str) -> tuple:
        """(copied fraction, distinct nearest training images, burn-in, frames, sampler) of one view's frames."""
        train = self.train.cpu()
        return copied_fraction(frames, train), distinct_nearest(frames, train), burn, frames, sampler

    def reads(self, views=None, frames: Optional[torch.Tensor] = None, *, stop_if_varied: bool = False) -> list:
        """:meth:`read` of the check walk now (or of its ``frames``, :meth:`walk`) at each of ``views`` (default
        :meth:`views`), the longest first; ``stop_if_varied``: no further reads once the first does not collapse."""
        views = self.views() if views is None else list(views)
        frames, out = self.walk(views) if frames is None else frames, []
        for (sampler, burn), f in zip(views, frames):
            out.append(self.read(f, burn, sampler))
            if stop_if_varied and out[0][1] >= self.collapse:
                break
        return out

    def widen(self, views, frames: torch.Tensor, first: tuple) -> tuple:
        """The read to show where the longest walk ``first`` varies and stays under the line: the most varied of the
        shorter views that stay under the line and are as sharp (within AS_SHARP, and not blurred); ``first`` if none
        is more varied. A shorter walk that is as sharp and more varied is better on both counts (1,000 colour
        crops, seed 0: after 0 hidden steps coverage 0.55, distinct 0.57, sharpness 0.62 against 0.41 / 0.42 /
        0.61 after 5); softer ones are not taken (Fashion-MNIST: pixel Fréchet distance prefers soft frames,
        and its classifier Fréchet distance rose with them)."""
        floor, best = max(SHARP, (1 - AS_SHARP) * self.sharp(first[3])), first
        for (sampler, burn), f in zip(views[1:], frames[1:]):
            if self.sharp(f) >= floor:
                r = self.read(f, burn, sampler)
                best = r if r[0] <= self.line and r[1] > best[1] else best
        return best

    def measure(self) -> tuple:
        """The check walk now: ((copied fraction, pixel Fréchet distance to training images, distinct nearest
        training images, burn-in, sampler) of the read the check is ranked on, (distinct nearest, burn-in,
        sampler) of the read a run kept on it samples with). Reads are taken at the ages the sampler shows after
        its hidden burn-in: RESTART_BURN, or, where frames that old collapse onto a few images, shorter ones and
        f's first output alone. The check is ranked on the longest that varies (:func:`pick_burn` without
        sharpness: which weights to keep is chosen as before) and shows the most varied that is not blurred
        (:func:`pick_burn` with it; where the longest varies, the most varied as sharp, :meth:`widen`);
        ``self.blurred``: is the ranked read blurred? After a check that needed a shorter one, the next
        reads them all: a net that begins to copy also varies its old frames, and those must not pass
        for variety (100 LFW faces: their frames after 5 steps varied only once they copied 9%)."""
        views = self.views()
        walked = self.walk(views)
        reads = self.reads(views, walked, stop_if_varied=not self.shortened)
        copying, distinct, burn, frames, sampler = pick_burn(reads, self.line, self.collapse)
        shown = pick_burn(reads, self.line, self.collapse, self.sharp if self.sharp_ref > 0 else None)
        self.was_widened = False
        if shown is reads[0] and reads[0][0] <= self.line and reads[0][1] >= self.collapse and self.sharp_ref > 0:
            shown = self.widen(views, walked, reads[0])
            self.was_widened = shown is not reads[0]
        self.shortened = burn < RESTART_BURN or sampler != self.sampler
        self.blurred = self.sharp_ref > 0 and self.sharp(frames) < SHARP   # the ranked read, for :func:`rank`
        return (copying, frechet_rows(frames, self.reference), distinct, burn, sampler), (shown[1], shown[2], shown[4])

    def sharp(self, frames: torch.Tensor) -> float:
        """Mean image gradient of ``frames`` over the training images' (:func:`sharpness.sharpness`)."""
        return float(sharpness(frames, self.image_shape).mean()) / self.sharp_ref

    def _state(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def callback(self, epoch: int, _loss: float) -> None:
        if (epoch + 1) % self.every:
            return
        (copying, quality, distinct, _burn, _sampler), shown = self.measure()
        self.checks.append((epoch + 1, copying, quality, *shown))   # a run kept here samples as ``shown``
        if self.was_widened:
            self.widened.add(epoch + 1)
        if copying < self.least[0]:
            self.least = (copying, epoch + 1, self._state())
        if copying > self.line:
            self.over += 1
            return
        self.over = 0
        score = rank(quality, distinct, self.shortened, self.collapse, self.blurred)   # shortened: by :meth:`measure`
        if score < self.best[0]:
            self.best, self.stale = (score, epoch + 1, self._state()), 0
            self.scored = (epoch + 1, SOFT if self.shortened else 1.0)
        elif ties(score, self.best[0]) and shown[0] >= self._check(self.best[1])[3]:   # as good, as varied
            self.best, self.stale = (self.best[0], epoch + 1, self._state()), 0
        elif self.best[0][0] < 2:     # patience runs only once a sharp walk that varies is kept
            self.stale += 1

    def _check(self, epoch: int) -> tuple:
        """The recorded check of ``epoch``."""
        return next(c for c in self.checks if c[0] == epoch)

    def should_stop(self) -> bool:
        return self.over >= COPY_PATIENCE or self.stale >= PATIENCE

    def wrap(self, fit_kw: dict) -> dict:
        """``train.fit`` options with this rule's callback and stop test chained after the caller's own."""
        user_cb, user_stop = fit_kw.get("callback"), fit_kw.get("should_stop")

        def callback(epoch, loss):
            if user_cb is not None:
                user_cb(epoch, loss)
            self.callback(epoch, loss)
        return dict(fit_kw, callback=callback,
                    should_stop=lambda: self.should_stop() or (user_stop is not None and user_stop()))

    def kept(self) -> tuple:
        """(epoch, state, why) of the weights the rule keeps; (None, None, "") if no check ran."""
        if self.best[2] is not None:
            (tier, q), epoch, state = self.best
            if tier == 4:
                return epoch, state, (f"the most varied check walk, {-q:.0%} distinct nearest images, while copying "
                                      f"stayed under {self.line:.3f}")
            blur = ", blurred: no sharp check under the line" if tier >= 2 else ""
            scored, soft = self.scored
            tie = "" if epoch == scored else f" (its own {self._check(epoch)[2]:.4g}: within {TIE:.0%}, trained longer)"
            read = "" if soft == 1 else f", counted ×{soft:g}: read before the full walk"
            return epoch, state, (f"best pixel Fréchet distance {q / soft:.4g}{read}{tie} while copying stayed under "
                                  f"{self.line:.3f}" + blur)
        if self.least[2] is not None:
            c, epoch, state = self.least
            return epoch, state, (f"every check copied more than {self.line:.3f}; kept the one that copied least "
                                  f"({c:.3f}): more images would help")
        return None, None, ""

    def burn_note(self, distinct: float, widened: bool = False) -> str:
        """What the chosen burn-in shows (``widened``: chosen by :meth:`widen`), and a warning when even it collapses
        (fewer distinct nearest training images than ``self.collapse``): the net varies too little before it copies
        (small sets)."""
        if widened:
            view = ("with the turn sampler (f's first output of a start that turns)" if self.kept_sampler != self.sampler
                    else f"after {self.burn} hidden step(s), not {RESTART_BURN}")
            return f"shown {view}: as sharp as the longer walk and more varied, {distinct:.0%} distinct nearest images"
        note = "" if self.burn == RESTART_BURN else (
            f"restarts hide {self.burn} step(s) of burn-in, not {RESTART_BURN}: softer frames, "
            f"{distinct:.0%} distinct nearest images")
        if self.kept_sampler != self.sampler:
            note = (f"its walks fall onto a few images after {RESTART_BURN} hidden steps: sampled with the turn sampler, "
                    f"the most varied view that is not blurred (f's first output of a start that turns, {distinct:.0%} "
                    "distinct nearest images)")
        if distinct < self.collapse:
            note = "; ".join(m for m in (note, (
                f"its check walk ends near only {distinct:.0%} distinct training images (collapse"
                + ("" if math.isnan(self.real) else f"; real ones reach {self.real:.0%}") + "): on "
                f"{len(self.train)} images this net copies before its samples vary; more images help most")) if m)
        return note

    def reason(self) -> str:
        """Why training ended early, or ""."""
        if self.over >= COPY_PATIENCE:
            return f"stopped: the check walk copied more than {self.line:.3f} {COPY_PATIENCE} checks in a row"
        if self.stale >= PATIENCE:
            return f"stopped: quality did not improve for {PATIENCE} checks"
        return ""

    def finish(self, result: TrainResult, x: torch.Tensor) -> TrainResult:
        """The fit's result with the weights this rule keeps, its checks in ``train_state["checks"]``."""
        epoch, state, why = self.kept()
        result.train_state["checks"] = [list(c) for c in self.checks]
        if state is None:
            return result
        self.model.load_state_dict(state)
        _epoch, _copying, _quality, distinct, self.burn, self.kept_sampler = self._check(epoch)
        status, _advice, learnt = diagnose(self.model, x)   # its "train longer" is not advice for a denoiser,
        status = "collapsed" if status == "collapsed" else "ok"  # nor is "partial" a fault of one kept before it copies
        message = ""
        note = "; ".join(m for m in (f"kept the weights of epoch {epoch} ({why})", self.reason(),
                                     self.burn_note(distinct, epoch in self.widened)) if m)
        if result.status in ("interrupted", "diverged") and not self.should_stop():
            status, message = result.status, result.message  # the user's Ctrl-C or a NaN, not the rule
        result.train_state["best_state_dict"] = self._state()
        self.model.eval()
        result.status, result.learnt, result.best_epoch = status, learnt, epoch
        result.best_loss = full_loss(self.model, x)
        result.message = "; ".join(m for m in (note, message) if m)
        return result
