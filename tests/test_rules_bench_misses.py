"""Mechanisms behind the bug benchmark's misses and false warnings (issue 14), each on a real
small training: a fresh model's initial bias that training removes is not a collapse
(benchmark h14), logits clamped at 0 by a ReLU get no gradient (b34)."""

from __future__ import annotations

import keras
import numpy as np
from training import codes, fit_watched, recorded_alarms, sparse_ce, token_data

from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.rules import dead_gradients, single_class
from bertlab.rules.base import Context


def _prefix(watch, n: int) -> Context:
    """The rules' context after the first ``n`` recorded steps (no epoch ended yet)."""
    run = watch.run
    rows = run.store.since(0).rows[:n]
    columns = {}
    for name, width in run.store.channels:
        block = rows[:, run.store.slice(name)]
        columns[name] = block[:, 0] if width == 1 else block
    facts = ModelFacts.from_dict(run.meta["model"])
    return Context(facts=facts, layout=run.layout, columns=columns, meta=run.meta)


def _sensor_fit(epochs: int):
    """Benchmark h14's healthy setup: 3 sine-pattern classes, readings with noise, Conv1D."""
    rng = np.random.default_rng(0)
    n = 1200
    y = rng.integers(0, 3, n)
    t = np.linspace(0, 4 * np.pi, 24)
    x = np.sin(t[None, :, None] * (1 + y[:, None, None]) / 2) + rng.normal(
        scale=0.5, size=(n, 24, 6)
    )
    x[rng.random(x.shape) < 0.02] = 0.0  # missing readings imputed with 0
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((24, 6)),
            keras.layers.Conv1D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return fit_watched(model, x.astype("float32"), y, epochs=epochs, batch_size=32)


def test_initial_bias_that_training_removes_is_not_a_collapse():
    watch = _sensor_fit(epochs=2)
    # The first 20 steps show what the committed-answer evidence reads: every batch one class,
    # the loss above the model's own prediction entropy by the gap threshold...
    first = _prefix(watch, single_class.WINDOW)
    assert (first.col("pred_count").argmax(1) == first.col("pred_count")[0].argmax()).all()
    assert single_class._committed(first, np.log(3)) is not None
    # ...while that entropy climbs toward ln 3: the initial bias is being trained away.
    assert single_class._unlearning(first, np.log(3))
    # Checked at every step, as the fastest live cadence would: never a collapse.
    for n in range(single_class.WINDOW, watch.run.steps + 1):
        assert single_class.check(_prefix(watch, n)) is None, n
    assert recorded_alarms(watch) == []


def test_committed_answer_whose_entropy_does_not_rise_is_still_named_unit():
    # b35's shape: far more confident than the labels, entropy flat: no bias being removed
    n, k = 20, 4
    pred = np.zeros((n, k))
    pred[:, 0] = 32
    cols = {
        "step": np.arange(n, dtype=float),
        "loss": np.full(n, 1.9),
        "prob_entropy": np.full(n, 1.2) + 0.001 * np.sin(np.arange(n)),
        "pred_count": pred,
        "label_count": np.full((n, k), 8.0),
        "batch_size": np.full(n, 32.0),
    }
    ctx = Context(facts=ModelFacts(), layout=Layout("multiclass", k, ("a", "b")), columns=cols)
    assert not single_class._unlearning(ctx, np.log(k))
    assert single_class.check(ctx) is not None


def _relu_logits(activation: str | None, seed: int = 1):
    keras.utils.set_random_seed(seed)
    x, y, _ = token_data(n=512, k=5, seed=seed)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],), dtype="int32"),
            keras.layers.Embedding(300, 16),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(5, activation=activation),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), sparse_ce(from_logits=True))
    return fit_watched(model, x, y, epochs=2, batch_size=32)


def test_relu_on_the_logits_is_named_dead_gradients():
    # benchmark b34 (MVCNN's fc8 + relu before the softmax cross-entropy)
    watch = _relu_logits("relu")
    ev = dead_gradients.check(_prefix(watch, dead_gradients.WINDOW))
    assert ev is not None and "relu activation pins them at 0" in ev.text
    assert "dead-gradients" in codes(watch)
    # the same model with plain logits: nothing clamped, nothing dead
    plain = _relu_logits(None)
    for n in range(dead_gradients.WINDOW, plain.run.steps + 1, 4):
        assert dead_gradients.check(_prefix(plain, n)) is None
    assert recorded_alarms(plain) == []


def test_multilabel_model_short_of_the_label_prior_after_two_passes_is_collapsed():
    # benchmark b17 (keras#741): 64 labels, 2 on per row; every sigmoid sinks toward 0
    rng = np.random.default_rng(0)
    n, feats, labels = 2000, 200, 64
    w = rng.normal(size=(feats, labels))
    x = (rng.random((n, feats)) < 0.05).astype("float32")
    scores = x @ w + rng.normal(scale=1.0, size=(n, labels))
    y = np.zeros((n, labels), "float32")
    y[np.arange(n)[:, None], np.argsort(-scores, 1)[:, :2]] = 1.0
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((feats,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(labels, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    watch = fit_watched(model, x, y, epochs=3, batch_size=64, validation_split=0.2)
    found = {d["code"]: d for d in watch.run.findings}
    assert "multilabel-collapse" in found
    assert "what predicting the label frequencies gives" in found["multilabel-collapse"]["evidence"]


def test_split_that_takes_a_class_is_named_before_the_imbalance_it_makes():
    # benchmark b19 (keras#796): binary labels in order, validation_split takes the last rows
    x, y, _ = token_data(n=640, k=2, seed=3)
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]
    keep = np.concatenate([np.flatnonzero(y == 0)[:480], np.flatnonzero(y == 1)[:120]])
    x, y = x[keep], y[keep]  # 480 of class 0, then 120 of class 1
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],), dtype="int32"),
            keras.layers.Embedding(300, 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), sparse_ce())
    watch = fit_watched(model, x, y, epochs=3, batch_size=32, validation_split=0.15, shuffle=True)
    live = {f.code: f for f in watch.findings}
    shift = live["split-label-shift"]
    assert shift.extra["starved"] == [1] and "the split's doing" in shift.evidence
    # training keeps 18 of class 1's 120 rows: imbalanced by the split, and named after it
    assert live["class-imbalance"].cause == "split-label-shift"
    in_order = [f.code for f in watch.findings]
    assert in_order.index("split-label-shift") < in_order.index("class-imbalance")
