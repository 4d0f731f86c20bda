"""The documentation site, built offline and opened page by page in headless Chromium (Debian's, via
Playwright; never skipped).

Two builds: the README's docs command verbatim (the repository's docs/ and committed notebooks, with
every network connection of the build refused), and the same sources with ``01_synthetic_1d``
executed at SMOKE sizes by the book (as the committed notebooks will be), so the pages of executed
notebooks are checked too. Each page served on 127.0.0.1: no request leaves it, no internal link
points at a missing page or anchor, every image loads, no error output or traceback shows.
Screenshots of the landing page and of 03_mnist go to test-artifacts/.
"""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

from browser_jupyter import ARTIFACTS, REPO, chromium_page
from kals_utils import book

pytestmark = pytest.mark.browser

NO_NETWORK = '''import socket
_connect = socket.socket.connect
def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(address, tuple) and host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"network is off in this test: {address}")
    return _connect(self, address)
socket.socket.connect = _local_only
'''
SHOT_HEIGHT = 2400  # px of a page in its screenshot
PAGE_JS = """() => ({
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
  images: document.images.length,
  errors: Array.from(document.querySelectorAll('.output.traceback, .output.error, .cell_output .traceback'))
    .map(e => e.innerText.slice(0, 300)),
  text: document.body.innerText,
})"""


def docs_command() -> str:
    readme = (REPO / "README.md").read_text()
    return re.search(r"<!-- docs-command -->\s*```bash\n(.+?)\n```", readme, re.S).group(1).strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The README's docs command, run as written (``.venv/bin/`` = this interpreter's) with every
    non-local connection refused (a sitecustomize on PYTHONPATH)."""
    guard = tmp_path_factory.mktemp("nonet")
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(guard), str(REPO)])}
    shutil.rmtree(book.SITE, ignore_errors=True)
    cmd = docs_command().replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (book.SITE / "index.html").is_file()
    return book.SITE


@pytest.fixture(scope="module")
def executed_site(executed_smoke):
    """docs/ beside the notebooks of ``executed_smoke`` (01 executed), built the same way."""
    shutil.copytree(book.DOCS, executed_smoke / "docs", symlinks=True, ignore=shutil.ignore_patterns("_build"))
    return book.build(src=executed_smoke / "docs", out=executed_smoke / "site").parent


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def visit_every_page(folder: Path, shots: dict) -> dict:
    """Open every page; returns {page: facts}. Fails on a request that leaves 127.0.0.1 or a 4xx/5xx."""
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html") if "_static" not in p.parts)
    facts, outside, failed = {}, [], []
    with serve(folder) as base, chromium_page(width=1280, height=900) as page:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                   else (outside.append(route.request.url), route.abort()))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        for name in pages:
            page.goto(base + name, wait_until="load")
            page.wait_for_load_state("networkidle")
            facts[name] = page.evaluate(PAGE_JS)
            if name in shots:  # the top of the page: title, first cells, the settings line of an executed notebook
                ARTIFACTS.mkdir(exist_ok=True)
                height = min(SHOT_HEIGHT, page.evaluate("document.body.scrollHeight"))
                page.screenshot(path=str(ARTIFACTS / shots[name]), full_page=True,
                                clip={"x": 0, "y": 0, "width": 1280, "height": height})
        assert not outside, f"pages asked for things outside the site: {sorted(set(outside))[:5]}"
        assert not failed, failed[:5]
        return {"base": base, "pages": facts}


def check_pages(seen: dict, folder: Path) -> None:
    base, pages = seen["base"], seen["pages"]
    for name, f in pages.items():
        assert not f["broken"], f"{name}: images that did not load: {f['broken']}"
        assert not f["errors"], f"{name}: error outputs: {f['errors']}"
        assert "Traceback (most recent call last)" not in f["text"], name
        for link in f["links"]:
            url, anchor = urldefrag(link)
            if not url.startswith(base):
                assert urlparse(url).scheme in ("http", "https", "mailto"), f"{name}: odd link {link}"
                continue
            target = url[len(base):] or "index.html"
            target = target + "index.html" if target.endswith("/") else target
            assert (folder / target).is_file(), f"{name}: broken link {link}"
            if anchor and target in pages:
                assert anchor in pages[target]["ids"], f"{name}: link to a missing anchor {link}"


def test_site_builds_offline_and_every_page_is_whole(site):
    seen = visit_every_page(site, {"index.html": "docs_index.png", "notebooks/03_mnist.html": "docs_03_mnist.png"})
    pages = seen["pages"]
    want = {"index.html", "guide.html", "api.html", "troubleshooting.html", "results/index.html",
            *(f"notebooks/{p.stem}.html" for p in book.NB_DIR.glob("*.ipynb"))}
    assert want <= set(pages), want - set(pages)
    check_pages(seen, site)
    assert pages["index.html"]["images"] >= 2, "the landing page shows the two GIFs"
    results = [p for p in pages if p.startswith("results/") and p != "results/index.html"]
    assert len(results) >= 5 and all(f"/{p}" in " ".join(pages["results/index.html"]["links"]) for p in results)
    assert "kals_utils.train_run" in pages["api.html"]["text"]


def test_an_executed_notebook_page_shows_its_outputs(executed_site):
    seen = visit_every_page(executed_site, {"notebooks/01_synthetic_1d.html": "docs_01_executed.png"})
    check_pages(seen, executed_site)
    page = seen["pages"]["notebooks/01_synthetic_1d.html"]
    assert "Executed with SMOKE = True" in page["text"]
    assert page["images"] >= 7, "the figures and the GIF (from its file under saved_samples/)"
    assert (executed_site / "_images" / "points1d_L7_H10_c10_T8_eps0_normal.gif").is_file()


# Every code block of a notebook page (a cell's code, or a code block in its prose), measured in the page:
# its width, its box's width, and its width were its lines not wrapped (88-column code must fit whole).
CODE_BLOCKS_JS = """() => Array.from(document.querySelectorAll('article div.highlight pre'))
  .filter(p => !p.closest('div.cell_output'))
  .map(p => { const ws = p.style.whiteSpace; p.style.whiteSpace = 'pre'; const unwrapped = p.scrollWidth;
              p.style.whiteSpace = ws;
              return {scroll: p.scrollWidth, box: p.clientWidth, unwrapped, cell: !!p.closest('div.cell_input'),
                      line: p.innerText.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '')}; })"""


@pytest.mark.parametrize("width", [1280, 390])
def test_no_code_on_a_notebook_page_is_cut_off(site, width):
    """Issue #33: at a laptop width (1280 px) every code cell shows its 88 columns whole, unwrapped; at a
    phone's (390 px) its long lines wrap; at neither does a code block need a horizontal scroll bar.
    Screenshots of 03's parameters cell at both widths go to test-artifacts/."""
    pages = sorted(p.name for p in (site / "notebooks").glob("*.html"))
    assert len(pages) == len(list(book.NB_DIR.glob("*.ipynb")))
    with serve(site) as base, chromium_page(width=width, height=900) as page:
        for name in pages:
            page.goto(f"{base}notebooks/{name}", wait_until="load")
            blocks = page.evaluate(CODE_BLOCKS_JS)
            assert sum(b["cell"] for b in blocks) >= 3, name
            wide = [b for b in blocks if b["scroll"] > b["box"]]
            assert not wide, f"{name} at {width} px: a code block scrolls: {wide[0]}"
            if width >= 1280:
                cut = [b for b in blocks if b["cell"] and b["unwrapped"] > b["box"]]
                assert not cut, f"{name}: a code line does not fit unwrapped: {cut[0]}"
            if name == "03_mnist.html":
                ARTIFACTS.mkdir(exist_ok=True)
                page.locator("div.cell").nth(1).scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / f"docs_03_parameters_{width}px.png"))
