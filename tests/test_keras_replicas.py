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


def _run(mode: str, out: Path, backend: str = "tensorflow") -> dict:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(Path(__file__).parents[1]),
        KERAS_BACKEND=backend,
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


def test_mixed_precision_records_unscaled_gradients_and_names_a_collapsed_loss_scale(tmp_path):
    r = _run("mixed", tmp_path)
    f16, bf16 = r["mixed_float16"], r["mixed_bfloat16"]
    for run in (f16, bf16):
        assert run["faults"] == [] and run["identical_weights"] and run["out_dtype_ok"]
        assert run["codes"] == []  # a healthy run: no warning, no error
    # Gradient norms as float32 has them (the loss scale 2^15 divided back out); float16
    # rounding allows ~1e-3, bfloat16 (8 bits of mantissa) ~1e-2.
    np.testing.assert_allclose(f16["grad_norm"], r["grad_norm_f32"], rtol=2e-3)
    np.testing.assert_allclose(bf16["grad_norm"], r["grad_norm_f32"], rtol=2e-2)
    np.testing.assert_allclose(f16["loss"], r["loss_f32"], rtol=1e-3)
    assert f16["loss_scale"] == [32768.0] * 6 and bf16["loss_scale"] is None
    # Every step overflows float16: the scale halves on each and the rule names it.
    collapse = r["collapse"]
    assert collapse["faults"] == []
    assert collapse["loss_scale"] == [32768.0 / 2**i for i in range(18)]
    assert "loss-scale-collapse" in collapse["codes"]
    assert "overflows float16" in collapse["evidence"][0]
    # A softmax head cast to float32: Keras does not bypass a softmax behind a cast, so the
    # doubled softmax is real and stays an error.
    cast = r["cast_softmax"]
    assert cast["output_op"] == "Cast" and cast["severity"] == "error" and cast["faults"] == []


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_mixed_precision_on_the_jax_and_torch_backends(tmp_path, backend):
    """The same contract on Keras's other backends: on JAX the scale is read from the
    LossScaleOptimizer's variables as ``stateless_apply`` receives them for this step."""
    r = _run("mixed", tmp_path, backend)
    for policy, tolerance in (("mixed_float16", 2e-3), ("mixed_bfloat16", 2e-2)):
        run = r[policy]
        assert run["faults"] == [] and run["identical_weights"] and run["out_dtype_ok"]
        assert run["codes"] == []
        np.testing.assert_allclose(run["grad_norm"], r["grad_norm_f32"], rtol=tolerance)
    assert r["mixed_float16"]["loss_scale"] == [32768.0] * 6
    collapse = r["collapse"]
    assert collapse["faults"] == [] and "loss-scale-collapse" in collapse["codes"]
    assert collapse["loss_scale"][:4] == [32768.0, 16384.0, 8192.0, 4096.0]
    assert r["cast_softmax"]["severity"] == "error"


def test_loss_scale_collapse_ignores_a_settling_scale():
    """A healthy start halves the scale a few times, then it stays: no finding."""
    from bertlab.facts import ModelFacts
    from bertlab.rules import loss_scale_collapse as rule
    from bertlab.rules.base import Context

    def ctx(scale):
        scale = np.asarray(scale, float)
        n = len(scale)
        return Context(
            facts=ModelFacts(),
            columns={"step": np.arange(n, dtype=float), "loss_scale": scale, "loss": np.ones(n)},
        )

    settling = [2.0**16 / 2 ** min(i, 5) for i in range(40)]
    assert rule.check(ctx(settling)) is None
    assert rule.check(ctx([2.0**16] * 40)) is None
    collapsing = [2.0**16 / 2**i for i in range(20)]
    evidence = rule.check(ctx(collapsing))
    assert evidence is not None and "19 in a row" in evidence.text
