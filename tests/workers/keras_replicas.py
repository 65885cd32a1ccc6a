"""Keras trainings that need a process of their own (run by tests/test_keras_replicas.py).

Logical devices must be configured before TensorFlow initialises, and a mixed-precision policy
is global: each mode runs here, in a fresh interpreter, and writes what the Watch recorded and
what really happened to ``<out>/result.json``.

Modes
-----
mirrored
    The CPU split into 2 logical devices; the same seeded model trained without a strategy and
    under ``MirroredStrategy`` on both devices (with and without a Watch).
mixed
    ``mixed_float16`` and ``mixed_bfloat16`` trainings (with and without a Watch), a float32
    reference of the first step, a softmax head cast to float32, and a model whose forward
    pass overflows float16 on every step (the loss scale collapses).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

B, N = 32, 192  # 6 steps of 32 per epoch


def _fit(strategy, watched: bool, epochs: int = 1, validation: bool = False, **model_kw):
    import keras
    from conftest import embedding_classifier, token_data

    import bertlab

    x, y, _ = token_data(n=N, k=4)
    scope = strategy.scope() if strategy is not None else _null()
    with scope:
        model = embedding_classifier(k=4, **model_kw)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    watch = bertlab.Watch(verbose=False, dashboard=False) if watched else None
    val = {"validation_data": (x[:64], y[:64])} if validation else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = model.fit(
            x,
            y,
            batch_size=B,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[watch] if watch else [],
            **val,
        )
    faults = [str(w.message) for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    return model, watch, hist, faults, (x, y)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _series(watch, name):
    return [float(v) for v in watch.history[name]]


def mirrored() -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    _, one, _, faults1, _ = _fit(None, True)
    plain, _, plain_hist, _, _ = _fit(strategy, False, epochs=2)
    model, two, hist, faults2, (x, y) = _fit(strategy, True, epochs=2, validation=True)
    inst = two._instrument
    h = two.history
    first = h[h.epoch == 0]
    counts = [f"label_count[{c}]" for c in range(4)]
    last = two.epochs.iloc[-1]
    return {
        "loss_1": _series(one, "loss"),
        "grad_norm_1": _series(one, "grad_norm"),
        "loss_2": [float(v) for v in first["loss"]],
        "grad_norm_2": [float(v) for v in first["grad_norm"]],
        "batch_size_2": [float(v) for v in first["batch_size"]],
        "label_count_2": first[counts].to_numpy().tolist(),
        "true_label_count": [
            np.bincount(y[i : i + B], minlength=4).tolist() for i in range(0, N, B)
        ],
        "out_min_1": _series(one, "out_min"),
        "out_min_2": [float(v) for v in first["out_min"]],
        "keras_epoch_loss": hist.history["loss"],
        "recorded_epoch_loss": [
            float((e.loss * e.batch_size).sum() / e.batch_size.sum()) for _, e in h.groupby("epoch")
        ],
        "rows": len(h),
        "identical_weights": all(
            np.array_equal(a, b)
            for a, b in zip(plain.get_weights(), model.get_weights(), strict=True)
        ),
        "same_history": plain_hist.history["loss"] == hist.history["loss"],
        "val_confusion_total": float(np.sum(last["val_confusion"])),
        "val_loss": float(last["val_loss"]),
        "val_loss_recorded": float(last["val_loss_recorded"]),
        "used_optimizer_all_reduce": bool(inst is not None and inst.reduced_seen),
        "faults": faults1 + faults2,
        "restored": "train_step" not in model.__dict__ and "apply" not in model.optimizer.__dict__,
    }


def _policy_fit(policy: str, watched: bool, model_fn=None, epochs: int = 1, loss=None):
    import keras
    from conftest import embedding_classifier, token_data

    import bertlab

    keras.mixed_precision.set_global_policy(policy)
    try:
        x, y, _ = token_data(n=N, k=4)
        model = model_fn() if model_fn else embedding_classifier(k=4)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        watch = bertlab.Watch(verbose=False, dashboard=False) if watched else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(
                x,
                y,
                batch_size=B,
                epochs=epochs,
                shuffle=False,
                verbose=0,
                callbacks=[watch] if watch else [],
            )
        faults = [str(w.message) for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
        return model, watch, faults
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _overflowing():
    """Embedding -> x 1e7 -> Dense: activations of ~1e5 overflow float16 on every step."""
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((16,), dtype="int32"),
            keras.layers.Embedding(300, 16),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Rescaling(1e7),
            keras.layers.Dense(4),
        ]
    )


def _cast_softmax():
    """A softmax head in float16, cast to float32 by a linear float32 layer (the usual advice)."""
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((16,), dtype="int32"),
            keras.layers.Embedding(300, 16),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, activation="softmax"),
            keras.layers.Activation("linear", dtype="float32"),
        ]
    )


def mixed() -> dict:
    _, ref, _ = _policy_fit("float32", True)
    out: dict = {"grad_norm_f32": _series(ref, "grad_norm"), "loss_f32": _series(ref, "loss")}
    for policy in ("mixed_float16", "mixed_bfloat16"):
        plain, _, _ = _policy_fit(policy, False)
        model, watch, faults = _policy_fit(policy, True)
        h = watch.history
        out[policy] = {
            "grad_norm": _series(watch, "grad_norm"),
            "loss": _series(watch, "loss"),
            "loss_scale": _series(watch, "loss_scale") if "loss_scale" in h else None,
            "out_dtype_ok": bool(np.isfinite(h["prob_max"]).all()),
            "identical_weights": all(
                np.array_equal(a, b)
                for a, b in zip(plain.get_weights(), model.get_weights(), strict=True)
            ),
            "faults": faults,
            "codes": sorted({f.code for f in watch.findings if f.severity != "info"}),
        }
    _, watch, faults = _policy_fit("mixed_float16", True, _overflowing, epochs=3)
    out["collapse"] = {
        "loss_scale": _series(watch, "loss_scale"),
        "codes": sorted({f.code for f in watch.findings}),
        "evidence": [f.evidence for f in watch.findings if f.code == "loss-scale-collapse"],
        "faults": faults,
    }
    _, watch, faults = _policy_fit("mixed_float16", True, _cast_softmax)
    out["cast_softmax"] = {
        "output_op": watch.run.meta.get("output_op"),
        "severity": {f.code: f.severity for f in watch.findings}.get("double-softmax"),
        "faults": faults,
    }
    return out


def main(mode: str, out: str) -> None:
    result = {"mirrored": mirrored, "mixed": mixed}[mode]()
    (Path(out) / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
