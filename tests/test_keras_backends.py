"""The Keras Watch on the three Keras 3 backends: TensorFlow, JAX and torch (issue 13).

Keras fixes its backend at import, so each backend trains in its own process
(tests/workers/keras_backend.py): the same model (weights set from numpy), the same unshuffled
batches, plain SGD. What the Watch recorded must agree with bertlab's numpy reference
(bertlab/reference.py) on the first step, with the other backends on every step, and the
findings must name the same codes; training must be bit-identical with and without the Watch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bertlab
from bertlab import reference

pytest.importorskip("jax")  # the dev environment has all three (./dev.sh installs jax[cpu])

WORKER = Path(__file__).parent / "workers" / "keras_backend.py"
BACKENDS = ("tensorflow", "jax", "torch")
sys.path.insert(0, str(WORKER.parent))
import keras_backend as case  # noqa: E402  (numpy-only helpers of the worker: data, weights)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run the worker once per backend (two at a time), and read back what each recorded."""
    out = tmp_path_factory.mktemp("backends")
    root = str(Path(__file__).resolve().parents[1])  # this checkout's bertlab, not another
    env_base = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    procs = {}
    for backend in BACKENDS:
        env = {**env_base, "KERAS_BACKEND": backend}
        log = open(out / f"{backend}.log", "w")  # noqa: SIM115 - closed below
        cmd = [sys.executable, str(WORKER), str(out / f"{backend}.json")]
        procs[backend] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=log), log)
        if len(procs) == 2:  # two cores: at most two trainings at once
            first = next(iter(procs.values()))[0]
            first.wait(timeout=300)
    data = {}
    for backend, (proc, log) in procs.items():
        proc.wait(timeout=300)
        log.close()
        text = (out / f"{backend}.log").read_text()[-3000:]
        assert proc.returncode == 0, f"{backend} worker failed:\n{text}"
        data[backend] = json.loads((out / f"{backend}.json").read_text())
        data[backend]["run"] = bertlab.load(str(out / f"{backend}.json.bertlab"))
    return data


def _first_step_reference(layout) -> dict:
    """Loss, outputs and gradients of the first batch from the initial weights, in numpy."""
    x, y = case.data()
    x, y = x[: case.B], y[: case.B]
    emb, kernel, bias = case.weights()
    h = emb[x].mean(axis=1)  # GlobalAveragePooling1D over every position (no mask)
    logits = h @ kernel + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(case.B), y]).mean()
    g = (p - np.eye(case.K)[y]) / case.B
    d_emb = np.zeros_like(emb)
    np.add.at(d_emb, x, np.repeat((g @ kernel.T)[:, None, :] / case.SEQ, case.SEQ, axis=1))
    ref = reference.step(layout, loss=loss, y_pred=logits, y=y, ids=x)
    grads = [d_emb, h.T @ g, g.sum(0)]
    ref.update(reference.gradients(grads, [0, 1, 1], 2))
    ref["lr"] = 0.5
    before = case.weights()
    after = [w - 0.5 * dw for w, dw in zip(before, grads, strict=True)]  # plain SGD
    ref["update_ratio"] = reference.update_ratios(before, after, [0, 1, 1], 2, sample=True)
    return ref


def _row_value(row, name: str, width: int):
    if width == 1:
        return row[name]
    return np.array([row[c] for c in row.index if c.startswith(f"{name}[")])


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_step_equals_the_numpy_reference(results, backend):
    run = results[backend]["run"]
    assert list(run.layout.layers) == ["emb", "head"] or len(run.layout.layers) == 2
    ref = _first_step_reference(run.layout)
    row = run.history.iloc[0]
    widths = dict(run.layout.channels())
    checked = 0
    for name, value in ref.items():
        if name not in widths:
            continue
        np.testing.assert_allclose(
            _row_value(row, name, widths[name]), value, rtol=2e-4, atol=1e-6, err_msg=name
        )
        checked += 1
    assert checked >= 25, checked  # loss, grads, outputs, counts, labels, inputs


def test_every_recorded_column_agrees_across_backends(results):
    cols = results["tensorflow"]["healthy"]["columns"]
    base = np.array(results["tensorflow"]["healthy"]["rows"])
    assert base.shape[0] == 2 * case.N // case.B  # one row per step, two epochs
    for backend in ("jax", "torch"):
        assert results[backend]["healthy"]["columns"] == cols
        rows = np.array(results[backend]["healthy"]["rows"])
        for i, name in enumerate(cols):
            if name == "time":
                continue
            np.testing.assert_allclose(
                rows[:, i], base[:, i], rtol=1e-3, atol=1e-5, err_msg=f"{backend}: {name}"
            )
        for ours, theirs in zip(
            results[backend]["healthy"]["epochs"],
            results["tensorflow"]["healthy"]["epochs"],
            strict=True,
        ):
            assert ours.keys() == theirs.keys()
            for key in ours:
                np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-4, err_msg=key)


@pytest.mark.parametrize(
    "which, codes",
    [("healthy", []), ("mismatch", ["loss-activation-mismatch"]), ("diverging", ["nan-loss"])],
)
def test_findings_name_the_same_codes_on_every_backend(results, which, codes):
    for backend in BACKENDS:
        assert results[backend][which]["codes"] == codes, backend
        assert results[backend][which]["notes"] == [], backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_is_identical_with_and_without_watch(results, backend):
    for which in ("healthy", "mismatch", "diverging"):
        assert results[backend][which]["same_weights"], which
        assert results[backend][which]["same_history"], which


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_strided_watch_records_whole_steps_and_every_batch_s_rows(results, backend):
    """``Watch(every=4)``: rows of steps 0, 4, 8... equal to the rows of the same steps when
    every step is recorded (a recorded row is one step measured whole), while the step
    counter and the train/validation overlap table still see every batch."""
    full = np.array(results[backend]["overlap"]["rows"])
    strided = results[backend]["overlap"]["strided"]
    rows = np.array(strided["rows"])
    cols = strided["columns"]
    steps = rows[:, cols.index("step")]
    n = 2 * case.N // case.B
    np.testing.assert_array_equal(steps, np.arange(0, n, case.STRIDE))
    np.testing.assert_array_equal(rows[:, cols.index("batch")], steps % (n // 2))
    for i, name in enumerate(cols):
        if name != "time":
            np.testing.assert_allclose(
                rows[:, i], full[steps.astype(int), i], rtol=1e-6, atol=1e-7, err_msg=name
            )
    full_epochs = results[backend]["overlap"]["epochs"]
    assert [e["steps"] for e in strided["epochs"]] == [n // 2, n]
    for ours, theirs in zip(strided["epochs"], full_epochs, strict=True):
        assert ours["val_overlap"] == theirs["val_overlap"] == case.OVERLAP_COPIED


def test_jax_data_parallel_records_the_global_batch(tmp_path):
    """keras.distribution.DataParallel on two CPU devices: every recorded column and the
    validation sums equal those of the same training on one device."""
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp_path / "dp.json"
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(out), "dp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["devices"] == 2
    one, two = result["runs"]["1"], result["runs"]["2"]
    assert one["columns"] == two["columns"] and one["notes"] == two["notes"] == []
    a, b = np.array(one["rows"]), np.array(two["rows"])
    assert a.shape[0] == 2 * case.N // case.B
    keep = [i for i, c in enumerate(one["columns"]) if c != "time"]
    np.testing.assert_allclose(b[:, keep], a[:, keep], rtol=1e-4, atol=1e-6)
    assert (
        one["columns"].index("batch_size") in keep
        and a[0, one["columns"].index("batch_size")] == case.B
    )
    for e1, e2 in zip(one["epochs"], two["epochs"], strict=True):
        for key in e1:
            np.testing.assert_allclose(e2[key], e1[key], rtol=1e-4, err_msg=key)
    # Watch(every=4) on the two devices: whole rows of steps 0, 4, 8..., every step counted
    strided = result["runs"]["strided"]
    rows = np.array(strided["rows"])
    n = 2 * case.N // case.B
    steps = rows[:, one["columns"].index("step")]
    np.testing.assert_array_equal(steps, np.arange(0, n, case.STRIDE))
    np.testing.assert_allclose(rows[:, keep], b[steps.astype(int)][:, keep], rtol=1e-4, atol=1e-6)
    assert strided["steps"] == [n // 2, n]


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_hashes_equal_the_numpy_reference(results, backend):
    for name, a in case.hash_arrays().items():
        h1, h2 = reference.row_hashes([a])
        got = results[backend]["overlap"]["hashes"][name]
        assert got == [h1.tolist(), h2.tolist()], f"{backend}: {name}"


def test_validation_rows_trained_on_are_counted_alike_on_every_backend(results):
    """train-val-overlap in-step: the validation rows copied into the training data are found
    by every backend, in every epoch, as many as the numpy reference of the table finds."""
    x, _ = case.data()
    xv, _ = case.data(seed=7)
    x[: case.OVERLAP_COPIED] = xv[: case.OVERLAP_COPIED]
    expected = reference.overlap([x], [xv])
    assert expected >= case.OVERLAP_COPIED  # (more only if the random rows repeat by chance)
    for backend in BACKENDS:
        got = results[backend]["overlap"]
        assert got["epochs"] == [{"val_overlap": expected, "val_hashed": case.N}] * 2, backend
        assert "train-val-overlap" in got["codes"], backend
        healthy = results[backend]["healthy"]["epochs"]
        assert [e["val_overlap"] for e in healthy] == [0, 0], backend
