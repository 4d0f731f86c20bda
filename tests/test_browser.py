"""The panel in a real browser: JupyterLab + headless Debian Chromium (Playwright), never skipped.

One JupyterLab server (KALS_SMOKE=1, the fake MNIST files of tests/fakedata.py as KALS_DATA) and one
Chromium serve three notebooks in turn, each a copy in the server's root (the repo stays untouched),
each run with Run All in a page and a workspace of its own, the previous notebook's kernel shut down.

``02_synthetic_2d`` is clicked through like a user would: drag the depth slider, check that the
recipe menu disables the start noise, start a long training and watch the progress line ("epoch
N / total", elapsed, left) and the loss curve update live, press Stop, type a file name, Sample,
drag the frame slider (the frame image's bytes must change), Export (the typed name is kept and
used), download the GIF through the panel's link, and see a second Export refused until the
"overwrite" box is ticked. ``01_synthetic_1d`` and ``03_mnist`` are sampled. A screenshot of each
panel goes to ``test-artifacts/browser_panel_<notebook>.png``.
"""

import json
import re
import time
from pathlib import Path

import nbformat
import pytest

import fakedata
from browser_jupyter import (ARTIFACTS, BLOB_HASH_JS, KERNEL_STATE_JS, REPO, chromium_page, drag_slider,
                             jupyter_lab, require_chromium, wait_for)
from kals_utils import book

NB_DIR = REPO / "notebooks"
NOTEBOOK = NB_DIR / "02_synthetic_2d.ipynb"
RUN_ALL_DONE_JS = f"""() => document.querySelectorAll('.jp-InputArea-prompt').length &&
  !Array.from(document.querySelectorAll('.jp-InputArea-prompt')).some(p => p.innerText.includes('*'))
  ? ({KERNEL_STATE_JS})() : 'cells pending'"""
ERRORS_JS = """() => Array.from(document.querySelectorAll(
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"], ' +
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
  .map(e => e.innerText).filter(t => /Traceback|Error:/.test(t))"""
PROGRESS = re.compile(r"epoch (\d+) / (\d+) · \d+:\d\d(?::\d\d)? elapsed · (~\d+:\d\d(?::\d\d)? left|…)")
TYPED_NAME = "my_walk.gif"


def copy_notebook(src: Path, root: Path) -> str:
    """Copy ``src`` into the server root; check it names its kernel (else JupyterLab asks)."""
    if not src.is_file():
        pytest.fail(f"{src} is missing; the browser test runs the panel in that notebook")
    meta = json.loads(src.read_text())["metadata"]
    assert meta.get("kernelspec", {}).get("name"), f"{src.name} has no kernelspec: JupyterLab would ask for one"
    root.mkdir(parents=True, exist_ok=True)
    # as its author wrote it: an executed notebook's outputs and injected settings removed
    nbformat.write(book.clean(nbformat.read(src, as_version=4)), root / src.name)
    return src.name


class Session:
    """One JupyterLab server and one Chromium for the module; ``open`` runs a notebook in a new page."""

    def __init__(self, lab, page, out: Path):
        self.lab, self.page, self.out, self.t0 = lab, page, out, time.monotonic()
        self.seconds: dict = {}

    def lap(self, what: str) -> None:
        self.seconds[what] = round(time.monotonic() - self.t0, 1)

    def open(self, notebook: Path):
        """Run all cells of ``notebook`` in a fresh page; returns (page, the last panel's locator)."""
        name = copy_notebook(notebook, self.lab.root)
        self.lab.shutdown_kernels()  # the previous notebook's kernel: not needed any more
        old, self.page = self.page, self.page.context.new_page()
        old.close()  # (no beforeunload prompt: closing never runs it)
        page = self.page
        page.set_default_timeout(30_000)
        page.goto(self.lab.lab_url(name, workspace=notebook.stem.replace("_", "-")), wait_until="domcontentloaded")
        # JupyterLab's idle indicator lies before a kernel exists: ask the app for its session
        wait_for(page, KERNEL_STATE_JS, "connected/idle", 90, f"the kernel of {name} to be idle")
        self.lap(f"{notebook.stem}: kernel idle")
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        panel = page.locator(".kals-panel").last
        panel.wait_for(state="attached", timeout=240_000)
        wait_for(page, RUN_ALL_DONE_JS, "connected/idle", 240, f"Run All of {name} to finish")
        errors = page.evaluate(ERRORS_JS)
        assert not errors, f"a cell of {name} failed: {errors[0][-2000:]}"
        self.lap(f"{notebook.stem}: run all done")
        panel.scroll_into_view_if_needed()
        return page, panel

    def sample(self, page, panel) -> str:
        """Press Sample and wait for the walk's first frame; returns the status line."""
        panel.locator(".kals-sample").click()
        text = wait_for(page, panel.locator(".kals-status").inner_text,
                        lambda s: s.startswith("sampled") or "rror" in s or "stale" in s, 120, "sampling")
        assert text.startswith("sampled"), text
        wait_for(page, lambda: panel.locator("img.kals-frame").evaluate("img => img.naturalWidth"),
                 lambda w: w > 0, 20, "the frame image to show")
        return text

    def screenshot(self, panel, notebook: Path) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"browser_panel_{notebook.stem}.png"
        panel.page.mouse.move(0, 0)  # no hover tooltip over the panel
        panel.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        self.lap(f"{notebook.stem}: screenshot")
        return path


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    out = tmp / "out"
    out.mkdir()
    data = tmp / "data"
    fakedata.write_mnist(data)  # 03_mnist reads MNIST IDX files from KALS_DATA
    (tmp / "root").mkdir()
    # one torch thread: tiny nets gain nothing from more, and lose a lot on a busy 2-core machine
    env = {"KALS_SMOKE": "1", "KALS_OUT": str(out), "KALS_DATA": str(data), "KALS_SKIP_MD5": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with jupyter_lab(tmp / "root", env) as lab, chromium_page(height=1500) as page:
        s = Session(lab, page, out)
        yield s
        s.lap("done")
    print("\nbrowser test timeline (s):", s.seconds)


def _readout(panel, cls: str) -> str:
    return panel.locator(f".{cls} .widget-readout").inner_text().strip()


def _long_training_stopped(page, panel) -> str:
    """Start 100,000 epochs, see the progress line and the loss curve move, press Stop."""
    epochs = panel.locator(".kals-epochs input")
    epochs.fill("100000")
    epochs.press("Enter")
    loss = panel.locator("img.kals-loss")
    loss0 = loss.evaluate(BLOB_HASH_JS)  # the curve of the notebook's run (or none)
    panel.locator(".kals-train").click()
    line = panel.locator(".kals-progress-text")

    def progress():
        m = PROGRESS.fullmatch(line.inner_text().strip())
        return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else (0, 0, line.inner_text())
    done, total, left = wait_for(page, progress, lambda p: p[0] >= 20, 60,
                                 "the progress line to pass epoch 20 while training runs")
    assert total == 100_000 and left.endswith("left"), (done, total, left)
    wait_for(page, lambda: loss.evaluate(BLOB_HASH_JS), lambda h: h and h != loss0, 20,
             "the live loss curve to be redrawn while training runs")
    assert panel.locator(".kals-sample").is_disabled()
    panel.locator(".kals-stop").click()
    text = wait_for(page, panel.locator(".kals-status").inner_text,
                    lambda s: s.startswith("trained") or "rror" in s, 60, "training to stop")
    assert "interrupted" in text, text
    assert re.fullmatch(r"epoch \d+ / 100000 · \d+:\d\d elapsed · interrupted", line.inner_text().strip()), \
        line.inner_text()
    return text


def _export(page, panel) -> str:
    """Press Export GIF; returns the new status line (each export's line differs from the one before)."""
    status = panel.locator(".kals-status")
    before = status.inner_text()
    panel.locator(".kals-export").click()
    return wait_for(page, status.inner_text, lambda s: s != before, 60, "the GIF export's status line")


@pytest.mark.browser
def test_browser_panel_in_notebook_02(session):
    page, panel = session.open(NOTEBOOK)
    # 1. depth: drag the slider handle; the readout follows
    depth0 = int(_readout(panel, "kals-depth"))
    drag_slider(page, panel.locator(".kals-depth"), 0.15)
    depth = int(wait_for(page, lambda: _readout(panel, "kals-depth"), lambda v: v != str(depth0), 10,
                         "the depth readout to change"))
    assert depth != depth0
    # 2. 2D points: the architecture menu is off; the improved recipe turns the start noise off
    assert panel.locator(".kals-arch select").is_disabled()
    noise = panel.locator(".kals-noise button").first
    assert noise.is_enabled()
    panel.locator(".kals-recipe select").select_option("improved")
    wait_for(page, noise.is_disabled, True, 10, "the start noise to be disabled by the improved recipe")
    panel.locator(".kals-recipe select").select_option("paper")
    wait_for(page, noise.is_enabled, True, 10, "the start noise to be enabled again")

    # 3. a long training, stopped from the browser once the progress line and loss curve are live
    text = _long_training_stopped(page, panel)
    assert text.startswith(f"trained L={depth}, H="), text
    session.lap("02: trained and stopped")

    # 4. type a file name, then sample: the name stays; scrub: the frame image's bytes change
    name_box = panel.locator(".kals-filename input")
    name_box.fill(TYPED_NAME)
    session.sample(page, panel)
    assert name_box.input_value() == TYPED_NAME
    frame = panel.locator("img.kals-frame")
    first = frame.evaluate(BLOB_HASH_JS)
    drag_slider(page, panel.locator(".kals-scrubber"), 1.0)
    wait_for(page, lambda: _readout(panel, "kals-scrubber"), lambda v: v != "0", 10, "the frame slider to move")
    last = wait_for(page, lambda: frame.evaluate(BLOB_HASH_JS), lambda h: h != first, 10,
                    "the frame image's bytes to change")
    assert first and last and first != last
    session.lap("02: sampled and scrubbed")

    # 5. export under the typed name; download it through the panel's link
    text = _export(page, panel)
    assert text.startswith("wrote") and text.endswith(TYPED_NAME), text
    assert name_box.input_value() == TYPED_NAME
    gif = session.out / TYPED_NAME
    assert gif.is_file()
    link = panel.locator(".kals-download a")
    assert link.get_attribute("download") == TYPED_NAME
    assert link.get_attribute("href").startswith("data:image/gif;base64,")
    with page.expect_download() as dl:
        link.click()
    assert dl.value.suggested_filename == TYPED_NAME
    assert Path(dl.value.path()).read_bytes() == gif.read_bytes()

    # 6. the same name again: refused until "overwrite" is ticked
    text = _export(page, panel)
    assert "already exists" in text and "'overwrite'" in text, text
    panel.locator(".kals-overwrite input").check()
    text = _export(page, panel)
    assert text.startswith("wrote") and text.endswith(TYPED_NAME), text
    assert "replaced the old file" in panel.locator(".kals-saved").inner_text()
    assert not re.search(r"(?<![\w-])--[a-z]", panel.inner_text())  # the panel speaks of controls, never CLI flags
    session.screenshot(panel, NOTEBOOK)


@pytest.mark.browser
def test_browser_panel_in_notebook_01(session):
    notebook = NB_DIR / "01_synthetic_1d.ipynb"
    page, panel = session.open(notebook)
    assert session.sample(page, panel).startswith("sampled 10 chains x 8 steps")
    assert panel.locator(".kals-filename input").input_value() == "points1d_L7_H10_c10_T8_eps0_normal.gif"
    session.screenshot(panel, notebook)


@pytest.mark.browser
def test_browser_panel_in_notebook_03(session):
    notebook = NB_DIR / "03_mnist.ipynb"
    page, panel = session.open(notebook)
    assert panel.locator(".kals-arch select").is_enabled()  # images: every architecture can be picked
    assert session.sample(page, panel).startswith("sampled 16 chains x 20 steps")
    assert panel.locator("img.kals-frame").evaluate("img => img.naturalWidth") > 300  # the 8-wide grid
    session.screenshot(panel, notebook)
