"""The Big-Five notebook on Keras 2 + transformers 4 (``notebooks/big_five_tf_keras.ipynb``),
executed headless in the reduced mode like the other notebooks (``tests/test_notebooks.py``):
bertlab must name ``metric-mismatch`` in the forum's run and nothing in the fixed run."""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "big_five_tf_keras.ipynb"
SCALE = "0.25"


def _line(nb, prefix: str) -> set[str]:
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith(prefix):
                    return set(ast.literal_eval(line.removeprefix(prefix).strip()))
    raise AssertionError(f"the notebook printed no {prefix!r} line")


def test_the_notebook_is_written_from_its_cells():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_notebooks import build
        from notebook_cells_legacy import LEGACY
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    saved = nbformat.read(NOTEBOOK, as_version=4)
    expected = build(LEGACY[NOTEBOOK.name])
    assert [c.source for c in saved.cells] == [c.source for c in expected.cells], (
        "run .venv-legacy/bin/python scripts/make_notebooks.py --execute big_five_tf_keras.ipynb"
    )
    assert "widgets" not in saved.metadata
    assert any(c.get("outputs") for c in saved.cells), "saved without the outputs of a full run"
    # The full run's saved outputs: the forum's run names it, the fixed run nothing.
    assert "metric-mismatch" in _line(saved, "FINDINGS:")
    assert not _line(saved, "FIXED FINDINGS:")


def test_the_notebook_names_metric_mismatch_and_the_fix_is_quiet(monkeypatch):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("BERTLAB_NOTEBOOK_SCALE", SCALE)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    print(f"{NOTEBOOK.name}: {time.perf_counter() - start:.0f} s")
    assert "metric-mismatch" in _line(nb, "FINDINGS:")
    assert not _line(nb, "FIXED FINDINGS:")
    cell = next(c for c in nb.cells if c.source == "print(watch.report())")
    report = "".join(out.get("text", "") for out in cell.outputs)
    assert "'acc' on multi-label targets" in report and "per-label validation accuracy" in report
