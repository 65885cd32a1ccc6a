"""The run log: an append-only, checksummed file that a crash cannot make unreadable.

A ``bertlab.record.Recorder`` writes a training run to disk *while it trains* in this format,
and ``bertlab.load`` (`bertlab.runfile.load_run`) and ``bertlab.follow`` read it. Why a log and
not the ZIP of ``Run.save``: a ZIP is only valid once its central directory is written at the
end, so rewriting it every two seconds would cost a full save each time and a kill during the
write could leave nothing. A log is appended to; a kill leaves a valid prefix plus, at worst, a
half-written record, which readers ignore.

Layout (format ``bertlab-log``, version 1)
------------------------------------------
* 16-byte header: `MAGIC` (15 bytes, ``\\x89bertlab-log\\r\\n\\x1a``) then the version byte
  ``\\x01``.
* Records, back to back. Each is a 9-byte little-endian head ``<IIB``: payload length ``n``,
  ``zlib.crc32`` of the kind byte followed by the payload, kind; then the ``n`` payload bytes.
  Kinds:

  ``I`` identity
      JSON ``{"id": hex, "created": float}``: a random id, the first record of every file the
      recorder writes, so a reader can tell a file rewritten in place from the one it read.
  ``S`` snapshot
      The whole run as the bytes of a ``Run.save`` ZIP file (`bertlab.runfile`); replaces
      everything read so far. When its ``meta`` has no ``layout`` the run has no steps yet.
  ``M`` meta
      UTF-8 JSON object: the run's whole ``meta`` (replaces the previous one).
  ``T`` step store
      JSON ``{"channels": [[name, width], ...], "budget_bytes": int}``: the step store starts
      (once per run, when the row layout is known); no step may come before it.
  ``R`` rows
      ``<qI`` (first step index, width ``D``) then ``k × D`` float64 little-endian values: the
      next ``k`` steps. The first step index must equal the number of steps read so far.
  ``E`` epoch
      JSON object: one finished epoch's record (appended).
  ``F`` findings
      JSON list of objects: the run's findings (replaces the previous list).
  ``D`` done
      JSON ``{"steps": int}``: a training session (one ``fit``) ended there, normally or not.
  ``H`` heartbeat
      JSON ``{"time": float}`` (Unix time): the writer is alive but had nothing new to write;
      lets a follower tell a long validation from a writer that stopped.

  JSON uses Python's ``NaN``/``Infinity`` tokens and arrays as nested lists, as in run.json.
  Records of an unknown kind are skipped (a newer writer may add kinds).

Reading replays the records in order and stops at the first record that is incomplete, fails
its checksum or claims more than `MAX_RECORD_BYTES`: that is the tail a killed writer leaves,
and everything before it is returned. A record whose checksum is right but whose content is
invalid (a JSON error, rows that do not follow on, a width that does not match) was not made by
a crash: it raises `RunFileError`, like every other invalid content. Nothing is unpickled.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
import zlib
from typing import Any, BinaryIO

import numpy as np

from bertlab.runfile import MAX_TOTAL_BYTES, RunFileError, _jsonable, load_bytes, run_bytes
from bertlab.store import RunStore

MAGIC = b"\x89bertlab-log\r\n\x1a"
VERSION = 1
HEADER = MAGIC + bytes([VERSION])
#: Longest payload a reader accepts; a longer claim is treated as a damaged tail.
MAX_RECORD_BYTES = 1 << 28
SNAPSHOT, META, STORE, ROWS, EPOCH, FINDINGS, DONE, HEARTBEAT, IDENTITY = (
    ord(c) for c in "SMTREFDHI"
)
_HEAD = struct.Struct("<IIB")
_ROWS = struct.Struct("<qI")


# ------------------------------------------------------------------- writing
def record(kind: int, payload: bytes) -> bytes:
    """One record: head (length, checksum, kind) + payload."""
    crc = zlib.crc32(payload, zlib.crc32(bytes([kind])))
    return _HEAD.pack(len(payload), crc, kind) + payload


def json_record(kind: int, value: Any, where: str) -> bytes:
    """A JSON record (meta, epoch, findings, store); TypeError if ``value`` has no JSON form."""
    return record(kind, json.dumps(_jsonable(value, where)).encode("utf-8"))


def rows_record(start: int, rows: np.ndarray) -> bytes:
    """Rows ``start .. start + len(rows) - 1`` of the step store."""
    rows = np.ascontiguousarray(rows, dtype="<f8")
    return record(ROWS, _ROWS.pack(int(start), rows.shape[1]) + rows.tobytes())


def identity_record() -> bytes:
    """The first record of a new file: a random id (see the ``I`` kind)."""
    return json_record(IDENTITY, {"id": uuid.uuid4().hex, "created": time.time()}, "identity")


def store_record(store: RunStore) -> bytes:
    """The start of the step store: its channels and memory budget."""
    value = {"channels": [[n, w] for n, w in store.channels], "budget_bytes": store.budget_bytes}
    return json_record(STORE, value, "store")


def snapshot_record(
    meta: dict, store: RunStore | None, epochs: list, findings: list
) -> tuple[bytes, int]:
    """The whole run in one record (what a new or compacted log starts with), and the number
    of steps it holds (the store may grow while it is taken)."""
    if store is None:  # as Run.save does: a placeholder store, ignored without a layout
        store = RunStore([("step", 1)], budget_bytes=2**16)
    arrays = store.export()
    data = run_bytes(meta=meta, store=store, epochs=epochs, findings=findings, arrays=arrays)
    return record(SNAPSHOT, data), int(arrays["cursor"])


# ------------------------------------------------------------------- reading
def split(buf: bytes | memoryview, pos: int) -> tuple[list[tuple[int, bytes]], int, bool]:
    """The complete, intact records of ``buf`` from ``pos`` on.

    Returns ``(records, end, damaged)``: ``records`` as ``(kind, payload)``, ``end`` the offset
    after the last of them, and ``damaged`` True when the bytes at ``end`` are a record with a
    wrong checksum or an absurd length (False when they are just incomplete, or absent).
    """
    out = []
    view = memoryview(buf)
    while len(view) - pos >= _HEAD.size:
        n, crc, kind = _HEAD.unpack_from(view, pos)
        if n > MAX_RECORD_BYTES:
            return out, pos, True
        end = pos + _HEAD.size + n
        if end > len(view):
            break
        payload = bytes(view[pos + _HEAD.size : end])
        if zlib.crc32(payload, zlib.crc32(bytes([kind]))) != crc:
            return out, pos, True
        out.append((kind, payload))
        pos = end
    return out, pos, False


def check_header(head: bytes) -> None:
    """Raise RunFileError unless ``head`` is a log header this bertlab reads."""
    if len(head) < len(HEADER) or not head.startswith(MAGIC):
        raise RunFileError("not a bertlab run log (bad header)")
    if head[len(MAGIC)] != VERSION:
        raise RunFileError(
            f"run log version {head[len(MAGIC)]} is not the one this bertlab reads ({VERSION}): "
            "upgrade bertlab to open it"
        )


class LogState:
    """What the records read so far describe; `apply` feeds it. ``bertlab.follow`` feeds a
    ``Run`` with the same methods instead, so that it emits events as a live training does."""

    def __init__(self) -> None:
        self.meta: dict = {}
        self.store: RunStore | None = None
        self.epoch_records: list[dict] = []
        self.findings: list[dict] = []

    def reset(self, meta: dict, store: RunStore | None, epochs: list, findings: list) -> None:
        """Replace everything (a snapshot record)."""
        self.meta, self.store, self.epoch_records, self.findings = meta, store, epochs, findings

    def set_meta(self, meta: dict) -> None:
        self.meta = meta

    def new_store(self, store: RunStore) -> None:
        self.store = store

    def add_steps(self, rows: np.ndarray) -> None:
        self.store.append(rows)

    def add_epoch(self, record: dict) -> None:
        self.epoch_records.append(record)

    def session_end(self) -> None:
        """A ``D`` record: nothing to keep for a loaded run (a follower tells its listeners)."""


def apply(target: Any, kind: int, payload: bytes) -> None:
    """Apply one intact record to ``target`` (a `LogState` or a followed ``Run``).

    Raises RunFileError when the record's content is invalid.
    """
    if kind == SNAPSHOT:
        try:
            meta, store, epochs, findings = load_bytes(payload)
        except RunFileError as exc:
            raise RunFileError(f"snapshot record: {exc}") from exc.__cause__
        target.reset(meta, store if "layout" in meta else None, epochs, findings)
    elif kind == ROWS:
        if len(payload) < _ROWS.size:
            raise RunFileError("rows record too short")
        start, width = _ROWS.unpack_from(payload)
        store = target.store
        if store is None:
            raise RunFileError("rows record before the step store record")
        if width != store.width or (len(payload) - _ROWS.size) % (8 * width):
            raise RunFileError(f"rows record of width {width}, the store has {store.width}")
        if start != store.cursor:
            raise RunFileError(f"rows record starts at step {start}, expected {store.cursor}")
        rows = np.frombuffer(payload, dtype="<f8", offset=_ROWS.size).reshape(-1, width)
        target.add_steps(rows.astype(np.float64))
    elif kind == DONE:
        target.session_end()
    elif kind in (META, STORE, EPOCH, FINDINGS):
        try:
            value = json.loads(payload.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise RunFileError(f"invalid JSON in a {chr(kind)} record ({exc})") from None
        _apply_json(target, kind, value)


def _apply_json(target: Any, kind: int, value: Any) -> None:
    """Validate and apply a decoded JSON record."""
    if kind == META:
        if not isinstance(value, dict):
            raise RunFileError("meta record is not an object")
        target.set_meta(value)
    elif kind == EPOCH:
        if not isinstance(value, dict):
            raise RunFileError("epoch record is not an object")
        target.add_epoch(value)
    elif kind == FINDINGS:
        if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
            raise RunFileError("findings record is not a list of objects")
        target.findings = value
    else:
        if target.store is not None:
            raise RunFileError("a second step store record")
        channels = value.get("channels") if isinstance(value, dict) else None
        budget = value.get("budget_bytes") if isinstance(value, dict) else None
        ok = isinstance(channels, list) and isinstance(budget, int) and 0 < budget < 1 << 40
        if not ok or not all(
            isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in channels
        ):
            raise RunFileError("step store record is malformed")
        if any(not isinstance(c[1], int) or not 0 < c[1] < 1 << 24 for c in channels):
            raise RunFileError("step store record has a bad channel width")
        try:
            target.new_store(RunStore([tuple(c) for c in channels], budget_bytes=budget))
        except (ValueError, TypeError) as exc:
            raise RunFileError(f"step store record: {exc}") from None


def read_log(fh: BinaryIO) -> tuple[dict, RunStore, list[dict], list[dict]]:
    """Replay a log whose `MAGIC` was just read from ``fh``; the result is `load_run`'s."""
    rest = fh.read(MAX_TOTAL_BYTES + 1)
    if len(rest) > MAX_TOTAL_BYTES:
        raise RunFileError(f"run log is over the {MAX_TOTAL_BYTES} byte limit")
    check_header(MAGIC + rest[:1])
    records, _, _ = split(rest, 1)  # a damaged or incomplete tail is what a kill leaves
    state = LogState()
    for kind, payload in records:
        apply(state, kind, payload)
    meta, store = state.meta, state.store
    if store is None:  # cut before the store record: no steps yet (Run.load needs no layout)
        meta = {key: value for key, value in meta.items() if key != "layout"}
        store = RunStore([("step", 1)], 2**16)
    return meta, store, state.epoch_records, state.findings
