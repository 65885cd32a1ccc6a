"""bertlab.compare: runs overlaid in one widget, on real trainings (recording comm, no browser)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import embedding_classifier, token_data
from recording_comm import record_comms

import bertlab
from bertlab import runlog
from bertlab.views.compare import SERIES_POINTS, Comparison, series

ROOT = Path(__file__).resolve().parents[1]
XSS = "<img src=x onerror=alert(1)>"


class Pause(keras.callbacks.Callback):
    """Slower steps: the record is written in several parts (a prefix then holds some steps)."""

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.03)


def train(path, *, softmax: bool, lr: float, epochs=2, record=False):
    """A real small training; saved to ``path`` (a record while it trains when ``record``)."""
    keras.backend.clear_session()
    x, y, _ = token_data(n=256)
    model = embedding_classifier(activation="softmax" if softmax else None)
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    watch = bertlab.Watch(verbose=False, path=path if record else None, flush_every_s=0.05)
    callbacks = [watch, Pause()] if record else [watch]
    model.fit(
        x, y, batch_size=16, epochs=epochs, validation_split=0.25, callbacks=callbacks, verbose=0
    )
    if record:
        watch.recorder.close()
    else:
        watch.save(path)
    return watch.run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmp")
    broken = train(folder / "broken.bertlab", softmax=True, lr=1e-3)
    fixed = train(folder / "fixed.bertlab", softmax=False, lr=1e-2)
    return folder, broken, fixed


def test_series_are_the_runs_rows(runs):
    _, broken, _ = runs
    s = series(broken)
    assert s["step"] == list(range(broken.steps))  # fewer rows than SERIES_POINTS: all of them
    np.testing.assert_allclose(s["loss"], broken.column("loss"))
    np.testing.assert_allclose(s["grad_norm"], broken.column("grad_norm"))
    counts = broken.column("pred_count")
    np.testing.assert_allclose(s["top_share"], counts.max(1) / counts.sum(1))
    assert all(1 / 4 - 1e-9 <= v <= 1 for v in s["top_share"])


def test_long_runs_are_downsampled_to_means(runs):
    _, broken, _ = runs
    s = series(broken, max_points=10)
    assert len(s["loss"]) <= 10
    assert math.isclose(np.mean(s["loss"]), np.mean(broken.column("loss")), rel_tol=0.05)
    assert s["step"][0] > 0 and s["step"][-1] < broken.steps  # bucket means of step numbers
    assert SERIES_POINTS >= 1000


def test_comparison_widget_holds_both_runs_and_their_findings(runs, monkeypatch):
    comms = record_comms(monkeypatch)
    folder, broken, fixed = runs
    cmp = bertlab.compare(folder / "broken.bertlab", folder / "fixed.bertlab")
    assert isinstance(cmp, Comparison) and cmp.comm is comms[-1]
    (a, b) = cmp.runs
    assert (a["name"], b["name"]) == ("broken", "fixed")
    assert a["steps"] == broken.steps and b["steps"] == fixed.steps
    assert "double-softmax" in {f["code"] for f in a["findings"]}
    assert "double-softmax" not in {f["code"] for f in b["findings"]}
    assert [e["epoch"] for e in a["epochs"]] == [0, 1] and "val_loss" in a["epochs"][0]
    assert "Adam" in a["model"] and a["status"] == "done"
    json.dumps(cmp.runs, allow_nan=False)  # JSON-safe as sent
    state = comms[-1].messages[0][0]["state"]
    assert state["kind"] == "compare" and len(state["runs"]) == 2


def test_compare_follows_a_growing_run(runs, tmp_path, monkeypatch):
    record_comms(monkeypatch)
    folder, broken, _ = runs
    path = tmp_path / "live.bertlab"
    train(path, softmax=False, lr=1e-2, epochs=1, record=True)
    data = path.read_bytes()
    records, _, _ = runlog.split(data, len(runlog.HEADER))
    kinds = [kind for kind, _ in records]
    assert kinds.count(runlog.ROWS) >= 2, kinds
    first = kinds.index(runlog.ROWS) + 1
    cut = len(runlog.HEADER) + sum(9 + len(p) for _, p in records[:first])
    path.write_bytes(data[:cut])  # up to the first rows record
    followed = bertlab.follow(path, interval_s=3600)
    try:
        cmp = bertlab.compare(broken, followed, names=["broken", "followed"])
        before = cmp.runs[1]["steps"]
        with open(path, "ab") as fh:
            fh.write(data[cut:])
        followed.poll()  # the "status" event after a read resends the runs
        assert cmp.runs[1]["steps"] == followed.steps == 12 > before
        assert len(cmp.runs[1]["series"]["loss"]) == 12
        cmp.close()
        assert cmp._on_event not in followed.listeners
    finally:
        followed.stop_following()


def test_to_html_and_cli(runs, tmp_path):
    folder, broken, fixed = runs
    out = tmp_path / "cmp.html"
    bertlab.compare(broken, fixed, names=[XSS, "fixed"]).to_html(out)
    text = out.read_text()
    assert XSS not in text and "\\u003cimg" in text  # run text is escaped JSON
    assert '"kind": "compare"' in text
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "bertlab",
            "compare",
            str(folder / "broken.bertlab"),
            str(folder / "fixed.bertlab"),
            "--html",
            str(tmp_path / "cli.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stderr
    assert (
        f"broken: step {broken.steps}" in cli.stdout and f"fixed: step {fixed.steps}" in cli.stdout
    )
    assert (tmp_path / "cli.html").stat().st_size > 100_000  # the bundle is embedded


def test_magic_compare(runs, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    record_comms(monkeypatch)
    folder, broken, _ = runs
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bertlab")
    try:
        shell.user_ns["mine"] = broken
        cmp = shell.run_line_magic("bertlab", f"compare mine {folder / 'fixed.bertlab'}")
        assert [r["name"] for r in cmp.runs] == ["mine", "fixed"]
        assert cmp.runs[0]["steps"] == broken.steps
        with pytest.raises(ValueError, match="compare"):
            shell.run_line_magic("bertlab", "compare")
    finally:
        shell.run_line_magic("unload_ext", "bertlab")
        InteractiveShell.clear_instance()


def test_compare_rejects_what_is_not_a_run():
    with pytest.raises(TypeError, match="runs, watches or paths"):
        bertlab.compare(42)
    with pytest.raises(ValueError, match="at least one"):
        bertlab.compare()
