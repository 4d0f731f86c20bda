"""The panel's controls, apart from the panel: every control's value (:class:`Settings`), its starting
value (the data set's preset, or the trained run's), the checks a value must pass, the panel's words
for a library message, the device menu and the GIF file name. Plain Python, no widgets."""

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

from .. import pipeline, presets
from ..data import Data
from ..device import DEVICES, pick_device
from ..errors import KalsError
from ..model import ARCHS
from ..recipes import get_recipe
from ..render import GIF_FPS
from ..sample import NOISES, SAMPLERS

FPS_MAX = 100.0         # GIF timing is in hundredths of a second
FILENAME = "kaleidoscope.gif"   # the GIF's name until Sample names it
RECIPE_SAMPLER = "recipe"       # the sampler menu's first entry: whatever the trained recipe samples with
MODEL = ("depth", "width", "arch", "recipe")                     # a change makes the trained model stale
COST = ("depth", "width", "arch", "epochs", "batch_size", "device", "precision")  # a change re-estimates the time
_FLAG_NAMES = {"device": "device", "batch-size": "batch size", "depth": "depth L", "width": "width H",
               "epochs": "epochs", "lr": "learning rate", "seed": "training seed", "arch": "architecture",
               "recipe": "recipe", "chains": "chains", "steps": "steps", "eps": "eps", "noise": "start noise"}
SHOWN = ("status", "warning", "progress", "losses", "busy", "walk", "filename", "saved",
         "basins")   # what observers hear



@dataclass
class Settings:
    """Every control's value: the view writes them (:meth:`Panel.set`), the jobs read them."""

    depth: int
    width: int
    arch: str
    recipe: str
    epochs: int
    lr: float
    batch_size: int          # training rows per Adam step; the data's size means full batch
    seed: int                # training seed
    device: str
    precision: str
    chains: int
    steps: int
    eps: float
    noise: str
    sample_seed: int
    sampler: str = RECIPE_SAMPLER  # "recipe": the recipe's own sampler (sample.SAMPLERS otherwise)
    filename: str = FILENAME
    fps: float = GIF_FPS
    overwrite: bool = False


def settings_for(data: Data, run: Optional[pipeline.Run] = None, **given) -> Settings:
    """The starting values: those ``given`` (None: not given), else L, H, architecture and recipe of
    ``run``, else the preset of ``data``'s data set (L and H always follow ``run``, as the sliders
    show the trained model)."""
    if not isinstance(data, Data):
        raise KalsError(f"the panel needs a kals_utils.data.Data, got {type(data).__name__}; "
                        "load it with kals_utils.points(...) or kals_utils.load_data(...)")
    unknown = sorted(set(given) - {f.name for f in fields(Settings)})
    if unknown:
        raise KalsError(f"the panel has no setting {', '.join(unknown)}; its settings are "
                        f"{', '.join(f.name for f in fields(Settings))}")
    p = presets.preset_for(data.name)
    s = dict(depth=p.depth, width=p.width, arch=presets.ARCH, recipe=p.recipe, epochs=p.epochs, lr=p.lr,
             batch_size=p.batch_size, seed=presets.SEED, device="auto", precision=presets.PRECISION,
             chains=p.chains, steps=p.steps, eps=p.eps, noise=p.noise, sample_seed=None)
    if run is not None:
        c = run.config
        s.update(arch=c.model.arch, recipe=c.recipe)
        given.update(depth=c.depth, width=c.width)
    s.update({k: v for k, v in given.items() if v is not None})
    if s["noise"] not in NOISES:
        raise KalsError(f"unknown start noise {s['noise']!r}; choose uniform or normal")
    if s.get("sampler", RECIPE_SAMPLER) not in (RECIPE_SAMPLER,) + SAMPLERS:
        raise KalsError(f"unknown sampler {s['sampler']!r}; choose {RECIPE_SAMPLER} or one of {', '.join(SAMPLERS)}")
    if s["arch"] not in ARCHS:
        raise KalsError(f"unknown architecture {s['arch']!r}; choose one of {', '.join(ARCHS)}")
    s["recipe"] = get_recipe(s["recipe"]).name
    s["device"] = str(s["device"]).lower()
    pick_device(s["device"])  # a device this machine lacks fails here, naming the device setting
    s["batch_size"] = min(s["batch_size"] or len(data), len(data))
    s["sample_seed"] = s["seed"] if s["sample_seed"] is None else s["sample_seed"]
    return Settings(**s)


def describe(c: dict) -> str:
    return f"L={c['L']}, H={c['H']}, {c['arch']}, {c['recipe']} recipe"


def panel_words(message: str) -> str:
    """A library message in the panel's words: command-line flags become control names
    (``--device auto`` -> ``device auto``); flags in brackets, with no control here, are dropped."""
    message = re.sub(r"\s*\(--[a-z][a-z-]*[^()]*\)", "", message)            # "SUBSET (--subset)"
    message = re.sub(r",\s*--[a-z][a-z-]*(\s+[^\s,;)]+)?(?=[;)])", "", message)  # "(out_act=..., --out-act tanh;"
    return re.sub(r"--([a-z][a-z-]*)", lambda m: _FLAG_NAMES.get(m.group(1), m.group(1).replace("-", " ")), message)


def available_devices() -> list:
    """The device menu: auto and cpu, plus cuda / mps where this machine has them."""
    found = []
    for name in DEVICES:
        try:
            pick_device(name)
            found.append(name)
        except KalsError:
            pass
    return found


def free_name(folder: Path, name: str) -> str:
    """``walk_2.gif`` (or _3, ...) for ``walk.gif``: the first such name not taken in ``folder``."""
    stem, k = name[:-4], 2
    while (folder / f"{stem}_{k}.gif").exists():
        k += 1
    return f"{stem}_{k}.gif"


def gif_target(folder: Path, name: str, *, fps: float, overwrite: bool):
    """(path, existed) of GIF ``name`` in ``folder`` (made if missing), after checking the name and
    ``fps``; an existing file without ``overwrite`` is refused with a free name to use instead."""
    name = name.strip()
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise KalsError(f"GIF file name {name!r} is not a plain file name; type one like 'walk.gif'")
    name += "" if name.lower().endswith(".gif") else ".gif"
    if not (isinstance(fps, (int, float)) and 0 < fps <= FPS_MAX):
        raise KalsError(f"fps must be a number above 0 and at most {FPS_MAX:g}, got {fps!r}")
    path = folder / name
    existed = path.exists()
    if existed and not overwrite:
        raise KalsError(f"{name} already exists in {folder}: tick 'overwrite' to replace it, or change the GIF "
                        f"file name (e.g. {free_name(folder, name)})")
    folder.mkdir(parents=True, exist_ok=True)
    return path, existed
