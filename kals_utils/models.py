"""The bounded ReLU MLP ``f: R^D -> [lo, hi]^D`` that learns ``f(x) ~= x``.

``depth`` L counts Linear layers (L >= 1); ``width`` H is the hidden size; the output activation
bounds the range: ``sigmoid`` -> [0, 1], ``tanh`` -> [-1, 1].
"""

from dataclasses import dataclass

import torch
from torch import nn

from .errors import KalsError, check_int

OUT_ACTS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def out_range(out_act: str) -> tuple:
    """(lo, hi) of the output activation's range."""
    if out_act not in OUT_ACTS:
        raise KalsError(f"unknown output activation {out_act!r}; choose sigmoid ([0,1]) or tanh ([-1,1])")
    return OUT_ACTS[out_act]


def act_for_range(lo: float, hi: float) -> str:
    """The output activation whose range is (lo, hi)."""
    for name, rng in OUT_ACTS.items():
        if rng == (float(lo), float(hi)):
            return name
    raise KalsError(f"no output activation has range [{lo}, {hi}]; scale the data to [0,1] or [-1,1]")


@dataclass
class ModelConfig:
    """Shape of the MLP: input/output size ``dim`` D, ``depth`` L, ``width`` H, ``out_act``."""

    dim: int
    depth: int
    width: int
    out_act: str = "sigmoid"

    def __post_init__(self):
        self.dim = check_int("dim (D)", self.dim, 1)
        self.depth = check_int("depth L", self.depth, 1, " (L counts Linear layers; use --depth 1 or more)")
        self.width = check_int("width H", self.width, 1, " (use --width 1 or more)")
        out_range(self.out_act)

    @property
    def value_range(self) -> tuple:
        return out_range(self.out_act)


def count_weights(cfg: ModelConfig) -> int:
    """Number of weights of :func:`build_mlp` ``(cfg)``, computed without building it."""
    d, h, n_hidden = cfg.dim, cfg.width, cfg.depth - 2  # closed form: a depth of 10^12 is only arithmetic
    if cfg.depth == 1:
        return d * d + d
    return (d * h + h) + max(0, n_hidden) * (h * h + h) + (h * d + d)


def train_bytes(cfg: ModelConfig, batch: int) -> int:
    """Rough memory of training: fp32 weights, gradients, Adam's two moments, the best and last
    copies kept for resuming (x7), plus forward activations and their gradients for one batch."""
    activations = batch * (2 * cfg.dim + 2 * cfg.width * max(0, cfg.depth - 1))
    return 4 * (7 * count_weights(cfg) + 3 * activations)


def build_mlp(cfg: ModelConfig, seed: int = 0) -> nn.Sequential:
    """Build the MLP on the CPU with weights drawn from ``seed`` (the global RNG is left untouched).

    Layers: Linear(D,H), ReLU, [Linear(H,H), ReLU] * (L-2), Linear(H,D), out_act; L=1 is Linear(D,D).
    Returns an ``nn.Sequential`` mapping (N, D) -> (N, D) with values in ``cfg.value_range``.
    """
    sizes = [cfg.dim] + [cfg.width] * (cfg.depth - 1) + [cfg.dim]
    layers = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < cfg.depth - 1:
                layers.append(nn.ReLU())
    layers.append(nn.Sigmoid() if cfg.out_act == "sigmoid" else nn.Tanh())
    return nn.Sequential(*layers)


def config_of(model: nn.Sequential) -> ModelConfig:
    """Read the ModelConfig back from a model built by :func:`build_mlp`."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    out_act = "sigmoid" if isinstance(model[-1], nn.Sigmoid) else "tanh"
    width = linears[0].out_features if len(linears) > 1 else linears[0].in_features
    return ModelConfig(dim=linears[0].in_features, depth=len(linears), width=width, out_act=out_act)


def n_weights(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
