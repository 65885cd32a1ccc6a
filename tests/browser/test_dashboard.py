"""The live dashboard in a real JupyterLab and Notebook 7, and the standalone HTML report.

One notebook trains a small Keras classifier (~25-40 s here) with ``bertlab.Watch()``; its
softmax output + ``from_logits=True`` loss raises ``double-softmax`` at step 0, so the sidebar
has a finding to click from the start. The tests run in file order on that one training:

1. the dashboard appears and its step counter and charts grow while the cell is still running;
2. during training, clicking the finding and the tabs switches panels (the front end navigates
   on its own: the kernel cannot answer while ``fit`` runs);
3. a page reload restores the whole run once the cell has ended;
4. Notebook 7 renders the same notebook's dashboard;
5. ``watch.to_html(...)`` opens from ``file://`` with no server, and run text is escaped.

Element names are the DOM contract of ``js/README.md``. Screenshots go to
``test-artifacts/browser/`` (``dashboard.png`` is the clean one for the README).
"""

from __future__ import annotations

import json
import time

import pytest

from .labharness import (
    ARTIFACTS,
    ROOT,
    execution_status,
    open_notebook,
    output_texts,
    prompts,
    run_all,
    save_notebook,
    wait_for,
    wait_kernel_ready,
    write_notebook,
)

NB = "live_dashboard.ipynb"
EPOCHS, N_TRAIN, BATCH = 20, 2048, 32
TOTAL_STEPS = EPOCHS * (N_TRAIN // BATCH)  # 1280: more than the 1024-row snapshot a reload gets
FINDING = "double-softmax"
PANELS = ("overview", "gradients", "outputs", "predictions", "data")
XSS = "<img src=x onerror=alert(1)>"
#: Seconds from "Run All" until the dashboard shows: kernel start, TensorFlow import, tracing.
APPEAR_TIMEOUT = 180
#: Seconds the training itself may take on a loaded 2-core machine (nominally ~30 s).
TRAIN_TIMEOUT = 300

SETUP = f"""\
import json, time
from pathlib import Path
import numpy as np
import keras
import bertlab

keras.utils.set_random_seed(0)
K, VOCAB, SEQ, N, BATCH, EPOCHS = 4, 2000, 64, {N_TRAIN}, {BATCH}, {EPOCHS}
rng = np.random.default_rng(0)
y = rng.integers(0, K, size=N + 256)
x = rng.integers(1, VOCAB, size=(N + 256, SEQ)).astype("int32")
x[:, 0] = 1 + y  # one marker token per class: the model can learn
x, xv, y, yv = x[:N], x[N:], y[:N], y[N:]
model = keras.Sequential([
    keras.Input((SEQ,), dtype="int32"),
    keras.layers.Embedding(VOCAB, 64),
    keras.layers.Conv1D(64, 5, activation="relu"),
    keras.layers.GlobalMaxPooling1D(),
    keras.layers.Dense(K, activation="softmax"),
])
# softmax output + from_logits=True: bertlab's double-softmax finding, at step 0
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
"""

FIT = """\
watch = bertlab.Watch(class_names=["alpha", "beta", "gamma", "delta"])
t0 = time.time()
model.fit(x, y, validation_data=(xv, yv), batch_size=BATCH, epochs=EPOCHS,
          callbacks=[watch], verbose=0)
seconds = time.time() - t0
watch.save("run.bertlab")
try:
    watch.to_html("report.html")
except Exception as exc:
    Path("report_error.txt").write_text(repr(exc))
# Last (written whole, then renamed): the tests read this file as "the cell's work is done".
Path("fit_done.tmp").write_text(json.dumps({
    "steps": watch.run.steps_trained, "seconds": seconds,
    "findings": [f.code for f in watch.findings]}))
Path("fit_done.tmp").rename("fit_done.json")
"""


class LiveRun:
    """The JupyterLab page running the notebook, and what the kernel wrote to the server root."""

    def __init__(self, harness, server):
        self.harness = harness
        self.server = server
        self.page = harness.new_page("lab", keep=True)
        self.started = 0.0
        self.seen: list = []  # step counter values observed while the cell ran

    # -- kernel-side ground truth: the file the cell writes after fit, save and to_html
    @property
    def done_file(self):
        return self.server.root / "fit_done.json"

    def finished(self) -> bool:
        return self.done_file.exists()

    def done(self) -> dict:
        return json.loads(self.done_file.read_text())

    def wait_finished(self) -> dict:
        wait_for(
            self.finished,
            TRAIN_TIMEOUT,
            "the training cell to finish (it writes fit_done.json last)",
            lambda: f"prompts={self.prompts()}, outputs={output_texts(self.page, 600)!r}",
            interval=0.5,
        )
        return self.done()

    # -- page side
    def prompts(self) -> list[str]:
        try:
            return prompts(self.page)
        except Exception as exc:  # noqa: BLE001 - only for messages
            return [f"(unreadable: {exc!r})"]

    def busy(self) -> bool:
        """The training cell is still running: its prompt is [*], the notebook's execution
        indicator says busy, and the cell has not written fit_done.json."""
        p = self.prompts()
        return (
            len(p) == 2
            and p[1].startswith("[*]")
            and execution_status(self.page) == "busy"
            and not self.finished()
        )

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f}s after Run All"


@pytest.fixture(scope="module")
def live(harness, jupyter):
    if not (ROOT / "bertlab" / "static" / "dashboard.js").exists():
        pytest.fail(
            "bertlab/static/dashboard.js is missing: the front end is not built "
            "(`./dev.sh test` builds it through pip install -e .; or cd js && npm ci && "
            "npm run build)",
            pytrace=False,
        )
    write_notebook(jupyter, NB, [SETUP, FIT])
    run = LiveRun(harness, jupyter)
    page = run.page
    open_notebook(page, jupyter.lab_url(NB))
    wait_kernel_ready(page, jupyter, NB)
    run_all(page)
    run.started = time.monotonic()
    wait_for(
        lambda: page.locator(".jp-OutputArea-output .bertlab-dashboard").count() > 0,
        APPEAR_TIMEOUT,
        "the dashboard (.bertlab-dashboard) to appear in the training cell's output",
        lambda: (
            f"prompts={run.prompts()}, indicator={execution_status(page)!r}, "
            f"outputs={output_texts(page, 1500)!r}, console={harness.console('lab')[-8:]}"
        ),
        interval=0.5,
    )
    return run


def dash(page, scope: str = ".jp-OutputArea-output "):
    return page.locator(f"{scope}.bertlab-dashboard").first


def read_state(page, scope: str = ".jp-OutputArea-output ") -> dict:
    """What the dashboard shows now: status, active panel, steps text, visible charts' points."""
    return page.evaluate(
        """(scope) => {
        const root = document.querySelector(scope + '.bertlab-dashboard');
        if (!root) return null;
        const steps = root.querySelector('[data-role="steps"]');
        const charts = {};
        for (const c of root.querySelectorAll('.bertlab-chart[data-points]')) {
            if (c.offsetParent === null) continue;  // hidden (inactive panel)
            charts[c.getAttribute('data-chart')] = Number(c.getAttribute('data-points'));
        }
        const visible = [...root.querySelectorAll('.bertlab-panel')]
            .filter(p => p.offsetParent !== null).map(p => p.getAttribute('data-panel'));
        const detail = root.querySelector('.bertlab-finding-detail');
        return {
            status: root.getAttribute('data-status'),
            panel: root.getAttribute('data-active-panel'),
            steps: steps ? steps.textContent.trim() : null,
            charts, visible,
            findings: [...root.querySelectorAll('.bertlab-finding')].map(
                f => f.getAttribute('data-code')),
            finding_attrs: Object.fromEntries([...root.querySelectorAll('.bertlab-finding')].map(
                f => [f.getAttribute('data-code'),
                      [f.getAttribute('data-severity'), f.getAttribute('data-status')]])),
            detail: detail !== null && detail.offsetParent !== null,
        };
    }""",
        scope,
    )


def steps_of(state: dict | None) -> int | None:
    if not state or state["steps"] is None:
        return None
    try:
        return int(state["steps"].replace(",", ""))
    except ValueError:
        pytest.fail(f'[data-role="steps"] must hold an integer, it shows {state["steps"]!r}')


def finding_panel(code: str) -> str:
    """The panel a finding belongs to, from its rule (the source of the finding's ``panel``)."""
    import importlib

    return importlib.import_module(f"bertlab.rules.{code.replace('-', '_')}").RULE.panel


def click_tab(page, name: str, scope: str = ".jp-OutputArea-output ") -> dict:
    page.locator(f'{scope}.bertlab-dashboard button.bertlab-tab[data-panel="{name}"]').click(
        timeout=10_000
    )
    wait_for(
        lambda: (
            (s := read_state(page, scope) or {}).get("panel") == name and s.get("visible") == [name]
        ),
        20,
        f"tab {name!r} to become the active and only visible panel",
        lambda: f"state={read_state(page, scope)}",
    )
    return read_state(page, scope)


def click_finding(page, code: str, scope: str = ".jp-OutputArea-output ") -> dict:
    target = finding_panel(code)
    item = page.locator(f'{scope}.bertlab-dashboard .bertlab-finding[data-code="{code}"]').first
    wait_for(
        lambda: item.count() > 0,
        30,
        f"finding {code!r} in the sidebar (.bertlab-finding[data-code={code}])",
        lambda: f"state={read_state(page, scope)}",
    )
    before = read_state(page, scope)
    item.click(timeout=10_000)
    wait_for(
        lambda: (
            (s := read_state(page, scope) or {}).get("panel") == target
            and s.get("visible") == [target]
            and s.get("detail")
        ),
        20,
        f"a click on finding {code!r} to open panel {target!r} and show "
        f".bertlab-finding-detail (before the click: panel {before['panel']!r}, "
        f"detail shown: {before['detail']})",
        lambda: f"state={read_state(page, scope)}",
    )
    detail = page.locator(f"{scope}.bertlab-dashboard .bertlab-finding-detail").first
    assert detail.locator("pre").count() > 0, "the finding detail has no <pre> with the fix"
    assert detail.locator("button.bertlab-copy").count() > 0, "no copy button (button.bertlab-copy)"
    return read_state(page, scope)


def assert_no_page_errors(harness, name: str, anywhere: bool = False) -> None:
    """No uncaught exception from the dashboard's code, no console error naming it.

    In Jupyter pages only errors whose stack or text points at the dashboard count (Notebook 7
    itself throws a couple at start-up); ``anywhere``: every error counts (the HTML report).
    """
    ours = ("blob:", "bertlab", "anywidget")
    bad = [
        line
        for line in harness.console(name)
        if (line.startswith("[pageerror]") and (anywhere or any(w in line for w in ours)))
        or (line.startswith("[error]") and (anywhere or "bertlab" in line.lower()))
    ]
    assert not bad, f"errors in the {name!r} page's console: {bad[:5]}"


def shot(locator, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed(timeout=10_000)
    locator.screenshot(path=str(ARTIFACTS / name), timeout=20_000)


# ---------------------------------------------------------------------------- tests
def test_dashboard_streams_while_the_cell_runs(live):
    page = live.page
    seen = []  # (busy, state) observations
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = live.busy()
        state = read_state(page)
        seen.append((busy, state))
        running = [s for b, s in seen if b and s]
        counts = [steps_of(s) for s in running]
        increases = sum(1 for a, b in zip(counts, counts[1:], strict=False) if b > a)
        grown = running and any(
            running[-1]["charts"].get(name, 0) > points
            for name, points in running[0]["charts"].items()
        )
        if increases >= 2 and grown:
            break
        if not busy and live.finished():
            break
        time.sleep(0.5)
    running = [s for b, s in seen if b and s]
    live.seen = [s["steps"] for s in running]
    summary = [(b, s and s["status"], s and s["steps"], s and s["charts"]) for b, s in seen]
    assert running, (
        f"never saw the dashboard while the cell was busy ({live.elapsed()}): "
        f"the training ended before the test could look; observations={summary[-10:]}"
    )
    assert all(s["status"] == "running" for s in running), (
        f"data-status should be 'running' while fit runs; observed {summary[-10:]}"
    )
    counts = [steps_of(s) for s in running]
    assert sum(1 for a, b in zip(counts, counts[1:], strict=False) if b > a) >= 2, (
        f'[data-role="steps"] did not increase twice while the cell ran: {counts}'
    )
    assert running[-1]["charts"], f"no visible .bertlab-chart[data-points]: {running[-1]}"
    first, last = running[0]["charts"], running[-1]["charts"]
    assert any(last.get(name, 0) > n for name, n in first.items()), (
        f"no visible chart's data-points grew while the cell ran: first {first}, last {last}"
    )
    assert live.busy(), "the training finished during the observation (raise EPOCHS)"
    shot(dash(page), "dashboard-live.png")
    assert_no_page_errors(live.harness, "lab")


def test_finding_and_tabs_navigate_during_training(live):
    page = live.page
    assert live.busy(), (
        f"the training cell already finished ({live.elapsed()}): cannot test navigation "
        f"during training; prompts={live.prompts()}"
    )
    target = finding_panel(FINDING)
    other = next(p for p in PANELS if p != target)
    before = click_tab(page, other)
    busy_at_click = live.busy()
    after = click_finding(page, FINDING)
    assert busy_at_click and live.busy(), (
        f"the kernel was not busy around the finding click ({live.elapsed()})"
    )
    assert before["panel"] == other and after["panel"] == target, (before, after)
    shot(dash(page), "finding-live.png")
    for name in PANELS:
        busy = live.busy()
        state = click_tab(page, name)
        assert state["panel"] == name
        if not busy:
            pytest.fail(
                f"the training ended before tab {name!r} was clicked ({live.elapsed()}): "
                "tabs were not all tested during training (raise EPOCHS)"
            )
    # Navigating did not stop the stream.
    s0 = steps_of(read_state(page))
    wait_for(
        lambda: steps_of(read_state(page)) > s0 or live.finished(),
        20,
        "the step counter to keep increasing after the clicks",
        lambda: f"state={read_state(page)}",
    )
    assert_no_page_errors(live.harness, "lab")


def test_reload_restores_the_whole_run(live):
    page = live.page
    # The dashboard's output must be in the file for a reloaded page to find it again.
    save_notebook(page)
    nb_file = live.server.root / NB
    wait_for(
        lambda: "application/vnd.jupyter.widget-view+json" in nb_file.read_text(),
        30,
        "the saved notebook to contain the dashboard's widget output",
        lambda: f"file size={nb_file.stat().st_size}",
    )
    during = live.busy()
    page.reload(wait_until="domcontentloaded", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    done = live.wait_finished()
    (ARTIFACTS / "run-info.json").write_text(
        json.dumps({**done, "reloaded_during_training": during, "live_steps_seen": live.seen})
    )
    assert done["steps"] == TOTAL_STEPS, f"the notebook trained {done['steps']} steps"
    assert FINDING in done["findings"], f"the kernel's findings: {done['findings']}"
    wait_for(
        lambda: steps_of(s := read_state(page)) == TOTAL_STEPS and s["status"] == "done",
        90,
        f"the reloaded page's dashboard to show the whole run ({TOTAL_STEPS} steps, "
        f"data-status=done; reloaded {'during' if during else 'after'} training)",
        lambda: (
            f"state={read_state(page)}, prompts={live.prompts()}, "
            f"outputs={output_texts(page, 800)!r}"
        ),
        interval=0.5,
    )
    state = read_state(page)
    assert FINDING in state["findings"], f"finding {FINDING!r} missing after reload: {state}"
    severity, status = state["finding_attrs"][FINDING]
    assert severity in ("error", "warning", "info") and status in ("live", "resolved"), (
        f"finding {FINDING!r} has data-severity={severity!r} data-status={status!r}"
    )
    assert state["charts"] and all(n > 0 for n in state["charts"].values()), (
        f"empty charts in the {state['panel']!r} panel after reload: {state['charts']}"
    )
    shot(dash(page), "dashboard-reloaded.png")
    click_finding(page, FINDING)
    shot(dash(page), "dashboard.png")
    assert_no_page_errors(live.harness, "lab")


def test_notebook7_renders_the_dashboard(live, harness, jupyter):
    live.wait_finished()
    nb_file = jupyter.root / NB
    if "application/vnd.jupyter.widget-view+json" not in nb_file.read_text():
        save_notebook(live.page)
        wait_for(
            lambda: "application/vnd.jupyter.widget-view+json" in nb_file.read_text(),
            30,
            "the notebook to be saved with the dashboard's output",
        )
    page = harness.new_page("notebook7")
    open_notebook(page, jupyter.notebook7_url(NB))
    assert "/notebooks/" in page.url, f"not Notebook 7's page: {page.url}"
    wait_for(
        lambda: steps_of(read_state(page)) == TOTAL_STEPS,
        90,
        f"Notebook 7's dashboard to show the whole run ({TOTAL_STEPS} steps)",
        lambda: (
            f"state={read_state(page)}, outputs={output_texts(page, 800)!r}, "
            f"console={harness.console('notebook7')[-8:]}"
        ),
        interval=0.5,
    )
    state = read_state(page)
    assert state["status"] == "done" and FINDING in state["findings"], state
    click_finding(page, FINDING)
    shot(dash(page), "notebook7.png")
    assert_no_page_errors(harness, "notebook7")


def _open_report(harness, path, name):
    """Open an HTML report from file:// and fail on any request that leaves the file."""
    page = harness.new_page(name)
    remote = []
    page.on(
        "request",
        lambda r: remote.append(r.url) if not r.url.startswith(("file:", "blob:", "data:")) else 0,
    )
    dialogs = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    page.goto(path.as_uri(), wait_until="load", timeout=60_000)
    wait_for(
        lambda: steps_of(read_state(page, "")) is not None,
        60,
        f"the report {path.name} to render .bertlab-dashboard with a step counter",
        lambda: f"state={read_state(page, '')}, console={harness.console(name)[-8:]}",
    )
    return page, remote, dialogs


def test_html_report_opens_from_file_without_a_server(live, harness, jupyter):
    live.wait_finished()
    error = jupyter.root / "report_error.txt"
    assert not error.exists(), f"watch.to_html raised: {error.read_text()}"
    report = jupyter.root / "report.html"
    assert report.exists(), "watch.to_html('report.html') wrote no file"
    page, remote, _ = _open_report(harness, report, "report")
    state = read_state(page, "")
    assert steps_of(state) == TOTAL_STEPS, f"report steps {state['steps']} != {TOTAL_STEPS}"
    assert FINDING in state["findings"], f"finding {FINDING!r} missing in report: {state}"
    for name in PANELS:
        click_tab(page, name, "")
    click_finding(page, FINDING, "")
    shot(dash(page, ""), "report.png")
    assert_no_page_errors(harness, "report", anywhere=True)
    assert not remote, f"the report made requests beyond the file: {remote[:5]}"


def test_clicking_the_selected_finding_again_returns_to_its_panel(live, harness, jupyter):
    """The contract: a click on a finding activates its panel and shows its detail. That holds
    too when the finding is still the selected one and the user has moved to another tab
    since (checked in the HTML report: same front end, no kernel needed)."""
    live.wait_finished()
    page, _, _ = _open_report(harness, jupyter.root / "report.html", "report-reclick")
    click_finding(page, FINDING, "")
    other = next(p for p in PANELS if p != finding_panel(FINDING))
    click_tab(page, other, "")
    click_finding(page, FINDING, "")


def test_html_report_escapes_run_text(live, harness, tmp_path):
    """Class names, notes, the title and findings are text: markup in them is never parsed."""
    import bertlab

    live.wait_finished()
    run = bertlab.load(live.server.root / "run.bertlab")
    run.meta["class_names"] = ["alpha", XSS, "gamma", "delta"]
    run.note(f"note {XSS}")
    for f in run.findings:  # finding dicts, as the dashboard receives them
        f.update(title=f"{f['title']} {XSS}", evidence=f"{f['evidence']} {XSS}")
        f.update(explanation=f"{f['explanation']} {XSS}", fix=f"{f['fix']}\n{XSS}")
    path = tmp_path / "report-xss.html"
    run.to_html(path, title=f"run {XSS}")
    page, remote, dialogs = _open_report(harness, path, "report-xss")
    for name in PANELS:
        click_tab(page, name, "")
    click_finding(page, FINDING, "")
    page.wait_for_timeout(500)  # an injected onerror would fire by now
    injected = page.evaluate(
        "() => [...document.querySelectorAll('img, [onerror]')].map(e => e.outerHTML)"
    )
    assert not injected, f"markup from run text became elements: {injected}"
    assert not dialogs, f"run text executed script (alert dialogs: {dialogs})"
    text = page.evaluate("() => document.body.innerText")
    assert XSS in text, "the run's text (title, finding) is not shown literally as text"
    assert page.title().endswith(XSS), f"the <title> is not the literal title: {page.title()!r}"
    shot(dash(page, ""), "report-escaped.png")
    assert_no_page_errors(harness, "report-xss", anywhere=True)
    assert not remote, f"the report made requests beyond the file: {remote[:5]}"
