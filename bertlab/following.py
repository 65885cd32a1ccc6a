"""``bertlab.follow(path)``: a ``Run`` that keeps reading a record another process writes.

Train anywhere (a script, a cluster job, ``Watch(path="runs/exp1.bertlab")``), watch in the
notebook: ``run = bertlab.follow("runs/exp1.bertlab")`` returns a ``Run`` whose ``history``
grows while the file grows. A background thread reads what was appended every ``interval_s``
seconds and emits it through ``run.listeners`` exactly as a live training does ("steps" with
the new rows, "epoch" per finished epoch, "end" when a ``fit`` ended), plus "status" after each
read that changed something and whenever the status text changes, so ``Dashboard(run)`` streams
deltas unchanged.

It handles a file that does not exist yet (status "waiting"), a writer that rewrote the file
(compaction: new rows arrive as a delta) or restarted (a different run: everything is replaced
and listeners get "reset"; the dashboard then sends a snapshot), a damaged tail (waits for the
writer to complete it), and a writer that stopped without ending: after ``stale_s`` seconds
without a write the status reads "stopped, last write N s ago". A ZIP run file (``Run.save``)
is followed too: it is reloaded whenever it changes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bertlab import runlog
from bertlab.layout import Layout
from bertlab.run import Run
from bertlab.runfile import MAX_TOTAL_BYTES, RunFileError
from bertlab.store import RunStore

#: Bytes at the start of a log that identify the file (header + the head of its first record,
#: the identity record, whose checksum covers a random id): a file rewritten in place differs.
_HEAD = len(runlog.HEADER) + 9


class FollowedRun(Run):
    """A run read from a file that another process appends to (see `follow`).

    Attributes
    ----------
    path
        The file followed.
    follow_status
        "waiting", "running", "done", "error", "stopped, last write N s ago", or "unreadable:
        ..." (the file holds invalid content; following stopped).
    last_write
        Unix time of the last write seen (None before the file exists).
    """

    def __init__(self, path: str | os.PathLike, interval_s: float = 0.5, stale_s: float = 15.0):
        super().__init__()
        self.path = Path(path)
        self.interval_s = float(interval_s)
        self.stale_s = float(stale_s)
        self.last_write: float | None = None
        self._fh: Any = None
        self._ident: tuple[int, int, int, int] | None = None  # dev, inode (+ size, mtime: ZIP)
        self._zip = False
        self._buf = b""
        self._head = b""
        self._ended = False  # the last session ended and no step came after
        self._error: str | None = None
        self._status_sent = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.poll()
        self._thread = threading.Thread(target=self._loop, name="bertlab-follow", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public
    @property
    def follow_status(self) -> str:
        """What the writer is doing, as far as the file tells (shown in the dashboard header)."""
        if self._error:
            return f"unreadable: {self._error}"
        if self.last_write is None:
            return "waiting"
        if self._ended:
            return "error" if self.meta.get("error") else "done"
        age = time.time() - self.last_write
        if age > self.stale_s:
            return f"stopped, last write {_ago(age)} ago"
        return "running" if self.steps else "waiting"

    def stop_following(self, timeout: float | None = 5.0) -> None:
        """Stop the reader thread and close the file; the run keeps what it read."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        with self._lock:
            self._close()

    def poll(self) -> bool:
        """Read what is new now (the thread does this every ``interval_s``); True if anything
        was applied."""
        with self._lock:
            if self._error:
                return False
            try:
                changed = self._read()
            except (RunFileError, OSError) as exc:
                self._error = str(exc)[:300]
                self._close()
                changed = True
        status = self.follow_status
        if changed or status != self._status_sent:
            self._status_sent = status
            self._emit("status", status)
        return changed

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} following={str(self.path)!r} ({self.follow_status})>"

    # ------------------------------------------------------------------ reading
    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh, self._ident, self._buf = None, None, b""

    def _read(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        ident = (st.st_dev, st.st_ino) + ((st.st_size, st.st_mtime_ns) if self._zip else (0, 0))
        if self._ident is not None and ident != self._ident:
            self._close()  # replaced (compaction, a new run) or a ZIP file saved again
        elif self._fh is not None and (st.st_size < self._fh.tell() or self._rewritten()):
            self._close()  # truncated or rewritten in place: read it from the start
        if self._ident is None:
            return self._open(st)
        if self._fh is None:  # a ZIP file that did not change
            return False
        data = self._fh.read()
        if not data:
            return False
        self.last_write = time.time()
        self._buf += data
        records, end, _ = runlog.split(self._buf, 0)  # an incomplete tail waits for the rest
        self._buf = self._buf[end:]
        for kind, payload in records:
            runlog.apply(self, kind, payload)
        return bool(records)

    def _rewritten(self) -> bool:
        """Whether the first bytes of the open file changed (a writer that rewrote it in place)."""
        offset = self._fh.tell()
        self._fh.seek(0)
        head = self._fh.read(len(self._head))
        self._fh.seek(offset)
        return head != self._head

    def _open(self, st: os.stat_result) -> bool:
        """(Re)read the whole file into a fresh state and reconcile the run with it."""
        # Kept open between polls, unbuffered: a buffer would answer the re-read of the
        # file's start (_rewritten) from stale bytes.
        try:
            fh = open(self.path, "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:  # removed since the stat: wait for the next one
            return False
        head = fh.read(len(runlog.HEADER))
        self._head = head + fh.read(_HEAD - len(head))
        fh.seek(len(head))
        if len(head) < len(runlog.HEADER):
            fh.close()
            return False  # being created: try again at the next poll
        state = runlog.LogState()
        if head.startswith(runlog.MAGIC):
            runlog.check_header(head)
            data = fh.read(MAX_TOTAL_BYTES + 1)
            if len(data) > MAX_TOTAL_BYTES:
                raise RunFileError(f"run log is over the {MAX_TOTAL_BYTES} byte limit")
            records, end, _ = runlog.split(data, 0)
            for kind, payload in records:
                runlog.apply(state, kind, payload)
            self._buf, self._zip = data[end:], False
            ended = bool(records) and records[-1][0] == runlog.DONE
            ident = (st.st_dev, st.st_ino, 0, 0)
        else:  # a ZIP run file: reloaded whole when it changes
            fh.close()
            fh, self._zip, ended = None, True, True
            loaded = Run.load(self.path)
            state.reset(loaded.meta, loaded.store, loaded.epoch_records, loaded.findings)
            ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        self._fh, self._ident = fh, ident
        self.last_write = st.st_mtime
        self._reconcile(state)
        self._ended = ended
        if ended:
            self._emit("end", None)
        return True

    def _reconcile(self, state: runlog.LogState) -> None:
        """Take over ``state``: as a delta if it continues what the run holds, else a reset."""
        store = state.store if "layout" in state.meta else None
        same = (
            self.store is not None
            and store is not None
            and store.channels == self.store.channels
            and store.cursor >= self.store.cursor
            and state.meta.get("started") == self.meta.get("started")
            and len(state.epoch_records) >= len(self.epoch_records)
        )
        delta = store.since(self.store.cursor) if same else None
        if delta is None or delta.gap:
            self.reset(state.meta, store, state.epoch_records, state.findings)
            return
        self.set_meta(state.meta)
        self.store = store
        self.findings = state.findings
        if len(delta.rows):
            self._emit("steps", delta.rows)
        for record in state.epoch_records[len(self.epoch_records) :]:
            self.add_epoch(record)

    # ------------------------------------------------------------------ what runlog.apply calls
    def reset(self, meta: dict, store: RunStore | None, epochs: list, findings: list) -> None:
        """Replace everything (a new run in the file); listeners get "reset"."""
        self.layout = None
        self.set_meta(meta)
        self.store = store if self.layout is not None else None
        self.epoch_records = [_arrays(record) for record in epochs]
        self.findings = findings
        self._ended = False
        self._emit("reset", None)

    def set_meta(self, meta: dict) -> None:
        meta.setdefault("notes", [])
        self.meta = meta
        if self.layout is None and "layout" in meta:
            try:
                self.layout = Layout.from_dict(meta["layout"])
            except (KeyError, TypeError, ValueError) as exc:
                raise RunFileError(f"malformed layout ({exc})") from exc

    def new_store(self, store: RunStore) -> None:
        if self.layout is not None and self.layout.channels() != store.channels:
            raise RunFileError("the step columns do not match the run's layout")
        self.store = store

    def add_steps(self, rows: np.ndarray) -> None:
        self._ended = False
        super().add_steps(rows)

    def add_epoch(self, record: dict[str, Any]) -> None:
        super().add_epoch(_arrays(record))

    def session_end(self) -> None:
        self._ended = True
        self._emit("end", None)


def _ago(seconds: float) -> str:
    """A duration as the status shows it: seconds, then minutes, then hours (so the text, and
    the status messages it causes, change at most once a second, then once a minute)."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _arrays(record: dict[str, Any]) -> dict[str, Any]:
    """An epoch record with its JSON lists as numpy arrays (as ``Run.load`` gives them)."""
    return {k: np.asarray(v) if isinstance(v, list) else v for k, v in record.items()}


def follow(path: str | os.PathLike, interval_s: float = 0.5, stale_s: float = 15.0) -> Any:
    """Follow a run record that another process writes (``Watch(path=...)``).

    Parameters
    ----------
    path
        The record; it may not exist yet. A folder follows every record in it side by side
        (one file per rank with ``Watch(path=..., rank="all")``): a ``bertlab.compare`` of the
        followed runs, named after their files.
    interval_s
        Seconds between two reads of the file by the background thread.
    stale_s
        Seconds without a write (the writer writes a heartbeat every 5 s) after which the run
        is said to be "stopped".

    Returns
    -------
    FollowedRun
        A ``Run`` that grows as the file does; ``run.stop_following()`` ends the reading. For a
        folder, the ``Comparison`` of its followed runs (``.sources``).
    """
    if os.path.isdir(path):
        files = sorted(Path(path).glob("*.bertlab"))
        if not files:
            raise FileNotFoundError(
                f"{path}: no .bertlab record in this folder yet; follow a record's path instead "
                "(it may not exist yet) or call again once training has started"
            )
        from bertlab.views.compare import compare

        runs = [FollowedRun(f, interval_s=interval_s, stale_s=stale_s) for f in files]
        return compare(*runs, names=[f.stem for f in files], title=f"{Path(path).name}/")
    return FollowedRun(path, interval_s=interval_s, stale_s=stale_s)
