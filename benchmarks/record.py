"""What one write of the crash-safe record costs (``bertlab.record.Recorder``), no training.

Run::

    python benchmarks/record.py            # D = 300 columns, the default 64 MB store budget

The writer thread of ``Watch(path=...)`` appends, at most every 2 s, the rows recorded since its
last write (plus meta/findings when they changed), and at the end of a ``fit`` it fsyncs. When
the appended records outgrow twice the last snapshot (+1 MiB) it rewrites the file as one
snapshot of the store (Parquet, zstd), whose size is bounded by the store's memory budget. This
script times those three operations on a synthetic store (numpy only, so the numbers are the
writer's own cost, not the model's), on the machine's temporary folder:

* **append**: one write of ``k`` new rows (k = 10, 100, 1000), without and with fsync;
* **snapshot**: the rewrite of a store filled to its budget (ring + archive full).

The training thread never waits for any of these: it only sets a flag (steps) or wakes the
writer (epoch end); ``flush()`` at train end is the one wait.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

from bertlab.record import Recorder  # noqa: E402
from bertlab.run import Run  # noqa: E402
from bertlab.store import RunStore  # noqa: E402


def timed_writes(folder: Path, width: int, rows: int, sync: bool, repeats: int) -> list[float]:
    """Seconds of ``repeats`` appends of ``rows`` rows each (after a first, full write)."""
    run = Run(meta={"notes": [], "purpose": "benchmark"})
    run.store = RunStore([("step", 1), ("x", width - 1)])
    recorder = Recorder(run, folder / f"w{width}-r{rows}-{sync}.bertlab", every_s=3600)
    assert recorder.flush()
    block = np.random.default_rng(0).standard_normal((rows, width))
    out = []
    for _ in range(repeats):
        run.store.append(block)
        start = time.perf_counter()
        recorder._write(sync=sync)  # what the thread does, timed without the thread handoff
        out.append(time.perf_counter() - start)
    recorder.close()
    return out


def snapshot_cost(folder: Path, width: int, budget: int) -> tuple[float, int, int]:
    """Seconds and bytes of a rewrite of a store filled to ``budget`` bytes."""
    run = Run(meta={"notes": []})
    run.store = RunStore([("step", 1), ("x", width - 1)], budget_bytes=budget)
    block = np.random.default_rng(1).standard_normal((4096, width))
    while run.store.nbytes < 0.95 * budget or run.store.cursor < 4 * budget // (8 * width):
        run.store.append(block)
    recorder = Recorder(run, folder / "snapshot.bertlab", every_s=3600)
    assert recorder.flush()
    start = time.perf_counter()
    recorder._rewrite()
    seconds = time.perf_counter() - start
    recorder.close()
    return seconds, os.path.getsize(folder / "snapshot.bertlab"), run.store.cursor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--width", type=int, default=300, help="columns of a step row")
    parser.add_argument("--budget-mb", type=float, default=64.0, help="store budget")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bertlab-bench-record-") as name:
        folder = Path(name)
        print(f"row width {args.width} columns ({8 * args.width} B); medians of {args.repeats}")
        for rows in (10, 100, 1000):
            cells = []
            for sync in (False, True):
                t = timed_writes(folder, args.width, rows, sync, args.repeats)
                cells.append(f"{statistics.median(t) * 1e3:7.2f} ms{' (fsync)' if sync else ''}")
            print(
                f"  append {rows:>5} rows ({rows * args.width * 8 / 1e6:6.2f} MB): "
                + ", ".join(cells)
            )
        seconds, size, steps = snapshot_cost(folder, args.width, int(args.budget_mb * 2**20))
        print(
            f"  snapshot (compaction) of a full {args.budget_mb:.0f} MB store ({steps:,} steps): "
            f"{seconds:.2f} s, file {size / 1e6:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
