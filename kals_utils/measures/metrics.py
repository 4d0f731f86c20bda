"""Measure a kaleidoscope's samples: nearest training neighbours, coverage, class bias, novelty,
burn-in, and the tolerances every measure of a run shares. The other measures of a walk stand on
these: :mod:`.attractors` (Jacobians, stable and spurious fixed points), :mod:`.mixing` (how chains
move between training points), :mod:`.evaluate` (everything at once, in one ``Evaluation``).

Distances are RMS per coordinate (per pixel), ``||a - b|| / sqrt(D)``, on the data's own scale
(its ``value_range``), so one tolerance means the same for 1 or 784 dimensions; every result says
which tolerance it used. Functions take (N, D) tensors on any device, work in chunks, and return
CPU tensors / plain numbers. Imports torch only.
"""

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import KalsError
from ..neighbours import CHUNK, _float2d, data_spread, nearest_neighbours, rms_distance  # noqa: F401 (re-exported)
from ..train import CONVERGED_TOL

TOL = CONVERGED_TOL        # RMS distance under which a sample counts as a copy of / converged to a point
BURN_TOL = 0.01            # mean RMS step size under which a walk counts as burnt in
K = 5                      # neighbours of the precision/recall/density/coverage balls (Naeem et al. 2020)


def coverage(idx: torch.Tensor, n_train: int, mask: Optional[torch.Tensor] = None) -> float:
    """Distinct training points reached / min(#samples, n_train). ``mask`` (N,) bool: count only
    those samples (e.g. the converged ones; the denominator stays min(#samples, n_train))."""
    n = len(idx)
    if n == 0 or n_train == 0:
        return float("nan")
    hit = idx if mask is None else idx[mask]
    return len(torch.unique(hit)) / min(n, n_train)


@dataclass
class ClassBias:
    """Class histogram of the samples' nearest training points vs the training set's.

    sample, train: (C,) fractions; tv: total-variation distance 0.5 * sum |sample - train| in
    [0, 1]; top: the most over-represented class and its ratio sample / train.
    """

    sample: list
    train: list
    tv: float
    top: int
    top_ratio: float

    def rows(self, names=None) -> list:
        """One dict per class (for ``evaluate.format_rows``): class (``names[c]`` or c), samples, training set."""
        names = list(names) if names else list(range(len(self.train)))
        return [{"class": n, "samples": p, "training set": q} for n, p, q in zip(names, self.sample, self.train)]


def class_histogram(idx: torch.Tensor, labels, n_classes: Optional[int] = None) -> ClassBias:
    """Class bias of samples whose nearest training points are ``idx`` (N,), labels (M,) ints."""
    labels = torch.as_tensor(labels).long().cpu()
    k = int(n_classes or int(labels.max()) + 1)
    train = torch.bincount(labels, minlength=k).double()
    sample = torch.bincount(labels[idx.cpu().long()], minlength=k).double()
    train, sample = train / train.sum(), sample / max(1.0, float(sample.sum()))
    ratio = torch.where(train > 0, sample / train.clamp_min(1e-12), torch.zeros_like(train))
    top = int(ratio.argmax())
    return ClassBias(sample=sample.tolist(), train=train.tolist(), tv=0.5 * float((sample - train).abs().sum()),
                     top=top, top_ratio=float(ratio[top]))


@dataclass
class Novelty:
    """Are samples new points or copies? ``median_ratio`` = median sample NN distance / ``spread``
    (the median distance between a training point and its nearest other training point).

    ratio ~ 0: copies of training points; ~ 1: as far from the training set as the training points
    are from each other (new points on the data's scale, or blur); >> 1: off the data.
    copies: fraction of samples within ``tol`` of a training point.
    """

    spread: float
    median_ratio: float
    copies: float
    tol: float


def novelty(nn_dist: torch.Tensor, train, tol: float = TOL, spread: Optional[float] = None) -> Novelty:
    """Novelty of samples with nearest-neighbour RMS distances ``nn_dist`` (N,) to ``train`` (M, D)."""
    spread = data_spread(train) if spread is None else spread
    ratio = float(nn_dist.median()) / spread if spread and spread == spread and spread > 0 else float("nan")
    return Novelty(spread=spread, median_ratio=ratio, copies=float((nn_dist < tol).float().mean()), tol=tol)


# ---------------------------------------------------------------- burn-in
@dataclass
class BurnIn:
    """Mean RMS step size of the chains between recorded frames, and the burn-in estimate.

    steps: (F,) recorded step numbers; step_size: (F-1,) mean over chains of the RMS distance
    between successive recorded frames, divided by their step gap (frames every k-th step give the
    average move per step); burn_in: first recorded step from which the step size stays below
    ``tol`` (None: never within the walk).
    """

    steps: list
    step_size: list
    burn_in: Optional[int]
    tol: float


def burn_in(frames: torch.Tensor, steps=None, tol: float = BURN_TOL) -> BurnIn:
    """Burn-in of a walk from its frames (F, R, D) (``SampleResult.frames``, ``.steps``)."""
    frames = torch.as_tensor(frames).float()
    if frames.ndim != 3 or len(frames) < 2:
        raise KalsError(f"burn-in needs frames (F >= 2, R, D); got shape {tuple(frames.shape)}")
    steps = list(range(len(frames))) if steps is None else [int(s) for s in steps]
    if len(steps) != len(frames) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise KalsError(f"burn-in needs one increasing step number per frame; got {len(steps)} for {len(frames)} frames")
    gap = torch.tensor([b - a for a, b in zip(steps, steps[1:])], dtype=torch.float32)
    size = (frames[1:] - frames[:-1]).pow(2).mean(dim=2).sqrt().mean(dim=1).cpu() / gap
    above = (size >= tol).nonzero()
    first_ok = 0 if len(above) == 0 else int(above[-1]) + 1  # index into size; frame index is +1
    b = steps[first_ok] if first_ok < len(size) else None
    return BurnIn(steps=steps, step_size=size.tolist(), burn_in=b, tol=tol)


def nearest_pairs(samples, train, idx: torch.Tensor, k: int = 8) -> torch.Tensor:
    """(2k, D): the first k samples, each followed by its nearest training point, for a grid with
    two images per row (sample | nearest training image), e.g. ``render.grid_frames(.., nrow=2)``."""
    samples, train = _float2d(samples, "samples"), _float2d(train, "train")
    k = min(k, len(samples))
    return torch.stack([samples[:k], train[idx[:k].long().cpu()]], dim=1).reshape(2 * k, -1)
