"""The two phases of ``bertlab demo``: the forum's broken fine-tune, then the corrected one.

Each phase builds a fresh pretrained MiniLM classifier (``minilm.classifier``), trains it on
BBC News with a ``bertlab.Watch`` (Keras's own progress bar; Watch prints each new finding as
one line), measures test accuracy, and saves the run (``<out>/demo-<phase>.bertlab``) and a
standalone HTML report (``<out>/demo-<phase>.html``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertlab.demo import minilm


@dataclass
class PhaseResult:
    """What one phase produced."""

    setup: str
    watch: Any
    test_accuracy: float
    predicted_classes: int
    train_seconds: float
    total_seconds: float
    files: list[Path] = field(default_factory=list)


def root_cause(findings: list) -> Any:
    """The most fundamental live finding: what the symptoms point at.

    ``watch.findings`` is ordered cause first and each symptom names its ``cause``; the cause
    of the first symptom that has one is the root. Without linked symptoms it is the first
    finding, skipping those flagged ``not_a_cause`` (a softmax that Keras on TensorFlow silently
    bypasses: worth fixing, but it does not break this run).
    """
    by_code = {f.code: f for f in findings}
    for finding in findings:
        if finding.cause in by_code:
            return by_code[finding.cause]
    for finding in findings:
        if not finding.extra.get("not_a_cause"):
            return finding
    return findings[0] if findings else None


def run_phase(
    setup: str,
    data: minilm.BBCArrays,
    *,
    steps: int,
    epochs: int,
    batch_size: int,
    out: Path,
    num_layers: int | None = None,
    label: str = "",
) -> PhaseResult:
    """Fine-tune MiniLM in ``setup`` ("broken" or "fixed") with a Watch; save run and report."""
    import keras

    import bertlab

    start = time.perf_counter()
    chosen = minilm.SETUPS[setup]
    print(f"\n{label}{setup} setup: {chosen.description}", flush=True)
    print(
        f"{label}fine-tuning for {epochs} epoch(s) x {steps} steps of {batch_size} articles "
        f"(validation on {len(data.y_val)} articles after each epoch)",
        flush=True,
    )
    model = minilm.classifier(len(data.topics), setup, num_layers=num_layers)
    watch = bertlab.Watch(
        unk_token_id=minilm.UNK_ID, verbose=True, dashboard=False, class_names=list(data.topics)
    )
    fit_start = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        validation_batch_size=64,
        shuffle=True,
        callbacks=[watch],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.perf_counter() - fit_start
    logits = model.predict(data.x_test, batch_size=64, verbose=0)
    pred = np.asarray(logits).argmax(-1)
    accuracy = float((pred == data.y_test).mean())
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"demo-{setup}.bertlab"]
    watch.save(files[0])
    files.append(out / f"demo-{setup}.html")
    watch.to_html(files[-1])
    keras.backend.clear_session()
    total = time.perf_counter() - start
    print(
        f"{label}{setup} setup: trained in {train_seconds:.0f} s; test accuracy "
        f"{accuracy:.1%} on {len(pred)} articles, {len(np.unique(pred))} of "
        f"{len(data.topics)} topics ever predicted; phase took {total:.0f} s",
        flush=True,
    )
    return PhaseResult(setup, watch, accuracy, len(np.unique(pred)), train_seconds, total, files)


def describe_findings(result: PhaseResult) -> str:
    """The findings of a phase and its root cause, as printed after training."""
    findings = result.watch.findings
    if not findings:
        return f"findings ({result.setup} setup): none"
    lines = [f"findings ({result.setup} setup), most fundamental first:"]
    for f in findings:
        steps = f" (steps {f.steps[0]}–{f.steps[1]})" if f.steps else ""
        cause = f", caused by {f.cause}" if f.cause else ""
        lines.append(f"  [{f.severity}] {f.code}: {f.title}{steps}{cause}")
    root = root_cause(findings)
    if root is not None and result.setup == "broken":
        fix = root.fix.replace("\n", "\n       ")
        lines.append(f"root cause: [{root.code}] {root.title}")
        lines.append(f"  evidence: {root.evidence}")
        lines.append(f"  fix: {fix}")
    return "\n".join(lines)
