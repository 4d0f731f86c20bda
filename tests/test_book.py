"""The committed notebooks follow the book's rules (kals_utils.faces.book): clean, or executed by
``python -m kals_utils.book execute`` with no error, no traceback, no machine path, no inline GIF,
every linked image present, a settings banner first, < 3 MB. The strict half (outputs present)
applies once a notebook carries ``metadata.kals.executed``."""
import base64
import io

import nbformat
import numpy as np
import pytest
from PIL import Image

from kals_utils import book
from kals_utils.errors import KalsError
from kals_utils.faces.book import problems, tidy

NOTEBOOKS = sorted(p.stem for p in book.NB_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_follows_the_rules(name):
    assert problems(book.NB_DIR / f"{name}.ipynb") == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_settings_name_parameters_the_notebook_has(name):
    nb = nbformat.read(book.NB_DIR / f"{name}.ipynb", as_version=4)
    assert name in book.SETTINGS, f"SETTINGS in kals_utils/book.py has no entry for {name}"
    assert set(book.SETTINGS[name]) <= book.parameter_names(nb)
    assert all(not isinstance(v, tuple) for v in book.SETTINGS[name].values()), "papermill passes lists, not tuples"


def _gif(seed: int, frames: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    ims = [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=100)
    return buf.getvalue()


def _executed_fake(tmp_path):
    """A notebook as papermill leaves it: timestamps, a machine path, two inline GIFs (one saved under
    saved_samples/, one not), a tqdm bar and a panel widget; tidied as `execute` does."""
    samples, folder = tmp_path / "saved_samples", tmp_path / "notebooks"
    samples.mkdir()
    folder.mkdir()
    (samples / "walk.gif").write_bytes(_gif(0))
    out = nbformat.v4.new_output
    widget = "application/vnd.jupyter.widget-view+json"
    cells = [nbformat.v4.new_markdown_cell("# fake"), nbformat.v4.new_code_cell("import os"),
             nbformat.v4.new_code_cell("run()", execution_count=2, outputs=[
                 out("display_data", data={widget: {"model_id": "a"}, "text/plain": "fit:  40%|####  | 120/300 [00:01<00:02]"}),
                 out("stream", name="stdout", text=f"GIF written to {book.ROOT}/saved_samples/walk.gif and /tmp/x1/y.gif\n"),
                 out("display_data", data={"image/gif": base64.b64encode(_gif(0)).decode(), "text/plain": "<Image>"}),
                 out("display_data", data={"image/gif": base64.b64encode(_gif(1)).decode(), "text/plain": "<Image>"}),
                 out("execute_result", execution_count=2, data={widget: {"model_id": "b"}, "text/plain": "VBox(...)"})])]
    cells[1].execution_count = 1
    cells[2].metadata["papermill"] = {"duration": 1.2}
    cells[2].metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"papermill": {"input_path": "/root/x.ipynb"}})
    tidy(nb, "fake", {"QUICK": True}, seconds=12.3, samples=samples, folder=folder)
    path = folder / "fake.ipynb"
    nbformat.write(nb, path)
    return path, nb


def test_tidy_makes_a_papermill_notebook_fit_to_commit(tmp_path):
    path, nb = _executed_fake(tmp_path)
    assert problems(path) == []
    first, run = nb.cells[1].outputs, nb.cells[2].outputs
    assert first[0].data["text/plain"].startswith("Executed with QUICK = True (set for this run over the parameters "
                                                  "cell's defaults) on ")
    assert nb.metadata.kals["executed"] and nb.metadata.kals["settings"] == {"QUICK": True}
    assert "papermill" not in nb.metadata and not {"papermill", "execution"} & set(nb.cells[2].metadata)
    assert len(run) == 4, "the tqdm bar is dropped"
    assert run[0].text == "GIF written to saved_samples/walk.gif and <tmp>/y.gif\n"
    assert run[1].data["text/markdown"] == "![walk.gif](../saved_samples/walk.gif)"
    strip = Image.open(io.BytesIO(base64.b64decode(run[2].data["image/png"])))
    assert strip.size == (5 * 8 + 4 * 4, 8), "all 5 frames side by side, 4 px apart"
    assert "Jupyter" in run[3].data["text/markdown"] and book.WIDGET not in run[3].data
    clean = book.clean(nb)
    assert all(c.outputs == [] and c.execution_count is None for c in clean.cells if c.cell_type == "code")
    assert "kals" not in clean.metadata


@pytest.mark.parametrize("breakage, message", [
    (lambda nb: nb.cells[2].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="x",
                                                                   traceback=["boom"])), "error output"),
    (lambda nb: nb.cells[2].outputs.append(nbformat.v4.new_output(
        "stream", name="stderr", text="Traceback (most recent call last):\n  ...\nKeyError: 1\n")), "traceback"),
    (lambda nb: nb.cells[2].outputs.append(nbformat.v4.new_output(
        "stream", name="stdout", text="saved to /home/alice/kals/x.gif\n")), "absolute path"),
    (lambda nb: nb.cells[2].outputs.append(nbformat.v4.new_output(
        "display_data", data={"image/gif": "R0lGODlh", "text/plain": ""})), "inline GIF"),
    (lambda nb: nb.cells[2].outputs.append(nbformat.v4.new_output(
        "display_data", data={"text/markdown": "![x](../saved_samples/gone.gif)"})), "missing image"),
    (lambda nb: nb.cells[1].outputs.pop(0), "banner"),
    (lambda nb: nb.cells[2].__setitem__("execution_count", None), "did not run"),
    (lambda nb: nb.metadata.pop("kals"), "no metadata.kals.executed"),
    (lambda nb: nb.metadata.__setitem__("widgets", {"state": {}}), "volatile metadata"),
    (lambda nb: nb.cells[2].outputs.extend(nbformat.v4.new_output(
        "stream", name="stdout", text="x" * 500_000) for _ in range(7)), "MB"),
])
def test_problems_finds_each_broken_rule(tmp_path, breakage, message):
    path, nb = _executed_fake(tmp_path)
    breakage(nb)
    nbformat.write(nb, path)
    found = problems(path)
    assert any(message in p for p in found), found


def test_execute_runs_a_notebook_and_leaves_it_fit_to_commit(executed_smoke):
    """`execute` end to end (01 at SMOKE sizes, in a copy): clean by the rules, banner first, the GIF
    shown from its file, figures inline, the source cells those of the committed notebook."""
    path = executed_smoke / "notebooks" / "01_synthetic_1d.ipynb"
    assert problems(path) == []
    nb = nbformat.read(path, as_version=4)
    banner = nb.cells[1].outputs[0].data["text/plain"]
    assert banner.startswith("Executed with SMOKE = True (CI sizes), the defaults on ") and " CPU (" in banner
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6
    links = [o.data["text/markdown"] for o in outputs if "![" in o.get("data", {}).get("text/markdown", "")]
    assert links == ["![points1d_L7_H10_c10_T8_eps0_normal.gif](../saved_samples/points1d_L7_H10_c10_T8_eps0_normal.gif)"]
    committed = nbformat.read(book.NB_DIR / "01_synthetic_1d.ipynb", as_version=4)
    assert [c.source for c in book.clean(nb).cells] == [c.source for c in book.clean(committed).cells]
    assert path.stat().st_size < book.MAX_BYTES


def test_check_command(capsys):
    assert book.main(["check"]) == 0
    assert book.main(["execute", "--check", "01"]) == 0
    assert capsys.readouterr().out.startswith("01_synthetic_1d: ok")
    assert book.main(["execute", "--check", "09"]) == 2
    assert "no single notebook named '09'" in capsys.readouterr().err


def _png(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_tidy_commits_a_large_photo_figure_as_jpeg(tmp_path):
    """A walk of colour photographs drawn as PNG reaches 1 MB (noise and texture do not compress):
    tidy re-encodes a PNG over PHOTO_PNG_BYTES as a JPEG; a small figure stays PNG (negative control)."""
    rng = np.random.default_rng(0)
    big = _png(rng.integers(0, 255, (400, 400, 3), dtype=np.uint8))
    small = _png(np.zeros((100, 100, 3), dtype=np.uint8))
    assert len(big) > book.PHOTO_PNG_BYTES > len(small)
    out = nbformat.v4.new_output
    cells = [nbformat.v4.new_code_cell("plot()", execution_count=1, outputs=[
        out("display_data", data={"image/png": big, "text/plain": "<Figure>"}),
        out("display_data", data={"image/png": small, "text/plain": "<Figure>"})])]
    nb = tidy(nbformat.v4.new_notebook(cells=cells), "fake", {}, samples=tmp_path, folder=tmp_path)
    banner, photo, plain = nb.cells[0].outputs
    assert "image/png" not in photo.data and len(photo.data["image/jpeg"]) < len(big) / 2
    assert Image.open(io.BytesIO(base64.b64decode(photo.data["image/jpeg"]))).size == (400, 400)
    assert plain.data["image/png"] == small and "image/jpeg" not in plain.data


def test_no_injected_cell_undoes_a_readers_change_and_the_banner_names_what_ran(tmp_path):
    """A newcomer edits DATASET in the parameters cell; an injected cell after it must not set it back."""
    params = nbformat.v4.new_code_cell('DATASET = "mnist"      # the images\nQUICK = False          # True: minutes')
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell('# Parameters\nQUICK = True\nDATASET = "fashion-mnist"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, injected, nbformat.v4.new_code_cell("run()")])
    tidy(nb, "fake", {"QUICK": True, "DATASET": "fashion-mnist"}, samples=tmp_path, folder=tmp_path)
    assert [c.source for c in nb.cells] == [params.source, "run()"]           # the reader's defaults, no override
    text = nb.cells[0].outputs[0].data["text/plain"]   # the first code cell carries the banner
    assert text.startswith('Executed with QUICK = True, DATASET = "fashion-mnist" (set for this run over the '
                           "parameters cell's defaults)")
