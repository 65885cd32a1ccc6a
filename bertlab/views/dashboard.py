"""``Dashboard``: the live widget (anywidget) that streams a run to the browser while it trains.

The browser side is ``js/src/widget.js``, bundled into ``bertlab/static/dashboard.js`` at
install time. The widget listens to a ``Run`` and pushes, never waits: the kernel is busy while
``fit`` runs, so nothing the browser sends would arrive before the cell ends.

* Rows are sent as deltas ("new since the last message", ``RunStore.since``), as one binary
  float32 buffer per message, at most ``1 / throttle_s`` times per second, and always at epoch
  end and train end.
* The synced traits (``snapshot``, ``findings``, ...) are filled from the run whenever the
  front end asks for state (a reloaded page) and set at train end, so a notebook saved with its
  widget state reopens with the whole run, not a blank.
* A followed run (``bertlab.follow``) also emits "status" after each read of its file (the
  header then shows e.g. "stopped, last write 40 s ago") and "reset" when the file holds a
  new run: the front end then gets meta and a snapshot that replace what it held.
* A fault in the dashboard is reported once (``BertlabWarning``) and the dashboard detaches;
  training and recording go on.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from bertlab.guard import BertlabWarning
from bertlab.run import Run
from bertlab.views import protocol

STATIC = Path(__file__).resolve().parent.parent / "static"
#: Minimum seconds between two ``steps`` messages (≤ 4 updates per second).
THROTTLE_S = 0.25
#: Traits whose value is computed from the run (status is tracked by the widget itself).
_RUN_TRAITS = ("meta", "findings", "verdict", "epochs", "snapshot", "snapshot_rows", "title")


def _static(name: str) -> Path | str:
    path = STATIC / name
    if path.exists():
        return path
    if name.endswith(".js"):  # a source checkout whose front end was never built
        return (
            "export default { render({ el }) { el.textContent = 'bertlab: the dashboard front "
            "end is not built (run: pip install -e . or cd js && npm ci && npm run build)'; } };"
        )
    return ""


class Dashboard(anywidget.AnyWidget):
    """Live view of a ``bertlab.Run``: panels (overview, gradients, outputs, predictions, data)
    and a findings sidebar.

    Parameters
    ----------
    run
        The run to show; a finished (loaded) run is shown whole, a live one streams.
    title
        Header text (defaults to the model class).
    throttle_s
        Minimum seconds between two streamed updates.
    """

    _esm = _static("dashboard.js")
    _css = _static("dashboard.css")

    meta = traitlets.Dict().tag(sync=True)
    findings = traitlets.List().tag(sync=True)
    verdict = traitlets.Unicode("").tag(sync=True)
    epochs = traitlets.List().tag(sync=True)
    snapshot = traitlets.Bytes(b"").tag(sync=True)
    snapshot_rows = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("waiting").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run: Run, *, title: str = "", throttle_s: float = THROTTLE_S, **kwargs):
        # Set before the widget opens its comm (ipywidgets calls get_state in __init__).
        self.run = run
        self.throttle_s = throttle_s
        self._cursor = 0
        self._meta_sent = False
        self._findings_sig: Any = None
        self._epochs_sent = 0
        # perf_counter() has an arbitrary origin (on Linux: seconds since boot), so "never
        # sent" is -inf, not 0.0: on a machine up for less than throttle_s, 0.0 held back the
        # first update.
        self._last_send = -math.inf
        self._broken = False
        #: (seconds, bytes) of each ``steps`` message, for benchmarks/dashboard.py.
        self.update_log: deque[tuple[float, int]] = deque(maxlen=100_000)
        self._title = title
        values = self._state_values(protocol.status(run) if run.steps else "waiting")
        super().__init__(**values, **kwargs)
        self._mark_sent(values)
        run.listeners.append(self._on_event)

    # ------------------------------------------------------------------ state
    def _state_values(self, status: str | None = None) -> dict[str, Any]:
        title = self._title or str(self.run.meta.get("model", {}).get("model_class") or "")
        return protocol.state(self.run, status or self.status, title)

    def sync_state(self, status: str | None = None) -> None:
        """Set every synced trait from the run (one full send: used at the end, not per step)."""
        values = self._state_values(status or protocol.status(self.run))
        with self.hold_sync():
            for key, value in values.items():
                setattr(self, key, value)
        self._mark_sent(values)

    def _mark_sent(self, values: dict[str, Any]) -> None:
        self._cursor = self.run.steps
        self._meta_sent = bool(values["meta"])
        self._findings_sig = self._signature()
        self._epochs_sent = len(self.run.epoch_records)

    def get_state(self, key=None, drop_defaults=False):
        """Widget state as ipywidgets sends it, with the run data taken fresh from the run.

        A reloaded page asks for state (answered once the kernel is free): it then gets the
        whole run so far, although the traits themselves were not resent while streaming.
        """
        state = super().get_state(key=key, drop_defaults=drop_defaults)
        if any(k in state for k in _RUN_TRAITS):
            fresh = self._state_values()
            state.update({k: fresh[k] for k in _RUN_TRAITS if k in state})
        return state

    # ------------------------------------------------------------------ streaming
    def _on_event(self, kind: str, payload: Any) -> None:
        if self._broken:
            return
        try:
            if kind == "begin":
                self.status = "running"
                self._send_status()
            elif kind == "steps":
                if time.perf_counter() - self._last_send >= self.throttle_s:
                    self.flush()
            elif kind == "epoch":
                self.flush()
                self._send_status()
            elif kind == "end":
                self.flush()
                self.sync_state()
                self._send_status()
            elif kind == "status":  # a followed run (bertlab.follow) read the file
                self.flush()
                if payload != self.status:
                    self.status = str(payload)
                    self._send_status()
            elif kind == "reset":  # a followed file now holds another run
                self._reset()
        except Exception as exc:  # noqa: BLE001 - the dashboard must never stop training
            self._broken = True
            if self._on_event in self.run.listeners:
                self.run.listeners.remove(self._on_event)
            warnings.warn(
                f"bertlab: the live dashboard stopped ({type(exc).__name__}: {exc}); "
                "training and recording go on",
                BertlabWarning,
                stacklevel=2,
            )

    def flush(self) -> None:
        """Send what is new since the last message: meta, rows, epochs, findings."""
        self._last_send = time.perf_counter()
        run = self.run
        if not self._meta_sent and run.store is not None:
            self.send({"type": "meta", "meta": protocol.meta(run)})
            self._meta_sent = True
        if run.store is not None and run.steps > self._cursor:
            start = time.perf_counter()
            delta = run.store.since(self._cursor)
            if delta.gap:
                rows, buffer, cursor = protocol.snapshot(run)
                content = {"type": "snapshot", "rows": rows, "cursor": cursor}
                buffers = [buffer]
            else:
                content, buffers = protocol.steps_message(delta)
            self.send(content, buffers)
            self._cursor = run.steps
            self.update_log.append((time.perf_counter() - start, sum(len(b) for b in buffers)))
        while self._epochs_sent < len(run.epoch_records):
            record = protocol.jsonable(run.epoch_records[self._epochs_sent])
            self.send({"type": "epoch", "record": record})
            self._epochs_sent += 1
        signature = self._signature()
        if signature != self._findings_sig:
            self.send(
                {
                    "type": "findings",
                    "findings": protocol.findings(run),
                    "verdict": protocol.verdict(run),
                }
            )
            self._findings_sig = signature

    def _reset(self) -> None:
        """The run was replaced: the front end gets its meta and a snapshot that replaces the
        rows it holds, then the whole state (epochs, findings, status)."""
        self._last_send = time.perf_counter()
        self.send({"type": "meta", "meta": protocol.meta(self.run)})  # {}: no rows yet
        if self.run.store is not None:  # replaces the rows held and resets the cursor
            rows, buffer, cursor = protocol.snapshot(self.run)
            self.send({"type": "snapshot", "rows": rows, "cursor": cursor}, [buffer])
        self.sync_state()
        self._send_status()

    def _send_status(self) -> None:
        run = self.run
        epoch = len(run.epoch_records)
        self.send(
            {"type": "status", "status": self.status, "steps": run.steps_trained, "epoch": epoch}
        )

    def _signature(self) -> tuple:
        return tuple(
            (f.get("code"), f.get("status"), f.get("evidence"), f.get("cause"))
            for f in self.run.findings
        )

    def _repr_mimebundle_(self, **kwargs):
        # Front ends without widgets (jupyter console, nbconvert) show this text instead.
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/plain"] = (
                f"bertlab dashboard ({self.run.steps} steps so far; this front end cannot show "
                "widgets: watch.report() prints the findings, watch.to_html(path) writes a report)"
            )
        return bundle

    def close(self) -> None:
        """Stop listening to the run and close the widget."""
        run = getattr(self, "run", None)
        if run is not None and self._on_event in run.listeners:
            run.listeners.remove(self._on_event)
        super().close()
