"""A comm that records what a widget sends, as ipywidgets' own tests do (no Jupyter needed).

``record_comms(monkeypatch)`` makes every widget created afterwards open a ``RecordingComm``;
its ``messages`` list holds ``(data, buffers)`` of every message the widget sent.
"""

from __future__ import annotations

from typing import Any

import comm
from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """Keeps every published message instead of sending it to a front end."""

    def __init__(self, **kwargs: Any) -> None:
        self.messages: list[tuple[dict, list[bytes]]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
        self.messages.append((data or {}, [bytes(b) for b in buffers or []]))

    def custom(self, kind: str | None = None) -> list[tuple[dict, list[bytes]]]:
        """The custom messages (``widget.send``), optionally only those of one ``type``."""
        out = []
        for data, buffers in self.messages:
            if data.get("method") != "custom":
                continue
            content = data["content"]
            if kind is None or content.get("type") == kind:
                out.append((content, buffers))
        return out

    def updates(self) -> list[tuple[dict, list[bytes]]]:
        """The state updates (trait syncs)."""
        return [(d["state"], b) for d, b in self.messages if d.get("method") == "update"]


def record_comms(monkeypatch) -> list[RecordingComm]:
    """Route widget comms to RecordingComms; returns the list they are appended to."""
    made: list[RecordingComm] = []

    def create(**kwargs: Any) -> RecordingComm:
        c = RecordingComm(**kwargs)
        made.append(c)
        return c

    monkeypatch.setattr(comm, "create_comm", create)
    return made
