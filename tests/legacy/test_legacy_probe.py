"""``bertlab.Watch`` inside a Keras 2 (``tf_keras``) fit: what it records equals a numpy replay
of the step, it never changes training, and the model is as before once ``fit`` returns."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as k2

import bertlab
from bertlab import reference
from bertlab.probes.keras.legacy import variable_name

from .keras2 import SEQ, VOCAB, functional, sequential, token_batches

B = 32


def _replay_first_step(model, x, y, loss_fn):
    """Forward/backward of the first batch on a twin of the initial model (no Watch)."""
    twin = k2.models.clone_model(model)
    twin.set_weights(model.get_weights())
    with tf.GradientTape() as tape:
        out = twin(x, training=True)
        loss = loss_fn(y, out)
    grads = tape.gradient(loss, twin.trainable_variables)
    return float(loss), out.numpy(), [np.asarray(tf.convert_to_tensor(g)) for g in grads]


def test_first_step_matches_numpy_reference():
    ids, mask, y = token_batches(n=4 * B)
    ids[:B, 1] = 7  # repeated tokens: the embedding gradient arrives as IndexedSlices rows
    model = sequential(k=4)
    loss_fn = k2.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=k2.optimizers.SGD(0.1), loss=loss_fn)
    ref_loss, ref_out, ref_grads = _replay_first_step(model, ids[:B], y[:B], loss_fn)
    watch = bertlab.Watch(verbose=False, unk_token_id=7)
    model.fit(ids, y, batch_size=B, epochs=1, shuffle=False, callbacks=[watch], verbose=0)
    h, layout = watch.history, watch.run.layout
    assert len(h) == 4 and list(h.step) == [0, 1, 2, 3]
    row = h.iloc[0]

    # Without a mask input, id 0 is padding (as in the probe).
    expected = reference.step(
        layout, loss=ref_loss, y_pred=ref_out, y=y[:B], ids=ids[:B], mask=ids[:B] != 0, unk_id=7
    )
    for name, value in expected.items():
        got = row[[c for c in h.columns if c == name or c.startswith(name + "[")]]
        np.testing.assert_allclose(
            np.asarray(got, float), np.ravel(value), rtol=1e-4, atol=1e-6, err_msg=name
        )
    assert layout.layers == ("embedding", "dense")  # Keras 2 names: dense/kernel:0 -> dense
    names = [variable_name(v) for v in model.trainable_variables]
    groups = [layout.layers.index(n.rsplit("/", 1)[0]) for n in names]
    grads = reference.gradients(ref_grads, groups, len(layout.layers))
    assert np.isclose(row["grad_norm"], grads["grad_norm"], rtol=1e-4)
    for i, layer in enumerate(layout.layers):
        assert np.isclose(row[f"grad_layer_norm[{layer}]"], grads["grad_layer_norm"][i], rtol=1e-4)
    assert row["grad_zero"] == 0 and row["grad_missing"] == 0 and row["grad_nonfinite"] == 0
    assert row["lr"] == pytest.approx(0.1)
    facts = watch.run.meta["model"]
    assert facts["loss"] == "sparse_categorical_crossentropy" and facts["from_logits"] is True
    assert [tuple(e) for e in facts["embeddings"]] == [("embedding", VOCAB)]
    assert facts["optimizer"] == "SGD" and facts["learning_rate"] == pytest.approx(0.1)


def _fit(watched: bool, epochs: int = 2, verbose: int = 0):
    ids, mask, y = token_batches(n=160, k=3)
    xv = {"input_ids": ids[:48], "attention_mask": mask[:48]}
    model = functional(k=3, seed=3, dropout=0.3)  # dropout: the step consumes the RNG
    model.compile(
        optimizer=k2.optimizers.Adam(0.01),
        loss=k2.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    k2.utils.set_random_seed(11)
    callbacks = [bertlab.Watch(verbose=False)] if watched else []
    history = model.fit(
        {"input_ids": ids, "attention_mask": mask},
        y,
        batch_size=32,
        epochs=epochs,
        validation_data=(xv, y[:48]),
        callbacks=callbacks,
        verbose=verbose,
    )
    return model, history, callbacks


def test_same_seed_same_weights_logs_and_progress_bar_with_and_without_watch(capsys):
    runs = []
    for watched in (False, True):
        model, history, callbacks = _fit(watched, verbose=2)
        lines = capsys.readouterr().out.splitlines()
        # verbose=2 prints one line per epoch; only the timings may differ.
        bar = [re.sub(r"\b\d+(\.\d+)?(s|ms|us)(/epoch|/step)?\b", "", x) for x in lines]
        runs.append((model.get_weights(), history.history, bar, callbacks))
    (w0, h0, bar0, _), (w1, h1, bar1, cbs) = runs
    for a, b in zip(w0, w1, strict=True):
        np.testing.assert_array_equal(a, b)
    assert h1 == h0  # History: same keys, bit-identical values
    assert bar1 == bar0 and any("val_accuracy" in line for line in bar0)
    watch = cbs[0]
    assert len(watch.history) == 2 * 5 and len(watch.epochs) == 2
    last = watch.epochs.iloc[-1]
    assert last["val_label_count"].sum() == 48 and np.asarray(last["val_confusion"]).sum() == 48
    assert np.isclose(last["val_loss_recorded"], last["val_loss"], rtol=1e-5)


def test_the_model_is_restored_after_fit():
    ids, mask, y = token_batches(n=64)
    x = {"input_ids": ids, "attention_mask": mask}
    model = functional(k=4)
    model.compile(optimizer="adam", loss=k2.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, batch_size=32, epochs=1, validation_data=(x, y), verbose=0)
    before = (model.train_function, model.test_function, dict(model.optimizer.__dict__))
    watch = bertlab.Watch(verbose=False)
    model.fit(x, y, batch_size=32, epochs=2, validation_data=(x, y), callbacks=[watch], verbose=0)
    assert len(watch.history) == 4
    assert (model.train_function, model.test_function) == before[:2]
    for name in ("train_step", "test_step", "compute_loss", "_bertlab_instrument"):
        assert name not in model.__dict__, name
    assert "apply_gradients" not in model.optimizer.__dict__
    # A second watched fit reuses the instrumented function (no retrace) and records on.
    watch.run.steps  # noqa: B018 - the record is readable after fit
    again = bertlab.Watch(verbose=False)
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[again], verbose=0)
    assert len(again.history) == 2 and np.isfinite(again.history["grad_norm"]).all()


def test_legacy_optimizer_with_a_schedule_records_the_rate_of_each_step():
    ids, _, y = token_batches(n=128)
    model = sequential(k=4)
    schedule = k2.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model.compile(
        optimizer=k2.optimizers.legacy.SGD(schedule),
        loss=k2.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    watch = bertlab.Watch(verbose=False)
    model.fit(ids, y, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    np.testing.assert_allclose(watch.history["lr"], [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)
    facts = watch.run.meta["model"]
    assert facts["lr_schedule"] == "ExponentialDecay"
    assert facts["learning_rate"] == pytest.approx(0.1)


@pytest.mark.filterwarnings("ignore:.*received `from_logits=True`:UserWarning")  # Keras 2's own
def test_check_and_watch_name_a_softmax_fed_to_a_logits_loss():
    """bertlab.check on a Keras 2 model: the rules read its facts as for Keras 3."""
    ids, _, y = token_batches(n=128)
    model = sequential(k=4, activation="softmax")
    model.compile(
        optimizer=k2.optimizers.Adam(1e-3),
        loss=k2.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    found = {f.code for f in bertlab.check(model, ids, y)}
    assert "double-softmax" in found, found
    watch = bertlab.Watch(verbose=False)
    model.fit(ids, y, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    assert "double-softmax" in {f.code for f in watch.findings}
    assert watch.run.meta["model"]["output_activation"] == "softmax"
    assert SEQ == ids.shape[1]


def test_steps_per_execution_still_gives_one_row_per_batch():
    ids, mask, y = token_batches(n=192)
    model = sequential(k=4)
    model.compile(
        optimizer="adam",
        loss=k2.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=3,
    )
    watch = bertlab.Watch(verbose=False)
    model.fit(ids, y, batch_size=32, epochs=2, shuffle=False, callbacks=[watch], verbose=0)
    h = watch.history
    assert list(h.step) == list(range(12)) and list(h.batch[:6]) == list(range(6))
    labels = h[[f"label_count[{i}]" for i in range(4)]].to_numpy()[:6]
    expected = [np.bincount(y[32 * b : 32 * (b + 1)], minlength=4) for b in range(6)]
    np.testing.assert_array_equal(labels, expected)
    assert watch.run.meta["model"]["steps_per_execution"] == 3
