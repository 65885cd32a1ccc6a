"""The main job (`bertlab demo`) runs as a plain script and writes a run that reopens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bertlab

ROOT = Path(__file__).resolve().parents[1]


def _bertlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bertlab", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_demo_prints_what_it_recorded_and_saves_a_run(tmp_path):
    out = _bertlab("demo", "--epochs", "2", "--samples", "160", "--out", "runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "bertlab run: 16 steps, 2 epochs" in out.stdout
    assert "validation confusion" in out.stdout
    assert "predicted share per class" in out.stdout
    assert "findings:" in out.stdout and "[error]" not in out.stdout  # a healthy run
    saved = tmp_path / "runs" / "demo.bertlab"
    run = bertlab.load(saved)
    assert len(run.history) == 16 and list(run.epochs.epoch) == [0, 1]
    assert run.meta["model"]["model_class"] == "BertTextClassifier"

    shown = _bertlab("show", str(saved), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "bertlab run: 16 steps, 2 epochs" in shown.stdout
