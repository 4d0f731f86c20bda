"""The net ``f: R^D -> [lo, hi]^D`` that learns ``f(x) ~= x``, and the configs that describe a run.

``depth`` L counts Linear layers (L >= 1); ``width`` H is the hidden size; the output activation
bounds the range: ``sigmoid`` -> [0, 1], ``tanh`` -> [-1, 1]. Every net built here carries its
:class:`ModelConfig` as ``model.config``, so code that gets a model never has to guess its shape.
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

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
    """Shape of the net: input/output size ``dim`` D, ``depth`` L, ``width`` H, ``out_act``."""

    dim: int
    depth: int
    width: int
    out_act: str = "sigmoid"

    def __post_init__(self):
        self.dim = check_int("dim (D)", self.dim, 1)
        self.depth = check_int("depth L", self.depth, 1, " (L counts Linear layers; use depth 1 or more)")
        self.width = check_int("width H", self.width, 1, " (use width 1 or more)")
        out_range(self.out_act)

    @property
    def value_range(self) -> tuple:
        return out_range(self.out_act)


@dataclass
class RunConfig:
    """Everything needed to rebuild a trained kaleidoscope and say where its data came from: the
    net's :class:`ModelConfig` plus the data and training settings."""

    model: ModelConfig
    value_range: tuple = (0.0, 1.0)
    image_shape: Optional[tuple] = None   # (C, H, W) for images, None for points
    dataset: str = "points"
    subset: Optional[int] = None
    subset_seed: int = 0
    seed: int = 0
    lr: float = 1e-3
    epochs: int = 0
    batch_size: Optional[int] = None
    recipe: str = "paper"
    extra: dict = field(default_factory=dict)

    # the net's fields, read through (run.config.depth etc.)
    dim = property(lambda self: self.model.dim)
    depth = property(lambda self: self.model.depth)
    width = property(lambda self: self.model.width)
    out_act = property(lambda self: self.model.out_act)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value_range"] = list(d["value_range"])
        d["image_shape"] = None if d["image_shape"] is None else list(d["image_shape"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Read a config written by :meth:`to_dict` (or the flat one of checkpoint format 1)."""
        d = dict(d)
        net = d.pop("model", None) or {k: d.get(k) for k in ("dim", "depth", "width", "out_act") if k in d}
        missing = {"dim", "depth", "width"} - set(net)
        if missing:
            raise KalsError(f"checkpoint config lacks {sorted(missing)}; it was not written by kals")
        names = {f.name for f in fields(cls)} - {"model"}
        d = {k: v for k, v in d.items() if k in names}
        d["value_range"] = tuple(float(v) for v in d.get("value_range", (0.0, 1.0)))
        if d.get("image_shape") is not None:
            d["image_shape"] = tuple(int(v) for v in d["image_shape"])
        return cls(model=ModelConfig(**{k: net[k] for k in ("dim", "depth", "width", "out_act") if k in net}), **d)


class MLP(nn.Sequential):
    """Linear(D,H), ReLU, [Linear(H,H), ReLU] * (L-2), Linear(H,D), out_act; L=1 is Linear(D,D).
    Maps (N, D) -> (N, D) with values in ``config.value_range``."""

    def __init__(self, config: ModelConfig):
        sizes = [config.dim] + [config.width] * (config.depth - 1) + [config.dim]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < config.depth - 1:
                layers.append(nn.ReLU())
        layers.append(nn.Sigmoid() if config.out_act == "sigmoid" else nn.Tanh())
        super().__init__(*layers)
        self.config = config


def build_model(config: ModelConfig, *, seed: int = 0) -> nn.Module:
    """The net for ``config``, on the CPU, weights drawn from ``seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(config)


def config_of(model: nn.Module) -> ModelConfig:
    """The :class:`ModelConfig` a net was built with; for a hand-made ``nn.Sequential`` of Linear
    layers ending in Sigmoid or Tanh, the config read off its layers."""
    config = getattr(model, "config", None)
    if isinstance(config, ModelConfig):
        return config
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)] if isinstance(model, nn.Sequential) else []
    if not linears or not isinstance(model[-1], (nn.Sigmoid, nn.Tanh)):
        raise KalsError("this net carries no kals config: build it with kals_utils.model.build_model, or give it "
                        "a `config` attribute (a ModelConfig)")
    width = linears[0].out_features if len(linears) > 1 else linears[0].in_features
    return ModelConfig(dim=linears[0].in_features, depth=len(linears), width=width,
                       out_act="sigmoid" if isinstance(model[-1], nn.Sigmoid) else "tanh")


def count_weights(cfg: ModelConfig) -> int:
    """Number of weights of ``build_model(cfg)``, computed without building it."""
    d, h, n_hidden = cfg.dim, cfg.width, cfg.depth - 2  # closed form: a depth of 10^12 is only arithmetic
    if cfg.depth == 1:
        return d * d + d
    return (d * h + h) + max(0, n_hidden) * (h * h + h) + (h * d + d)


def train_bytes(cfg: ModelConfig, batch: int) -> int:
    """Rough memory of training: fp32 weights, gradients, Adam's two moments, the best and last
    copies kept for resuming (x7), plus forward activations and their gradients for one batch."""
    activations = batch * (2 * cfg.dim + 2 * cfg.width * max(0, cfg.depth - 1))
    return 4 * (7 * count_weights(cfg) + 3 * activations)


def n_weights(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def residual(model: nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """``f(x) - x`` for every row of ``x`` (N, D), in chunks, on the model's device: zero at a
    fixed point of f. Every measure of how far f moves a point starts here."""
    x = x.to(device=model_device(model), dtype=torch.float32)
    return torch.cat([model(x[i:i + chunk]) - x[i:i + chunk] for i in range(0, len(x), chunk)]) if len(x) else x


def rms(v: torch.Tensor) -> torch.Tensor:
    """Row-wise RMS ``||v_i|| / sqrt(D)`` of an (N, D) tensor -> (N,): distances per coordinate."""
    return v.pow(2).mean(dim=1).sqrt()
