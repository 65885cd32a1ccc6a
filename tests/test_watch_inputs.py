"""Watch works with every common way of feeding and building a Keras classifier."""

from __future__ import annotations

import warnings

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from conftest import SEQ, VOCAB, embedding_classifier, token_data

import bertlab


def _sparse_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_dict_inputs_with_padding_mask_and_steps_per_execution():
    x, y, mask = token_data(n=160, k=3)
    ids = keras.Input((SEQ,), dtype="int32", name="token_ids")
    pad = keras.Input((SEQ,), dtype="int32", name="padding_mask")
    h = keras.layers.Embedding(VOCAB, 8)(ids)
    h = keras.layers.GlobalAveragePooling1D()(h, mask=keras.ops.cast(pad, "bool"))
    model = keras.Model({"token_ids": ids, "padding_mask": pad}, keras.layers.Dense(3)(h))
    model.compile(optimizer="adam", loss=_sparse_loss(), steps_per_execution=4)
    watch = bertlab.Watch()
    data = {"token_ids": x, "padding_mask": mask.astype("int32")}
    model.fit(data, y, batch_size=16, epochs=2, shuffle=False, callbacks=[watch], verbose=0)
    h = watch.history
    assert len(h) == 20 and list(h.step) == list(range(20))  # one row per batch, not per call
    assert h.loss.nunique() == 20
    assert watch.run.meta["inputs"] == {"token_key": "token_ids", "mask_key": "padding_mask"}
    first = mask[:16]
    assert np.isclose(h.pad_share[0], 1 - first.mean())
    assert np.isclose(h.len_mean[0], first.sum(1).mean())


def test_tf_data_of_unknown_length_with_sample_and_class_weights():
    x, y, _ = token_data(n=200, k=3)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(32)
    assert ds.cardinality() == tf.data.UNKNOWN_CARDINALITY
    model = embedding_classifier(k=3)
    model.compile(optimizer="adam", loss=_sparse_loss(), metrics=["accuracy"])
    watch = bertlab.Watch()
    seen = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    model.fit(
        ds, epochs=2, class_weight={0: 1.0, 1: 2.0, 2: 0.5}, callbacks=[watch, counter], verbose=0
    )
    assert len(seen) >= 7 and len(watch.history) == len(seen)
    assert watch.history.batch_size.iloc[6] == 200 - 6 * 32
    sw = np.linspace(0.5, 1.5, 200).astype("float32")
    watch2 = bertlab.Watch()
    model.fit(
        x,
        y,
        sample_weight=sw,
        batch_size=50,
        epochs=1,
        validation_split=0.2,
        callbacks=[watch2],
        verbose=0,
    )
    assert len(watch2.history) == 4 and watch2.epochs.val_samples.iloc[0] == 40


def test_subclassed_model():
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.emb = keras.layers.Embedding(VOCAB, 8)
            self.pool = keras.layers.GlobalAveragePooling1D()
            self.out = keras.layers.Dense(4)

        def call(self, inputs, training=False):
            return self.out(self.pool(self.emb(inputs)))

    x, y, _ = token_data(n=96, k=4)
    model = Classifier()
    model.compile(optimizer="adam", loss=_sparse_loss())
    watch = bertlab.Watch()
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    assert len(watch.history) == 3
    assert watch.run.layout.task == "multiclass" and watch.run.layout.n_outputs == 4
    assert len(watch.run.layout.layers) == 2


def test_keras_hub_bert_text_classifier():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=SEQ,
    )
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None)
    model.compile(optimizer=keras.optimizers.Adam(5e-5))  # KerasHub's default loss: logits
    x, y, mask = token_data(n=64, k=3)
    data = {"token_ids": x, "padding_mask": mask.astype("int32"), "segment_ids": np.zeros_like(x)}
    watch = bertlab.Watch()
    model.fit(
        data, y, batch_size=16, epochs=1, validation_data=(data, y), callbacks=[watch], verbose=0
    )
    h = watch.history
    assert len(h) == 4 and h.grad_norm.notna().all()
    facts = watch.run.meta["model"]
    assert facts["model_class"] == "BertTextClassifier" and facts["from_logits"] is True
    assert "BertBackbone" in facts["encoders"]
    assert any("transformer_layer_0" in layer for layer in watch.run.layout.layers)
    # the token embedding's IndexedSlices gradient is measured (not zero, not missing)
    emb = [c for c in h.columns if c.startswith("grad_layer_norm[") and "token_embedding" in c]
    assert emb and (h[emb[0]] > 0).all()
    assert watch.epochs.val_confusion.iloc[0].sum() == 64


def test_binary_and_softmax_outputs():
    x, y, _ = token_data(n=96, k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    watch = bertlab.Watch()
    model.fit(
        x, y.astype("float32"), batch_size=32, epochs=1, shuffle=False, callbacks=[watch], verbose=0
    )
    h = watch.history
    assert watch.run.layout.task == "binary" and watch.run.layout.prob_mode == "identity"
    np.testing.assert_array_equal(h[["label_count[0]", "label_count[1]"]].sum(1), 32)
    assert h["label_count[1]"].sum() == y.sum()

    model = embedding_classifier(k=3, activation="softmax")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    watch = bertlab.Watch()
    x3, y3, _ = token_data(n=64, k=3)
    model.fit(x3, y3, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    h = watch.history
    assert (h.out_rowsum_dev < 1e-5).all() and (h.out_unit_share == 1).all()
    assert watch.run.meta["model"]["output_activation"] == "softmax"


def test_regression_model_gets_one_clear_message_and_loss_and_gradients():
    x, _, _ = token_data(n=96, k=2)
    target = np.random.default_rng(0).normal(size=(96, 1)).astype("float32")
    model = embedding_classifier(k=1)
    model.compile(optimizer="adam", loss="mse")
    watch = bertlab.Watch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, target, batch_size=32, epochs=2, callbacks=[watch], verbose=0)
    ours = [str(w.message) for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    assert len(ours) == 1 and "regression" in ours[0]
    h = watch.history
    assert len(h) == 6 and h.loss.notna().all() and h.grad_norm.notna().all()
    assert not any(c.startswith("pred_count") for c in h.columns)


def test_xla_compiled_step_with_steps_per_execution():
    """Keras's default on GPU is jit_compile: every op Watch adds must have an XLA kernel."""
    x, y, _ = token_data(n=128, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=_sparse_loss(), jit_compile=True, steps_per_execution=2)
    watch = bertlab.Watch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x, y, batch_size=32, epochs=1, validation_split=0.25, callbacks=[watch], verbose=0
        )
    assert not [w for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    h = watch.history
    assert len(h) == 3 and h.grad_norm.notna().all()
    hist = h[[c for c in h.columns if c.startswith("out_hist")]].sum(1)
    assert (hist == h.batch_size * 4).all()
    assert watch.epochs.val_confusion.iloc[0].sum() == 32


def test_custom_train_step_without_compute_loss_records_gradients_and_says_why():
    import tensorflow as tf

    class Custom(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                logits = self(x, training=True)
                loss = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
                loss = tf.reduce_mean(loss)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
            return {"loss": loss}

    inputs = keras.Input((SEQ,), dtype="int32")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 8)(inputs))
    model = Custom(inputs, keras.layers.Dense(4)(h))
    model.compile(optimizer="adam", loss=_sparse_loss())
    x, y, _ = token_data(n=96, k=4)
    watch = bertlab.Watch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    ours = [str(w.message) for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    assert len(ours) == 1 and "compute_loss" in ours[0]
    h = watch.history
    assert len(h) == 3 and h.grad_norm.notna().all() and h.loss.isna().all()
