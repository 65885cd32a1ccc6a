"""run.to_markdown() and `bertlab report RUN --markdown` on a real saved run."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from conftest import embedding_classifier, token_data

import bertlab
from bertlab.report import finding_lines

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["sport", "tech|science", "politics", "business"]  # a pipe: table cells escape it


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A double-softmax classifier trained with validation, saved and reloaded (ZIP file)."""
    keras.backend.clear_session()
    x, y, _ = token_data(n=320, k=4)
    model = embedding_classifier(k=4, activation="softmax")
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    watch = bertlab.Watch(verbose=False, class_names=NAMES)
    model.fit(x, y, batch_size=16, epochs=3, validation_split=0.2, callbacks=[watch], verbose=0)
    path = tmp_path_factory.mktemp("report") / "run.bertlab"
    watch.save(path)
    return path, bertlab.load(path)


def test_markdown_has_setup_findings_and_summaries(saved):
    _, run = saved
    text = run.to_markdown()
    facts = run.meta["model"]
    assert text.startswith("### bertlab report: Sequential\n")
    assert f"`{facts['loss']}` (from_logits=True); output activation: `softmax`" in text
    assert f"`Adam`, learning rate {facts['learning_rate']:.4g}" in text
    assert f"{facts['params_total']:,} parameters" in text or str(facts["params_total"]) in text
    assert f"- training: {run.steps} steps, 3 epochs, batch size 16, metrics `accuracy`" in text
    live = [f for f in run.findings if f["status"] == "live"]
    assert live and "double-softmax" in {f["code"] for f in live}
    assert f"**Findings** ({len(live)} live" in text
    for i, finding in enumerate(live, 1):
        assert f"{i}. **[{finding['severity']}] `{finding['code']}`: {finding['title']}**" in text
        assert f"   - evidence: {finding['evidence']}" in text
        for line in finding["fix"].strip().splitlines():
            assert f"     {line}" in text  # the fix, verbatim, in a code block
    # loss: first batch loss and the per-epoch table with train and validation columns
    assert f"Batch loss: first {run.column('loss')[0]:.4g}" in text
    assert f"ln 4 = {math.log(4):.3f}" in text
    assert "| epoch | loss | val_loss | accuracy | val_accuracy |" in text
    for record in run.epoch_records:
        assert f"| {record['epoch']} | {record['loss']:.4g} | {record['val_loss']:.4g} |" in text
    # classes: names (pipes escaped), predicted vs true shares, validation columns
    assert "| tech\\|science |" in text and "predicted, validation" in text
    pred = run.column("pred_count")[-20:].sum(0)
    assert f"| sport | {100 * pred[0] / pred.sum():.0f} % |" in text
    assert "<img" not in text and "![" not in text  # text only


def test_cause_is_named(saved):
    _, run = saved
    finding = dict(run.findings[0], cause="high-learning-rate")
    lines = finding_lines(finding, 2)
    assert lines[0].startswith("2. **[")
    assert "   - cause: `high-learning-rate` (listed above; fix that first)" in lines


def test_cli_report_markdown_equals_to_markdown(saved):
    path, run = saved
    out = subprocess.run(
        [sys.executable, "-m", "bertlab", "report", str(path), "--markdown"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == run.to_markdown()
    plain = subprocess.run(
        [sys.executable, "-m", "bertlab", "report", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert plain.returncode == 0 and f"bertlab run: {run.steps} steps" in plain.stdout
    assert re.search(r"fix: ", plain.stdout)


def test_a_run_without_steps_still_reports(tmp_path):
    run = bertlab.Run()
    text = run.to_markdown()
    assert "model: not recorded" in text and "**Findings**: none" in text
    nan_run = bertlab.Run(meta={"notes": ["the backend is not instrumented"]})
    assert "_note: the backend is not instrumented_" in nan_run.to_markdown()
