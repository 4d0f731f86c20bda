"""Image architectures for ``f(x) ~= x``: a plain CNN, a U-Net and a small ViT (issue #14).

Every net maps flat images ``(N, D)`` -> ``(N, D)`` with ``D = C*H*W`` (any leading shape
``(..., D)`` works, so ``torch.func.vmap`` over single images does too). Inside, the input is
reshaped to ``(N, C, H, W)``; the output ends in the bounded activation ``out_act``: ``sigmoid`` ->
[0, 1], ``tanh`` -> [-1, 1], returned in the input's dtype (float32 also under autocast). No in-place
ops, so autograd and forward-mode AD (``torch.func.jvp``) work on every net.

``depth`` L and ``width`` H mean, per architecture:

- ``mlp``: L Linear layers; H hidden units.
- ``cnn``: L 3x3 conv layers at full resolution; H channels of the hidden convs.
- ``unet``: L resolution levels (L-1 poolings); H channels at full resolution, doubling per level,
  capped at 8H.
- ``transformer``: L transformer blocks; H embedding size of a patch token.

The MLP and the builders by name (``model.build_model``, ``model.build_net``,
``model.width_for_params``) live in :mod:`kals_utils.model`. This module imports only torch and
:mod:`kals_utils.errors`.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import KalsError, check_int

_OUT_ACTS = ("sigmoid", "tanh")


# ----------------------------------------------------------------------------- helpers

def n_params(model: nn.Module) -> int:
    """Number of trainable parameters (works on meta-device models too)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_image_shape(image_shape) -> tuple:
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3:
        raise KalsError(f"image_shape must be (C, H, W), got {image_shape!r}")
    return tuple(check_int(n, v, 1) for n, v in zip(("channels C", "height", "width (pixels)"), shape))


def _check_out_act(out_act: str) -> str:
    if out_act not in _OUT_ACTS:
        raise KalsError(f"unknown output activation {out_act!r}; choose sigmoid ([0,1]) or tanh ([-1,1])")
    return out_act


def _bounded(h: torch.Tensor, out_act: str, dtype: torch.dtype) -> torch.Tensor:
    """The output activation, computed in the input's ``dtype`` (autocast may have left ``h`` in
    bf16/fp16; a float32 input gives a float32 output, a float64 one stays float64)."""
    h = h.to(dtype)
    return torch.sigmoid(h) if out_act == "sigmoid" else torch.tanh(h)


def _pad_to(x: torch.Tensor, multiple: int, mode: str = "replicate") -> tuple:
    """Pad (N, C, H, W) at the bottom/right to multiples of ``multiple``; returns (x, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class _ImageNet(nn.Module):
    """Base: stores the settings, flattens/unflattens and applies the bounded activation."""

    arch = ""

    def __init__(self, image_shape, depth, width, out_act):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        self.dim = math.prod(self.image_shape)
        self.depth = check_int("depth L", depth, 1, " (use depth 1 or more)")
        self.width = check_int("width H", width, 1, " (use width 1 or more)")
        self.out_act = _check_out_act(out_act)

    @property
    def value_range(self) -> tuple:
        return (0.0, 1.0) if self.out_act == "sigmoid" else (-1.0, 1.0)

    @property
    def settings(self) -> dict:
        """Constructor keywords: ``type(net)(**net.settings)`` rebuilds the architecture."""
        return dict(image_shape=self.image_shape, depth=self.depth, width=self.width,
                    out_act=self.out_act, **self._extra_config())

    def _extra_config(self) -> dict:
        return {}

    def _body(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H, W) pre-activation
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise KalsError(f"{type(self).__name__} expects (N, {self.dim}) inputs "
                            f"(image {self.image_shape}), got {tuple(x.shape)}")
        lead = x.shape[:-1]
        h = self._body(x.reshape(-1, *self.image_shape))
        return _bounded(h, self.out_act, x.dtype).reshape(*lead, self.dim)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.settings.items())


# ----------------------------------------------------------------------------- CNN

class ConvNet(_ImageNet):
    """Plain CNN at full resolution: ``(N, D) -> (N, D)``, ``D = C*H*W``.

    L (``depth``) 3x3 conv layers with padding 1 (the image size never changes): the first L-1 have
    H (``width``) channels and a ReLU, the last maps to C channels, then ``out_act``. L=1 is a
    single conv C -> C. The receptive field is (2L+1) x (2L+1) pixels.
    """

    arch = "cnn"

    def __init__(self, *, image_shape, depth, width, out_act="tanh"):
        super().__init__(image_shape, depth, width, out_act)
        c = self.image_shape[0]
        chans = [c] + [self.width] * (self.depth - 1) + [c]
        layers = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(nn.Conv2d(a, b, 3, padding=1))
            if i < self.depth - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def _body(self, x):
        return self.net(x)


# ----------------------------------------------------------------------------- U-Net

def _double_conv(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.Conv2d(b, b, 3, padding=1), nn.ReLU())


class UNet(_ImageNet):
    """U-Net: ``(N, D) -> (N, D)``, ``D = C*H*W``.

    L (``depth``) resolution levels; level i (0 = full resolution) has ``min(H * 2**i, 8H)``
    channels (H = ``width``) and two 3x3 convs + ReLU on the way down and, after a 2x2 transposed
    conv up from level i+1 and concatenation with the skip of level i, two more on the way up. Down
    is 2x2 max-pooling. A 1x1 conv maps to C channels, then ``out_act``. L=1 is two convs + the
    1x1 conv (no pooling).

    Any image size works: the input is replicate-padded to a multiple of 2**(L-1) and the output
    cropped back (28x28 with L=4 runs at 32x32).

    top_skip=False drops the full-resolution skip connection, so every output pixel has to pass
    through the bottleneck; use it if the U-Net learns the identity (chains that never move).
    """

    arch = "unet"

    def __init__(self, *, image_shape, depth, width, out_act="tanh", top_skip=True):
        super().__init__(image_shape, depth, width, out_act)
        self.top_skip = bool(top_skip)
        c = self.image_shape[0]
        ch = [min(self.width * 2 ** i, 8 * self.width) for i in range(self.depth)]
        self.down = nn.ModuleList(_double_conv(c if i == 0 else ch[i - 1], ch[i])
                                  for i in range(self.depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2)
                                 for i in range(self.depth - 1))
        self.up = nn.ModuleList(
            _double_conv(ch[i] * (2 if (i > 0 or self.top_skip) else 1), ch[i])
            for i in range(self.depth - 1))
        self.head = nn.Conv2d(ch[0], c, 1)

    def _extra_config(self):
        return {"top_skip": self.top_skip}

    def _body(self, x):
        x, (h, w) = _pad_to(x, 2 ** (self.depth - 1))
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(self.depth - 1)):
            x = self.ups[i](x)
            skip = skips.pop()
            if i > 0 or self.top_skip:
                x = torch.cat([x, skip.to(x.dtype)], dim=1)
            x = self.up[i](x)
        return self.head(x)[..., :h, :w]


# ----------------------------------------------------------------------------- ViT

def _largest_divisor_at_most(n: int, k: int) -> int:
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


class _Block(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)); x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def attention(self, x):
        n, t, w = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        # written out (not F.scaled_dot_product_attention): its fused CPU/GPU kernels lack
        # forward-mode AD, and with ~50 tokens there is nothing to gain
        att = torch.softmax((q @ k.transpose(-2, -1)) * (w // self.heads) ** -0.5, dim=-1)
        y = (att.to(v.dtype) @ v).transpose(1, 2).reshape(n, t, w)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(_ImageNet):
    """Vision transformer: ``(N, D) -> (N, D)``, ``D = C*H*W``.

    The image is cut into non-overlapping ``patch`` x ``patch`` patches (zero-padded at the
    bottom/right to a multiple of ``patch``, cropped back at the end); each patch is embedded
    linearly into H (``width``) features plus a learned position embedding. L (``depth``) pre-norm
    transformer blocks follow (LayerNorm -> multi-head self-attention -> residual; LayerNorm -> MLP
    with ``mlp_ratio * H`` GELU units -> residual), then a LayerNorm, a linear map of each token back
    to patch*patch*C pixels, and ``out_act``.

    ``heads`` must divide H; if it does not, the largest divisor of H not above ``heads`` is used
    (``net.heads`` holds it). Tokens: ceil(H_img/patch) * ceil(W_img/patch), e.g. 49 for 28x28.
    """

    arch = "transformer"

    def __init__(self, *, image_shape, depth, width, out_act="tanh", patch=4, heads=4, mlp_ratio=2):
        super().__init__(image_shape, depth, width, out_act)
        self.patch = check_int("patch", patch, 1)
        self.heads = _largest_divisor_at_most(self.width, check_int("heads", heads, 1))
        if not (isinstance(mlp_ratio, (int, float)) and mlp_ratio > 0):
            raise KalsError(f"mlp_ratio must be a positive number, got {mlp_ratio!r}")
        self.mlp_ratio = mlp_ratio
        c, h, w = self.image_shape
        self.grid = (-(-h // self.patch), -(-w // self.patch))
        tokens = self.grid[0] * self.grid[1]
        pdim = c * self.patch ** 2
        hidden = max(1, round(mlp_ratio * self.width))
        self.embed = nn.Linear(pdim, self.width)
        self.pos = nn.Parameter(torch.randn(1, tokens, self.width) * 0.02)
        self.blocks = nn.ModuleList(_Block(self.width, self.heads, hidden) for _ in range(self.depth))
        self.norm = nn.LayerNorm(self.width)
        self.unembed = nn.Linear(self.width, pdim)

    def _extra_config(self):
        return {"patch": self.patch, "heads": self.heads, "mlp_ratio": self.mlp_ratio}

    def _body(self, x):
        n, c = x.shape[:2]
        p, (gh, gw) = self.patch, self.grid
        x, (h, w) = _pad_to(x, p, mode="constant")
        # (N, C, gh*p, gw*p) -> (N, gh*gw, C*p*p)
        t = x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(n, gh * gw, c * p * p)
        t = self.embed(t) + self.pos
        for block in self.blocks:
            t = block(t)
        t = self.unembed(self.norm(t))
        x = t.reshape(n, gh, gw, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * p, gw * p)
        return x[..., :h, :w]


# ----------------------------------------------------------------------------- by name

IMAGE_NETS = {"cnn": ConvNet, "unet": UNet, "transformer": ViT}
