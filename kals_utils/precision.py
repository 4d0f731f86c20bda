"""Numeric precision of training and sampling: ``fp32`` (default), ``bf16`` or ``auto``.

``bf16`` is mixed precision: the matrix multiplies run in bfloat16 under ``torch.autocast``, while the
weights (the "master" copy Adam updates), the Adam state, the loss (the MSE is computed on
``f(x).float()``) and the sampling state stay float32. On a CPU with AVX512-BF16 / AMX (e.g. Intel
Sapphire Rapids and later, AMD Zen 4 and later) or a CUDA GPU of compute capability 8.0+ (A100,
RTX 30xx and later) a bf16 matrix multiply is several times faster than fp32.

Cost of bf16: f's output is rounded to 8 significant bits (a step of 2^-8 relative, about 0.004
near |y| = 1): below the 1/255 step of a uint8 frame, but it puts a floor of about 1e-6 under the
training MSE.

``auto`` picks bf16 only where it is native (:func:`bf16_native`) and the net is large enough that
the matrix multiplies dominate a step (:data:`AUTO_BF16_MIN_WEIGHTS`); everywhere else fp32. ``bf16``
asked for where it is not native runs, emulated and slower: :func:`precision_note` is the one line
train_run and sample_run print (the CLI, notebooks) and the panel shows.
"""

import contextlib
import functools
import platform

import torch

from .errors import KalsError

PRECISIONS = ("fp32", "bf16", "auto")

# bf16 pays once matrix multiplies dominate a step. Measured (2-core AVX512-BF16/AMX Xeon, one thread,
# fp32 / bf16 time of a training step, batch 1000, D=784 L=10): H=32 (59k weights) 1.1x, H=64 (134k)
# 1.0-1.8x, H=128 (334k) 1.8x, H=500 (2.8M) 2.5x; D=2 L=7 H=50 (13k) 0.75x (slower); the 2.8M net
# at batch 100 still 1.2-1.4x. Sampling (1000 chains) breaks even near 200k weights.
AUTO_BF16_MIN_WEIGHTS = 200_000


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty elsewhere or if unreadable."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _cpu_bf16_native() -> bool:
    flags = _cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    # no /proc/cpuinfo (or no flag line): ask torch; "AVX512_BF16"/"AMX" are not reported by every build
    try:
        cap = str(torch.backends.cpu.get_cpu_capability()).upper()
    except Exception:  # noqa: BLE001 - old torch or an odd build: assume no
        return False
    return "BF16" in cap or "AMX" in cap


def bf16_native(device) -> bool:
    """True if ``device`` multiplies bfloat16 matrices in hardware (much faster than fp32).

    CPU: AVX512-BF16 or AMX-BF16 (Linux: /proc/cpuinfo flags; elsewhere torch's reported capability,
    so Apple Silicon and other CPUs answer False). CUDA: compute capability >= 8.0. MPS: False —
    recent macOS (14+) runs bf16 on Apple GPUs, but not faster than fp32, so ``auto`` keeps fp32.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_bf16_native()
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return False


def bf16_supported(device) -> bool:
    """True if ``device`` can run bf16 at all (maybe emulated, i.e. slowly): every CPU, CUDA GPUs that
    torch says support it, MPS on macOS 14+."""
    device = torch.device(device)
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "mps":
        try:
            torch.ones(2, device=device, dtype=torch.bfloat16).sum().item()
            return True
        except (RuntimeError, TypeError):
            return False
    return False


def resolve_precision(name: str, *, device, n_weights: int) -> str:
    """Turn a user's precision choice into ``"fp32"`` or ``"bf16"`` for a net of ``n_weights`` on ``device``.

    ``auto``: bf16 where :func:`bf16_native` and ``n_weights >= AUTO_BF16_MIN_WEIGHTS``, else fp32.
    ``bf16`` on a device that cannot run bf16 at all raises KalsError; an unknown name too.
    """
    key = str(name).lower() if name is not None else "fp32"
    if key not in PRECISIONS:
        raise KalsError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if key == "auto":
        return "bf16" if bf16_native(device) and int(n_weights) >= AUTO_BF16_MIN_WEIGHTS else "fp32"
    if key == "bf16" and not bf16_supported(device):
        raise KalsError(f"precision 'bf16' is not available on device {device} (this GPU/OS has no bfloat16); "
                        "choose precision fp32 or auto")
    return key


_NOT_NATIVE = {"cpu": "this CPU has no AVX512-BF16 or AMX", "cuda": "this GPU's compute capability is below 8.0"}


def precision_note(name: str, device) -> str:
    """One line for whoever asked for ``bf16`` on a device that runs it but not natively (:func:`bf16_native`):
    it will be emulated and slower than fp32, and ``auto`` picks fp32 here. '' for any other choice
    (``auto`` and ``fp32`` need no word; an unknown name is :func:`resolve_precision`'s error)."""
    device = torch.device(device)
    if str(name).lower() != "bf16" or bf16_native(device) or not bf16_supported(device):
        return ""
    why = _NOT_NATIVE.get(device.type, f"no native bf16 on {device.type}")
    return (f"note: precision bf16 will be emulated on {device.type} ({why}), so training and sampling run slower "
            "than in fp32; precision auto picks fp32 here")


def autocast(precision: str, device):
    """Context manager: ``torch.autocast(<device type>, dtype=torch.bfloat16)`` for ``bf16``, nothing
    for ``fp32``. Inside it, Linear layers run in bf16 and return bf16 tensors: call ``.float()``
    on f's output before a loss or before adding it to an fp32 state."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise KalsError(f"precision must be resolved to 'fp32' or 'bf16' first (got {precision!r}); "
                        "use resolve_precision")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def say_precision_note(name: str, device, note) -> None:
    """Pass :func:`precision_note` to ``note`` (a callable such as print; None: say nothing), if there is one."""
    text = precision_note(name, device) if note is not None else ""
    if text:
        note(text)
