"""A recorded run can be saved, reopened without Keras, and read the same way as a live one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import embedding_classifier, token_data

import bertlab

ROOT = Path(__file__).resolve().parents[1]


def _watched_run():
    x, y, _ = token_data(n=192, k=4)
    model = embedding_classifier(k=4)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    watch = bertlab.Watch()
    model.fit(x, y, batch_size=32, epochs=2, validation_split=0.25, callbacks=[watch], verbose=0)
    return watch


def test_saved_run_reopens_with_identical_tables(tmp_path):
    watch = _watched_run()
    path = tmp_path / "run.bertlab"
    watch.save(path)
    run = bertlab.load(path)
    pd.testing.assert_frame_equal(run.history, watch.history)
    assert list(run.epochs.columns) == list(watch.epochs.columns)
    for a, b in zip(run.epochs.val_confusion, watch.epochs.val_confusion, strict=True):
        np.testing.assert_array_equal(a, b)
    assert run.meta["model"] == json.loads(json.dumps(watch.run.meta["model"]))
    assert run.layout == watch.run.layout


def test_loading_needs_no_keras_and_refuses_tampered_layout(tmp_path):
    path = tmp_path / "run.bertlab"
    _watched_run().save(path)
    code = textwrap.dedent(
        f"""
        import sys, bertlab
        run = bertlab.load({str(path)!r})
        assert len(run.history) == 10, len(run.history)
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr

    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    doc = json.loads(members["run.json"])
    doc["meta"]["layout"]["n_outputs"] = 7
    members["run.json"] = json.dumps(doc).encode()
    bad = tmp_path / "bad.bertlab"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(bertlab.RunFileError, match="layout"):
        bertlab.load(bad)


def test_plain_script_prints_nothing_per_batch(tmp_path):
    """In a script with no IPython, Watch is silent while training goes well."""
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, importlib.abc

            class NotInstalled(importlib.abc.MetaPathFinder):
                # as if IPython and the widget packages were not installed
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in ("IPython", "ipywidgets", "anywidget", "ipykernel"):
                        raise ModuleNotFoundError(name)

            sys.meta_path.insert(0, NotInstalled())
            sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
            import keras, bertlab
            from conftest import embedding_classifier, token_data
            x, y, _ = token_data(n=128, k=4)
            model = embedding_classifier(k=4)
            model.compile(optimizer="adam",
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            watch = bertlab.Watch()
            model.fit(x, y, batch_size=32, epochs=2, callbacks=[watch], verbose=0)
            print("rows", len(watch.history))
            """
        )
    )
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    # Nothing per batch: the one line at train end is the verdict (issue 14), then the script's.
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "rows 8"
    assert len(lines) == 2 and lines[0].startswith("bertlab verdict: "), lines
    assert "bertlab" not in out.stderr


def test_core_modules_never_import_a_training_framework():
    """Everything after the probe (store, run file, run, layout...) is framework-free; the
    probes and their entry points (``bertlab.torch``, ``bertlab.hf``) are the exceptions."""
    code = textwrap.dedent(
        """
        import sys, importlib, pathlib
        root = pathlib.Path("bertlab")
        for path in sorted(root.rglob("*.py")):
            parts = path.with_suffix("").parts
            entry = parts[-2:] in (("bertlab", "torch"), ("bertlab", "hf"))
            if "probes" in parts or parts[-1] == "__main__" or entry:
                continue
            importlib.import_module(".".join(p for p in parts if p != "__init__"))
        bad = [m for m in ("tensorflow", "keras", "torch", "transformers") if m in sys.modules]
        print(bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
