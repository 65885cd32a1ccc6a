"""The dashboard's message protocol, checked with a recording comm (no Jupyter, no browser).

What must hold (issue 4): each update sends only the rows new since the last one, as one
binary float32 buffer (never the whole history, never JSON lists), so bytes per update stay flat
as the run grows; a client that fell behind the ring gets a snapshot instead; a reloaded page
(state request) gets the whole run; the traits are set once at train end; a fault in the
dashboard never reaches training. Browser-side decoding is tested in js/test/.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import embedding_classifier, token_data
from recording_comm import record_comms
from training import sparse_ce

import bertlab
from bertlab.guard import BertlabWarning
from bertlab.layout import Layout
from bertlab.run import Run
from bertlab.views import protocol
from bertlab.views.dashboard import Dashboard


@pytest.fixture()
def comms(monkeypatch):
    return record_comms(monkeypatch)


def _decode(buffer: bytes, columns: int) -> np.ndarray:
    """Inverse of the wire format: float32 column-major -> rows (n, D)."""
    flat = np.frombuffer(buffer, dtype=np.float32)
    return flat.reshape(columns, -1).T


def _synthetic_run(budget_bytes: int = 64 * 2**20) -> Run:
    run = Run(budget_bytes=budget_bytes)
    run.set_layout(Layout("multiclass", 3, ("embedding", "dense")))
    return run


def _rows(run: Run, start: int, n: int, rng) -> np.ndarray:
    rows = rng.random((n, run.store.width))
    rows[:, 0] = start + np.arange(n)  # step
    return rows


def test_each_update_sends_only_new_rows_and_bytes_stay_flat(comms):
    run = _synthetic_run()
    dash = Dashboard(run, throttle_s=0.0)
    rng = np.random.default_rng(0)
    sent = []
    for chunk in range(200):
        rows = _rows(run, chunk * 10, 10, rng)
        run.add_steps(rows)
        sent.append(rows)
    steps = dash.comm.custom("steps")
    assert len(steps) == 200
    width = run.store.width
    cursor = 0
    for (content, buffers), rows in zip(steps, sent, strict=True):
        assert (content["start"], content["stop"]) == (cursor, cursor + 10)
        assert content["columns"] == width
        assert len(buffers) == 1 and len(buffers[0]) == 10 * width * 4  # flat: 10 new rows
        np.testing.assert_array_equal(_decode(buffers[0], width), rows.astype(np.float32))
        cursor = content["stop"]
    # The JSON part carries no data arrays.
    assert all(len(json.dumps(content)) < 200 for content, _ in steps)


def test_updates_are_throttled_and_flushed_at_epoch_and_train_end(comms):
    run = _synthetic_run()
    dash = Dashboard(run, throttle_s=3600.0)
    rng = np.random.default_rng(1)
    run.add_steps(_rows(run, 0, 5, rng))  # first update goes out at once
    for i in range(1, 20):
        run.add_steps(_rows(run, 5 * i, 5, rng))
    assert len(dash.comm.custom("steps")) == 1  # the rest waits for the throttle
    run.add_epoch({"epoch": 0, "steps": run.steps, "loss": 1.0, "val_loss": float("nan")})
    steps = dash.comm.custom("steps")
    assert len(steps) == 2 and steps[-1][0]["stop"] == 100
    ((epoch, _),) = dash.comm.custom("epoch")
    assert epoch["record"] == {"epoch": 0, "steps": 100, "loss": 1.0, "val_loss": None}
    run.add_steps(_rows(run, 100, 3, rng))
    run.end()
    assert dash.comm.custom("steps")[-1][0]["stop"] == 103
    assert dash.comm.custom("status")[-1][0]["status"] == "done"
    # At the end the synced traits hold the whole run, so a saved notebook reopens with it.
    assert dash.snapshot_rows == 103 and dash.status == "done"
    np.testing.assert_allclose(_decode(dash.snapshot, run.store.width)[:, 0], np.arange(103))


def test_a_client_behind_the_ring_gets_a_snapshot_and_reload_gets_the_whole_run(comms):
    run = _synthetic_run(budget_bytes=2**16)  # tiny ring: old rows move to the archive
    dash = Dashboard(run, throttle_s=3600.0)
    rng = np.random.default_rng(2)
    run.add_steps(_rows(run, 0, 1, rng))
    for i in range(50):
        run.add_steps(_rows(run, 1 + 100 * i, 100, rng))
    dash.flush()
    content, buffers = dash.comm.custom()[-1]
    assert content["type"] == "snapshot" and content["cursor"] == run.steps
    assert content["rows"] <= protocol.SNAPSHOT_ROWS
    snap = _decode(buffers[0], run.store.width)
    assert snap.shape[0] == content["rows"]
    # covers the whole run: old rows as bucket means, the newest at full resolution
    assert snap[0, 0] < run.steps / 10 and snap[-1, 0] == run.steps - 1
    # A page reload asks for state: it gets the run so far though no trait was resent.
    assert dash.snapshot == b""
    state = dash.get_state()
    assert state["snapshot_rows"] == content["rows"]
    assert _decode(state["snapshot"], run.store.width)[-1, 0] == run.steps - 1


def test_live_training_streams_meta_rows_findings_and_restores_on_reload(comms):
    x, y, _ = token_data(n=192, k=4)
    model = embedding_classifier(k=4, activation="softmax")
    model.compile(optimizer="adam", loss=sparse_ce(from_logits=True), metrics=["accuracy"])
    watch = bertlab.Watch(verbose=False, dashboard=False, class_names=["a", "b", "<c>", "d"])
    dash = watch.dashboard
    dash.throttle_s = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, epochs=2, batch_size=32, callbacks=[watch], verbose=0)
    kinds = [content["type"] for content, _ in dash.comm.custom()]
    assert kinds[0] == "status" and kinds.index("meta") < kinds.index("steps")
    ((meta, _),) = dash.comm.custom("meta")
    names = [name for name, _ in meta["meta"]["channels"]]
    assert names == [name for name, _ in watch.run.store.channels]
    assert meta["meta"]["labels"]["pred_count"] == ["a", "b", "<c>", "d"]
    steps = dash.comm.custom("steps")
    assert steps[-1][0]["stop"] == watch.run.steps == 12
    streamed = np.concatenate([_decode(b[0], c["columns"]) for c, b in steps])
    np.testing.assert_allclose(streamed, watch.run.store.recent().rows.astype(np.float32))
    findings = dash.comm.custom("findings")[-1][0]["findings"]
    assert "double-softmax" in {f["code"] for f in findings}
    assert set(findings[0]) == set(protocol.FINDING_KEYS)
    assert len(dash.comm.custom("epoch")) == 2
    assert dash.status == "done" and dash.snapshot_rows == 12
    assert [f["code"] for f in dash.findings] == [f["code"] for f in findings]


def test_a_dashboard_fault_is_reported_once_and_training_goes_on(comms, monkeypatch):
    x, y, _ = token_data(n=128, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce(), metrics=["accuracy"])
    watch = bertlab.Watch(verbose=False, dashboard=False)
    dash = watch.dashboard
    dash.throttle_s = 0.0

    def broken(*args, **kwargs):
        raise RuntimeError("front end went away")

    monkeypatch.setattr(dash, "flush", broken)
    with pytest.warns(BertlabWarning, match="dashboard stopped") as caught:
        model.fit(x, y, epochs=2, batch_size=32, callbacks=[watch], verbose=0)
    assert sum("dashboard" in str(w.message) for w in caught) == 1
    assert watch.run.steps == 8  # recording went on after the dashboard stopped
    assert dash._on_event not in watch.run.listeners


def test_html_report_escapes_run_text(tmp_path):
    from bertlab.views import html as report

    if not report.STATIC.joinpath("dashboard.js").exists():
        pytest.fail("bertlab/static/dashboard.js is not built (pip install -e . builds it)")
    run = _synthetic_run()
    evil = "</script><img src=x onerror=alert(1)>"
    run.meta["class_names"] = [evil, "b", "c"]
    run.add_steps(_rows(run, 0, 20, np.random.default_rng(3)))
    run.findings = [
        {
            "code": "nan-loss",
            "severity": "error",
            "title": evil,
            "evidence": "loss & <b>NaN</b>",
            "explanation": "x",
            "fix": "y",
            "steps": [3, 7],
            "panel": "overview",
            "cause": None,
            "status": "live",
        }
    ]
    path = run.to_html(tmp_path / "report.html", title=evil)
    text = path.read_text(encoding="utf-8")
    assert "<img" not in text and "<b>NaN" not in text
    assert text.count("</script>") == 3  # the three script elements of the template, no more
    start = text.index('id="bertlab-state">') + len('id="bertlab-state">')
    state = json.loads(text[start : text.index("</script>", start)])
    assert state["findings"][0]["title"] == evil
    assert state["meta"]["labels"]["pred_count"][0] == evil
    assert state["snapshot_rows"] == 20
