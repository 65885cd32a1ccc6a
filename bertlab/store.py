"""Bounded-memory, append-only store of per-training-step rows.

A training run produces one float64 row per step (loss, learning rate, per-layer
gradient norms, per-class counts, ...).  Runs can last millions of steps, so the
store keeps memory bounded by a byte budget with two tiers:

* **recent**: a ring buffer with the newest rows at full resolution;
* **archive**: bucket summaries (count, mean, min, max) of older rows.  Buckets
  hold ``b`` rows; when the archive is full, adjacent buckets are merged pairwise
  and ``b`` doubles.  Min/max ignore NaN, so every extreme ever appended stays
  visible; the mean is a plain mean, so a NaN or inf leaves a trace.

The module depends on numpy only, so it can be used and tested without any
deep-learning framework.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_MIN_RING_ROWS = 64
_MIN_BUCKETS = 32
_TEMP_BYTES = 1 << 20  # scratch size used when merging buckets
_STATS = ("mean", "min", "max")
_INT_KEYS = ("cursor", "bucket_size", "budget_bytes", "open_count")
_REDUCERS = (np.mean, np.fmin.reduce, np.fmax.reduce)  # bucket stats, per _STATS


@dataclass(frozen=True, eq=False)
class Delta:
    """Full-resolution rows ``[start, stop)`` returned by `RunStore.since`.

    ``gap`` is True when rows between the requested cursor and ``start`` were
    already compacted into the archive: a client that fell behind must re-read
    `RunStore.recent` and `RunStore.archive`.
    """

    start: int
    stop: int
    rows: np.ndarray
    gap: bool


@dataclass(frozen=True, eq=False)
class Archive:
    """Bucket summaries of rows that left full resolution, oldest first.

    ``count`` is (m,) int64; ``mean``, ``min`` and ``max`` are (m, D) float64.
    """

    count: np.ndarray
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray


def _positive_int(value: object, what: str) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is a positive int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


class RunStore:
    """Columnar, append-only store of fixed-width float64 rows.

    Parameters
    ----------
    channels
        ``(name, width)`` pairs; a row is the concatenation of all channels.
    budget_bytes
        Bound on the bytes held by the numpy buffers: half for the ring, half
        for the archive (floors of 64 ring rows and 32 buckets win for tiny
        budgets).  Buffers grow lazily, by doubling, up to those caps.

    Notes
    -----
    Every public method takes one lock, so a UI or a saver thread may read while
    the training loop appends.  Appending costs amortised O(1) per row.
    """

    def __init__(self, channels: Sequence[tuple[str, int]], budget_bytes: int = 64 * 2**20):
        self.channels: list[tuple[str, int]] = []
        self._slices: dict[str, slice] = {}
        d = 0
        for name, width in channels:
            if not isinstance(name, str) or not name or name in self._slices:
                raise ValueError(f"channel names must be unique strings, got {name!r}")
            width = _positive_int(width, f"width of channel {name!r}")
            self.channels.append((name, width))
            self._slices[name] = slice(d, d + width)
            d += width
        if d == 0:
            raise ValueError("a RunStore needs at least one channel")
        self.width: int = d
        self.budget_bytes = _positive_int(budget_bytes, "budget_bytes")
        half = self.budget_bytes // 2
        self._ring_cap = max(_MIN_RING_ROWS, half // (8 * d))
        arch_cap = max(_MIN_BUCKETS, (half - 24 * d) // (8 * (3 * d + 1)))
        self._arch_cap = arch_cap - arch_cap % 2
        self._chunk = max(1, self._ring_cap // 4)
        self._lock = threading.RLock()
        # ring: global row g lives at slot (g - origin) % len(buf)
        self._buf = np.empty((0, d))
        self._origin = self._n_recent = self._cursor = 0
        # archive: closed buckets [0, m) each hold exactly `bucket` rows
        self._bucket, self._m = 1, 0
        self._count = np.empty(0, dtype=np.int64)
        self._stats = [np.empty((0, d)) for _ in _STATS]
        self._open_n = 0
        self._open = np.full((3, d), np.nan)  # mean, min, max of the open bucket

    # ----------------------------------------------------------------- reading
    def slice(self, name: str) -> slice:
        """Column range of channel ``name`` within a row."""
        if name not in self._slices:
            known = ", ".join(self._slices)
            raise KeyError(f"unknown channel {name!r}; known channels: {known}")
        return self._slices[name]

    @property
    def cursor(self) -> int:
        """Number of rows ever appended (monotonic)."""
        return self._cursor

    @property
    def nbytes(self) -> int:
        """Bytes held by all numpy buffers of the store."""
        arrays = [self._buf, self._count, self._open, *self._stats]
        return sum(a.nbytes for a in arrays)

    def since(self, cursor: int) -> Delta:
        """Full-resolution rows with global index >= ``cursor``, O(rows returned)."""
        with self._lock:
            cursor = int(cursor)
            if not 0 <= cursor <= self._cursor:
                raise ValueError(f"cursor {cursor} outside [0, {self._cursor}]")
            oldest = self._cursor - self._n_recent
            start = max(cursor, oldest)
            rows = self._read(start, self._cursor, slice(None))
            return Delta(start, self._cursor, rows, gap=cursor < oldest)

    def recent(self) -> Delta:
        """All rows still held at full resolution (``gap`` is always False)."""
        with self._lock:
            return self.since(self._cursor - self._n_recent)

    def column(self, name: str) -> np.ndarray:
        """Recent rows of one channel: shape (n,) for width 1, else (n, width)."""
        sl = self.slice(name)
        with self._lock:
            out = self._read(self._cursor - self._n_recent, self._cursor, sl)
        return out[:, 0] if sl.stop - sl.start == 1 else out

    def archive(self) -> Archive:
        """Copies of the archive buckets; a non-empty open bucket comes last."""
        with self._lock:
            m, k = self._m, int(self._open_n > 0)
            count = np.append(self._count[:m], np.full(k, self._open_n, np.int64))
            stats = [np.concatenate([s[:m], o[None, :][:k]]) for s, o in self._zip()]
            return Archive(count, *stats)

    def _zip(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Pairs (closed-bucket array, open-bucket vector) for mean, min, max."""
        return list(zip(self._stats, self._open, strict=True))

    def _read(self, start: int, stop: int, cols: slice) -> np.ndarray:
        """Copy global rows ``[start, stop)``, columns ``cols``, out of the ring."""
        out = np.empty((stop - start, len(range(self.width)[cols])))
        for i, seg in self._segments(start, stop - start):
            out[i : i + len(seg)] = seg[:, cols]
        return out

    def _segments(self, start: int, n: int) -> list[tuple[int, np.ndarray]]:
        """Ring views (offset, view) of global rows ``[start, start + n)``."""
        if n == 0:
            return []
        s = (start - self._origin) % len(self._buf)
        first = min(n, len(self._buf) - s)
        segs = [(0, self._buf[s : s + first])]
        return segs + [(first, self._buf[: n - first])] if first < n else segs

    # ----------------------------------------------------------------- writing
    def append(self, rows: np.ndarray) -> None:
        """Append rows of shape (n, D), or one row of shape (D,), as float64."""
        rows = np.asarray(rows)
        if rows.dtype.kind not in "fiu":
            raise TypeError(f"rows must be real numbers, got dtype {rows.dtype}")
        rows = rows[None] if rows.ndim == 1 else rows
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"rows must be (n, {self.width}), not {rows.shape}")
        rows = rows.astype(np.float64, copy=False)
        n, skip = len(rows), 0  # skip: leading rows folded straight into the archive
        with self._lock, np.errstate(invalid="ignore"):  # inf - inf: NaN is intended
            need = self._n_recent + n - self._ring_cap
            if need > 0:  # evict whole chunks of the oldest rows
                evict = min(self._n_recent + n, -(-need // self._chunk) * self._chunk)
                from_ring = min(evict, self._n_recent)
                oldest = self._cursor - self._n_recent
                for _, seg in self._segments(oldest, from_ring):
                    self._fold(seg)
                self._n_recent -= from_ring
                skip = evict - from_ring
                self._fold(rows[:skip])
            self._grow_ring(self._n_recent + n - skip)
            for i, seg in self._segments(self._cursor + skip, n - skip):
                seg[...] = rows[skip + i : skip + i + len(seg)]
            self._n_recent += n - skip
            self._cursor += n

    def _grow_ring(self, needed: int) -> None:
        """Reallocate the ring (doubling, capped) so that it holds ``needed`` rows."""
        if needed <= len(self._buf):
            return
        new = min(self._ring_cap, max(2 * len(self._buf), needed, _MIN_RING_ROWS))
        oldest = self._cursor - self._n_recent
        buf = np.empty((new, self.width))
        buf[: self._n_recent] = self._read(oldest, self._cursor, slice(None))
        self._buf, self._origin = buf, oldest

    def _grow_archive(self, needed: int) -> None:
        """Reallocate archive arrays one at a time (keeps peak memory low)."""
        if needed <= len(self._count):
            return
        new, m = min(self._arch_cap, max(2 * len(self._count), needed, 16)), self._m
        count = np.empty(new, dtype=np.int64)
        count[:m] = self._count[:m]
        self._count = count
        for i, old in enumerate(self._stats):
            self._stats[i] = np.empty((new, self.width))
            self._stats[i][:m] = old[:m]
            del old

    def _fold(self, rows: np.ndarray) -> None:
        """Fold rows (oldest first) into the archive buckets."""
        i, k = 0, len(rows)
        while i < k:
            b, m = self._bucket, self._m
            if self._open_n == 0 and k - i >= b:  # whole buckets, vectorised
                nfull = min((k - i) // b, self._arch_cap - m)
                block = rows[i : i + nfull * b].reshape(nfull, b, self.width)
                self._grow_archive(m + nfull)
                for f, dst in zip(_REDUCERS, self._stats, strict=True):
                    f(block, axis=1, out=dst[m : m + nfull])
                self._count[m : m + nfull] = b
                self._m, i = m + nfull, i + nfull * b
            else:  # top up the open bucket, closing it when it holds b rows
                take = min(b - self._open_n, k - i)
                self._add_open(rows[i : i + take])
                i += take
                if self._open_n == b:
                    self._grow_archive(m + 1)
                    self._count[m] = b
                    for dst, o in self._zip():
                        dst[m] = o
                    self._m, self._open_n = m + 1, 0
                    self._open.fill(np.nan)
            if self._m == self._arch_cap:
                self._compact()

    def _add_open(self, part: np.ndarray) -> None:
        """Merge a block of rows into the open (incomplete) bucket."""
        c, k = self._open_n, len(part)
        mean, lo, hi = (f(part, axis=0) for f in _REDUCERS)
        if c == 0:
            self._open[:] = mean, lo, hi
        else:
            self._open[0] = self._open[0] * (c / (c + k)) + mean * (k / (c + k))
            np.fmin(self._open[1], lo, out=self._open[1])
            np.fmax(self._open[2], hi, out=self._open[2])
        self._open_n = c + k

    def _compact(self) -> None:
        """Merge adjacent bucket pairs in place and double the bucket size."""
        half, (mean, lo, hi) = self._m // 2, self._stats
        step = max(1, _TEMP_BYTES // (8 * self.width))
        for j in range(0, half, step):
            e = min(j + step, half)
            a, b, dst = slice(2 * j, 2 * e, 2), slice(2 * j + 1, 2 * e, 2), slice(j, e)
            ca, cb = self._count[a, None], self._count[b, None]
            mean[dst] = mean[a] * (ca / (ca + cb)) + mean[b] * (cb / (ca + cb))
            lo[dst] = np.fmin(lo[a], lo[b])
            hi[dst] = np.fmax(hi[a], hi[b])
            self._count[dst] = (ca + cb)[:, 0]
        self._m, self._bucket = half, 2 * self._bucket

    # ------------------------------------------------------------ persistence
    def export(self) -> dict[str, np.ndarray]:
        """Snapshot of the whole state as plain numeric numpy arrays (copies).

        Keys: ``recent`` (n, D); ``archive_count`` (m,) and ``archive_mean|min|max``
        (m, D) for closed buckets; ``open_mean|min|max`` (D,) for the open bucket;
        0-d int64 ``cursor``, ``bucket_size``, ``budget_bytes``, ``open_count``.
        """
        with self._lock:
            out = {"recent": self.recent().rows, "archive_count": self._count[: self._m]}
            for name, (closed, opened) in zip(_STATS, self._zip(), strict=True):
                out[f"archive_{name}"] = closed[: self._m]
                out[f"open_{name}"] = opened
            out = {key: a if key == "recent" else a.copy() for key, a in out.items()}
            ints = (self._cursor, self._bucket, self.budget_bytes, self._open_n)
            for key, value in zip(_INT_KEYS, ints, strict=True):
                out[key] = np.array(value, dtype=np.int64)
            return out

    @classmethod
    def from_export(
        cls,
        channels: Sequence[tuple[str, int]],
        arrays: Mapping[str, np.ndarray],
        budget_bytes: int | None = None,
    ) -> RunStore:
        """Rebuild a store from `export` output, validating it strictly.

        ``budget_bytes`` defaults to the budget recorded in ``arrays``.  Raises
        ValueError on missing or extra keys, a wrong dtype or shape, or a state
        that is inconsistent or does not fit the budget.
        """
        f8, i8 = np.dtype(np.float64), np.dtype(np.int64)
        spec = {"recent": (f8, 2), "archive_count": (i8, 1)}
        spec |= {f"archive_{s}": (f8, 2) for s in _STATS}
        spec |= {f"open_{s}": (f8, 1) for s in _STATS} | {k: (i8, 0) for k in _INT_KEYS}
        if not isinstance(arrays, Mapping) or set(arrays) != set(spec):
            keys = sorted(arrays) if isinstance(arrays, Mapping) else type(arrays)
            raise ValueError(f"export must have keys {sorted(spec)}, got {keys}")
        for key, (dtype, ndim) in spec.items():
            a = arrays[key]
            if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim:
                got = f"{a.dtype} {a.ndim}-d" if isinstance(a, np.ndarray) else type(a)
                raise ValueError(f"export[{key!r}] must be {ndim}-d {dtype}, got {got}")
        cursor, bucket, budget, open_n = (int(arrays[k]) for k in _INT_KEYS)
        store = cls(channels, budget if budget_bytes is None else budget_bytes)
        recent, count = arrays["recent"], arrays["archive_count"]
        m, d = len(count), store.width
        for s in _STATS:
            shapes = arrays[f"archive_{s}"].shape, arrays[f"open_{s}"].shape
            if shapes != ((m, d), (d,)):
                raise ValueError(f"archive/open {s!r} arrays must have {m} rows of {d}")
        if recent.shape[1] != d:
            raise ValueError(f"recent rows have width {recent.shape[1]}, not {d}")
        if bucket < 1 or bucket & (bucket - 1) or not 0 <= open_n < bucket:
            raise ValueError(f"bad bucket_size {bucket} / open_count {open_n}")
        if np.any(count != bucket):
            raise ValueError(f"every closed bucket must hold bucket_size={bucket} rows")
        if len(recent) > store._ring_cap or m >= store._arch_cap:
            raise ValueError("the exported state does not fit in budget_bytes")
        if cursor != len(recent) + m * bucket + open_n:
            raise ValueError(f"cursor {cursor} != number of recent + archived rows")
        store._cursor, store._bucket, store._open_n = cursor, bucket, open_n
        store._grow_archive(m)
        store._m, store._count[:m] = m, count
        for s, (closed, opened) in zip(_STATS, store._zip(), strict=True):
            closed[:m] = arrays[f"archive_{s}"]
            if open_n:
                opened[:] = arrays[f"open_{s}"]
        store._grow_ring(len(recent))
        store._origin, store._n_recent = cursor - len(recent), len(recent)
        store._buf[: len(recent)] = recent
        return store
