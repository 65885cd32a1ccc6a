"""Keras under ``MirroredStrategy`` (2 logical CPU devices) and in mixed precision.

Each set-up needs a fresh interpreter (logical devices are fixed when TensorFlow initialises;
the dtype policy is global): tests/workers/keras_replicas.py trains there and writes what the
Watch recorded and what really happened to a file this test reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).parent / "workers" / "keras_replicas.py"
#: A mode takes ~10-40 s on a loaded 2-core machine; far longer is a hang.
TIMEOUT_S = 240


def _run(mode: str, out: Path) -> dict:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(Path(__file__).parents[1]),
    )
    log = out / f"{mode}.log"  # a file, not a pipe: no wait on a stray writer
    with open(log, "w") as sink:
        proc = subprocess.run(
            [sys.executable, str(WORKER), mode, str(out)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=TIMEOUT_S,
            check=False,
        )
    if proc.returncode != 0 or not (out / "result.json").exists():
        pytest.fail(f"worker {mode} exited {proc.returncode}:\n" + log.read_text()[-3000:])
    return json.loads((out / "result.json").read_text())


def test_mirrored_strategy_records_the_global_batch(tmp_path):
    r = _run("mirrored", tmp_path)
    assert r["faults"] == [] and r["restored"]
    # Same seed on 1 device and on 2 replicas: the same per-step loss and gradient norm (the
    # loss unscaled from Keras's 1/replicas, the norm of the all-reduced gradient).
    np.testing.assert_allclose(r["loss_2"], r["loss_1"], rtol=1e-5)
    np.testing.assert_allclose(r["grad_norm_2"], r["grad_norm_1"], rtol=1e-5)
    np.testing.assert_allclose(r["out_min_2"], r["out_min_1"], rtol=1e-5)
    assert r["used_optimizer_all_reduce"]  # no all-reduce of our own was added
    # Counts of the global batch, summed over replicas.
    assert r["batch_size_2"] == [32.0] * 6
    np.testing.assert_array_equal(r["label_count_2"], r["true_label_count"])
    np.testing.assert_allclose(r["recorded_epoch_loss"], r["keras_epoch_loss"], rtol=1e-5)
    assert r["rows"] == 12
    assert r["val_confusion_total"] == 64
    assert np.isclose(r["val_loss_recorded"], r["val_loss"], rtol=1e-5)
    # Never perturb: the same weights and History with and without the Watch.
    assert r["identical_weights"] and r["same_history"]
