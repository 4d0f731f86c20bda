"""The kaleidoscope beside what a user would train instead: a small denoising diffusion model
(issue #22), on the same images, for the same training CPU time, measured the same way.

Four families, all trained on the first ``n`` training images (28x28, values in [-1, 1]):

* ``unet`` — a small ``diffusers.UNet2DModel`` trained as a DDPM with the library's usual recipe
  (examples/unconditional_image_generation/train_unconditional.py, scaled down): epsilon
  prediction, 1000-step linear beta schedule, AdamW (lr 2e-4, betas 0.95/0.999, weight decay 1e-6),
  EMA of the weights with warm-up (power 3/4) via ``diffusers.training_utils.EMAModel``; sampled
  with ``DDIMScheduler`` (eta 0) from the EMA weights. Ho et al. 2020, arXiv 2006.11239; Song et
  al. 2020 (DDIM), arXiv 2010.02502. The example's cosine learning-rate decay is replaced by a
  constant rate after warm-up, so a run can be measured at every budget on the way (a snapshot at
  budget B is the run one would get by training for B).
* ``mlp-ddpm`` — the like-for-like row: a time-conditioned residual MLP (:class:`TimeMLP`) with as
  many weights as the kaleidoscope, the same DDPM recipe, diffusers' scheduler and its sinusoidal
  timestep embedding.
* ``improved`` and ``paper`` — kals' recipes through :func:`pipeline.train_run` and
  :func:`pipeline.sample_run` (see :func:`kals_rows` for how budgets meet improved's stopping rule);
  optionally ``improved-nostop``, the improved recipe without its stopping rule.

Budgets are CPU seconds of the training loop (``time.process_time``); :func:`versus_diffusion`
runs every family on one torch thread (with several, idle threads' spinning counts as CPU time too).
Every row holds: the classifier Fréchet distance and PRDC in pixels and in classifier features
(:mod:`prdc`, :mod:`features`; the classifier is kals' own, cached under the data root), the
memorised fraction (pixels), the class balance (total variation between the classes the classifier
predicts for the samples and the training labels), the recognisable fraction, and the sampling
cost per image (wall and CPU milliseconds, network evaluations).

``diffusers`` is an optional extra (``pip install -e .[baseline]``); :func:`diffusers_parts` is
the one place it is imported, and says how to install it when it is missing.
"""

import copy
import os
import time
from dataclasses import replace
from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..data import Data, load_data
from ..errors import KalsError
from ..files import DEBIAN_FASHION, data_dir, project_dir
from ..measures.evaluate import classifier_for, heldout_images
from ..measures.features import class_histogram, embedder, recognisable_fraction
from ..model import count_weights
from ..pipeline import make_config, sample_run, train_run
from ..measures.prdc import frechet_distance, real_reference, sample_metrics
from ..recipes import IMPROVED, get_recipe

FAMILIES = ("unet", "mlp-ddpm", "improved", "paper")   # DIFFUSION first, then kals' recipes
OPTIONAL = ("improved-nostop",)   # improved without its stopping rule: what the rule buys (not run by default)
DIFFUSION = ("unet", "mlp-ddpm")
BUDGETS = (60.0, 180.0)      # training CPU seconds at which every family is measured
N_TRAIN = 1000               # the first n training images
N_SAMPLES = 300              # samples per measurement (and as many real training images as reference)
DDIM_STEPS = 50              # DDIM sampling steps (= network evaluations per image) for the diffusion rows
KALS_STEPS = (5, 100)        # kaleidoscope walk lengths measured (100: kals' default; 5: a tenth of DDIM's)
KALS = dict(depth=10, width=500, lr=1e-3, batch_size=100)   # presets.QUICK_IMAGES' net and optimiser
UNET = dict(block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
            down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
# ^ the example's U-Net scaled down to ~0.7M weights (attention at 7x7 only): 0.7 CPU s per batch of 32
# on one core; (32, 64, 64) with attention at 14x14 took 2.4 s, too few updates for any budget here
DDPM = dict(lr=2e-4, batch_size=32, warmup=50, ema_decay=0.9999, ema_power=0.75, timesteps=1000,
            beta_schedule="linear")  # train_unconditional.py's recipe (lr 1e-4, batch 16, warm-up 500 there)
MLP_BLOCKS = 4               # residual blocks of the MLP DDPM (its width is chosen to match the weights)
TIME_DIM = 128               # sinusoidal timestep features fed to the time embedding
# SMOKE size (tests, the notebook's CI run): every family end to end in seconds
UNET_SMOKE = dict(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"))
SMOKE = dict(budgets=(0.5, 1.0), n_samples=16, ddim_steps=3, kals_steps=(2,), unet=UNET_SMOKE,
             kals=dict(depth=3, width=32, lr=1e-3, batch_size=16))
GRID = 16                    # samples kept per row for the side-by-side grids
INSTALL = "pip install -e .[baseline]` (or `bash setup.sh --test`)"


def diffusers_parts() -> dict:
    """The diffusers pieces this study uses, imported here only; a clear KalsError when missing.
    Hub access is switched off first: everything is built from configs, nothing is downloaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
        from diffusers.models.embeddings import TimestepEmbedding, get_timestep_embedding
        from diffusers.optimization import get_constant_schedule_with_warmup
        from diffusers.training_utils import EMAModel
    except ImportError as e:
        raise KalsError(f"the diffusion baseline needs the optional package diffusers ({e.name or e}): "
                        f"install it with `{INSTALL}") from None
    return dict(DDIMScheduler=DDIMScheduler, DDPMScheduler=DDPMScheduler, UNet2DModel=UNet2DModel,
                TimestepEmbedding=TimestepEmbedding, get_timestep_embedding=get_timestep_embedding,
                warmup=get_constant_schedule_with_warmup, EMAModel=EMAModel)


# ---------------------------------------------------------------- the data
def data_root(path="") -> str:
    """Where the study reads Fashion-MNIST and caches its classifier: ``path`` if given, else
    ``$KALS_DATA``, else <repo>/data when it holds the IDX files or Debian's dataset-fashion-mnist
    folder is absent (torchvision downloads there), else Debian's folder."""
    if path or os.environ.get("KALS_DATA") is not None:
        return str(data_dir(path))
    local = project_dir() / "data"
    use_local = (local / "train-images-idx3-ubyte.gz").exists() or not os.path.isdir(DEBIAN_FASHION)
    return str(local) if use_local else DEBIAN_FASHION


def first_images(name: str, n: int = N_TRAIN, *, root, value_range=(-1.0, 1.0)) -> Data:
    """The first ``n`` images of data set ``name``'s training split (with labels), in ``value_range``."""
    full = load_data(name, root=root, value_range=value_range)
    if n > len(full):
        raise KalsError(f"{name} has {len(full)} training images; ask for at most that many, not {n}")
    return Data(x=full.x[:n].clone(), value_range=full.value_range, name=full.name, image_shape=full.image_shape,
                labels=None if full.labels is None else full.labels[:n].clone(), class_names=full.class_names,
                subset=None, seed=0)


# ---------------------------------------------------------------- the MLP denoiser
class TimeMLP(nn.Module):
    """eps(x_t, t) for flat data: Linear in, ``blocks`` residual blocks h += W2 silu(W1 silu(LN h) + e(t)),
    LayerNorm + SiLU + Linear out; e(t) is diffusers' TimestepEmbedding of its sinusoidal features."""

    def __init__(self, dim: int, width: int, *, blocks: int = MLP_BLOCKS, time_dim: int = TIME_DIM, parts=None):
        super().__init__()
        parts = parts or diffusers_parts()
        self.time_dim, self._sinusoid = time_dim, parts["get_timestep_embedding"]
        self.time = parts["TimestepEmbedding"](time_dim, width)
        self.inp = nn.Linear(dim, width)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(blocks))
        self.lin1 = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.lin2 = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        shape, x = x.shape, x.flatten(1)
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))
        e = self.time(self._sinusoid(t, self.time_dim, flip_sin_to_cos=True, downscale_freq_shift=0))
        h = self.inp(x) + e
        for norm, l1, l2 in zip(self.norms, self.lin1, self.lin2):
            h = h + l2(F.silu(l1(F.silu(norm(h))) + e))
        return self.out(h).reshape(shape)


def mlp_weights(dim: int, width: int, blocks: int = MLP_BLOCKS, time_dim: int = TIME_DIM) -> int:
    """Weights of a :class:`TimeMLP` (counted, not built)."""
    return (time_dim + 1) * width + (width + 1) * width + (dim + 1) * width + blocks * (2 * width + 2 * (width + 1) * width) \
        + 2 * width + (width + 1) * dim


def matched_mlp_width(dim: int, target: int, blocks: int = MLP_BLOCKS) -> int:
    """The TimeMLP width whose weight count is closest to ``target``."""
    return min(range(8, 4097), key=lambda w: abs(mlp_weights(dim, w, blocks) - target))


def kals_weights(data: Data, kals: dict = KALS) -> int:
    return count_weights(make_config(data, kals["depth"], kals["width"]).model)


def build_denoiser(family: str, data: Data, *, seed: int, unet: dict = UNET, kals: dict = KALS, parts=None) -> nn.Module:
    """A fresh ``unet`` (UNet2DModel from ``unet``) or ``mlp-ddpm`` (TimeMLP at the kaleidoscope's
    weight count), weights from ``seed``."""
    parts = parts or diffusers_parts()
    c, h, w = data.image_shape
    torch.manual_seed(seed)
    if family == "unet":
        return parts["UNet2DModel"](sample_size=(h, w), in_channels=c, out_channels=c, **unet)
    width = matched_mlp_width(data.dim, kals_weights(data, kals))
    return TimeMLP(data.dim, width, parts=parts)


def _eps(net: nn.Module, x: torch.Tensor, t) -> torch.Tensor:
    out = net(x, t)
    return out.sample if hasattr(out, "sample") else out


# ---------------------------------------------------------------- DDPM training and DDIM sampling
def train_ddpm(net: nn.Module, data: Data, *, budgets: Sequence[float], seed: int, ddpm: dict = DDPM,
               parts=None, log: Optional[Callable] = None) -> list:
    """Train ``net`` to predict the noise (DDPM) on ``data`` until each of ``budgets`` CPU seconds of
    the training loop; at each, a copy with the EMA weights. Returns [(budget, snapshot dict)], the
    dict holding net, scheduler, cpu_s, steps and loss (mean of the last 50 batches)."""
    parts = parts or diffusers_parts()
    sched = parts["DDPMScheduler"](num_train_timesteps=ddpm["timesteps"], beta_schedule=ddpm["beta_schedule"])
    x = data.x.reshape(len(data), *data.image_shape)
    opt = torch.optim.AdamW(net.parameters(), lr=ddpm["lr"], betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr_sched = parts["warmup"](opt, num_warmup_steps=ddpm["warmup"])
    ema = parts["EMAModel"](net.parameters(), decay=ddpm["ema_decay"], use_ema_warmup=True, power=ddpm["ema_power"])
    g = torch.Generator().manual_seed(seed)
    cpu, steps, recent, out = 0.0, 0, [], []
    net.train()
    for budget in sorted(budgets):
        while cpu < budget:
            t0 = time.process_time()
            b = torch.randint(0, len(x), (min(ddpm["batch_size"], len(x)),), generator=g)
            noise = torch.randn(x[b].shape, generator=g)
            t = torch.randint(0, ddpm["timesteps"], (len(b),), generator=g)
            loss = F.mse_loss(_eps(net, sched.add_noise(x[b], noise, t), t), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lr_sched.step()
            ema.step(net.parameters())
            cpu += time.process_time() - t0
            steps += 1
            recent = (recent + [loss.item()])[-50:]
        snap = copy.deepcopy(net).eval()
        ema.copy_to(snap.parameters())
        out.append((budget, dict(net=snap, scheduler=sched, cpu_s=cpu, steps=steps, loss=sum(recent) / len(recent))))
        if log is not None:
            log(f"  ddpm: {steps} steps in {cpu:.0f} CPU s, loss {out[-1][1]['loss']:.4f}")
    return out


@torch.no_grad()
def ddim_sample(net: nn.Module, scheduler, n: int, *, image_shape, steps: int = DDIM_STEPS, seed: int = 0,
                batch: int = 250, parts=None) -> torch.Tensor:
    """``n`` flat samples (n, D) in [-1, 1]: DDIM (eta 0, ``steps`` steps) from N(0, I) noise drawn
    with ``seed``, using the training scheduler's betas."""
    parts = parts or diffusers_parts()
    ddim = parts["DDIMScheduler"].from_config(scheduler.config)
    ddim.set_timesteps(steps)
    x = torch.randn((n, *image_shape), generator=torch.Generator().manual_seed(seed))
    for t in ddim.timesteps:
        eps = torch.cat([_eps(net, x[i:i + batch], t) for i in range(0, n, batch)])
        x = ddim.step(eps, t, x, eta=0.0).prev_sample
    return x.clamp(-1, 1).reshape(n, -1)


# ---------------------------------------------------------------- measuring
def measure(samples: torch.Tensor, data: Data, *, classifier, seed: int = 0, k: int = 5,
            heldout: Optional[torch.Tensor] = None) -> dict:
    """Every sample metric of ``samples`` against ``data`` (see the module's docstring): fd_* and
    PRDC (px_*: pixels, clf_*: classifier features) against as many real training images, memorized
    (pixels), class_tv (classifier predictions vs the training labels), recognisable; with
    ``heldout`` (real images no model saw), also fd_heldout: the classifier Fréchet distance to them
    (copies of training images lower it less than fd_classifier; check ``memorized`` too)."""
    real = real_reference(data.x, len(samples), seed=seed)
    emb = embedder("classifier", image_shape=data.image_shape, value_range=data.value_range, classifier=classifier)
    px = sample_metrics(samples, real, k=k, train=data.x)
    cf = sample_metrics(samples, real, k=k, features=emb)
    hist = class_histogram(classifier, samples, value_range=data.value_range).double()
    train_hist = torch.bincount(data.labels.long(), minlength=len(hist)).double()
    row = {"fd_classifier": cf["frechet"], "fd_pixels": px["frechet"]}
    row.update({f"px_{m}": px[m] for m in ("precision", "recall", "density", "coverage")})
    row.update({f"clf_{m}": cf[m] for m in ("precision", "recall", "density", "coverage")})
    row.update(memorized=px["memorized"], class_tv=0.5 * float((hist / hist.sum() - train_hist / train_hist.sum()).abs().sum()),
               recognisable=recognisable_fraction(classifier, samples, value_range=data.value_range))
    if heldout is not None:
        row["fd_heldout"] = frechet_distance(emb(heldout), emb(samples))
    return row


def _timed(fn: Callable):
    """(result, wall seconds, CPU seconds) of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _sample_row(samples, wall: float, cpu: float, nfe: int, data: Data, *, classifier, seed: int, base: dict,
                keep: bool, heldout: Optional[torch.Tensor] = None) -> dict:
    row = dict(base, nfe=nfe, sample_ms_wall=1000 * wall / len(samples), sample_ms_cpu=1000 * cpu / len(samples))
    row.update(measure(samples, data, classifier=classifier, seed=seed, heldout=heldout))
    if keep:
        row["grid"] = samples[:GRID].clone()
    return row


# ---------------------------------------------------------------- the families
def diffusion_rows(family: str, data: Data, *, budgets: Sequence[float], seed: int, classifier, n_samples: int,
                   ddim_steps: int = DDIM_STEPS, unet: dict = UNET, ddpm: dict = DDPM, kals: dict = KALS,
                   keep: bool = False, heldout: Optional[torch.Tensor] = None, log: Optional[Callable] = None) -> list:
    """One row per budget for ``unet`` or ``mlp-ddpm``: train once through every budget (EMA
    snapshots), sample each with DDIM and measure it."""
    parts = diffusers_parts()
    net = build_denoiser(family, data, seed=seed, unet=unet, kals=kals, parts=parts)
    params = sum(p.numel() for p in net.parameters())
    rows = []
    for budget, snap in train_ddpm(net, data, budgets=budgets, seed=seed, ddpm=ddpm, parts=parts, log=log):
        samples, wall, cpu = _timed(lambda: ddim_sample(snap["net"], snap["scheduler"], n_samples,
                                                        image_shape=data.image_shape, steps=ddim_steps, seed=seed,
                                                        parts=parts))
        base = dict(family=family, label=f"{family} (DDIM {ddim_steps})", seed=seed, budget_s=budget,
                    train_cpu_s=snap["cpu_s"], updates=snap["steps"], loss=snap["loss"], params=params)
        rows.append(_sample_row(samples, wall, cpu, ddim_steps, data, classifier=classifier, seed=seed, base=base,
                                keep=keep, heldout=heldout))
    return rows


def kals_recipe(family: str):
    """The recipe a kals family trains with: its name, or for ``improved-nostop`` the improved recipe
    with no held-out tenth and so no stopping rule (trained for the whole budget)."""
    return replace(IMPROVED, holdout=0.0) if family == "improved-nostop" else family


def _kals_train(recipe: str, data: Data, *, budget: float, seed: int, kals: dict, resume=None):
    """(run, CPU seconds spent): train_run of ``recipe`` until ``budget`` CPU seconds of training (or
    until the recipe's own stopping rule ends it first)."""
    clock = {}
    run = train_run(data, depth=kals["depth"], width=kals["width"], lr=kals["lr"], batch_size=kals["batch_size"],
                    epochs=10**9, seed=seed, device="cpu", precision="fp32", recipe=kals_recipe(recipe),
                    progress=False, resume=resume, on_start=lambda: clock.setdefault("t0", time.process_time()),
                    should_stop=lambda: time.process_time() - clock["t0"] >= budget)
    return run, time.process_time() - clock["t0"]


def kals_rows(recipe: str, data: Data, *, budgets: Sequence[float], seed: int, classifier, n_samples: int,
              kals_steps: Sequence[int] = KALS_STEPS, kals: dict = KALS, keep: bool = False,
              heldout: Optional[torch.Tensor] = None, log: Optional[Callable] = None) -> list:
    """Rows per budget x walk length for kals' ``recipe``: the run a user gets by training for the
    budget, sampled by sample_run(run) with its defaults and ``n_samples`` chains. A recipe without
    a stopping rule (paper) is one run resumed from budget to budget (the same as training straight
    through); one with a rule (improved: held-out tenth) trains afresh for each budget, since the
    rule keeps its best weights so far; once the rule has ended a run before its budget, every
    larger budget gives that same run (``stopped`` True), which is measured once."""
    rows, resume, spent, run, stopped = [], None, 0.0, None, False
    has_rule = get_recipe(kals_recipe(recipe)).holdout > 0
    for budget in sorted(budgets):
        if stopped:   # the rule ended training before the last budget: a larger one changes nothing
            rows += [dict(r, budget_s=budget) for r in rows if r["budget_s"] == last]
            last = budget
            continue
        run, cpu = _kals_train(recipe, data, budget=budget if has_rule else budget - spent, seed=seed, kals=kals,
                               resume=resume)
        spent = cpu if has_rule else spent + cpu
        stopped = has_rule and spent < budget
        resume, last = (None if has_rule else run.result.train_state), budget
        if log is not None:
            log(f"  {recipe}: {run.result.epochs_done} epochs in {spent:.0f} CPU s, best loss {run.result.best_loss:.4f}"
                + (f", stopped by its rule (kept epoch {run.config.extra.get('stopped_at')})" if stopped else ""))
        n_fit = (len(data) - run.config.extra.get("holdout", 0)) * (2 if run.config.extra.get("mirror") else 1)  # rows trained
        for steps in kals_steps:
            walk, wall, cpu = _timed(lambda: sample_run(run, chains=n_samples, steps=steps, seed=seed, record=0))
            base = dict(family=recipe, label=f"kals {recipe} ({steps} steps)", seed=seed, budget_s=budget,
                        train_cpu_s=spent, updates=run.result.epochs_done * -(-n_fit // kals["batch_size"]),
                        loss=run.result.best_loss, params=count_weights(run.config.model), stopped=stopped,
                        kept_epoch=run.config.extra.get("stopped_at"))
            rows.append(_sample_row(walk.final.cpu(), wall, cpu, steps, data, classifier=classifier, seed=seed,
                                    base=base, keep=keep, heldout=heldout))
    if keep and rows:
        rows[-1]["run"] = run   # the last budget's run, for the panel and a GIF
    return rows


def heldout_sets(data: Data, n: int, *, data_root, seed: int = 0) -> tuple:
    """(images for the held-out row, reference for fd_heldout): two disjoint sets of ``n`` seeded
    test-split images (halves of it when it holds fewer than 2n), or (None, None) where the data set
    has no test split kals reads."""
    held = heldout_images(make_config(data, 1, 1), 2 * n, data_root=data_root, seed=seed)
    if held is None or len(held) < 4:
        return None, None
    n = min(n, len(held) // 2)
    return held[:n], held[n:2 * n]


def heldout_row(held: torch.Tensor, data: Data, *, classifier, reference: Optional[torch.Tensor] = None,
                seed: int = 0) -> dict:
    """The same measures for held-out real images (the test split): the best a generator can read."""
    base = dict(family="real", label="held-out real images", seed=seed, budget_s=None, train_cpu_s=None)
    return _sample_row(held, 0.0, 0.0, 0, data, classifier=classifier, seed=seed, base=base, keep=True,
                       heldout=reference)


def versus_diffusion(data: Data, *, data_root, families: Sequence[str] = FAMILIES, budgets: Sequence[float] = BUDGETS,
                     seeds: Sequence[int] = (0,), n_samples: int = N_SAMPLES, ddim_steps: int = DDIM_STEPS,
                     kals_steps: Sequence[int] = KALS_STEPS, unet: dict = UNET, ddpm: dict = DDPM, kals: dict = KALS,
                     keep: bool = False, with_heldout: bool = True, log: Optional[Callable] = None,
                     on_rows: Optional[Callable[[list], None]] = None) -> list:
    """Every family for every seed at every budget (CPU seconds of training) on ``data`` (labelled
    images in [-1, 1]); one dict per (family, seed, budget, sampler), plus one ``real`` row (held-out
    images) first. keep: also ``grid`` (the first GRID samples) and, for kals, ``run`` (the last
    budget's). on_rows(rows so far): called after each (family, seed), e.g. to save a JSON file.
    Where the data set has a test split, every row also reads fd_heldout (see :func:`measure`)."""
    bad = [f for f in families if f not in FAMILIES + OPTIONAL]
    if bad:
        raise KalsError(f"unknown families {bad}; choose from {', '.join(FAMILIES + OPTIONAL)}")
    if data.labels is None or data.image_shape is None:
        raise KalsError(f"the comparison needs labelled images (class balance, classifier features); {data.name} has none")
    if any(f in DIFFUSION for f in families):
        diffusers_parts()   # fail before any training, with the install line
    if n_samples > len(data):
        raise KalsError(f"n_samples {n_samples} exceeds the {len(data)} training images it is compared with")
    torch.manual_seed(0)
    classifier = classifier_for(make_config(data, 1, 1), data_root=data_root, log=log)
    held, reference = heldout_sets(data, n_samples, data_root=data_root)
    rows = [heldout_row(held, data, classifier=classifier, reference=reference)] \
        if with_heldout and held is not None else []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a CPU-second budget means the same work on any machine only for one thread
    try:
        for family in families:
            for seed in seeds:
                if log is not None:
                    log(f"{family} seed {seed}, budgets {list(budgets)} CPU s (one thread)")
                opts = dict(budgets=budgets, seed=seed, classifier=classifier, n_samples=n_samples, kals=kals,
                            keep=keep, heldout=reference, log=log)
                rows += (diffusion_rows(family, data, ddim_steps=ddim_steps, unet=unet, ddpm=ddpm, **opts)
                         if family in DIFFUSION else kals_rows(family, data, kals_steps=kals_steps, **opts))
                if on_rows is not None:
                    on_rows(rows)
    finally:
        torch.set_num_threads(threads)
    return rows


VERSUS_KEYS = ("label", "budget_s", "train_cpu_s", "updates", "params", "nfe", "sample_ms_cpu", "fd_classifier",
               "fd_heldout", "fd_pixels", "clf_precision", "clf_recall", "clf_density", "clf_coverage", "px_precision",
               "px_coverage", "memorized", "class_tv", "recognisable")


def json_rows(rows: Sequence[dict]) -> list:
    """``rows`` without the tensors and runs (``grid``, ``run``): ready for json.dump."""
    return [{k: v for k, v in r.items() if k not in ("grid", "run")} for r in rows]


def kept_run(rows: Sequence[dict], family: str = "improved"):
    """The kept kals run of ``family`` (the first with one), or None."""
    return next((r["run"] for r in rows if r.get("family") == family and "run" in r), None)
