"""Saved-run file formats: a ZIP of JSON and Parquet, or a run log; safe to open from strangers.

A ``.bertlab`` file is one of two formats, told apart by their first bytes:

* the **ZIP** below (``PK\x03\x04``), written whole by ``Run.save``;
* the **run log** (``\x89bertlab-log\r\n\x1a``), appended to while a run trains by
  ``bertlab.record.Recorder`` (``Watch(path=...)``) and read by ``bertlab.follow``: a header and
  checksummed records (snapshot = the ZIP below, meta, step store, rows, epoch, findings),
  replayed in order up to the first incomplete or damaged record, so a process killed while
  writing leaves a file that loads. The log is compacted into one snapshot record (temporary
  file + ``os.replace``) when it grows past twice its last snapshot plus 1 MiB, so its size
  follows the store's bounded history. Its layout is documented in `bertlab.runlog`.

`load_run` reads both.

Layout (format ``bertlab-run``, version 1).  The file is a ZIP archive with the
three members below (any other member is ignored).  ``run.json`` is deflated; the
Parquet members are zstd-compressed inside, so the ZIP stores them as they are.

``run.json``
    A UTF-8 JSON object with the keys

    * ``format``: ``"bertlab-run"``; ``version``: ``1``; ``written_by``: e.g.
      ``"bertlab 0.1.0"``;
    * ``meta``: object; ``epochs``: list of objects (one per epoch);
      ``findings``: list of objects.  numpy arrays are written as nested lists and
      numpy scalars as plain numbers; NaN and infinities use the ``NaN``,
      ``Infinity`` and ``-Infinity`` tokens of Python's ``json`` module;
    * ``channels``: ``[[name, width], ...]``, the columns of a step row, in order;
    * ``store``: ``{"cursor", "bucket_size", "budget_bytes", "open_count"}``,
      the counters of the step store (`bertlab.store.RunStore`).
``recent.parquet``
    The newest steps at full resolution, oldest first: one column per channel,
    named after it, ``double`` for width 1 and ``fixed_size_list<double>[width]``
    otherwise.  They are steps ``cursor - num_rows`` to ``cursor - 1``.
``archive.parquet``
    Older steps, downsampled, oldest first: ``count`` (int64, steps summarised
    by the row) then, for every channel, ``mean:<name>``, ``min:<name>`` and
    ``max:<name>`` with the types above (min/max ignore NaN; the mean does not).
    When ``open_count > 0`` the last row is the still-open bucket.  Archive rows
    cover steps ``0`` to ``sum(count) - 1``; the recent rows follow.

Files are written atomically (a temporary file in the same directory, then
``os.replace``).  Loading never unpickles and never extracts to disk: it reads
only the three members, into memory, after checking their declared sizes against
`MAX_TOTAL_BYTES`, then validates every field, Parquet schema, type and shape
against ``channels`` and ``store``.  Any problem raises `RunFileError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import sys
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bertlab.store import RunStore

FORMAT = "bertlab-run"
VERSION = 1
MAX_TOTAL_BYTES = 1 << 30  # limit on the uncompressed size of the members read
_MEMBERS = ("run.json", "recent.parquet", "archive.parquet")
_STATS = ("mean", "min", "max")
_STORE_KEYS = ("cursor", "bucket_size", "budget_bytes", "open_count")
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    pa.ArrowException,
    OSError,
    EOFError,
    ValueError,  # includes JSON and Unicode decoding errors
    TypeError,
    KeyError,
    IndexError,
    ArithmeticError,
    RecursionError,  # deeply nested JSON
    MemoryError,  # sizes declared inside a Parquet member can still be absurd
    RuntimeError,  # e.g. an encrypted member
    NotImplementedError,  # an unsupported compression method
)


class RunFileError(ValueError):
    """A run file could not be loaded: not a run file, corrupt, or unsupported."""


# ------------------------------------------------------------------- saving
def save_run(
    path: str | os.PathLike,
    *,
    meta: dict,
    store: RunStore,
    epochs: list[dict],
    findings: list[dict],
) -> None:
    """Write a run to ``path`` atomically.

    Everything is snapshotted first (the store under its lock), then written to a
    temporary file in the same directory that replaces ``path`` only once it is
    complete, so neither a crash nor a run that keeps appending can leave a
    half-written file.  Raises TypeError if ``meta``, ``epochs`` or ``findings``
    hold a value that has no JSON form.
    """
    data = run_bytes(meta=meta, store=store, epochs=epochs, findings=findings)
    write_atomic(path, data)


def run_bytes(
    *,
    meta: dict,
    store: RunStore,
    epochs: list[dict],
    findings: list[dict],
    arrays: dict[str, np.ndarray] | None = None,
) -> bytes:
    """The ZIP file of `save_run` as bytes (also the payload of a log's snapshot record).

    ``arrays``: ``store.export()`` taken by the caller (who then knows its exact cursor).
    """
    if not isinstance(store, RunStore):
        raise TypeError(f"store must be a RunStore, not {type(store).__name__}")
    arrays = store.export() if arrays is None else arrays
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "written_by": f"bertlab {getattr(sys.modules.get('bertlab'), '__version__', '?')}",
        "meta": _jsonable(dict(meta), "meta"),
        "channels": [[name, width] for name, width in store.channels],
        "epochs": _jsonable(list(epochs), "epochs"),
        "findings": _jsonable(list(findings), "findings"),
        "store": {key: int(arrays[key]) for key in _STORE_KEYS},
    }
    archive = [arrays["archive_count"]] + [arrays[f"archive_{s}"] for s in _STATS]
    if arrays["open_count"] > 0:
        opened = [arrays["open_count"]] + [arrays[f"open_{s}"] for s in _STATS]
        archive = [np.concatenate([a, o[None]]) for a, o in zip(archive, opened, strict=True)]
    members = {
        "run.json": json.dumps(doc).encode("utf-8"),
        "recent.parquet": _parquet(store.channels, [("", arrays["recent"])]),
        "archive.parquet": _parquet(
            store.channels,
            [(f"{s}:", a) for s, a in zip(_STATS, archive[1:], strict=True)],
            count=archive[0],
        ),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            # Parquet members are zstd-compressed inside: store them as they are
            method = zipfile.ZIP_DEFLATED if name == "run.json" else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=method)
    return buf.getvalue()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, then rename it over
    ``path``, so that ``path`` is always either the old or the new complete file."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # persist the rename (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _jsonable(obj: Any, where: str) -> Any:
    """Copy ``obj`` with numpy arrays as lists and numpy scalars as numbers."""
    if isinstance(obj, np.generic | np.ndarray):
        obj = obj.tolist()  # also turns scalars into Python numbers
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            key = key.item() if isinstance(key, np.generic) else key
            if not (key is None or isinstance(key, str | bool | int | float)):
                raise TypeError(f"{where}: cannot save a {type(key).__name__} key")
            out[key] = _jsonable(value, f"{where}[{key!r}]")
        return out
    raise TypeError(f"{where}: cannot save a {type(obj).__name__} as JSON")


def _parquet(
    channels: list[tuple[str, int]],
    groups: list[tuple[str, np.ndarray]],
    count: np.ndarray | None = None,
) -> bytes:
    """Parquet bytes with one column per (prefix, channel) for each row group."""
    names, columns = [], []
    if count is not None:
        names.append("count")
        columns.append(pa.array(count, type=pa.int64()))
    for prefix, rows in groups:
        start = 0
        for name, width in channels:
            block = np.ascontiguousarray(rows[:, start : start + width])
            values = pa.array(block.reshape(-1), type=pa.float64())
            if width > 1:
                values = pa.FixedSizeListArray.from_arrays(values, width)
            names.append(prefix + name)
            columns.append(values)
            start += width
    buf = io.BytesIO()
    pq.write_table(pa.table(columns, names=names), buf, compression="zstd")
    return buf.getvalue()


# ------------------------------------------------------------------ loading
def load_run(path: str | os.PathLike) -> tuple[dict, RunStore, list[dict], list[dict]]:
    """Load ``(meta, store, epochs, findings)`` from a file written by `save_run`.

    JSON values come back as plain Python objects (arrays as nested lists).
    Raises RunFileError for anything wrong with the file's content, and OSError
    (e.g. FileNotFoundError) when ``path`` itself cannot be opened.
    """
    from bertlab import runlog  # runlog builds on this module

    with open(path, "rb") as fh:
        try:
            with _reading("unreadable run file"):
                if fh.read(len(runlog.MAGIC)) == runlog.MAGIC:
                    return runlog.read_log(fh)
                fh.seek(0)
                return _load(fh)
        except RunFileError as exc:
            raise RunFileError(f"{os.fspath(path)}: {exc}") from exc.__cause__


def load_bytes(data: bytes) -> tuple[dict, RunStore, list[dict], list[dict]]:
    """`load_run` for the bytes of a ZIP run file (a log's snapshot record)."""
    with _reading("unreadable snapshot"):
        return _load(io.BytesIO(data))


@contextlib.contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn any error of a reading step into a RunFileError that names the step."""
    try:
        yield
    except RunFileError:
        raise
    except _READ_ERRORS as exc:
        raise RunFileError(f"{what} ({type(exc).__name__}: {exc})") from exc


def _load(fh: BinaryIO) -> tuple[dict, RunStore, list[dict], list[dict]]:
    """Read and validate an open run file."""
    with _reading("not a bertlab run file (not a ZIP archive)"):
        zf = zipfile.ZipFile(fh)
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if info.filename in infos:
            raise RunFileError(f"duplicate member {info.filename!r}")
        if info.filename in _MEMBERS:
            infos[info.filename] = info
    if "run.json" not in infos:
        raise RunFileError("not a bertlab run file (no run.json member)")
    missing = [name for name in _MEMBERS if name not in infos]
    if missing:
        raise RunFileError(f"missing member(s) {', '.join(missing)}")
    total = sum(info.file_size for info in infos.values())
    if total > MAX_TOTAL_BYTES:  # checked before anything is decompressed
        raise RunFileError(f"members claim {total} bytes, over the {MAX_TOTAL_BYTES} limit")
    data = {}
    for name, info in infos.items():
        with _reading(f"{name}: corrupt ZIP member"), zf.open(info) as member:
            data[name] = member.read(info.file_size + 1)
        if len(data[name]) != info.file_size:
            raise RunFileError(f"{name}: size differs from the ZIP directory")
    with _reading("run.json: invalid JSON"):
        doc = _check_doc(json.loads(data["run.json"].decode("utf-8")))
    channels = [(name, width) for name, width in doc["channels"]]
    with _reading("recent.parquet: unreadable"):
        (recent,) = _read_parquet("recent.parquet", data["recent.parquet"], channels)
    with _reading("archive.parquet: unreadable"):
        count, *stats = _read_parquet("archive.parquet", data["archive.parquet"], channels)
    arrays = {key: np.array(doc["store"][key], dtype=np.int64) for key in _STORE_KEYS}
    open_n = doc["store"]["open_count"]
    opened = [np.full(recent.shape[1], np.nan)] * 3
    if open_n:
        if len(count) == 0 or count[-1] != open_n:
            raise RunFileError("archive.parquet: the last row is not the open bucket")
        count, opened, stats = count[:-1], [a[-1] for a in stats], [a[:-1] for a in stats]
    arrays |= {"recent": recent, "archive_count": count}
    for name, closed, last in zip(_STATS, stats, opened, strict=True):
        arrays[f"archive_{name}"], arrays[f"open_{name}"] = closed, last.copy()
    try:
        store = RunStore.from_export(channels, arrays)
    except (ValueError, TypeError) as exc:
        raise RunFileError(f"inconsistent step store: {exc}") from None
    return doc["meta"], store, doc["epochs"], doc["findings"]


def _check_doc(doc: Any) -> dict:
    """Validate the decoded run.json object; return it unchanged."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RunFileError(f"not a bertlab run file (run.json format is not {FORMAT!r})")
    version = doc.get("version")
    if not _is_int(version) or version < 1:
        raise RunFileError(f"invalid format version {version!r}")
    if version > VERSION:
        writer = doc.get("written_by")
        ok = isinstance(writer, str) and writer.startswith("bertlab ") and len(writer) < 40
        raise RunFileError(
            f"format version {version} is newer than this bertlab reads ({VERSION}); "
            f"the file was written by {writer if ok else 'a newer bertlab'}: "
            "upgrade bertlab to at least that version to open it"
        )
    kinds = {"meta": dict, "channels": list, "epochs": list, "findings": list}
    for key, kind in kinds.items():
        if not isinstance(doc.get(key), kind):
            raise RunFileError(f"run.json: {key!r} must be a {kind.__name__}")
    for key in ("epochs", "findings"):
        if not all(isinstance(item, dict) for item in doc[key]):
            raise RunFileError(f"run.json: every item of {key!r} must be an object")
    for item in doc["channels"]:
        ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        if not (ok and _is_int(item[1]) and 0 < item[1] < 1 << 24):
            raise RunFileError(f"run.json: bad channel {item!r}")
    store = doc.get("store")
    if not isinstance(store, dict) or not all(
        _is_int(store.get(k)) and 0 <= store[k] < 1 << 62 for k in _STORE_KEYS
    ):
        raise RunFileError(f"run.json: 'store' must hold integers {_STORE_KEYS}")
    return doc


def _is_int(value: Any) -> bool:
    """True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _read_parquet(member: str, data: bytes, channels: list[tuple[str, int]]) -> list[np.ndarray]:
    """Decode a Parquet member into ([count] for the archive) + one (n, D) array per
    row group (recent: 1, archive: mean/min/max), checking names, types, nulls and
    sizes against ``channels`` before and after reading."""
    pf = pq.ParquetFile(pa.BufferReader(data))
    prefixes = [""] if member == "recent.parquet" else [f"{s}:" for s in _STATS]
    expected = [(p + name, width) for p in prefixes for name, width in channels]
    if member == "archive.parquet":
        expected.insert(0, ("count", 0))
    names = pf.schema_arrow.names
    if names != [name for name, _ in expected]:
        raise RunFileError(f"{member}: columns {names} do not match the channels")
    n, d = pf.metadata.num_rows, sum(width for _, width in channels)
    unpacked = sum(
        pf.metadata.row_group(g).total_byte_size for g in range(pf.metadata.num_row_groups)
    )
    if max(unpacked, n * 8 * (d * len(prefixes) + 1)) > MAX_TOTAL_BYTES:
        raise RunFileError(f"{member}: {n} rows is over the size limit")
    table = pf.read()
    if table.num_rows != n:
        raise RunFileError(f"{member}: row count disagrees with its metadata")
    cols = []
    for (name, width), column in zip(expected, table.columns, strict=True):
        arr = column.combine_chunks()
        kind = pa.int64() if width == 0 else pa.float64()
        if width > 1:
            ok = pa.types.is_fixed_size_list(arr.type) and arr.type.list_size == width
            if not ok or arr.type.value_type != kind or arr.null_count:
                raise RunFileError(f"{member}: column {name!r} is not {width} doubles")
            arr = arr.flatten()
        if arr.type != kind or arr.null_count or len(arr) != n * max(width, 1):
            raise RunFileError(f"{member}: column {name!r} has a bad type or nulls")
        cols.append(arr.to_numpy(zero_copy_only=False).reshape(n, max(width, 1)))
    out = [cols.pop(0)[:, 0].astype(np.int64)] if expected[0][1] == 0 else []
    per = len(channels)
    for i in range(len(prefixes)):
        block = cols[i * per : (i + 1) * per]
        out.append(np.concatenate(block, axis=1) if block else np.empty((n, 0)))
    return out
