"""The net ``f: R^D -> [lo, hi]^D`` that learns ``f(x) ~= x``, and the configs that describe a run.

``depth`` L counts Linear layers (L >= 1); ``width`` H is the hidden size; the output activation bounds the
range: ``sigmoid`` -> [0, 1], ``tanh`` -> [-1, 1]. Every net built here carries its :class:`ModelConfig` as
``model.config``, so code that gets a model never has to guess its shape.
"""

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Optional

import torch
from torch import nn

from .errors import KalsError, check_int
from .nets import IMAGE_NETS, n_params

OUT_ACTS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
ARCHS = ("mlp", "cnn", "unet", "transformer")
ARCH_HELP = {  # what depth L and width H mean for each architecture
    "mlp": "L Linear layers, H hidden units",
    "cnn": "L 3x3 conv layers at full resolution, H channels",
    "unet": "L resolution levels, H base channels (doubling per level, at most 8H), skip connections",
    "transformer": "L pre-norm ViT blocks of width H over patch x patch patches",
}
PATCH = 4  # transformer patch size (pixels)


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
    """The net: input/output size ``dim`` D, ``depth`` L, ``width`` H, ``out_act``, the
    architecture ``arch`` (see :data:`ARCH_HELP` for what L and H mean in each), the image shape
    (C, H, W) the image architectures need, and their settings (``patch``: transformer patch size;
    ``top_skip``: the U-Net's full-resolution skip connection)."""

    dim: int
    depth: int
    width: int
    out_act: str = "sigmoid"
    arch: str = "mlp"
    image_shape: Optional[tuple] = None
    patch: int = PATCH
    top_skip: bool = True

    def __post_init__(self):
        self.dim = check_int("dim (D)", self.dim, 1)
        self.depth = check_int("depth L", self.depth, 1, " (use depth 1 or more)")
        self.width = check_int("width H", self.width, 1, " (use width 1 or more)")
        self.patch = check_int("patch", self.patch, 1)
        out_range(self.out_act)
        if self.arch not in ARCHS:
            raise KalsError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.image_shape is not None:
            self.image_shape = tuple(int(v) for v in self.image_shape)
            if len(self.image_shape) != 3 or math.prod(self.image_shape) != self.dim:
                raise KalsError(f"image shape {self.image_shape} does not match D={self.dim}")
        if self.arch != "mlp" and self.image_shape is None:
            raise KalsError(f"architecture {self.arch} needs images (C, H, W); 1D/2D points fit only arch mlp")

    @property
    def arch_kw(self) -> dict:
        """The image architecture's own settings."""
        return {"unet": {"top_skip": self.top_skip}, "transformer": {"patch": self.patch}}.get(self.arch, {})

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
    precision: str = "fp32"               # what training used (fp32 or bf16); weights are always stored fp32
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
        net = {k: v for k, v in net.items() if k in {f.name for f in fields(ModelConfig)}}
        missing = {"dim", "depth", "width"} - set(net)
        if missing:
            raise KalsError(f"checkpoint config lacks {sorted(missing)}; it was not written by kals")
        names = {f.name for f in fields(cls)} - {"model"}
        d = {k: v for k, v in d.items() if k in names}
        d["value_range"] = tuple(float(v) for v in d.get("value_range", (0.0, 1.0)))
        if d.get("image_shape") is not None:
            d["image_shape"] = tuple(int(v) for v in d["image_shape"])
        return cls(model=ModelConfig(**net), **d)


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
    """The net for ``config``, on the CPU, weights drawn from ``seed`` (the global RNG is left
    untouched); it carries ``config`` as ``net.config``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if config.arch == "mlp":
            return MLP(config)
        net = IMAGE_NETS[config.arch](image_shape=config.image_shape, depth=config.depth, width=config.width,
                                      out_act=config.out_act, **config.arch_kw)
    net.config = config
    return net


def build_net(arch: str, *, image_shape=None, dim: Optional[int] = None, depth: int, width: int,
              out_act: str = "tanh", seed: int = 0, **arch_kw) -> nn.Module:
    """:func:`build_model` by name: ``dim`` defaults to C*H*W of ``image_shape``; ``arch_kw``:
    ``patch`` (transformer), ``top_skip`` (unet)."""
    unknown = set(arch_kw) - {"patch", "top_skip"}
    if unknown:
        raise KalsError(f"unknown architecture setting(s) {', '.join(sorted(unknown))}; kals knows patch and top_skip")
    if dim is None:
        if image_shape is None:
            raise KalsError("build_net needs image_shape (C, H, W) or, for mlp, dim (D)")
        dim = math.prod(tuple(image_shape))
    cfg = ModelConfig(dim=dim, depth=depth, width=width, out_act=out_act, arch=arch,
                      image_shape=None if image_shape is None or arch == "mlp" else image_shape, **arch_kw)
    return build_model(cfg, seed=seed)


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
    """Number of weights of ``build_model(cfg)``, computed without building it (image nets are
    built on the meta device: no memory, no random numbers)."""
    if cfg.arch != "mlp":
        with torch.device("meta"):
            return n_params(IMAGE_NETS[cfg.arch](image_shape=cfg.image_shape, depth=cfg.depth, width=cfg.width,
                                                 out_act=cfg.out_act, **cfg.arch_kw))
    d, h, n_hidden = cfg.dim, cfg.width, cfg.depth - 2  # closed form: a depth of 10^12 is only arithmetic
    if cfg.depth == 1:
        return d * d + d
    return (d * h + h) + max(0, n_hidden) * (h * h + h) + (h * d + d)


def activations(cfg: ModelConfig) -> int:
    """Rough count of the values one input row leaves behind in a forward pass (an upper bound)."""
    if cfg.arch == "mlp":
        return 2 * cfg.dim + 2 * cfg.width * max(0, cfg.depth - 1)
    pixels = cfg.dim // cfg.image_shape[0]
    if cfg.arch == "transformer":
        tokens = -(-cfg.image_shape[1] // cfg.patch) * -(-cfg.image_shape[2] // cfg.patch)
        return 2 * cfg.dim + cfg.depth * tokens * (8 * cfg.width + 4 * tokens)
    return 2 * cfg.dim + 4 * pixels * cfg.width * cfg.depth  # cnn; a U-Net's levels sum to less


def train_bytes(cfg: ModelConfig, batch: int) -> int:
    """Rough memory of training: fp32 weights, gradients, Adam's two moments, the best and last
    copies kept for resuming (x7), plus forward activations and their gradients for one batch."""
    if cfg.width > 1 << 20 or cfg.depth > 1 << 20:  # too big to build even on the meta device
        return 1 << 62
    return 4 * (7 * count_weights(cfg) + 3 * batch * activations(cfg))


def width_for_params(arch: str, *, target: int, image_shape=None, dim: Optional[int] = None, depth: int,
                     out_act: str = "tanh", **arch_kw) -> int:
    """The width H whose weight count is closest to ``target``, for comparisons at matched size
    (doubling, then bisection: the count grows with H)."""
    target = check_int("target (parameters)", target, 1)
    dim = dim if dim is not None else (math.prod(tuple(image_shape)) if image_shape is not None else None)
    if dim is None:
        raise KalsError("width_for_params needs image_shape (C, H, W) or, for mlp, dim (D)")

    def count(h):
        return count_weights(ModelConfig(dim=dim, depth=depth, width=h, out_act=out_act, arch=arch,
                                         image_shape=None if arch == "mlp" else image_shape, **arch_kw))
    lo, hi = 1, 1
    while count(hi) < target and hi < 1 << 24:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # the smallest H with count(H) >= target lies in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if count(mid) >= target else (mid, hi)
    return min((lo, hi), key=lambda h: (abs(count(h) - target), h))


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
