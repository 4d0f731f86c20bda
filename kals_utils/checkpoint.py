"""Checkpoints: weights (a state dict) + the config needed to rebuild the model and its data.

Saved as a plain dict of tensors, numbers, strings and lists; loaded with
``torch.load(..., weights_only=True)``, so a file carrying pickled objects is refused and runs no
code. Writes are atomic: a temporary file in the same folder, fsync, then ``os.replace``.
"""

import pickle
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .data import dequantize
from .errors import KalsError, cause
from .files import atomic_torch_save
from .model import RunConfig, build_model

FORMAT = "kals-checkpoint"
VERSION = 2          # 2: the net's config nested under "model"
READS = (1, 2)       # formats this kals can load


def _tensors_to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _tensors_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_to_cpu(v) for v in obj)
    return obj


def save_checkpoint(path, model: nn.Module, config: RunConfig, *, train_data: Optional[torch.Tensor] = None,
                    losses=None, train_state: Optional[dict] = None, labels=None) -> Path:
    """Write ``model``'s weights, ``config``, and optionally the training set (N, D) (so sampling and
    evaluation need no data download), the loss history and the resume state. Returns the path."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "state_dict": _tensors_to_cpu(model.state_dict()),
        "losses": [float(v) for v in (losses or [])],
    }
    if train_data is not None:
        payload["train_data"] = _encode_data(train_data.detach().cpu(), config)
    if labels is not None:
        payload["labels"] = torch.as_tensor(labels).cpu()
    if train_state:
        payload["train_state"] = _shared_weights(_tensors_to_cpu(train_state), payload["state_dict"])
    return atomic_torch_save(payload, path)


SAME = "same_as_weights"   # train_state's weight sets stored once, as the checkpoint's own state_dict


def _shared_weights(train_state: dict, state: dict) -> dict:
    """``train_state`` without the weight sets equal to ``state`` (the kept weights are the best ones,
    often the last): named under SAME instead, so a checkpoint holds each set of weights once."""
    same = [k for k in ("best_state_dict", "last_state_dict") if _equal(train_state.get(k), state)]
    if not same:
        return train_state
    return {**{k: v for k, v in train_state.items() if k not in same}, SAME: same}


def _equal(a, b) -> bool:
    return isinstance(a, dict) and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _restore_weights(train_state, state: dict):
    """The inverse of :func:`_shared_weights`: the weight sets named under SAME point at ``state``."""
    if not isinstance(train_state, dict) or SAME not in train_state:
        return train_state
    rest = {k: v for k, v in train_state.items() if k != SAME}
    return {**rest, **{k: state for k in train_state[SAME]}}


def _encode_data(x: torch.Tensor, config: RunConfig):
    """Images are stored as exact uint8 pixels (4x smaller); points as float32."""
    if config.image_shape is not None:
        lo, hi = config.value_range
        q = (x - lo) * (255.0 / (hi - lo))
        if torch.allclose(q, q.round(), atol=1e-3):
            return {"uint8": q.round().clamp(0, 255).to(torch.uint8)}
    return {"float32": x.float()}


def _decode_data(d, config: RunConfig) -> torch.Tensor:
    if "uint8" in d:
        lo, hi = config.value_range
        return dequantize(d["uint8"], config.value_range)
    return d["float32"]


@dataclass
class Checkpoint:
    """A loaded checkpoint: rebuilt ``model`` (eval mode, on ``device``), its ``config``, extras."""

    model: nn.Module
    config: RunConfig
    train_data: Optional[torch.Tensor]
    labels: Optional[torch.Tensor]
    losses: list
    train_state: Optional[dict]


# What torch.load(weights_only=True) raises for a file that is not a readable checkpoint (measured on
# empty, text, image, pickled, truncated and bit-flipped files): anything else is a bug and keeps its traceback.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, LookupError, struct.error, OSError)


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises KalsError for a missing, truncated, foreign or pickled file, or one whose weights do not
    match its config (the message names the field that differs).
    """
    path = Path(path)
    if not path.is_file():
        raise KalsError(f"checkpoint {path} not found; train one first with `python -m kals_utils train ... --out {path}`")
    try:
        with warnings.catch_warnings():  # torch warns about refused globals; the message below says it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as e:
        raise KalsError(f"cannot load {path} ({cause(e)}): {why_unloadable(path, e)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise KalsError(f"{path} is a torch file but not a kals checkpoint (no '{FORMAT}' marker); "
                        "train one with `python -m kals_utils train`")
    version = payload.get("version")
    if version not in READS:
        newer = isinstance(version, int) and version > VERSION
        raise KalsError(f"{path} has checkpoint format {version!r}, this kals reads formats {READS[0]}-{READS[-1]}; "
                        + ("upgrade kals_utils" if newer else "re-train it with this kals"))
    try:
        config = RunConfig.from_dict(payload["config"])
        state = payload["state_dict"]
    except (KeyError, TypeError, ValueError) as e:
        raise KalsError(f"{path} is a damaged kals checkpoint (config: {type(e).__name__} {e}); re-train it") from None
    model = build_model(config.model)
    _check_shapes(model, state, config, path)
    model.load_state_dict(state)
    model.to(device).eval()
    train_data = payload.get("train_data")
    return Checkpoint(model=model, config=config,
                      train_data=None if train_data is None else _decode_data(train_data, config),
                      labels=payload.get("labels"), losses=list(payload.get("losses", [])),
                      train_state=_restore_weights(payload.get("train_state"), state))


MAGIC = {b"GIF8": "a GIF image", b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image",
         b"%PDF": "a PDF file", b"\x93NUMPY": "a NumPy .npy file"}
CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def why_unloadable(path, err: Exception) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in a few words with the fix."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "the file is empty; re-train or copy it again"
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            return f"it is {kind}, not a checkpoint; pass the .pt file that `train --out` wrote"
    if head.startswith(b"PK"):  # torch's zip format
        if isinstance(err, pickle.UnpicklingError) and "GLOBAL" in str(err):
            return ("it carries pickled Python objects, which could run code, so it was refused; "
                    "only load checkpoints written by kals, or from a source you trust")
        return "the file is corrupt or truncated; re-train or copy it again"
    if head[:1] == b"\x80":  # a bare pickle
        if _pickle_has_code(path):
            return ("it is a pickle that carries Python objects, which could run code, so it was refused; "
                    "only load checkpoints written by kals")
        return "it is a plain pickle, not a kals checkpoint"
    try:
        head.decode("utf-8")
        return "it is a text file, not a checkpoint; pass the .pt file that `train --out` wrote"
    except UnicodeDecodeError:
        return "it is not a torch checkpoint file; pass the .pt file that `train --out` wrote"


def _pickle_has_code(path) -> bool:
    import pickletools
    try:
        with open(path, "rb") as f:
            return any(op.name in CODE_OPS for op, _, _ in pickletools.genops(f))
    except (ValueError, EOFError, struct.error, OSError):  # a broken pickle: say what we can without guessing at code
        return False


def _check_shapes(model: nn.Module, state: dict, config: RunConfig, path) -> None:
    want = model.state_dict()
    n_have = len([k for k in state if k.endswith(".weight")])
    n_want = len([k for k in want if k.endswith(".weight")])
    if n_have != n_want:
        raise KalsError(f"checkpoint {path} does not match its config: depth is {config.depth} in the config "
                        f"but the weights have {n_have} {'Linear' if config.model.arch == 'mlp' else 'weight'} layers")
    for k, v in want.items():
        if k not in state:
            raise KalsError(f"checkpoint {path} lacks weight {k!r}; it does not match its config")
        have, need = tuple(state[k].shape), tuple(v.shape)
        if have != need:
            axis = next((i for i, (a, b) in enumerate(zip(have, need)) if a != b), 0)
            field_ = "dim (D)" if need[axis] == config.dim else "width (H)"
            raise KalsError(f"checkpoint {path} does not match its config: {field_} differs (weight {k} has "
                            f"shape {have}, but dim={config.dim}, width={config.width} need {need})")
