"""The record of one training run: metadata, per-step rows, per-epoch summaries, findings.

A ``Run`` is what every adapter feeds (the Keras ``Watch`` today, a PyTorch adapter later) and
what the rules and the dashboard read. It never imports a training framework. A saved run
(``Run.save`` / ``bertlab.load``) reopens as a ``Run`` with the same ``history``/``epochs``
tables as the live one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.runfile import RunFileError, load_run, save_run
from bertlab.store import RunStore

#: Memory budget of the per-step store (recent rows at full resolution + downsampled archive).
DEFAULT_BUDGET_BYTES = 64 * 2**20


class Run:
    """A training run as bertlab records it.

    Attributes
    ----------
    meta
        JSON-able metadata: ``model`` (ModelFacts as a dict), ``layout``, ``inputs`` and other
        trace-time facts, ``notes`` (what could not be recorded and why), ``started``.
    store
        The per-step rows (``None`` until the first step is recorded).
    epoch_records
        One dict per finished epoch: Keras's epoch logs plus validation summaries.
    findings
        Diagnoses as dicts (filled by the rules).
    """

    def __init__(
        self,
        meta: dict[str, Any] | None = None,
        store: RunStore | None = None,
        epoch_records: list[dict[str, Any]] | None = None,
        findings: list[dict[str, Any]] | None = None,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.meta: dict[str, Any] = meta if meta is not None else {"notes": []}
        self.meta.setdefault("notes", [])
        self.store = store
        self.epoch_records: list[dict[str, Any]] = epoch_records or []
        self.findings: list[dict[str, Any]] = findings or []
        self.budget_bytes = budget_bytes
        self.listeners: list[Callable[[str, Any], None]] = []
        self.layout: Layout | None = (
            Layout.from_dict(self.meta["layout"]) if "layout" in self.meta else None
        )

    # ------------------------------------------------------------------ feeding
    def begin(self, facts: ModelFacts) -> None:
        """A training session starts (a ``fit`` call); facts may differ between calls."""
        self.meta["model"] = facts.to_dict()
        self.meta.setdefault("started", time.time())
        self._emit("begin", facts)

    def set_layout(self, layout: Layout) -> bool:
        """Fix the row layout; False if it conflicts with the layout already recorded."""
        if self.layout is not None:
            return self.layout == layout
        self.layout = layout
        self.meta["layout"] = layout.to_dict()
        self.store = RunStore(layout.channels(), budget_bytes=self.budget_bytes)
        return True

    def add_steps(self, rows: np.ndarray) -> None:
        """Append per-step rows (n, D) in the run's layout."""
        if self.store is None:
            raise RuntimeError("set_layout() must be called before add_steps()")
        self.store.append(rows)
        self._emit("steps", rows)

    def add_epoch(self, record: dict[str, Any]) -> None:
        """Append one epoch's summary (train logs, validation logs and accumulators)."""
        self.epoch_records.append(record)
        self._emit("epoch", record)

    def note(self, text: str) -> bool:
        """Record a note about what could not be observed; True if it is new."""
        if text in self.meta["notes"]:
            return False
        self.meta["notes"].append(text)
        return True

    def end(self) -> None:
        """A training session ended."""
        self._emit("end", None)

    def _emit(self, kind: str, payload: Any) -> None:
        for listener in list(self.listeners):
            listener(kind, payload)

    # ------------------------------------------------------------------ reading
    @property
    def steps(self) -> int:
        """Number of training steps recorded."""
        return self.store.cursor if self.store is not None else 0

    @property
    def steps_trained(self) -> int:
        """Training steps the run covers; more than ``steps`` (the rows) when only every k-th
        step was recorded (:mod:`bertlab.cadence`)."""
        last = 0
        if self.steps:
            step = self.column("step")
            last = int(step[-1]) + 1 if len(step) and np.isfinite(step[-1]) else self.steps
        counted = [int(e.get("steps") or 0) for e in self.epoch_records]
        return max([last, self.steps, *counted])

    def rows_note(self) -> str:
        """``""``, or how the rows sample the steps (``", 346 of them recorded"``)."""
        trained = self.steps_trained
        return f", {self.steps} of them recorded" if trained > self.steps else ""

    def column(self, name: str) -> np.ndarray:
        """One channel over the full-resolution recent steps (1-D for scalars)."""
        if self.store is None:
            return np.empty(0)
        return self.store.column(name)

    def _column_names(self) -> list[str]:
        names = []
        for name, width in self.store.channels:
            if width == 1:
                names.append(name)
            else:
                names += [f"{name}[{label}]" for label in self.layout.labels(name)]
        return names

    @property
    def history(self) -> pd.DataFrame:
        """One row per training batch (``rows`` > 1 marks downsampled old history).

        Vector channels are spread over columns named ``channel[label]``, e.g.
        ``pred_count[3]`` or ``grad_layer_norm[dense]``. Rows older than the store keeps at full
        resolution are bucket means (their extremes stay in ``store.archive()``).
        """
        if self.store is None:
            return pd.DataFrame()
        names = self._column_names()
        archive = self.store.archive()
        recent = self.store.recent()
        data = np.concatenate([archive.mean, recent.rows], axis=0)
        frame = pd.DataFrame(data, columns=names)
        frame.insert(0, "rows", np.concatenate([archive.count, np.ones(len(recent.rows))]))
        for name in ("step", "epoch", "batch"):
            if len(frame) and not frame[name].isna().any():
                frame[name] = frame[name].round().astype(np.int64)
        frame["rows"] = frame["rows"].astype(np.int64)
        return frame

    @property
    def epochs(self) -> pd.DataFrame:
        """One row per epoch: Keras's logs (``loss``, ``val_loss``, metrics) and validation
        summaries (``val_pred_count``, ``val_label_count``, ``val_confusion`` or per-label
        ``val_precision``/``val_recall``/``val_f1``) as array-valued columns."""
        return pd.DataFrame(self.epoch_records)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the run to ``path`` (a zip of JSON + Parquet; see :mod:`bertlab.runfile`)."""
        if self.store is None:
            store = RunStore([("step", 1)], budget_bytes=2**16)
        else:
            store = self.store
        save_run(
            path, meta=self.meta, store=store, epochs=self.epoch_records, findings=self.findings
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Run:
        """Reopen a saved run (safe on untrusted files: no pickle; errors raise RunFileError)."""
        meta, store, epochs, findings = load_run(path)
        if "layout" not in meta:
            return cls(meta=meta, epoch_records=epochs, findings=findings)
        try:
            layout = Layout.from_dict(meta["layout"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFileError(f"{path}: malformed layout in run.json ({exc})") from exc
        if layout.channels() != store.channels:
            raise RunFileError(f"{path}: the step columns do not match the run's layout")
        for record in epochs:  # arrays were written as JSON lists
            for key, value in record.items():
                if isinstance(value, list):
                    record[key] = np.asarray(value)
        return cls(meta=meta, store=store, epoch_records=epochs, findings=findings)

    # ------------------------------------------------------------------ views
    def to_html(self, path: str | os.PathLike, title: str | None = None):
        """Write the dashboard of this run as one self-contained HTML file (no server needed)."""
        from bertlab.views.html import write_html

        return write_html(self, path, title)

    def to_markdown(self, title: str | None = None) -> str:
        """The run as Markdown for a forum post: setup, findings with evidence and fix, loss
        and predicted-class summaries (text only; see :mod:`bertlab.report`)."""
        from bertlab.report import markdown

        return markdown(self, title)

    def dashboard(self, title: str = ""):
        """The dashboard widget of this run (it streams if the run is still training)."""
        from bertlab.views.dashboard import Dashboard

        return Dashboard(self, title=title)

    def _repr_mimebundle_(self, include=None, exclude=None):
        # A run displayed in a notebook (e.g. `bertlab.load(path)` as a cell's last line) shows
        # as its dashboard; text front ends get the repr.
        from bertlab.views import in_kernel

        if not in_kernel():
            return {"text/plain": repr(self)}
        return self.dashboard()._repr_mimebundle_(include=include, exclude=exclude)

    def __repr__(self) -> str:
        return (
            f"<bertlab.Run steps={self.steps} epochs={len(self.epoch_records)} "
            f"findings={len(self.findings)}>"
        )
