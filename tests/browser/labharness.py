"""The browser tests' harness: a JupyterLab server process, pages with console logs, waits.

Imported by ``conftest.py`` (fixtures) and the test modules (helpers).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
#: Seconds the server gets to answer /api/status.
SERVER_START_TIMEOUT = 90
VIEWPORT = {"width": 1500, "height": 1100}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """A JupyterLab server process (own process group) and its REST API."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        self.port = _free_port()
        self.token = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "server.log"
        self.proc: subprocess.Popen | None = None

    def _write_config(self) -> dict[str, str]:
        config_dir = self.base / "config"
        config_dir.mkdir()
        # No announcements, no update checks (both would fetch from the internet).
        (config_dir / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "LabApp": {
                        "news_url": None,
                        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    },
                }
            )
        )
        settings = self.base / "lab-settings"
        user_settings = {
            "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
            # Attach every cell (no windowing): a cell's output is in the DOM wherever it is.
            "notebook-extension/tracker": {"windowingMode": "none"},
        }
        for plugin, values in user_settings.items():
            path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.base / "workspaces"),
            IPYTHONDIR=str(self.base / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
            # The kernel imports bertlab from this checkout (installed or not).
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            PYTHONUNBUFFERED="1",
        )
        env.pop("JUPYTER_TOKEN", None)
        return env

    def start(self) -> None:
        env = self._write_config()
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # The extension manager would query PyPI; "readonly" never does.
            "--LabApp.extension_manager=readonly",
            "--ServerApp.allow_root=True",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() kills it and its kernels
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.proc.returncode} before answering "
                    f"/api/status; log:\n{self.log_tail()}"
                )
            try:
                self.api("status")
                return
            except (OSError, urllib.error.URLError) as exc:
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"jupyter lab did not answer /api/status within {SERVER_START_TIMEOUT}s "
            f"(last error: {last!r}); log:\n{self.log_tail()}"
        )

    def api(self, path: str, method: str = "GET", body=None, timeout: float = 10):
        req = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def kernel_state(self, nb_path: str) -> str | None:
        """The execution state ("busy"/"idle"/...) of the kernel of a notebook's session."""
        try:
            for s in self.api("sessions"):
                if s.get("path") == nb_path and s.get("kernel"):
                    return s["kernel"].get("execution_state")
        except (OSError, urllib.error.URLError):
            return None
        return None

    def shutdown_kernel(self, nb_path: str) -> None:
        """End a notebook's session and kernel (frees the memory and CPU it holds)."""
        for s in self.api("sessions"):
            if s.get("path") == nb_path:
                self.api(f"sessions/{s['id']}", method="DELETE")

    def lab_url(self, nb_path: str) -> str:
        """JupyterLab on this notebook alone: a workspace of its own, so the tabs another test
        left open (Lab restores a workspace's tabs) never share the page with it."""
        workspace = "ws-" + "".join(c if c.isalnum() else "-" for c in nb_path)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{nb_path}?token={self.token}"

    def notebook7_url(self, nb_path: str) -> str:
        return f"{self.url}/notebooks/{nb_path}?token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        # Kernels were started in the server's group; make sure none is left behind.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        self.proc = None


class Harness:
    """Pages with their console logs, and failure artifacts."""

    def __init__(self, browser, server: JupyterServer):
        self.browser = browser
        self.server = server
        self.pages: dict[str, tuple] = {}
        self.kept: set[str] = set()

    def new_page(self, name: str, keep: bool = False):
        """A page in its own browser context; ``keep``: it outlives the test that opened it."""
        context = self.browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        log: list[str] = []
        page.on("console", lambda m: log.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: log.append(f"[pageerror] {e}\n{e.stack}"))
        page.on("requestfailed", lambda r: log.append(f"[requestfailed] {r.method} {r.url}"))
        # A dirty notebook asks before unloading: leave (tests reload on purpose).
        page.on("dialog", lambda d: d.accept())
        self.pages[name] = (page, log)
        if keep:
            self.kept.add(name)
        return page

    def console(self, name: str) -> list[str]:
        return self.pages[name][1]

    def close_page(self, name: str) -> None:
        page, _ = self.pages.pop(name)
        self.kept.discard(name)
        page.context.close()

    def close_test_pages(self) -> None:
        """Close the pages a test opened (after its failure artifacts were saved)."""
        for name in [n for n in self.pages if n not in self.kept]:
            self.close_page(name)

    def save_failure(self, test_name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = "FAILED-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in test_name)
        for name, (page, log) in self.pages.items():
            try:
                page.screenshot(path=str(ARTIFACTS / f"{stem}-{name}.png"), full_page=True)
            except Exception as exc:  # noqa: BLE001 - the page may be gone; keep the rest
                log.append(f"(screenshot failed: {exc!r})")
            (ARTIFACTS / f"{stem}-{name}-console.log").write_text("\n".join(log))
        if self.server.log_path.exists():
            shutil.copy(self.server.log_path, ARTIFACTS / f"{stem}-server.log")


def write_notebook(server: JupyterServer, name: str, sources: list[str]) -> str:
    """Write a notebook of code cells into the server's root; returns its path there."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, server.root / name)
    return name


def wait_for(predicate, timeout: float, what: str, seen=lambda: "", interval: float = 0.25):
    """Poll ``predicate`` until truthy; on timeout fail naming the step and what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; seen: {seen()}")
        time.sleep(interval)


# ---------------------------------------------------------------------- page helpers
def open_notebook(page, url: str, timeout: float = 90) -> None:
    """Load a notebook page (JupyterLab or Notebook 7) until its first cell is in the DOM."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    try:
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    except Exception as exc:  # noqa: BLE001 - re-raised as a clear failure
        pytest.fail(
            f"the notebook at {url.split('?')[0]} did not show its cells within {timeout:.0f}s "
            f"({type(exc).__name__}); page title: {page.title()!r}"
        )


def execution_status(page) -> str | None:
    """The notebook toolbar's execution indicator ("idle", "busy", "connecting"...)."""
    return page.evaluate(
        "() => { const e = document.querySelector('.jp-Notebook-ExecutionIndicator');"
        " return e ? e.getAttribute('data-status') : null; }"
    )


def prompts(page) -> list[str]:
    """Input prompts of the cells in order: "[*]:" while queued/running, "[3]:" when done."""
    return page.eval_on_selector_all(
        ".jp-Notebook .jp-Cell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())"
    )


def output_texts(page, limit: int = 2000) -> str:
    """Plain text of every cell output (tracebacks included), for failure messages."""
    text = page.eval_on_selector_all(
        ".jp-Notebook .jp-OutputArea-output", "els => els.map(e => e.innerText).join('\\n---\\n')"
    )
    return text[-limit:]


def wait_kernel_ready(page, server: JupyterServer, nb_path: str, timeout: float = 90) -> None:
    """Wait until the notebook's kernel is started and the page shows it idle.

    The server's own ``execution_state`` flips to idle between messages even while a cell runs,
    so it is only used to see that the kernel exists; idleness is read from the page.
    """
    wait_for(
        lambda: (
            server.kernel_state(nb_path) not in (None, "starting")
            and execution_status(page) == "idle"
        ),
        timeout,
        f"the kernel of {nb_path} to start and be idle",
        lambda: (
            f"server state={server.kernel_state(nb_path)!r}, "
            f"page indicator={execution_status(page)!r}"
        ),
    )


def run_all(page) -> None:
    """Run all cells through the menu bar (Run > Run All Cells: same in Lab and Notebook 7)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=15_000)
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click(timeout=15_000)


def save_notebook(page) -> None:
    """Save the notebook through the File menu (the server saves; the kernel may be busy)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="File").first.click(timeout=15_000)
    page.locator('.lm-Menu-item[data-command="docmanager:save"]').click(timeout=15_000)
