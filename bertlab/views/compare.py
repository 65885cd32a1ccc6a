"""``bertlab.compare(a, b, ...)``: several runs overlaid in one dashboard.

Which of two setups trained, and where did the other go wrong? ``compare`` shows, for every run,
the batch loss, the gradient norm, the share of the most predicted class and the epoch metrics
on shared charts (one colour per run), and each run's findings in the sidebar, grouped by run.
Runs may be live (``watch.run``), loaded (``bertlab.load``) or followed (``bertlab.follow``):
the widget listens to each and resends their series (at most once a second) as they grow.

Wire format (``js/src/compare.js`` reads it): the synced trait ``runs`` is a list with one
object per run::

    {"name", "status", "steps", "model": "one-line setup",
     "series": {"step": [...], "loss": [...], "grad_norm": [...], "top_share": [...]},
     "epochs": [epoch records], "findings": [finding dicts]}

Series are the run's rows downsampled to at most `SERIES_POINTS` (count-weighted means of
neighbouring rows, as the dashboard's snapshot); non-finite values are ``null``. ``top_share``
is, per row, the largest predicted-class count over the batch's predictions (1.0: every
prediction is one class; 1/K: spread evenly); it is absent for runs without class counts.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from bertlab.guard import BertlabWarning
from bertlab.run import Run
from bertlab.views import protocol
from bertlab.views.dashboard import _static

#: Points per run and series sent to the browser.
SERIES_POINTS = 1024
#: Minimum seconds between two resends of a growing run.
THROTTLE_S = 1.0


def _downsample(run: Run, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """All rows of ``run`` (archive bucket means + recent rows), merged down to ``max_points``."""
    archive, recent = run.store.archive(), run.store.recent()
    data = np.concatenate([archive.mean, recent.rows], axis=0)
    counts = np.concatenate([archive.count, np.ones(len(recent.rows), np.int64)]).astype(float)
    if len(data) > max_points:
        starts = np.arange(0, len(data), -(-len(data) // max_points))
        weights = np.add.reduceat(counts, starts)
        data = np.add.reduceat(data * counts[:, None], starts, axis=0) / weights[:, None]
    return data, counts


def series(run: Run, max_points: int = SERIES_POINTS) -> dict[str, list]:
    """The overlaid series of one run (see the module docstring); empty before the first step."""
    if run.store is None or run.steps == 0:
        return {}
    data, _ = _downsample(run, max_points)
    names = dict(run.store.channels)
    out: dict[str, Any] = {}
    for name in ("step", "loss", "grad_norm"):
        if name in names:
            out[name] = data[:, run.store.slice(name)][:, 0]
    if "pred_count" in names and run.layout is not None and run.layout.task != "multilabel":
        counts = data[:, run.store.slice("pred_count")]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["top_share"] = counts.max(axis=1) / counts.sum(axis=1)
    return {key: protocol.jsonable(np.asarray(value)) for key, value in out.items()}


def run_state(run: Run, name: str) -> dict[str, Any]:
    """Everything the compare view shows of one run."""
    meta = protocol.meta(run)
    return {
        "name": name,
        "status": protocol.status(run),
        "steps": run.steps_trained,
        "model": _setup(meta),
        "series": series(run),
        "epochs": protocol.epochs(run),
        "findings": protocol.findings(run),
    }


def _setup(meta: dict[str, Any]) -> str:
    """One line about a run's setup (as the dashboard's subtitle)."""
    m = meta.get("model") or {}
    parts = [str(m[k]) for k in ("model_class", "loss") if m.get(k)]
    if m.get("optimizer"):
        lr = m.get("learning_rate")
        parts.append(f"{m['optimizer']} (lr {lr:.3g})" if isinstance(lr, float) else m["optimizer"])
    return " · ".join(parts)


def _names(runs: list[Run], names: list[str] | None, sources: list[Any]) -> list[str]:
    if names is not None:
        if len(names) != len(runs):
            raise ValueError(f"{len(names)} names for {len(runs)} runs")
        return [str(n) for n in names]
    out = []
    for i, source in enumerate(sources):
        if isinstance(source, (str, os.PathLike)):
            out.append(Path(source).stem)
        else:
            path = getattr(source, "path", None)
            out.append(Path(path).stem if path is not None else f"run {i + 1}")
    return out


class Comparison(anywidget.AnyWidget):
    """Several runs overlaid: loss, gradient norm, top predicted-class share, epoch metrics,
    and each run's findings grouped by run (see the module docstring).

    Parameters
    ----------
    runs
        The runs to overlay (live, loaded or followed).
    names
        One label per run (legend and sidebar).
    title
        Header text.
    """

    _esm = _static("dashboard.js")
    _css = _static("dashboard.css")

    kind = traitlets.Unicode("compare").tag(sync=True)
    runs = traitlets.List().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, runs: list[Run], names: list[str], title: str = "", **kwargs: Any):
        self.sources = list(runs)
        self.names = list(names)
        self._last = 0.0
        self._broken = False
        super().__init__(runs=self.state(), title=title or "bertlab: comparison", **kwargs)
        for run in self.sources:
            run.listeners.append(self._on_event)

    def state(self) -> list[dict[str, Any]]:
        """The ``runs`` trait value, fresh from the runs."""
        return [run_state(run, name) for run, name in zip(self.sources, self.names, strict=True)]

    def _on_event(self, kind: str, payload: Any) -> None:
        if self._broken:
            return
        now = time.monotonic()
        if kind in ("steps", "status") and now - self._last < THROTTLE_S:
            return
        try:
            self._last = now
            self.runs = self.state()
        except Exception as exc:  # noqa: BLE001 - a view must never stop training or following
            self._broken = True
            self.close()
            warnings.warn(
                f"bertlab: the comparison view stopped ({type(exc).__name__}: {exc})",
                BertlabWarning,
                stacklevel=2,
            )

    def to_html(self, path: str | os.PathLike) -> Path:
        """Write this comparison as one self-contained HTML file (opens offline)."""
        from bertlab.views.html import write_page

        return write_page(path, {"kind": "compare", "runs": self.state()}, self.title)

    def close(self) -> None:
        """Stop listening to the runs and close the widget."""
        for run in getattr(self, "sources", []):
            if self._on_event in run.listeners:
                run.listeners.remove(self._on_event)
        super().close()


def compare(*runs_or_paths: Any, names: list[str] | None = None, title: str = "") -> Comparison:
    """Overlay runs in one dashboard: ``bertlab.compare("a.bertlab", watch.run, followed)``.

    Paths are loaded (``bertlab.load``); a ``Watch`` stands for its run. Display the result in
    a notebook cell, or write it with ``.to_html(path)``.
    """
    if not runs_or_paths:
        raise ValueError("compare needs at least one run or path")
    runs = []
    for item in runs_or_paths:
        if isinstance(item, (str, os.PathLike)):
            runs.append(Run.load(item))
        elif isinstance(getattr(item, "run", None), Run):
            runs.append(item.run)
        elif isinstance(item, Run):
            runs.append(item)
        else:
            raise TypeError(f"compare takes runs, watches or paths, not {type(item).__name__}")
    return Comparison(runs, _names(runs, names, list(runs_or_paths)), title=title)
