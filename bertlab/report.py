"""``run.to_markdown()``: a run as Markdown to paste into a forum post or an issue.

Text only (no images): the model and training setup in a few lines, each live finding with its
evidence, cause, explanation and fix, then a compact summary of the loss per epoch and of the
predicted vs true class shares. What a helper on a forum asks for first ("which loss, which
activation, which learning rate, what does the loss do, what does it predict"), in one block.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bertlab.run import Run

#: Steps the "latest" figures summarise.
WINDOW = 20
_EPOCH_KEYS = ("loss", "val_loss", "accuracy", "val_accuracy")


def _num(value: Any) -> str:
    """A number as a short string (``n/a`` when missing, ``nan``/``inf`` as such)."""
    if value is None:
        return "n/a"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.4g}"


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def setup_lines(run: Run) -> list[str]:
    """The model and training setup, from ``run.meta["model"]`` and the recorded rows."""
    m = run.meta.get("model", {})
    if not m:
        return ["- model: not recorded (no training started)"]
    lines = [
        f"- model: `{m.get('model_class')}` ({m.get('framework', 'keras')}, backend "
        f"{m.get('backend')}), {_num(m.get('params_total'))} parameters, "
        f"{_num(m.get('params_trainable'))} trainable",
        f"- loss: `{m.get('loss')}` (from_logits={m.get('from_logits')}"
        + (f", label_smoothing={m['label_smoothing']}" if m.get("label_smoothing") else "")
        + f"); output activation: `{m.get('output_activation')}`",
        f"- optimizer: `{m.get('optimizer')}`, learning rate {_num(m.get('learning_rate'))}"
        + (f" (schedule `{m['lr_schedule']}`)" if m.get("lr_schedule") else ""),
    ]
    layout = run.layout
    if layout is not None:
        names = run.meta.get("class_names")
        classes = f", {layout.n_classes} classes" if layout.n_classes else ""
        if names:
            classes += (
                " ("
                + ", ".join(str(n) for n in names[:12])
                + ("…" if len(names) > 12 else "")
                + ")"
            )
        lines.append(f"- task: {layout.task}{classes}")
    training = (
        f"- training: {run.steps_trained} steps{run.rows_note()}, {len(run.epoch_records)} epochs"
    )
    if run.steps and "batch_size" in dict(run.store.channels):
        training += f", batch size {_num(np.nanmedian(run.column('batch_size')))}"
    if m.get("metrics"):
        training += ", metrics " + ", ".join(f"`{x}`" for x in m["metrics"])
    lines.append(training)
    if run.meta.get("error"):
        lines.append(f"- training raised: `{run.meta['error'][:200]}`")
    return lines


def finding_lines(finding: dict[str, Any], number: int) -> list[str]:
    """One live finding: headline, evidence, cause, explanation, fix (as a code block)."""
    steps = finding.get("steps")
    where = f" (steps {steps[0]}–{steps[1]})" if steps else ""
    lines = [
        f"{number}. **[{finding.get('severity')}] `{finding.get('code')}`: "
        f"{finding.get('title')}**{where}",
        f"   - evidence: {finding.get('evidence')}",
    ]
    if finding.get("cause"):
        lines.append(f"   - cause: `{finding['cause']}` (listed above; fix that first)")
    lines.append(f"   - why: {finding.get('explanation')}")
    fix = str(finding.get("fix") or "").strip()
    lines += ["   - fix:", "", "     ```"]
    lines += [f"     {line}" for line in fix.splitlines()]
    lines += ["     ```", ""]
    return lines


def loss_lines(run: Run) -> list[str]:
    """Batch loss summary and the per-epoch table."""
    lines = []
    if run.steps:
        loss = run.column("loss")
        tail = loss[-WINDOW:]
        finite = loss[np.isfinite(loss)]
        nonfinite = int(np.sum(~np.isfinite(loss)))
        latest = np.nanmean(tail) if np.isfinite(tail).any() else float("nan")
        lowest = finite.min() if len(finite) else None
        lines.append(
            f"Batch loss: first {_num(loss[0])}, min {_num(lowest)}, mean of the last "
            f"{len(tail)} steps {_num(latest)}, non-finite at {nonfinite} of the {len(loss)} "
            "steps held at full resolution."
        )
        n = run.layout.n_classes if run.layout is not None else 0
        if n > 1:
            lines.append(f"(A model that learned nothing sits near ln {n} = {math.log(n):.3f}.)")
    keys = [k for k in _EPOCH_KEYS if any(k in r for r in run.epoch_records)]
    if keys:
        lines += ["", "| epoch | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for r in run.epoch_records:
            lines.append(f"| {r.get('epoch')} | " + " | ".join(_num(r.get(k)) for k in keys) + " |")
    return lines


def class_lines(run: Run) -> list[str]:
    """Predicted vs true class shares over the latest steps, and the last validation."""
    layout = run.layout
    if layout is None or not layout.n_classes or not run.steps:
        return []
    names = run.meta.get("class_names") or list(range(layout.n_classes))
    pred = np.nansum(run.column("pred_count").reshape(-1, layout.n_classes)[-WINDOW:], axis=0)
    true = np.nansum(run.column("label_count").reshape(-1, layout.n_classes)[-WINDOW:], axis=0)
    last = run.epoch_records[-1] if run.epoch_records else {}
    val_pred, val_true = last.get("val_pred_count"), last.get("val_label_count")
    has_val = val_pred is not None and val_true is not None
    head = f"| class | predicted, last {WINDOW} steps | true, last {WINDOW} steps |"
    lines = ["", head + (" predicted, validation | true, validation |" if has_val else "")]
    lines.append("|---|---|---|" + ("---|---|" if has_val else ""))
    share = lambda c, i: f"{100 * c[i] / c.sum():.0f} %" if c.sum() > 0 else "-"  # noqa: E731
    for i in range(min(layout.n_classes, 30)):
        row = (
            f"| {_cell(names[i] if i < len(names) else i)} | {share(pred, i)} | {share(true, i)} |"
        )
        if has_val:
            vp, vt = np.asarray(val_pred, float), np.asarray(val_true, float)
            row += f" {share(vp, i)} | {share(vt, i)} |"
        lines.append(row)
    if layout.n_classes > 30:
        lines.append(f"| … {layout.n_classes - 30} more classes | | |")
    return lines


def markdown(run: Run, title: str | None = None) -> str:
    """The whole report as Markdown (see the module docstring)."""
    model = run.meta.get("model", {}).get("model_class") or "run"
    lines = [f"### bertlab report: {title or model}", "", "**Setup**", "", *setup_lines(run), ""]
    live = [f for f in run.findings if f.get("status") == "live"]
    resolved = [f for f in run.findings if f.get("status") == "resolved"]
    lines.append(
        f"**Findings** ({len(live)} live, most fundamental cause first)"
        if live
        else "**Findings**: none"
    )
    lines.append("")
    for i, finding in enumerate(live, 1):
        lines += finding_lines(finding, i)
    if resolved:
        codes = ", ".join(f"`{f.get('code')}`" for f in resolved)
        lines += [f"Resolved during training (held for a while, then stopped): {codes}", ""]
    lines += ["**Loss**", "", *loss_lines(run), ""]
    classes = class_lines(run)
    if classes:
        lines += ["**Predicted vs true classes** (share of rows)", *classes, ""]
    for note in run.meta.get("notes", []):
        lines.append(f"_note: {note}_")
    lines.append("_Recorded with bertlab._")
    return "\n".join(lines).rstrip() + "\n"
