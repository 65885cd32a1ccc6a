"""Train anywhere, watch in the notebook: a followed run and a comparison in a real JupyterLab.

The notebook starts two trainings as separate processes (``Watch(path=...)``): a short one it
waits for (``saved.bertlab``), and a longer one left running (``live.bertlab``, a softmax head +
``from_logits=True``: ``double-softmax`` from step 0). Then ``%bertlab open --follow`` shows the
live record and ``bertlab.compare`` overlays both. Every cell has ended by then: the kernel is
idle, and what moves in the page comes from the follower's thread.

1. the followed dashboard's step counter grows while no cell runs, and ends "done";
2. the comparison shows both runs (charts, steps per run, findings grouped by run), and the
   live run's steps grow in it too.

Screenshots: ``test-artifacts/browser/follow.png`` and ``compare.png``.
"""

from __future__ import annotations

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
    wait_for,
    wait_kernel_ready,
    write_notebook,
)

NB = "follow_compare.ipynb"
#: The live child's epochs x 64 steps, each slowed to ~60 ms: ~40 s of training.
LIVE_EPOCHS = 10
APPEAR_TIMEOUT = 240
TRAIN_TIMEOUT = 300

CHILD = """\
import sys, time
import keras, numpy as np
import bertlab

path, epochs, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = np.random.default_rng(0)
y = rng.integers(0, 4, size=512)
x = rng.integers(5, 300, size=(512, 16)).astype("int32")
x[:, 0] = 1 + y
model = keras.Sequential([keras.Input((16,), dtype="int32"), keras.layers.Embedding(300, 16),
                          keras.layers.GlobalAveragePooling1D(),
                          keras.layers.Dense(4, activation="softmax")])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])

class Pause(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(pause)

watch = bertlab.Watch(verbose=False, path=path, flush_every_s=0.5)
model.fit(x, y, batch_size=8, epochs=epochs, validation_split=0.0,
          callbacks=[watch, Pause()], verbose=0)
"""

START = f"""\
import subprocess, sys
from pathlib import Path
Path("child.py").write_text({CHILD!r})
subprocess.run([sys.executable, "child.py", "saved.bertlab", "2", "0"], check=True)
live = subprocess.Popen([sys.executable, "child.py", "live.bertlab", "{LIVE_EPOCHS}", "0.06"])
"""
FOLLOW = """\
%load_ext bertlab
%bertlab open --follow live.bertlab
"""
COMPARE = """\
import bertlab
cmp = bertlab.compare("saved.bertlab", bertlab_followed, names=["saved", "live"])
cmp
"""


@pytest.fixture(scope="module")
def page(harness, jupyter):
    if not (ROOT / "bertlab" / "static" / "dashboard.js").exists():
        pytest.fail("bertlab/static/dashboard.js is missing: build the front end", pytrace=False)
    write_notebook(jupyter, NB, [START, FOLLOW, COMPARE])
    page = harness.new_page("follow", keep=True)
    open_notebook(page, jupyter.lab_url(NB))
    wait_kernel_ready(page, jupyter, NB)
    run_all(page)
    wait_for(
        lambda: page.locator(".jp-OutputArea-output .bertlab-compare").count() > 0,
        APPEAR_TIMEOUT,
        "the comparison (the last cell's output) to appear",
        lambda: f"prompts={prompts(page)}, outputs={output_texts(page, 1500)!r}",
        interval=0.5,
    )
    yield page
    jupyter.shutdown_kernel(NB)


def followed_state(page) -> dict | None:
    return page.evaluate(
        """() => {
        const out = '.jp-OutputArea-output ';
        const root = document.querySelector(out + '.bertlab-dashboard:not(.bertlab-compare)');
        if (!root) return null;
        return {status: root.getAttribute('data-status'),
                steps: Number(root.querySelector('[data-role="steps"]').textContent),
                findings: [...root.querySelectorAll('.bertlab-finding')].map(e => e.dataset.code)};
    }"""
    )


def compare_state(page) -> dict | None:
    return page.evaluate(
        """() => {
        const root = document.querySelector('.jp-OutputArea-output .bertlab-compare');
        if (!root) return null;
        const charts = {};
        for (const c of root.querySelectorAll('.bertlab-chart')) {
            charts[c.dataset.chart] = Number(c.dataset.points);
        }
        const groups = [...root.querySelectorAll('.bertlab-compare-group')].map(g => ({
            title: g.querySelector('.bertlab-sidebar-title').textContent,
            findings: [...g.querySelectorAll('.bertlab-finding')].map(e => e.dataset.code)}));
        const steps = [...root.querySelectorAll('[data-role="run-steps"]')]
            .map(e => Number(e.textContent));
        return {runs: Number(root.dataset.runs), charts, groups, steps,
                plots: root.querySelectorAll('.bertlab-plot .main-svg').length};
    }"""
    )


def test_followed_run_streams_while_the_kernel_is_idle(page, harness):
    wait_for(
        lambda: (
            execution_status(page) == "idle" and all(not p.startswith("[*]") for p in prompts(page))
        ),
        60,
        "every cell to end (the kernel idle)",
        lambda: f"prompts={prompts(page)}",
    )
    seen = []
    deadline = time.monotonic() + TRAIN_TIMEOUT
    while time.monotonic() < deadline:
        state = followed_state(page)
        if state:
            seen.append(state)
            if state["status"] == "done":
                break
        time.sleep(1.0)
    assert execution_status(page) == "idle"  # no cell ran while the counter moved
    counts = [s["steps"] for s in seen]
    growing = sorted(set(counts))
    assert len(growing) >= 3, f"the step counter did not grow while idle: {counts}"
    assert counts == sorted(counts)
    assert seen[-1]["status"] == "done", seen[-1]
    assert seen[-1]["steps"] == LIVE_EPOCHS * 64
    assert "double-softmax" in seen[-1]["findings"]
    assert any(s["status"] == "running" for s in seen)
    page.locator(".jp-OutputArea-output .bertlab-dashboard").first.screenshot(
        path=str(ARTIFACTS / "follow.png")
    )
    assert not [line for line in harness.console("follow") if "[pageerror]" in line]


def test_comparison_overlays_both_runs_and_groups_findings(page):
    state = wait_for(
        lambda: (
            (s := compare_state(page)) and s["steps"] and s["steps"][1] == LIVE_EPOCHS * 64 and s
        ),
        TRAIN_TIMEOUT,
        "the comparison's live run to reach its last step",
        lambda: f"{compare_state(page)}",
        interval=1.0,
    )
    assert state["runs"] == 2 and state["steps"][0] == 2 * 64
    for chart in ("loss", "grad_norm", "top_share"):
        assert state["charts"][chart] == 2 * 64  # the first run's points
    assert state["charts"]["epoch_loss"] > 0 and state["plots"] >= 5  # plotly drew them
    assert [g["title"] for g in state["groups"]] == ["saved", "live"]
    for group in state["groups"]:
        assert "double-softmax" in group["findings"]
    live = page.locator(
        '.jp-OutputArea-output .bertlab-compare-group[data-run="1"] .bertlab-finding'
    ).first
    live.click()
    detail = page.locator(
        '.jp-OutputArea-output .bertlab-compare-group[data-run="1"] .bertlab-finding-detail'
    )
    wait_for(lambda: detail.count() > 0 and detail.first.is_visible(), 10, "the finding's detail")
    page.locator(".jp-OutputArea-output .bertlab-compare").first.screenshot(
        path=str(ARTIFACTS / "compare.png")
    )
