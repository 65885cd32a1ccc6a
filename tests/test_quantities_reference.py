"""What Watch records for a step equals a slow, independent recomputation of that step.

The first batch of an unshuffled fit sees the initial weights, so a reference forward/backward
pass with ``tf.GradientTape`` on a copy of the initial model gives the exact numbers the probe
must have measured inside Keras's train step (Cockpit's style: each quantity checked against a
slow reference implementation).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from conftest import embedding_classifier, token_data

import bertlab

B = 32


def _reference(model, x, y, loss_fn):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    dense = [np.asarray(tf.convert_to_tensor(g)) for g in grads]
    return float(loss), np.asarray(logits), dense


def test_first_step_matches_reference_recomputation():
    x, y, mask = token_data(n=4 * B, k=4)
    # Repeat tokens inside the batch so the embedding gradient has duplicate rows.
    x[:B, 1] = 7
    model = embedding_classifier(k=4)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss_fn)
    reference = embedding_classifier(k=4)
    reference.set_weights(model.get_weights())
    ref_loss, ref_logits, ref_grads = _reference(reference, x[:B], y[:B], loss_fn)

    watch = bertlab.Watch()
    model.fit(x, y, batch_size=B, epochs=1, shuffle=False, callbacks=[watch], verbose=0)
    row = watch.history.iloc[0]

    assert np.isclose(row["loss"], ref_loss, rtol=1e-5)
    norms = [np.linalg.norm(g) for g in ref_grads]
    assert np.isclose(row["grad_norm"], np.sqrt(sum(n**2 for n in norms)), rtol=1e-4)
    emb, dense_kernel, dense_bias = norms
    assert np.isclose(row["grad_layer_norm[sequential/embedding]"], emb, rtol=1e-4)
    assert np.isclose(
        row["grad_layer_norm[sequential/dense]"], np.hypot(dense_kernel, dense_bias), rtol=1e-4
    )
    assert row["grad_zero"] == 0 and row["grad_missing"] == 0 and row["grad_nonfinite"] == 0
    assert np.isclose(row["lr"], 0.1)

    assert np.isclose(row["out_min"], ref_logits.min(), rtol=1e-5)
    assert np.isclose(row["out_max"], ref_logits.max(), rtol=1e-5)
    p = np.exp(ref_logits - ref_logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert np.isclose(row["prob_max"], p.max(1).mean(), rtol=1e-4)
    assert np.isclose(row["prob_entropy"], (-(p * np.log(p)).sum(1)).mean(), rtol=1e-4)
    out_mean = [row[f"out_mean[{i}]"] for i in range(4)]
    np.testing.assert_allclose(out_mean, ref_logits.mean(0), rtol=1e-4, atol=1e-7)
    assert row[[c for c in watch.history.columns if c.startswith("out_hist")]].sum() == B * 4

    pred = [row[f"pred_count[{i}]"] for i in range(4)]
    true = [row[f"label_count[{i}]"] for i in range(4)]
    np.testing.assert_array_equal(pred, np.bincount(ref_logits.argmax(1), minlength=4))
    np.testing.assert_array_equal(true, np.bincount(y[:B], minlength=4))
    assert row["label_min"] == y[:B].min() and row["label_max"] == y[:B].max()
    assert row["label_out_of_range"] == 0 and row["label_nonint"] == 0

    xb, mb = x[:B], mask[:B]
    assert row["tok_min"] == xb.min() and row["tok_max"] == xb.max()
    assert np.isclose(row["pad_share"], 1 - mb.mean(), rtol=1e-5)
    assert np.isclose(row["len_mean"], mb.sum(1).mean(), rtol=1e-5)
    assert row["len_max"] == mb.sum(1).max()
    assert np.isclose(row["full_share"], (mb.sum(1) == x.shape[1]).mean())
    # len_hist: rows per real-token-count bin, 16 equal bins on [0, L] (numpy's last bin is
    # closed, like the probe's: full rows count in it).
    seq = x.shape[1]
    assert watch.run.layout.len_edges == tuple(np.linspace(0, seq, 17))
    ref_hist, _ = np.histogram(mb.sum(1), bins=16, range=(0, seq))
    lens = [c for c in watch.history.columns if c.startswith("len_hist")]
    np.testing.assert_array_equal(row[lens].to_numpy(float), ref_hist)
    assert row["batch_size"] == B and row["step"] == 0 and row["epoch"] == 0


def test_raw_batch_loss_averages_to_keras_epoch_loss():
    """Keras logs a running mean; the recorded per-batch losses must average to it."""
    x, y, _ = token_data(n=200, k=3)  # 200 = 6 full batches of 32 + one of 8
    model = embedding_classifier(k=3)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    watch = bertlab.Watch()
    hist = model.fit(x, y, batch_size=32, epochs=2, callbacks=[watch], verbose=0)
    h = watch.history
    assert len(h) == 2 * 7
    for epoch in (0, 1):
        e = h[h.epoch == epoch]
        weighted = (e.loss * e.batch_size).sum() / e.batch_size.sum()
        assert np.isclose(weighted, hist.history["loss"][epoch], rtol=1e-5)
        assert list(e.batch) == list(range(7))
        assert e.loss.nunique() == 7  # per-batch values, not a running mean
    assert list(h.step) == list(range(14))


def test_validation_confusion_matches_predict():
    x, y, _ = token_data(n=256, k=4)
    xv, yv, _ = token_data(n=96, k=4, seed=5)
    model = embedding_classifier(k=4)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    watch = bertlab.Watch()
    model.fit(x, y, batch_size=32, epochs=2, validation_data=(xv, yv), callbacks=[watch], verbose=0)
    last = watch.epochs.iloc[-1]
    pred = model.predict(xv, verbose=0).argmax(1)
    expected = np.zeros((4, 4), int)
    np.add.at(expected, (yv, pred), 1)
    np.testing.assert_array_equal(last["val_confusion"], expected)
    np.testing.assert_array_equal(last["val_label_count"], np.bincount(yv, minlength=4))
    assert np.isclose(np.trace(expected) / len(yv), last["val_accuracy"], atol=1e-6)
    assert np.isclose(last["val_loss_recorded"], last["val_loss"], rtol=1e-5)


def test_multilabel_records_per_label_rates_and_f1():
    rng = np.random.default_rng(0)
    x, _, _ = token_data(n=192, k=2)
    y = (rng.random((192, 3)) < [0.5, 0.2, 0.8]).astype("float32")
    keras.utils.set_random_seed(0)
    model = embedding_classifier(k=3)
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    watch = bertlab.Watch()
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=1,
        shuffle=False,
        validation_data=(x[:64], y[:64]),
        callbacks=[watch],
        verbose=0,
    )
    h = watch.history
    labels = h[[f"label_count[{i}]" for i in range(3)]].to_numpy()
    np.testing.assert_array_equal(labels, y.reshape(6, 32, 3).sum(1))
    assert watch.run.layout.task == "multilabel"
    assert (h.label_multihot_share >= 0).all()
    rec = watch.epochs.iloc[0]
    pred = (model.predict(x[:64], verbose=0) > 0).astype(float)
    tp = (pred * y[:64]).sum(0)
    expected_recall = np.where(y[:64].sum(0) > 0, tp / np.maximum(y[:64].sum(0), 1), np.nan)
    np.testing.assert_allclose(rec["val_recall"], expected_recall, rtol=1e-6)


def _len_model(seq):
    keras.utils.set_random_seed(0)
    ids = keras.Input((seq,), dtype="int32", name="input_ids")
    mask = keras.Input((seq,), dtype="int32", name="attention_mask")
    h = keras.layers.Embedding(300, 8)(ids)
    h = keras.layers.GlobalAveragePooling1D()(h, mask=keras.ops.cast(mask, "bool"))
    model = keras.Model({"input_ids": ids, "attention_mask": mask}, keras.layers.Dense(3)(h))
    return model


def test_length_histogram_under_xla_matches_numpy_and_is_absent_for_unknown_lengths():
    """len_hist with an HF-style mask, jit_compile=True; omitted when L is unknown at trace."""
    import tensorflow as tf

    seq, rng = 50, np.random.default_rng(3)
    lengths = rng.integers(1, seq + 1, size=96)
    lengths[:10] = seq  # truncated rows land in the last bin
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype("int32")
    ids = np.where(mask > 0, rng.integers(1, 300, size=(96, seq)), 0).astype("int32")
    y = rng.integers(0, 3, size=96)
    model = _len_model(seq)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True), jit_compile=True
    )
    watch = bertlab.Watch(verbose=False)
    x = {"input_ids": ids, "attention_mask": mask}
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, callbacks=[watch], verbose=0)
    lens = [c for c in watch.history.columns if c.startswith("len_hist")]
    assert len(lens) == 16 and lens[0] == "len_hist[0..3.125]"
    got = watch.history[lens].to_numpy(float)
    for b in range(3):
        ref, _ = np.histogram(lengths[32 * b : 32 * (b + 1)], bins=16, range=(0, seq))
        np.testing.assert_array_equal(got[b], ref)

    # Dynamic padding (padded_batch): the sequence length is unknown when the step is traced.
    rows = [ids[i, : lengths[i]] for i in range(96)]
    ds = tf.data.Dataset.from_generator(
        lambda: ((r, int(c)) for r, c in zip(rows, y, strict=True)),
        output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int64)),
    ).padded_batch(32)
    keras.utils.set_random_seed(0)
    dyn = keras.Sequential(
        [
            keras.layers.Embedding(300, 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3),
        ]
    )
    dyn.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    watch = bertlab.Watch(verbose=False)
    dyn.fit(ds, epochs=1, callbacks=[watch], verbose=0)
    assert watch.run.layout.len_edges == ()
    assert not [c for c in watch.history.columns if c.startswith("len_hist")]
    assert np.isfinite(watch.history["len_max"]).all()
