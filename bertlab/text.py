"""Plain-text views of a run, for scripts and terminals (no widgets, no framework)."""

from __future__ import annotations

import numpy as np

from bertlab.run import Run


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _share(counts: np.ndarray) -> str:
    total = counts.sum()
    if total <= 0:
        return "-"
    return " ".join(f"{100 * c / total:4.0f}%" for c in counts)


def summary(run: Run, window: int = 20) -> str:
    """A compact report of what was recorded: loss, gradients, predictions vs labels, validation.

    Parameters
    ----------
    run
        A live or loaded run.
    window
        How many of the latest steps the "latest" figures summarise.
    """
    lines = [
        f"bertlab run: {run.steps_trained} steps{run.rows_note()}, {len(run.epoch_records)} epochs"
    ]
    facts = run.meta.get("model", {})
    if facts:
        lines.append(
            f"  model {facts.get('model_class')}  loss {facts.get('loss')}"
            f" (from_logits={facts.get('from_logits')})  output {facts.get('output_activation')}"
            f"  optimizer {facts.get('optimizer')} lr {_fmt(facts.get('learning_rate') or np.nan)}"
        )
    if run.store is not None and run.steps:
        layout = run.layout
        loss = run.column("loss")
        grad = run.column("grad_norm")
        tail = slice(max(0, len(loss) - window), None)
        nonfinite = int(np.nansum(run.column("loss_nonfinite")))
        lines.append(
            f"  batch loss: first {_fmt(loss[0])}, latest {window} mean "
            f"{_fmt(np.nanmean(loss[tail]))}, min {_fmt(np.nanmin(loss))}, "
            f"non-finite steps {nonfinite}"
        )
        lines.append(
            f"  gradient norm: median {_fmt(np.nanmedian(grad))}, max {_fmt(np.nanmax(grad))}"
            f", zero-gradient variables (latest) {_fmt(run.column('grad_zero')[-1])}"
        )
        if len(layout.layers):
            norms = np.nanmedian(run.column("grad_layer_norm").reshape(len(loss), -1), axis=0)
            order = np.argsort(norms)[::-1]
            top = ", ".join(f"{layout.layers[i]} {_fmt(norms[i])}" for i in order[:3])
            lines.append(f"  largest layer gradients (median): {top}")
        if layout.n_classes:
            pred = run.column("pred_count").reshape(len(loss), -1)[tail].sum(0)
            true = run.column("label_count").reshape(len(loss), -1)[tail].sum(0)
            lines.append(f"  latest {window} steps, predicted share per class: {_share(pred)}")
            lines.append(f"  latest {window} steps, label share per class:     {_share(true)}")
    for rec in run.epoch_records:
        parts = [f"epoch {rec['epoch']}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in rec:
                parts.append(f"{key} {_fmt(rec[key])}")
        lines.append("  " + "  ".join(parts))
    last = run.epoch_records[-1] if run.epoch_records else {}
    if "val_confusion" in last:
        lines.append("  validation confusion (rows = true class, columns = predicted):")
        for i, row in enumerate(np.asarray(last["val_confusion"])):
            lines.append(f"    {i:>3} " + " ".join(f"{int(v):5d}" for v in row))
    live = [f for f in run.findings if f.get("status") == "live"]
    lines.append(f"  findings: {len(live)}" + ("" if live else " (none)"))
    for f in live:
        cause = f" (caused by {f['cause']})" if f.get("cause") else ""
        lines.append(f"    [{f['severity']}] {f['code']}: {f['title']}{cause}")
    for note in run.meta.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def follow_line(run: Run) -> str:
    """One status line of a followed run: status, steps, epochs, last batch loss."""
    status = getattr(run, "follow_status", "")
    parts = [f"[{status}]" if status else "", f"step {run.steps_trained}"]
    if run.epoch_records:
        parts.append(f"epochs {len(run.epoch_records)}")
    if run.steps:
        loss = run.column("loss")
        if len(loss):
            parts.append(f"loss {_fmt(float(loss[-1]))}")
    live = sum(f.get("status") == "live" for f in run.findings)
    parts.append(f"findings {live}")
    return " ".join(p for p in parts if p)
