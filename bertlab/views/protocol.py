"""The dashboard's wire format: the one place that turns a ``Run`` into what the browser gets.

Python only ever pushes (the kernel is busy while ``fit`` runs, so the browser cannot ask). Two
paths carry the same data, described in ``js/README.md`` and decoded by ``js/src/protocol.js``:

* **custom messages** while training: ``meta`` once, then ``steps`` deltas (only the rows new
  since the last message, as one float32 column-major binary buffer), ``epoch`` records,
  ``findings`` when they changed, ``status``;
* **widget state** (what a reloaded page or a reopened notebook sees): the same ``meta``,
  ``findings``, ``epochs`` and a ``snapshot`` of the whole run downsampled to at most
  ``SNAPSHOT_ROWS`` rows.

Everything here is JSON-safe: non-finite floats become ``None`` in JSON (a NaN loss is carried in
the binary buffers, where float32 NaN is exact), numpy values become Python numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bertlab.run import Run
from bertlab.store import Delta

#: Rows of the downsampled whole-run snapshot kept in widget state (≈ 4 bytes x D x this).
SNAPSHOT_ROWS = 1024
#: Keys of a finding dict that reach the browser (``extra`` holds rule internals).
FINDING_KEYS = (
    "code",
    "severity",
    "title",
    "evidence",
    "explanation",
    "fix",
    "steps",
    "panel",
    "cause",
    "status",
)
_MODEL_KEYS = (
    "model_class",
    "loss",
    "from_logits",
    "label_smoothing",
    "output_activation",
    "optimizer",
    "learning_rate",
    "lr_schedule",
    "params_total",
    "params_trainable",
    "backend",
)


def jsonable(value: Any) -> Any:
    """``value`` with numpy types and arrays made plain and non-finite floats made ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def meta(run: Run) -> dict[str, Any]:
    """What the front end needs to name the columns: channels, labels, task, class names."""
    layout = run.layout
    if layout is None or run.store is None:
        return {}
    labels = {name: layout.labels(name) for name, width in run.store.channels if width > 1}
    class_names = run.meta.get("class_names")
    if class_names and len(class_names) == layout.n_classes and layout.task != "binary":
        labels["pred_count"] = labels["label_count"] = [str(c) for c in class_names]
    facts = run.meta.get("model", {})
    return jsonable(
        {
            "channels": [[name, width] for name, width in run.store.channels],
            "labels": labels,
            "hist_edges": list(layout.hist_edges),
            "len_edges": list(getattr(layout, "len_edges", ()) or ()),
            "task": layout.task,
            "prob_mode": layout.prob_mode,
            "n_classes": layout.n_classes,
            "class_names": class_names,
            "model": {key: facts.get(key) for key in _MODEL_KEYS},
            "metrics": facts.get("metrics") or [],
            # steps recorded when this was made (a downsampled snapshot's last step is a mean)
            "steps": run.steps_trained,
        }
    )


def columns(rows: np.ndarray) -> bytes:
    """Rows (n, D) as float32 bytes, column-major (channel blocks of n values each)."""
    return np.ascontiguousarray(np.asarray(rows, dtype=np.float32).T).tobytes()


def steps_message(delta: Delta) -> tuple[dict[str, Any], list[bytes]]:
    """The ``steps`` message for the rows ``[delta.start, delta.stop)``."""
    content = {
        "type": "steps",
        "start": int(delta.start),
        "stop": int(delta.stop),
        "columns": int(delta.rows.shape[1]),
    }
    return content, [columns(delta.rows)]


def snapshot(run: Run, max_rows: int = SNAPSHOT_ROWS) -> tuple[int, bytes, int]:
    """The whole run downsampled to at most ``max_rows`` rows.

    Returns ``(rows, buffer, cursor)``: old history is already bucketed by the store (bucket
    means); if archive + recent rows are still more than ``max_rows``, neighbouring rows are
    merged into count-weighted means. A NaN in a merged row stays NaN, so a non-finite loss
    still shows. ``cursor`` is the number of steps the snapshot covers.
    """
    if run.store is None or run.steps == 0:
        return 0, b"", 0
    archive = run.store.archive()
    recent = run.store.recent()
    data = np.concatenate([archive.mean, recent.rows], axis=0)
    counts = np.concatenate([archive.count, np.ones(len(recent.rows), dtype=np.int64)])
    n = len(data)
    if n > max_rows:
        groups = -(-n // max_rows)
        starts = np.arange(0, n, groups)
        weights = counts.astype(np.float64)[:, None]
        sums = np.add.reduceat(data * weights, starts, axis=0)
        data = sums / np.add.reduceat(weights, starts, axis=0)
    return len(data), columns(data), int(run.store.cursor)


def findings(run: Run) -> list[dict[str, Any]]:
    """Every finding of the run (live ones first, then resolved), as the sidebar lists them."""
    ordered = sorted(run.findings, key=lambda f: f.get("status") != "live")
    return [jsonable({key: f.get(key) for key in FINDING_KEYS}) for f in ordered]


def verdict(run: Run) -> str:
    """The one-sentence verdict over the run's findings (top of the sidebar)."""
    from bertlab.verdict import verdict as judge

    return judge(run.findings, run.steps)


def epochs(run: Run) -> list[dict[str, Any]]:
    """The per-epoch records (Keras logs + validation summaries) as JSON."""
    return [jsonable(record) for record in run.epoch_records]


def status(run: Run) -> str:
    """A followed run's status (``bertlab.follow``: "running", "stopped, last write N s ago",
    ...); else ``"error"`` if ``fit`` raised, else ``"done"`` (a live run's "running" is
    tracked by the ``Dashboard``)."""
    followed = getattr(run, "follow_status", None)
    if isinstance(followed, str):
        return followed
    return "error" if run.meta.get("error") else "done"


def state(run: Run, status_text: str | None = None, title: str = "") -> dict[str, Any]:
    """The full widget state for ``run`` (also what ``to_html`` embeds)."""
    rows, buffer, cursor = snapshot(run)
    return {
        "meta": meta(run),
        "findings": findings(run),
        "verdict": verdict(run),
        "epochs": epochs(run),
        "snapshot": buffer,
        "snapshot_rows": rows,
        "status": status_text or status(run),
        "title": title,
    }
