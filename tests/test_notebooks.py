"""The notebooks: committed clean, thin, and each runs top to bottom (SMOKE on) on the real
loader code paths — MNIST from IDX files, CIFAR-10 from batch pickles, faces from a folder of JPEGs,
all written in the real formats by tests/fakedata.py — in the `kals` Jupyter kernel."""

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fakedata  # noqa: E402
from kals_utils import book  # noqa: E402

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["01_synthetic_1d", "02_synthetic_2d", "03_mnist", "04_cifar_dogs", "05_celeba", "06_architectures",
             "07_versus_diffusion"]
# The knobs a user turns, in every notebook's parameters cell: the walk, the seed, the device, SMOKE and
# the data and output folders; and each notebook's own (the paper's net and schedule in 01-05).
PARAMS = ("SEED", "DEVICE", "SMOKE", "DATA_ROOT", "OUT_DIR", "CHAINS", "STEPS", "EPS", "NOISE")
PAPER_NET = ("DEPTH", "WIDTH", "EPOCHS", "LR", "BATCH_SIZE")
IMAGE_NET = ("DEPTH", "WIDTH", "UPDATES", "LR", "BATCH_SIZE")   # 03-05 count their budget in Adam updates
OWN_PARAMS = {"01_synthetic_1d": PAPER_NET + ("POINTS",), "02_synthetic_2d": PAPER_NET + ("POINTS",),
              "03_mnist": IMAGE_NET + ("DATASET", "SUBSET", "RECIPE", "QUICK"),
              "04_cifar_dogs": IMAGE_NET + ("DATASET", "SUBSET", "RECIPE", "QUICK"),
              "05_celeba": IMAGE_NET + ("DATASET", "SUBSET", "RECIPE", "QUICK"),
              "06_architectures": ("DATASET", "ARCHS", "TARGET_PARAMS", "EPOCHS", "LR", "BATCH_SIZE", "SEEDS"),
              "07_versus_diffusion": ("DATASET", "FAMILIES", "BUDGETS", "SEEDS", "N_TRAIN", "N_SAMPLES")}
# A notebook a reader can take in (issue #33): a short opening, a short parameters cell, and no code line
# wider than the site's code cells show (tests/test_docs.py checks those in the browser).
MAX_FIRST_CELL = 3        # lines of the first code cell: %matplotlib inline and one or two imports
MAX_PARAMETERS = 20       # lines of the parameters cell, one knob (or a pair, DEPTH, WIDTH) a line
MAX_COLUMNS = 88          # characters of any code line, comments included
# (GIF name prefix, papermill parameters, text a cell must print)
RUNS = {
    "01_synthetic_1d": ("points1d_L7_H10_c10_T8_eps0_normal", {}, "2/2 training points reproduced"),
    "02_synthetic_2d": ("points2d_L7_H50_c100_T6_eps0_normal", {}, " d     n  corner loss"),
    "03_mnist": ("mnist_L10_H64_c16_T20_eps0.01_data", {}, "mnist: 64 images of shape (1, 28, 28)"),
    "04_cifar_dogs": ("cifar-dogs_L10_H64_c16_T20_eps0.01_data", {"DATASET": "cifar-dogs"}, "classes [5]"),
    "05_celeba": ("folder-faces_L10_H64_c16_T20_eps0.01_data", {"DATASET": "folder:{root}/faces"},
                  "images of shape (3, 32, 32)"),
    # fake MNIST (the IDX code path); every architecture at ~5000 weights, one GIF each
    "06_architectures": ("mnist_L4_H3_c16_T10_eps0.01_uniform_mlp", {"DATASET": "mnist"}, "transformer L=4 H=11"),
    # fake MNIST; every family (U-Net and MLP DDPMs via diffusers, kals improved and paper) at SMOKE size
    "07_versus_diffusion": ("mnist_L3_H32_c16_T20_eps0.01_data_versus", {"DATASET": "mnist"}, "mnist: 64 images"),
}


def load(name):
    """The notebook as its author wrote it: outputs and papermill-injected settings of an executed
    notebook (``python -m kals_utils.book execute``) removed (tests/test_book.py checks those)."""
    return book.clean(nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_five_notebooks_exist():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean_and_thin(name):
    nb = load(name)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec == {"name": "kals", "display_name": "Python (kals)", "language": "python"}
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    raw = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    if not raw.metadata.get("kals", {}).get("executed"):  # outputs only from `python -m kals_utils.book execute`
        for c in code_cells(raw):
            assert c.outputs == [] and c.execution_count is None, f"{name}: strip the outputs before committing"
    assert any("%matplotlib inline" in c.source for c in code_cells(nb)[:2])
    tagged = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    names = book.parameter_names(nb)
    assert set(PARAMS + OWN_PARAMS[name]) <= names, set(PARAMS + OWN_PARAMS[name]) - names
    assert "SMOKE = kals.smoke()" in tagged[0].source  # $KALS_SMOKE=1 (CI) turns it on
    after = code_cells(nb)[code_cells(nb).index(tagged[0]) + 1].source
    assert "if SMOKE" in after or "ImageNotebook.from_parameters(globals())" in after  # SMOKE applied next
    for c in code_cells(nb):  # thin: calls into kals_utils, no loops or functions of its own
        src = "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith("%"))
        bad = [type(n).__name__ for n in ast.walk(ast.parse(src))
               if isinstance(n, (ast.For, ast.While, ast.FunctionDef, ast.ClassDef, ast.Lambda, ast.comprehension))]
        assert not bad, f"{name}: {bad} in a cell — put that code into kals_utils"
    last = code_cells(nb)[-1].source
    assert ("KaleidoscopePanel(data, run=run" in last or "nb.panel()" in last) and last.rstrip().endswith("panel")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_opens_short_and_fits_the_page(name):
    """The first code cell is ``%matplotlib inline`` and one or two imports of kals_utils; the parameters
    cell holds the knobs (one-line comments, no imports); no code line is wider than MAX_COLUMNS."""
    code = code_cells(load(name))
    first = code[0].source.strip().splitlines()
    assert len(first) <= MAX_FIRST_CELL, f"{name}: the first code cell has {len(first)} lines"
    body = ast.parse("\n".join(line for line in first if not line.startswith("%"))).body
    assert body and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body), first
    assert all((n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).startswith("kals_utils")
               for n in body), f"{name}: the opening imports kals_utils only"
    params = next(c.source for c in code if "parameters" in c.metadata.get("tags", []))
    assert len(params.strip().splitlines()) <= MAX_PARAMETERS, f"{name}: {len(params.splitlines())} lines"
    assert not [n for n in ast.parse(params).body if isinstance(n, (ast.Import, ast.ImportFrom))], \
        f"{name}: the parameters cell imports; the first cell does"
    # papermill reads a parameter from a line with one "=" only; a second one (in a comment) loses the line
    # ("Unable to parse line ...", then "Passed unknown parameter" when the book sets it)
    unread = [line for line in params.splitlines() if line.count("=") > 1]
    assert not unread, f"{name}: papermill cannot read {unread}"
    wide = [f"cell {i}: {len(line)} chars: {line}" for i, c in enumerate(code) for line in c.source.splitlines()
            if len(line) > MAX_COLUMNS]
    assert not wide, f"{name}: " + "; ".join(wide[:3])


def test_image_notebooks_share_no_code_of_their_own():
    """04 and 05 keep their names, prose and presets; their steps are calls into kals_utils.faces.walkthrough."""
    cells = {name: [c.source for c in code_cells(load(name)) if "parameters" not in c.metadata.get("tags", [])]
             for name in ("04_cifar_dogs", "05_celeba")}
    for name, sources in cells.items():
        body = [s for s in sources[1:] if s.strip()]
        assert all(len(s.strip().splitlines()) <= 2 for s in body), f"{name}: a step longer than a call"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return fakedata.write_all(tmp_path_factory.mktemp("nbdata"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_smoke(name, data_root, tmp_path, monkeypatch):
    import papermill
    from kals_utils.render import read_gif
    prefix, params, must_print = RUNS[name]
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("KALS_SMOKE", "1")
    monkeypatch.setenv("KALS_DATA", str(data_root))
    monkeypatch.setenv("KALS_OUT", str(out))
    monkeypatch.setenv("KALS_SKIP_MD5", "1")   # the fake CIFAR/CelebA files cannot match torchvision's MD5s
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny nets: one thread is fastest and shares the 2 cores
    monkeypatch.setenv("MPLBACKEND", "agg")
    params = {k: v.format(root=data_root) for k, v in params.items()}
    executed, source = tmp_path / f"{name}.ipynb", tmp_path / f"source_{name}.ipynb"
    nbformat.write(load(name), source)  # the committed notebook, without an executed run's outputs and settings
    papermill.execute_notebook(str(source), str(executed), parameters=params, kernel_name="kals",
                               cwd=str(NB_DIR), progress_bar=False, log_output=False)  # raises if a cell fails
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for c in code_cells(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert must_print in text
    assert not re.search(r"Traceback|Error:", text), text[-2000:]
    gifs = sorted(out.glob("*.gif"))
    assert [g.name for g in gifs if g.name.endswith(f"{prefix}.gif")], [g.name for g in gifs]
    for g in gifs:
        frames = read_gif(g)
        assert frames.ndim == 4 and len(frames) >= 2 and frames.std() > 0
    panel = code_cells(nb)[-1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in panel), \
        "the last cell shows the KaleidoscopePanel"
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images >= 4


def test_notebook_from_the_repository_root_writes_only_inside_it(tmp_path, monkeypatch):
    """papermill started in the repository root (not in notebooks/) with no KALS_* variables: the
    GIFs go to <repo>/saved_samples, and nothing is written beside the repository."""
    import papermill
    root = NB_DIR.parent
    for var in ("KALS_DATA", "KALS_OUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KALS_SMOKE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "agg")
    outside_before = sorted(p.name for p in root.parent.iterdir())
    gifs_before = set((root / "saved_samples").glob("*.gif"))
    monkeypatch.chdir(root)
    try:
        source = NB_DIR / "source_01.ipynb"  # the committed notebook without outputs, beside it (removed below)
        nbformat.write(load("01_synthetic_1d"), source)
        papermill.execute_notebook("notebooks/source_01.ipynb", str(tmp_path / "out.ipynb"), kernel_name="kals",
                                   progress_bar=False, log_output=False)
        new = set((root / "saved_samples").glob("*.gif")) - gifs_before
        assert [g.name for g in new] == ["points1d_L7_H10_c10_T8_eps0_normal.gif"]
        assert sorted(p.name for p in root.parent.iterdir()) == outside_before
    finally:
        (NB_DIR / "source_01.ipynb").unlink(missing_ok=True)
        for g in set((root / "saved_samples").glob("*.gif")) - gifs_before:
            g.unlink()
