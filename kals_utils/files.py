"""Safe file writing: check a target early, write atomically, turn OS errors into one message."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import KalsError


def _existing_ancestor(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def ensure_writable(path, what: str = "file") -> Path:
    """Return ``path`` as a Path if it can be written, else raise KalsError. Missing parent folders
    are fine (they are made when the file is written, so a failed run leaves no empty folders).

    Probes the nearest existing folder with a real temporary file (permission bits alone say nothing
    for root or read-only mounts), so a long run never ends with an unwritable output.
    """
    raw = str(path)
    path = Path(path).expanduser()
    if raw.endswith(("/", os.sep)) or path.is_dir():
        raise KalsError(f"{raw} is a folder; give a {what} name, e.g. {path / ('out' + (path.suffix or ''))}")
    folder = _existing_ancestor(path.parent)
    if not folder.is_dir():
        raise KalsError(f"cannot write {path}: {folder} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".kals-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise KalsError(f"cannot write {path}: folder {folder} is not writable ({e.strerror}); "
                        "choose another path") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success rename it onto ``path`` (atomic), on any
    failure remove it and leave an existing ``path`` untouched. OS errors become KalsError."""
    path = ensure_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KalsError(f"cannot create folder {path.parent}: {e.strerror or e}") from None
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except OSError as e:
        raise KalsError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_torch_save(obj, path) -> Path:
    """``torch.save`` to ``path`` via a temp file + rename: never leaves a truncated file behind."""
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path).expanduser()


def project_dir() -> Path:
    """The kals checkout this package lives in (its ``notebooks/`` beside ``kals_utils/``), else
    ``~/kals`` for an installed package: where data and GIFs go by default, whatever the working
    directory Jupyter or papermill started in."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "notebooks").is_dir() else Path.home() / "kals"


DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"   # Debian's dataset-fashion-mnist: read where it lies


def data_dir(path="") -> Path:
    """``path`` if given, else ``$KALS_DATA``, else ``<project>/data``."""
    return Path(path or os.environ.get("KALS_DATA") or project_dir() / "data").expanduser()


def out_dir(path="") -> Path:
    """``path`` if given, else ``$KALS_OUT``, else ``<project>/saved_samples``."""
    return Path(path or os.environ.get("KALS_OUT") or project_dir() / "saved_samples").expanduser()
