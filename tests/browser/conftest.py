"""Browser-test harness: a real JupyterLab server and Debian's Chromium driven by Playwright.

Session fixtures:

- ``jupyter``: a JupyterLab server on 127.0.0.1 (free port, random token) whose root is a tmp
  dir; isolated config/settings/runtime dirs; no news, no update checks, nothing that reaches
  the internet. Kernels it starts import bertlab from this checkout (``PYTHONPATH``).
- ``browser``: /usr/bin/chromium through Playwright's sync API (never a downloaded browser).

``harness.new_page(name)`` opens a page whose console is recorded; when a test fails, every open
page's screenshot and console log and the server log are written to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .labharness import ARTIFACTS, Harness, JupyterServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: drives a real JupyterLab / Notebook 7 in Chromium (tests/browser; "
        "needs /usr/bin/chromium, which ./dev.sh test installs)",
    )


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture(scope="session")
def jupyter():
    base = Path(tempfile.mkdtemp(prefix="bertlab-browser-"))
    server = JupyterServer(base)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. "
            "`./dev.sh test` installs it (apt-get install chromium); or run "
            "`sudo apt-get install chromium` yourself.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def harness(browser, jupyter):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("FAILED-*"):
        old.unlink()
    h = Harness(browser, jupyter)
    _OPEN.append(h)
    yield h
    _OPEN.remove(h)
    for name in list(h.pages):
        h.close_page(name)


#: The session's harness, once made (the module fixture below closes its pages).
_OPEN: list = []


@pytest.fixture(autouse=True, scope="module")
def _close_pages_after_module():
    """Close every page a browser module kept open: the session's Chromium lives on while the
    rest of the suite runs, and an open page must not hold a CPU core meanwhile."""
    yield
    for h in _OPEN:
        for name in list(h.pages):
            h.close_page(name)


@pytest.fixture(autouse=True)
def _artifacts_on_failure(request):
    """On failure: screenshot + console of every open page, and the server log."""
    yield
    if "harness" not in request.fixturenames:
        return
    harness = request.getfixturevalue("harness")
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        harness.save_failure(request.node.name)
    harness.close_test_pages()
