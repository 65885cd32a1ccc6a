"""``Recorder``: write a run to disk while it trains, so that a killed process leaves a record.

A ``Recorder`` listens to a ``bertlab.run.Run`` (``run.listeners``) and appends what is new to a
run log (`bertlab.runlog`) from a background thread: at most every ``every_s`` seconds, at every
epoch end and at train end. The training thread never waits for the disk: its listener only
sets a flag (steps) or wakes the writer (epoch end, train end); the writer thread reads the new
rows from the store (which has its own lock) and writes them. ``bertlab.load`` opens the file at
any moment, also after ``kill -9``: it gets every step up to the last completed write, the
findings and the metadata of that write.

The file stays bounded: when the records appended since the last snapshot outgrow
`COMPACT_FACTOR` times the snapshot (plus `COMPACT_MIN_BYTES`), the writer rewrites the file as
one snapshot of the run (the store's bounded history) in a temporary file and renames it over
the old one. A disk that is full or a path that cannot be written gives one
``bertlab.BertlabWarning``; training goes on and the writer tries again at the next write.

The Watch adapters create it from ``Watch(path=..., flush_every_s=...)``; it also works alone::

    watch = bertlab.Watch()
    recorder = bertlab.record.Recorder(watch.run, "runs/exp1.bertlab")
    try:
        model.fit(..., callbacks=[watch])
    finally:
        recorder.close()      # writes what is left, waits for it, stops the thread
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from bertlab import runlog
from bertlab.guard import BertlabWarning
from bertlab.run import Run
from bertlab.runfile import write_atomic

#: The log is compacted when its appended records exceed this many times the last snapshot...
COMPACT_FACTOR = 2.0
#: ... plus this many bytes (so small runs are not rewritten over and over).
COMPACT_MIN_BYTES = 1 << 20
#: Seconds without anything to write after which the writer appends a heartbeat record while a
#: training runs, so a follower can tell a long validation from a writer that stopped.
HEARTBEAT_S = 5.0


def rank_path(path: str | os.PathLike, rank: int) -> str | Path:
    """The file of one process of a distributed run (``Watch(rank="all")``).

    ``runs/exp1.bertlab`` becomes ``runs/exp1.rank1.bertlab`` for rank 1; a name without a
    suffix gets ``.rank1`` appended. Returns a ``Path`` for a ``Path``, else a ``str``.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be an int >= 0, got {rank!r}")
    p = Path(path)
    name = f"{p.stem}.rank{rank}{p.suffix}" if p.suffix else f"{p.name}.rank{rank}"
    out = p.with_name(name)
    return out if isinstance(path, Path) else str(out)


class Recorder:
    """Append a training run to ``path`` from a background thread while it trains.

    Parameters
    ----------
    run
        The run to record (``watch.run``); the recorder adds itself to ``run.listeners``.
    path
        The file to write (created or overwritten; its folder is created if missing).
    every_s
        Longest time between two writes while steps arrive; epoch end and train end write at
        once. What a kill loses is at most this much training.

    Attributes
    ----------
    writes, write_seconds
        Number of writes done and the seconds they took in total (for benchmarks).
    ok
        Whether the last write succeeded.
    """

    def __init__(self, run: Run, path: str | os.PathLike, every_s: float = 2.0) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s must be > 0 seconds, got {every_s!r}")
        self.run = run
        self.path = Path(path)
        self.every_s = float(every_s)
        self.writes = 0
        self.write_seconds = 0.0
        #: whether the last write succeeded
        self.ok = False
        self._cond = threading.Condition()
        self._asked = 0  # write generations asked for (flush, epoch, end)
        self._done = 0  # ... and done
        self._dirty = True  # steps arrived since the last write
        self._ends = 0  # training sessions ended (Run.end), each written as a D record
        self._training = False  # between "begin" (or a step) and "end": heartbeats are due
        self._last_append = time.monotonic()
        self._closing = False
        self._warned = False
        self._fd: int | None = None
        self._reset_marks()
        run.listeners.append(self._on_event)
        self._thread = threading.Thread(target=self._loop, name="bertlab-recorder", daemon=True)
        self._thread.start()
        self._ask()  # the file exists (header + what the run holds) as soon as possible

    # ------------------------------------------------------------------ training thread
    def _on_event(self, kind: str, payload: Any) -> None:
        if kind == "steps":
            self._dirty = self._training = True  # the writer picks the rows up within every_s
        elif kind == "end":
            self._ends += 1
            self._training = False
            self._ask()
        elif kind in ("epoch", "begin"):
            self._training = True
            self._ask()

    def _ask(self) -> int:
        with self._cond:
            self._asked += 1
            self._cond.notify_all()
            return self._asked

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything recorded so far and wait until it is on disk (fsynced).

        Returns False if the write failed or did not finish within ``timeout`` seconds (or the
        recorder is closed). Used at train end and when training raises.
        """
        if not self._thread.is_alive():
            return False
        target = self._ask()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._done < target and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return self._done >= target and self.ok

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is left, stop the writer thread, stop listening to the run."""
        if self._on_event in self.run.listeners:
            self.run.listeners.remove(self._on_event)
        with self._cond:
            self._closing = True
            self._asked += 1
            self._cond.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ writer thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._done >= self._asked and not self._closing:
                    self._cond.wait(min(self.every_s, HEARTBEAT_S))
                target, closing = self._asked, self._closing
            beat = self._training and time.monotonic() - self._last_append >= HEARTBEAT_S
            if self._done < target or self._dirty or closing or beat:
                self._write(sync=self._done < target or closing)
            with self._cond:
                self._done = target
                self._cond.notify_all()
            if closing:
                self._close_fd()
                return

    def _write(self, sync: bool) -> None:
        """One write (never raises: a failure warns once and the next write retries)."""
        start = time.perf_counter()
        self._dirty = False
        try:
            if self._fd is None:
                self._rewrite()
            else:
                delta = self._delta()
                if delta is None:  # the writer fell behind the store's ring: start again
                    self._rewrite()
                elif delta[0]:
                    self._append(delta[0])
                    self._marks = delta[1]
                elif self._training and time.monotonic() - self._last_append >= HEARTBEAT_S:
                    beat = runlog.json_record(runlog.HEARTBEAT, {"time": time.time()}, "beat")
                    self._append(beat)
                limit = COMPACT_FACTOR * self._snapshot_bytes + COMPACT_MIN_BYTES
                if self._log_bytes > limit:
                    self._rewrite()
            if sync and self._fd is not None:
                os.fsync(self._fd)
            self.ok = True
        except Exception as exc:  # noqa: BLE001 - recording must never stop training
            self.ok = False
            self._fail(exc)
        self.writes += 1
        self.write_seconds += time.perf_counter() - start

    def _reset_marks(self) -> None:
        """Forget what was written (the next write starts a new file)."""
        #: what the file holds: store object, steps, epochs, meta JSON, findings JSON, ends
        self._marks: tuple[Any, int, int, str | None, str | None, int] = (None, 0, 0, None, None, 0)
        self._snapshot_bytes = 0
        self._log_bytes = 0

    def _delta(self) -> tuple[bytes, tuple] | None:
        """Records for what is new since the last write, and the marks once they are written
        (None: rows were lost to the store's archive, or the store changed: rewrite)."""
        run, parts = self.run, []
        old_store, cursor, n_epochs, meta_text, findings_text, ends = self._marks
        store = run.store  # read before meta: set_layout writes meta["layout"] first
        text = self._json(run.meta)
        if text is not None and text != meta_text:
            parts.append(runlog.record(runlog.META, text.encode("utf-8")))
            meta_text = text
        if store is not None and store is not old_store:
            if old_store is not None:
                return None
            parts.append(runlog.store_record(store))
            cursor = 0
        if store is not None and store.cursor > cursor:
            delta = store.since(cursor)
            if delta.gap:
                return None
            parts.append(runlog.rows_record(delta.start, delta.rows))
            cursor = delta.stop
        epochs = run.epoch_records[n_epochs:]
        parts += [runlog.json_record(runlog.EPOCH, record, "epoch") for record in epochs]
        text = self._json(run.findings)
        if text is not None and text != findings_text:
            parts.append(runlog.record(runlog.FINDINGS, text.encode("utf-8")))
            findings_text = text
        n_ends = self._ends
        if n_ends > ends:  # after the rows and findings it ends
            parts.append(runlog.json_record(runlog.DONE, {"steps": cursor}, "done"))
        marks = (store, cursor, n_epochs + len(epochs), meta_text, findings_text, n_ends)
        return b"".join(parts), marks

    @staticmethod
    def _json(value: Any) -> str | None:
        """JSON text of a value the training thread may be changing (None if it kept changing)."""
        for _ in range(3):
            try:
                return json.dumps(runlog._jsonable(value, "run"))
            except RuntimeError:  # "changed size during iteration": try again
                continue
        return None

    def _append(self, data: bytes) -> None:
        """Append records; on failure cut the file back to its last complete record."""
        size = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        except BaseException:
            try:
                os.ftruncate(self._fd, size)  # the next write retries from the same marks
            except OSError:
                self._close_fd()  # unknown tail: the next write rewrites the whole file
            raise
        self._log_bytes += len(data)
        self._last_append = time.monotonic()

    def _rewrite(self) -> None:
        """Write the whole run as header + snapshot record, then append from there.

        A regular file is replaced atomically (temporary file + rename), so the old file stays
        valid until the new one is complete; anything else (a device) is written in place.
        """
        self._close_fd()
        self._reset_marks()
        run, ends = self.run, self._ends
        store = run.store
        meta_text, findings_text = self._json(run.meta), self._json(run.findings)
        epochs = list(run.epoch_records)
        if meta_text is None or findings_text is None:
            raise RuntimeError("the run's metadata kept changing while it was being written")
        meta, findings = json.loads(meta_text), json.loads(findings_text)
        snap, cursor = runlog.snapshot_record(meta, store, epochs, findings)
        if ends:  # the snapshot is of a run whose (last) session had ended: say so
            snap += runlog.json_record(runlog.DONE, {"steps": cursor}, "done")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = runlog.HEADER + runlog.identity_record() + snap
        if self.path.is_file() or not self.path.exists():
            write_atomic(self.path, start)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
            self._append(start)
        self._marks = (store, cursor, len(epochs), meta_text, findings_text, ends)
        self._snapshot_bytes, self._log_bytes = len(snap), 0

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _fail(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"bertlab: cannot write the run record {self.path} ({type(exc).__name__}: {exc}); "
                "training goes on, and the recorder tries again at its next write",
                BertlabWarning,
                stacklevel=2,
            )
