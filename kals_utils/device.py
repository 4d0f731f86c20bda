"""Pick the torch device: ``auto`` prefers CUDA, then Apple's MPS, then the CPU."""

import os
from contextlib import contextmanager

import torch

from .errors import KalsError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """Return a usable ``torch.device`` for ``name`` (auto|cpu|cuda|cuda:N|mps).

    Raises KalsError if the requested device is not available on this machine.
    """
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise KalsError(f"device {name!r} is not available here (no CUDA GPU); choose device 'auto' or 'cpu'")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise KalsError(
                f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    if name == "mps":
        if not _mps_available():
            raise KalsError("device 'mps' is not available here (no Apple GPU); choose device 'auto' or 'cpu'")
        return torch.device("mps")
    raise KalsError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")


MEMORY_SHARE = 0.8  # refuse work whose estimate exceeds this share of the free memory


def free_memory(device) -> int:
    """Bytes this process can still allocate on ``device``: free GPU memory on CUDA, else the
    available RAM (Linux: MemAvailable, capped by a cgroup limit; elsewhere: free physical pages)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    free = None
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        free = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 1 << 62  # unknown: do not refuse
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, free)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def check_memory(need: int, device, what: str, fix: str) -> None:
    """Raise KalsError before allocating if ``need`` bytes exceed MEMORY_SHARE of the free memory."""
    free = free_memory(device)
    if need > MEMORY_SHARE * free:
        raise KalsError(f"{what} needs about {gib(need)} but only {gib(free)} is free on "
                        f"{torch.device(device).type}; {fix}")


SMALL_MODEL = 200_000  # weights; below this one CPU thread is as fast as several, and never thrashes


@contextmanager
def threads_for(model):
    """Run a tiny CPU model on one thread, then restore the thread count.

    A few-thousand-weight net gains nothing from a second thread, and on a loaded machine the
    threads' spin-waiting made the 1D/2D nets 5-40x slower (measured on a 2-core Xeon).
    Big models and GPU models are left alone.
    """
    p = next(model.parameters(), None)
    small = p is not None and p.device.type == "cpu" and sum(q.numel() for q in model.parameters()) < SMALL_MODEL
    before = torch.get_num_threads()
    if small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small and before > 1:
            torch.set_num_threads(before)
