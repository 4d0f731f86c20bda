"""Helpers for the browser tests: a throw-away JupyterLab server and headless Debian Chromium.

``jupyter_lab(root, env)`` starts JupyterLab on 127.0.0.1 (random free port, random token,
``--allow-root``, ``expose_app_in_browser``) with its own config, settings, workspace and runtime
folders under ``root`` (news and update checks off), and always stops it and every kernel it
started. ``chromium_page(...)`` drives Debian's ``/usr/bin/chromium`` with Playwright (no
downloaded browser). The JavaScript snippets read JupyterLab's state through ``window.jupyterapp``.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

LAB_SETTINGS = {  # JupyterLab 4: no news pop-up or update check; every cell stays in the DOM
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

KERNEL_STATE_JS = """() => {
  const app = window.jupyterapp;
  if (!app) return 'no app';
  const w = app.shell.currentWidget;
  if (!w || !w.sessionContext) return 'no notebook';
  const s = w.sessionContext.session;
  const k = s && s.kernel;
  if (!k) return 'no kernel';
  return k.connectionStatus + '/' + k.status;
}"""

BLOB_HASH_JS = """async (img) => {
  if (!img.src) return null;
  const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let h = 2166136261;
  for (let i = 0; i < buf.length; i++) { h ^= buf[i]; h = Math.imul(h, 16777619) >>> 0; }
  return buf.length + ':' + h.toString(16);
}"""


def require_chromium() -> str:
    """Path of Debian's Chromium; fail (never skip) with the fix when it is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium package; "
                    "run `bash setup.sh --test` as root (it apt-installs chromium)")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _marked_pids(marker: str) -> list:
    """PIDs of live processes whose environment holds ``KALS_BROWSER_TEST=<marker>`` (Linux /proc)."""
    pids = []
    needle = f"KALS_BROWSER_TEST={marker}".encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str, workspace: str = "") -> str:
        """The notebook's URL; a ``workspace`` of its own (a fresh one) opens it without restoring
        the notebooks an earlier page had open (each would start its kernel again)."""
        ws = f"workspaces/{workspace}/" if workspace else ""
        return f"{self.url}lab/{ws}tree/{notebook}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """Stop every kernel this server runs (between notebooks: the machine has few cores)."""
        for k in self.api("kernels") or []:
            self.api(f"kernels/{k['id']}", method="DELETE")


@contextmanager
def jupyter_lab(root: Path, env: dict, start_timeout: float = 60.0):
    """Run JupyterLab serving ``root``; yields a :class:`Lab`. Stops the server and its kernels."""
    root = Path(root)
    home = root.parent / (root.name + "-jupyter")
    settings = home / "settings"
    for name, values in LAB_SETTINGS.items():
        plugin, fname = name.rsplit("/", 1)
        (settings / plugin).mkdir(parents=True, exist_ok=True)
        (settings / plugin / fname).write_text(json.dumps(values))
    marker = secrets.token_hex(8)
    token = secrets.token_hex(16)
    port = _free_port()
    full_env = {**os.environ, **env,
                "KALS_BROWSER_TEST": marker,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
                "IPYTHONDIR": str(home / "ipython"), "JUPYTER_PLATFORM_DIRS": "1"}
    log = home / "server.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--ServerApp.terminals_enabled=False",
           "--LanguageServerManager.autodetect=False"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)
    lab = Lab(url=f"http://127.0.0.1:{port}/", token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                lab.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer in {start_timeout:.0f} s:\n"
                                       f"{log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield lab
    finally:
        try:  # ask the server to stop its kernels, then stop the server, then kill stragglers
            lab.shutdown_kernels()
        except Exception:
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for pid in _marked_pids(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@contextmanager
def chromium_page(width: int = 1400, height: int = 1200):
    """A Playwright page in headless Debian Chromium (in a context of its own, so
    ``page.context.new_page()`` opens another with the same viewport); closed afterwards."""
    from playwright.sync_api import sync_playwright
    path = require_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_context(viewport={"width": width, "height": height}).new_page()
            yield page
        finally:
            browser.close()


def wait_for(page, read, want, timeout: float, what: str):
    """Poll ``read`` (JavaScript for the page, or a Python callable) until it returns ``want`` (or a
    value for which ``want(value)`` is true); fail with ``what`` and the last value on timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = read() if callable(read) else page.evaluate(read)
        if (want(value) if callable(want) else value == want):
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value {value!r}")


def drag_slider(page, slider, fraction: float) -> None:
    """Drag the handle of the ipywidgets slider (a Playwright locator) to ``fraction`` (0..1) of its
    track with the mouse (Notebook 7 swallows arrow keys; a drag works in both front ends)."""
    handle = slider.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    hb = handle.bounding_box()
    track = slider.locator(".noUi-target").bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], hb["y"] + hb["height"] / 2, steps=8)
    page.mouse.up()
