"""The bug benchmark's fast subset (benchmarks/bugs/run.py --subset fast), run as CI does.

Real trainings in their own processes: two buggy programs bertlab detects today (labels in
the wrong format for the loss, labels past the output layer), one with token ids past the
embedding, and two healthy programs that must stay clean, one of them a slow learner that sits
at the label prior for two epochs before it learns (h03: no collapse may be named for it). The
whole benchmark is not a test (it takes many minutes); this checks the scorer's contract and
that these verdicts hold.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "bugs" / "run.py"
LAST = re.compile(
    r"^bugs: buggy (\d+)/(\d+) detected \(recall (\d\.\d\d)\), healthy (\d+)/(\d+) clean, "
    r"cause first (\d\.\d\d), median detection step (\S+)$"
)


def _run(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--subset", "fast", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()


def test_fast_subset_is_scored_with_the_fixed_last_line() -> None:
    lines = _run()
    match = LAST.match(lines[-1])
    assert match, lines[-1]
    detected, buggy, clean, healthy = (int(match[i]) for i in (1, 2, 4, 5))
    assert (buggy, healthy) == (3, 2)
    assert detected == 3, lines
    assert clean == 2, lines
    for name in ("b01", "b04", "b07"):
        assert any(line.startswith(name) and "detected at step" in line for line in lines)


def test_fast_subset_shows_its_faults_without_bertlab() -> None:
    lines = _run("--validate")
    assert lines[-1] == "validate: 5/5 programs show their declared behaviour", lines
