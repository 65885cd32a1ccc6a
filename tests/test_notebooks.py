"""Run every forum-failure notebook in ``notebooks/`` and check what bertlab found.

Each notebook ends with ``print("FINDINGS:", sorted(codes))`` for the broken (forum) run; the
expected codes must be among them. ``BERTLAB_NOTEBOOK_SCALE`` shortens the fixed runs only.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

EXPECTED = {
    "45_classes_one_class.ipynb": {"single-class"},
    "big_five_acc_27.ipynb": {"metric-mismatch"},
    "textvectorization_labels_nan.ipynb": {"label-format-mismatch", "nan-loss"},
    "13_tags_stuck_60.ipynb": {"multilabel-collapse"},
    "overfitting_finetune.ipynb": {"overfitting"},
}


def test_every_notebook_is_covered():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == set(EXPECTED)


def _findings(nb) -> set[str]:
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("FINDINGS:"):
                    return set(ast.literal_eval(line.removeprefix("FINDINGS:").strip()))
    raise AssertionError("the notebook printed no FINDINGS line")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_and_names_the_failure(name, monkeypatch):
    # The kernel is a fresh process: it finds bertlab through PYTHONPATH (the repo root), so
    # the test works with and without `pip install -e .`.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), path])))
    monkeypatch.setenv("BERTLAB_NOTEBOOK_SCALE", "0.5")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    found = _findings(nb)
    assert EXPECTED[name] <= found, f"{name}: expected {EXPECTED[name]}, found {sorted(found)}"
