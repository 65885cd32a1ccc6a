"""The core needs no training framework: ``import bertlab`` and ``bertlab.load`` work where
neither TensorFlow/Keras nor torch/transformers can be imported (``bertlab[torch]`` installs no
TensorFlow, ``bertlab[keras]`` no torch). Checked in a fresh interpreter in which importing any
framework raises ImportError, on a run saved by a real torch training."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch
from torch_training import model_and_optimizer, train_loop

BLOCKED = ("tensorflow", "keras", "keras_hub", "tf_keras", "torch", "transformers", "jax")


def _run_without_frameworks(code: str) -> subprocess.CompletedProcess:
    guard = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {BLOCKED!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", guard + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_and_load_need_no_framework(tmp_path):
    model, opt = model_and_optimizer()
    watch = train_loop(model, opt, torch.nn.CrossEntropyLoss(), epochs=2)
    path = tmp_path / "run.bertlab"
    watch.save(path)
    result = _run_without_frameworks(
        f"""
        import bertlab
        from bertlab.text import summary
        run = bertlab.load({str(path)!r})
        print(run.steps, len(run.epoch_records), run.meta["model"]["framework"])
        print(summary(run)[:40])
        assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    steps, epochs, framework = result.stdout.splitlines()[0].split()
    assert int(steps) == watch.run.steps > 0 and int(epochs) == 2 and framework == "torch"


def test_a_probe_without_its_framework_names_the_extra_to_install():
    result = _run_without_frameworks(
        """
        import bertlab
        for probe in ("bertlab.torch", "bertlab.hf"):
            try:
                __import__(probe)
            except ModuleNotFoundError as exc:
                print(probe, "|", exc)
        try:
            bertlab.Watch
        except ModuleNotFoundError as exc:
            print("bertlab.Watch |", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" | ") for line in result.stdout.splitlines())
    assert "pip install 'bertlab[torch]'" in lines["bertlab.torch"]
    assert "pip install 'bertlab[torch]'" in lines["bertlab.hf"]
    assert "pip install 'bertlab[keras]'" in lines["bertlab.Watch"]
