"""Output, loss, label and metric configuration rules: real trainings where each must fire
(double-sigmoid, logits-as-probabilities, loss-activation-mismatch, multilabel-softmax,
label-format-mismatch, metric-mismatch), the two forum reproductions, healthy look-alikes where
none of them may say anything, and hand-built contexts for edges a training cannot reach."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SEQ, VOCAB
from training import (
    codes,
    embedding_classifier,
    fit_watched,
    recorded_alarms,
    sparse_ce,
    token_data,
)

import bertlab
from bertlab.datafacts import from_arrays
from bertlab.facts import ModelFacts
from bertlab.rules import (
    _lossconfig,
    double_sigmoid,
    label_format_mismatch,
    logits_as_probabilities,
    loss_activation_mismatch,
    metric_mismatch,
)
from bertlab.rules.base import Context

OURS = {
    "double-sigmoid",
    "logits-as-probabilities",
    "loss-activation-mismatch",
    "multilabel-softmax",
    "label-format-mismatch",
    "metric-mismatch",
}


def _found(watch) -> dict:
    return {f.code: f for f in watch.findings}


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return float(match.group(1))


def _multilabel_data(n=384, k=3, rates=(0.5, 0.3, 0.6), seed=1, marked=1.0):
    """Multi-hot labels; a positive label j is announced by marker token 1 + j in a share
    ``marked`` of its rows (1.0: easy to learn; lower: only partly predictable from the text)."""
    rng = np.random.default_rng(seed)
    x, _, _ = token_data(n=n, k=2, learnable=False)
    y = (rng.random((n, k)) < np.asarray(rates)).astype("float32")
    for j in range(k):
        show = (y[:, j] > 0) & (rng.random(n) < marked)
        x[:, j + 1] = np.where(show, 1 + j, x[:, j + 1])
    return x, y


# --------------------------------------------------------------------------- double-sigmoid
def test_double_sigmoid_rescued_by_tensorflow_is_a_warning_and_not_a_cause():
    """Dense(1, sigmoid) + BinaryCrossentropy(from_logits=True): Keras on TF takes the sigmoid's
    input (``_get_logits``), so the loss is right on this backend only."""
    x, y, _ = token_data(n=256, k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    watch = fit_watched(model, x, y.astype("float32"), epochs=1)
    f = _found(watch)["double-sigmoid"]
    assert f.severity == "warning" and "pre-sigmoid logits" in f.evidence
    assert watch.run.meta["output_op"] == "Sigmoid"
    assert all(g.cause != "double-sigmoid" for g in watch.findings)


def test_double_sigmoid_behind_a_reshape_is_an_error_from_the_recorded_outputs():
    """A Reshape after the sigmoid hides it from the layer facts and from Keras's shortcut: the
    loss really applies a second sigmoid. The outputs never leave [0, 1]."""
    x, y, _ = token_data(n=384, k=2)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((SEQ,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 16),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
            keras.layers.Reshape((1,)),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    watch = fit_watched(model, x, y.astype("float32"), epochs=3, batch_size=24)
    f = _found(watch)["double-sigmoid"]
    assert f.severity == "error" and "Reshape" in f.evidence
    h = watch.history
    low, high = _number(r"range (\d\.\d+)", f.evidence), _number(r"–(\d\.\d+)\)", f.evidence)
    assert 0 <= low and high <= 1 and high - low >= double_sigmoid.MIN_SPREAD
    assert abs(low - h.out_min.min()) < 0.01
    # The hidden sigmoid proves these are probabilities: no "accuracy thresholds a logit" info.
    assert "metric-mismatch" not in codes(watch)


# --------------------------------------------------------------------------- logits-as-probs
def test_logits_as_probabilities_from_the_recorded_outputs():
    """Dense(4) without activation + the default from_logits=False: Keras clips the scores."""
    x, y, _ = token_data(n=256, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    watch = fit_watched(model, x, y, epochs=2)
    f = _found(watch)["logits-as-probabilities"]
    assert f.severity == "error" and f.steps[0] == 0
    outside = _number(r"(\d+) % of the outputs lie outside", f.evidence) / 100
    h = watch.history
    assert abs(outside - (1 - h.out_unit_share.mean())) < 0.01
    assert outside > 0.3
    # Every score clipped to 1e-7: the renormalised row is uniform, the loss frozen at ln 4.
    assert abs(h.loss.tail(8).mean() - np.log(4)) < 0.05


def test_check_names_logits_as_probabilities_before_training():
    x, y, _ = token_data(n=64, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    found = {f.code: f for f in bertlab.check(model, x, keras.utils.to_categorical(y, 4))}
    assert "no activation" in found["logits-as-probabilities"].evidence


# --------------------------------------------------------------------------- loss-activation
def test_softmax_over_one_output_is_named_as_the_cause_of_single_class():
    """Dense(1, softmax) + binary_crossentropy: the output is always 1.0. On TF the loss reads
    the logit under the softmax, so the loss falls while accuracy never moves."""
    x, y, _ = token_data(n=384, k=2)
    model = embedding_classifier(k=1, activation="softmax")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"]
    )
    watch = fit_watched(model, x, y.astype("float32"), epochs=6)
    f = _found(watch)["loss-activation-mismatch"]
    assert f.severity == "error" and "always outputs 1.0" in f.evidence
    record = {d["code"]: d for d in watch.run.findings}
    assert record["single-class"]["cause"] == "loss-activation-mismatch"
    acc = watch.epochs["accuracy"].to_numpy()
    assert np.ptp(acc) == 0 and watch.epochs["loss"].iloc[-1] < watch.epochs["loss"].iloc[0]


def test_mse_on_class_ids_is_an_error():
    x, y, _ = token_data(n=256, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    watch = fit_watched(model, x, y[:, None], epochs=1)
    f = _found(watch)["loss-activation-mismatch"]
    assert f.severity == "error" and "class ids 0..3" in f.evidence and "4 outputs" in f.evidence


def test_sigmoid_with_sparse_ce_is_a_warning_on_tensorflow():
    """Keras on TF computes the softmax cross-entropy from the pre-sigmoid logits: training is
    right, the model's outputs are not the probabilities it trained."""
    x, y, _ = token_data(n=256, k=4)
    model = embedding_classifier(k=4, activation="sigmoid")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    watch = fit_watched(model, x, y, epochs=1)
    f = _found(watch)["loss-activation-mismatch"]
    assert f.severity == "warning" and "pre-sigmoid logits" in f.evidence
    assert "4 sigmoid outputs" in f.evidence


# --------------------------------------------------------------------------- multilabel-softmax
def test_multilabel_targets_with_softmax_and_bce():
    x, y = _multilabel_data()
    model = embedding_classifier(k=3, activation="softmax")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    watch = fit_watched(model, x, y, epochs=2, validation_split=0.2)
    found = _found(watch)
    f = found["multilabel-softmax"]
    share = _number(r"(\d+) % of label rows", f.evidence) / 100
    expected = np.mean(y[:308].sum(1) > 1)  # the training part of the split
    assert f.severity == "error" and abs(share - expected) < 0.03
    assert "pre-softmax logits" in f.evidence  # TF trains sigmoids, the model returns a softmax
    assert "loss-activation-mismatch" not in found  # one finding for one setup
    # The softmax the model returns can never mark two labels: the validation predictions prove it
    pred = watch.epochs["val_pred_count"].iloc[-1]
    assert pred.sum() <= watch.epochs["val_samples"].iloc[-1]


def test_multilabel_targets_with_categorical_ce():
    x, y = _multilabel_data()
    model = embedding_classifier(k=3)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    watch = fit_watched(model, x, y, epochs=1)
    f = _found(watch)["multilabel-softmax"]
    assert "1/m per label" in f.evidence and f.severity == "error"


# --------------------------------------------------------------------------- label-format
@pytest.mark.parametrize(
    ("loss", "labels", "expected"),
    [
        (sparse_ce(), "onehot", "one-hot rows"),
        (keras.losses.CategoricalCrossentropy(from_logits=True), "ids", "one class id per row"),
        (keras.losses.CategoricalCrossentropy(from_logits=True), "flat", "one class id per row"),
    ],
)
def test_label_format_mismatch_explains_the_keras_shape_error(loss, labels, expected):
    x, y, _ = token_data(n=96, k=4)
    y = {"onehot": keras.utils.to_categorical(y, 4), "ids": y[:, None], "flat": y}[labels]
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=loss)
    watch = bertlab.Watch(verbose=False)
    with pytest.raises(ValueError, match="target.shape") as info:
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[watch])
    notes = getattr(info.value, "__notes__", [])
    assert any(n.startswith("bertlab: [label-format-mismatch]") for n in notes), notes
    f = _found(watch)["label-format-mismatch"]
    assert expected in f.evidence and "outputs (32, 4)" in f.evidence


def test_forum_textvectorization_labels_with_categorical_ce_give_nan_and_perfect_accuracy():
    """Forum: label strings encoded with a TextVectorization layer ((N, 1) ids 2..6, since 0 and
    1 are padding and [UNK]) fed to CategoricalCrossentropy on 5 classes; the loss turns NaN
    while categorical_accuracy says 1.0. Synthetic token data stands in for the forum's texts;
    SGD(1.0) makes the overflow happen within a few epochs instead of a few hundred."""
    x, y, _ = token_data(n=256, k=5)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])[y]
    vectorize = keras.layers.TextVectorization(output_mode="int")
    vectorize.adapt(words)
    ds = tf.data.Dataset.from_tensor_slices((x, words)).batch(16)
    ds = ds.map(lambda a, b: (a, vectorize(b)))  # label width is not static: (None, None)
    model = embedding_classifier(k=5, activation="softmax")
    model.compile(
        optimizer=keras.optimizers.SGD(1.0),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["categorical_accuracy"],
    )
    watch = fit_watched(model, ds, None, epochs=4, batch_size=None)
    ep = watch.epochs
    assert np.isnan(ep["loss"].iloc[-1]) and ep["categorical_accuracy"].iloc[-1] == 1.0
    found = _found(watch)
    f = found["label-format-mismatch"]
    assert "2..6" in f.evidence and "TextVectorization" in f.evidence
    assert found["nan-loss"].cause == "label-format-mismatch"
    acc = found["metric-mismatch"]
    assert acc.severity == "warning" and "always 0" in acc.evidence
    assert "100 % of predictions" in acc.evidence  # NaN outputs argmax to class 0


# --------------------------------------------------------------------------- metric-mismatch
def test_forum_big_five_accuracy_stuck_is_categorical_accuracy_on_multilabel_targets():
    """Forum: Big-Five personality traits, 5 sigmoid outputs, binary cross-entropy,
    metrics=['acc'] "stuck at 27 %". Synthetic multi-hot traits, each only partly visible in
    the text (like personality in essays), stand in for the forum's essays."""
    rates = (0.5, 0.45, 0.55, 0.4, 0.5)
    x, y = _multilabel_data(n=480, k=5, rates=rates, seed=5, marked=0.3)
    model = embedding_classifier(k=5, activation="sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["acc"]
    )
    watch = fit_watched(model, x, y, epochs=4, validation_split=0.2)
    found = _found(watch)
    f = found["metric-mismatch"]
    assert f.severity == "warning" and "CategoricalAccuracy" in f.evidence
    logged = _number(r"acc = (\d\.\d+)", f.evidence)
    per_label = _number(r"per-label validation accuracy is (\d\.\d+)", f.evidence)
    assert logged == pytest.approx(watch.epochs["acc"].iloc[-1], abs=1e-3)
    # 'acc' sits near the forum's 27 % while every trait is predicted far better than that
    assert logged < 0.4 and per_label > logged + 0.15
    assert not codes(watch, ("error",))  # training itself is fine


def test_categorical_accuracy_on_class_ids_counts_class_0():
    x, y, _ = token_data(n=256, k=4)
    model = embedding_classifier(k=4)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=sparse_ce(),
        metrics=["categorical_accuracy", "accuracy"],
    )
    watch = fit_watched(model, x, y[:, None], epochs=2)
    f = _found(watch)["metric-mismatch"]
    assert "always 0" in f.evidence
    pred = watch.history.filter(like="pred_count").to_numpy()[-_lossconfig.WINDOW :]
    share = _number(r"here (\d+) % of predictions", f.evidence) / 100
    assert share == pytest.approx(pred[:, 0].sum() / pred.sum(), abs=0.01)


# --------------------------------------------------------------------------- healthy look-alikes
def _label_smoothing():
    x, y, _ = token_data(n=256, k=4)
    model = embedding_classifier(k=4)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["categorical_accuracy", "accuracy"],
    )
    return fit_watched(model, x, keras.utils.to_categorical(y, 4), epochs=2)


def _binary_sigmoid():
    x, y, _ = token_data(n=256, k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return fit_watched(model, x, y.astype("float32"), epochs=2)


def _multilabel_metrics():
    x, y = _multilabel_data(n=256)
    model = embedding_classifier(k=3)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.BinaryAccuracy(threshold=0.0),
            keras.metrics.AUC(multi_label=True, from_logits=True),
        ],
    )
    return fit_watched(model, x, y, epochs=2, validation_split=0.2)


def _softmax_sparse():
    x, y, _ = token_data(n=256, k=4)
    model = embedding_classifier(k=4, activation="softmax")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=sparse_ce(from_logits=False),
        metrics=["sparse_categorical_accuracy", "accuracy"],
    )
    return fit_watched(model, x, y, epochs=2)


@pytest.mark.parametrize(
    "setup", [_label_smoothing, _binary_sigmoid, _multilabel_metrics, _softmax_sparse]
)
def test_healthy_lookalikes_raise_none_of_these_findings(setup):
    watch = setup()
    raised = {d["code"] for d in watch.run.findings}
    assert not raised & OURS, [d["evidence"] for d in watch.run.findings]
    assert recorded_alarms(watch) == []


# --------------------------------------------------------------------------- hand-built edges
def _ctx(facts: ModelFacts, y=None, columns=None, error=None, meta=None) -> Context:
    data = from_arrays(None, y, n_outputs=facts.n_outputs) if y is not None else None
    return Context(facts=facts, columns=columns or {}, data=data, error=error, meta=meta or {})


def test_double_sigmoid_is_an_error_off_tensorflow_and_with_a_focal_loss():
    jax = ModelFacts(backend="jax", loss="binary_crossentropy", from_logits=True)
    jax.output_activation, jax.n_outputs = "sigmoid", 1
    assert double_sigmoid.check(_ctx(jax)).severity == "error"
    focal = ModelFacts(backend="tensorflow", loss="binary_focal_crossentropy", from_logits=True)
    focal.output_activation, focal.n_outputs = "sigmoid", 1
    ev = double_sigmoid.check(_ctx(focal, meta={"output_op": "Sigmoid"}))
    assert ev.severity == "error" and "every backend" in ev.text


def test_double_sigmoid_ignores_a_stuck_logit_head_inside_the_unit_interval():
    """A logit model that learned nothing sits at the prior's logit (0.4 for 60 % positives)."""
    facts = ModelFacts(backend="tensorflow", loss="binary_crossentropy", from_logits=True)
    facts.output_activation, facts.n_outputs = "linear", 1
    n = 60
    cols = {
        "step": np.arange(n, dtype=float),
        "out_unit_share": np.ones(n),
        "out_min": np.full(n, 0.38),
        "out_max": np.full(n, 0.43),
        "label_min": np.zeros(n),
        "label_max": np.ones(n),
    }
    assert double_sigmoid.check(_ctx(facts, columns=cols)) is None
    cols["out_min"], cols["out_max"] = np.full(n, 0.05), np.full(n, 0.9)
    assert double_sigmoid.check(_ctx(facts, columns=cols)).severity == "error"


def test_logits_as_probabilities_stays_silent_when_outputs_are_probabilities():
    """A custom normalising head reports no activation, but its outputs stay in [0, 1]."""
    facts = ModelFacts(loss="sparse_categorical_crossentropy", from_logits=False, n_outputs=4)
    facts.output_activation = "linear"
    cols = {"step": np.arange(5.0), "out_unit_share": np.ones(5), "out_rowsum_dev": np.zeros(5)}
    assert logits_as_probabilities.check(_ctx(facts, columns=cols)) is None
    # Inside fit, before the first step, it waits for the outputs instead of guessing.
    assert logits_as_probabilities.check(_ctx(facts)) is None


def test_regression_losses_on_real_valued_or_ordinal_targets_are_fine():
    mse = ModelFacts(loss="mean_squared_error", from_logits=False, n_outputs=1)
    stars = np.array([1, 2, 3, 4, 5] * 20, dtype=float)  # ordinal regression on star ratings
    assert loss_activation_mismatch.check(_ctx(mse, y=stars)) is None
    ev = loss_activation_mismatch.check(_ctx(mse, y=(stars > 3).astype(float)))
    assert ev.severity == "warning" and "0/1 labels" in ev.text
    scores = ModelFacts(loss="mean_squared_error", from_logits=False, n_outputs=5)
    traits = np.random.default_rng(0).integers(1, 6, size=(100, 5)).astype(float)
    assert loss_activation_mismatch.check(_ctx(scores, y=traits)) is None  # 5 trait scores


def test_label_format_mismatch_on_arrays_and_soft_labels():
    cce = ModelFacts(loss="categorical_crossentropy", from_logits=True, n_outputs=5)
    soft = np.full((50, 5), 0.2)  # distillation targets: rows are distributions
    assert label_format_mismatch.check(_ctx(cce, y=soft)) is None
    ev = label_format_mismatch.check(_ctx(cce, y=np.arange(2, 7).repeat(10)[:, None]))
    assert "one class id per row" in ev.text and "TextVectorization" in ev.text
    wrong_k = keras.utils.to_categorical(np.arange(4).repeat(10), 4)
    assert "4 columns" in label_format_mismatch.check(_ctx(cce, y=wrong_k)).text
    single = ModelFacts(loss="binary_crossentropy", from_logits=True, n_outputs=1)
    onehot2 = keras.utils.to_categorical(np.arange(2).repeat(10), 2)
    assert "single output" in label_format_mismatch.check(_ctx(single, y=onehot2)).text


def test_metric_mismatch_edges():
    soft = ModelFacts(loss="categorical_crossentropy", from_logits=True, n_outputs=5)
    soft.metrics = ["categorical_accuracy", "accuracy"]
    assert metric_mismatch.check(_ctx(soft, y=np.full((50, 5), 0.2))) is None
    onehot = keras.utils.to_categorical(np.arange(5).repeat(10), 5)
    soft.metrics = ["sparse_categorical_accuracy"]
    assert metric_mismatch.check(_ctx(soft, y=onehot)).severity == "error"
    logit = ModelFacts(loss="binary_crossentropy", from_logits=True, n_outputs=1)
    logit.output_activation, logit.metrics = "linear", ["accuracy"]
    cols = {"step": np.arange(3.0), "out_unit_share": np.array([0.5, 0.4, 0.6])}
    ev = metric_mismatch.check(_ctx(logit, y=np.arange(2).repeat(10), columns=cols))
    assert ev.severity == "info" and "p > 0.62" in ev.text
    # 'accuracy' on a tf.data label of unknown width: Keras picks CategoricalAccuracy.
    ids = ModelFacts(loss="categorical_crossentropy", from_logits=False, n_outputs=5)
    ids.metrics = ["accuracy"]
    ctx = _ctx(ids, y=np.arange(2, 7).repeat(10)[:, None], meta={"label_shape": [None, None]})
    ctx.data.label_shape = (0,)  # as recorded when the traced label width is None
    assert "not static" in metric_mismatch.check(ctx).text
    ctx.meta["label_shape"] = [None]  # (N,) ids: SparseCategoricalAccuracy, fine
    ctx.data.label_shape = ()
    assert metric_mismatch.check(ctx) is None


def test_per_token_labels_are_not_mistaken_for_one_hot_rows():
    """Token classification: (N, T) ids, (N, T, K) outputs, sparse CE: a healthy setup."""
    ner = ModelFacts(loss="sparse_categorical_crossentropy", from_logits=True, n_outputs=9)
    ner.metrics = ["accuracy", "sparse_categorical_accuracy"]
    tags = np.random.default_rng(0).integers(0, 9, size=(40, 16)).astype(float)
    ctx = _ctx(ner, y=tags)
    assert label_format_mismatch.check(ctx) is None  # before the trace: ambiguous, silent
    ctx.meta["output_shape"] = [None, 16, 9]
    for rule in (label_format_mismatch, metric_mismatch, loss_activation_mismatch):
        assert rule.check(ctx) is None
