"""The panel in a real browser: JupyterLab + headless Debian Chromium (Playwright), never skipped.

Opens a copy of ``notebooks/02_synthetic_2d.ipynb`` (the repo stays untouched), runs all cells with
KALS_SMOKE=1, then clicks through the panel like a user: drags the depth slider, starts a long
training, watches the progress bar and loss curve update live, presses Stop, samples, drags the
frame slider (the frame image's bytes must change) and exports a GIF. Saves a screenshot of the
panel under ``test-artifacts/``.
"""

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from browser_jupyter import (ARTIFACTS, BLOB_HASH_JS, KERNEL_STATE_JS, REPO, chromium_page, drag_slider,
                             jupyter_lab, require_chromium, wait_for)

NOTEBOOK = REPO / "notebooks" / "02_synthetic_2d.ipynb"
RUN_ALL_DONE_JS = f"""() => document.querySelectorAll('.jp-InputArea-prompt').length &&
  !Array.from(document.querySelectorAll('.jp-InputArea-prompt')).some(p => p.innerText.includes('*'))
  ? ({KERNEL_STATE_JS})() : 'cells pending'"""
ERRORS_JS = """() => Array.from(document.querySelectorAll(
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"], ' +
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
  .map(e => e.innerText).filter(t => /Traceback|Error:/.test(t))"""


def copy_notebook(src: Path, root: Path) -> str:
    """Copy ``src`` into the server root; check it names its kernel (else JupyterLab asks)."""
    if not src.is_file():
        pytest.fail(f"{src} is missing; the browser test runs the panel in that notebook")
    meta = json.loads(src.read_text())["metadata"]
    assert meta.get("kernelspec", {}).get("name"), f"{src.name} has no kernelspec: JupyterLab would ask for one"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, root / src.name)
    return src.name


def panel_in_browser(notebook: Path, tmp: Path, shot: str) -> dict:
    """Run ``notebook`` in JupyterLab and click through its (last) panel; returns what was seen."""
    require_chromium()
    out = tmp / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = copy_notebook(notebook, tmp / "root")
    # one torch thread: tiny nets gain nothing from more, and lose a lot on a busy 2-core machine
    env = {"KALS_SMOKE": "1", "KALS_OUT": str(out), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.monotonic()
    seen = {"seconds": {}}
    lap = lambda what: seen["seconds"].setdefault(what, round(time.monotonic() - t0, 1))  # noqa: E731
    with jupyter_lab(tmp / "root", env) as lab, chromium_page() as page:
        page.set_default_timeout(30_000)
        page.goto(lab.lab_url(name), wait_until="domcontentloaded")
        # JupyterLab's idle indicator lies before a kernel exists: ask the app for its session
        wait_for(page, KERNEL_STATE_JS, "connected/idle", 90, "the notebook's kernel to be idle")
        lap("kernel idle")
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        panel = page.locator(".kals-panel").last
        panel.wait_for(state="attached", timeout=240_000)
        wait_for(page, RUN_ALL_DONE_JS, "connected/idle", 240, "Run All to finish")
        errors = page.evaluate(ERRORS_JS)
        assert not errors, f"a notebook cell failed: {errors[0][-2000:]}"
        lap("run all done")
        panel.scroll_into_view_if_needed()
        status = panel.locator(".kals-status")
        readout = lambda cls: panel.locator(f".{cls} .widget-readout").inner_text().strip()  # noqa: E731

        # 1. depth: drag the slider handle; the readout follows
        depth0 = int(readout("kals-depth"))
        drag_slider(page, panel.locator(".kals-depth"), 0.15)
        depth = int(wait_for(page, lambda: readout("kals-depth"), lambda v: v != str(depth0), 10,
                             "the depth readout to change"))
        seen["depth"] = (depth0, depth)

        # 2. a long training, stopped from the browser once the progress bar and loss curve are live
        epochs = panel.locator(".kals-epochs input")
        epochs.fill("100000")
        epochs.press("Enter")
        loss = panel.locator("img.kals-loss")
        loss0 = loss.evaluate(BLOB_HASH_JS)  # the curve of the notebook's run (or none)
        panel.locator(".kals-train").click()
        label = panel.locator(".kals-progress .widget-label")
        wait_for(page, lambda: int(re.sub(r"\D", "", label.inner_text()) or 0), lambda n: n >= 20, 60,
                 "the progress bar to pass epoch 20 while training runs")
        wait_for(page, lambda: loss.evaluate(BLOB_HASH_JS), lambda h: h and h != loss0, 20,
                 "the live loss curve to be redrawn while training runs")
        assert panel.locator(".kals-sample").is_disabled()
        panel.locator(".kals-stop").click()
        text = wait_for(page, status.inner_text, lambda s: s.startswith("trained") or "rror" in s, 60,
                        "training to stop")
        assert text.startswith(f"trained L={depth}, H=") and "interrupted" in text, text
        seen["train"] = text
        lap("trained and stopped")

        # 3. sample, then scrub: the frame image's bytes change
        panel.locator(".kals-sample").click()
        text = wait_for(page, status.inner_text, lambda s: s.startswith("sampled") or "rror" in s, 120,
                        "sampling")
        assert text.startswith("sampled"), text
        frame = panel.locator("img.kals-frame")
        wait_for(page, lambda: frame.evaluate("img => img.naturalWidth"), lambda w: w > 0, 20,
                 "the frame image to show")
        first = frame.evaluate(BLOB_HASH_JS)
        drag_slider(page, panel.locator(".kals-scrubber"), 1.0)
        seen["scrubber"] = wait_for(page, lambda: readout("kals-scrubber"), lambda v: v != "0", 10,
                                    "the frame slider to move")
        seen["frames"] = (first, wait_for(page, lambda: frame.evaluate(BLOB_HASH_JS), lambda h: h != first, 10,
                                          "the frame image's bytes to change"))

        lap("sampled and scrubbed")
        # 4. export
        panel.locator(".kals-export").click()
        seen["export"] = wait_for(page, status.inner_text, lambda s: s.startswith("wrote") or "rror" in s, 60,
                                  "the GIF export")
        ARTIFACTS.mkdir(exist_ok=True)
        panel.screenshot(path=str(ARTIFACTS / shot))
        seen["screenshot"] = ARTIFACTS / shot
    lap("closed")
    print("browser test timeline (s):", seen["seconds"])
    seen["gifs"] = sorted(p.name for p in out.glob("*.gif"))
    return seen


@pytest.mark.browser
def test_browser_panel_in_notebook_02(tmp_path):
    seen = panel_in_browser(NOTEBOOK, tmp_path, "browser_panel_02_synthetic_2d.png")
    first, last = seen["frames"]
    assert first and last and first != last
    assert seen["export"].startswith("wrote") and seen["export"].endswith(".gif")
    assert any(g in seen["export"] for g in seen["gifs"])
    assert seen["screenshot"].stat().st_size > 10_000
