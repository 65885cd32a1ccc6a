"""Real trainings where the core rules must fire (nan-loss, single-class, chance-loss,
high-learning-rate, double-softmax, label-out-of-range), plus the engine's contract:
causes first, withdrawal, exception notes, and ``bertlab.check`` before any training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from training import (
    bert_inputs,
    codes,
    embedding_classifier,
    fit_watched,
    sparse_ce,
    tiny_bert,
    token_data,
)

import bertlab
from bertlab.diagnose import Diagnoser
from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.rules.base import Context
from bertlab.run import Run


def _relu_classifier(k: int, activation=None):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16,), dtype="int32"),
            keras.layers.Embedding(300, 32),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(k, activation=activation),
        ]
    )


def test_forum_45_classes_softmax_from_logits_high_lr_predicts_one_class():
    """Forum: 45 classes, Dense softmax + from_logits=True, a learning rate far too high:
    every prediction is the same class and the loss sits at ln 45. A small ReLU encoder stands
    in for the pretrained BERT (whose collapse at Adam 1e-3 the demo shows on the real model)."""
    x, y, _ = token_data(n=45 * 12, k=45, seed=3)
    model = _relu_classifier(45, activation="softmax")
    model.compile(optimizer=keras.optimizers.Adam(0.2), loss=sparse_ce(from_logits=True))
    seen_at = {}

    def spy(batch, logs):
        if "single-class" in codes(watch) and "step" not in seen_at:
            seen_at["step"] = watch.run.steps

    watch = bertlab.Watch(verbose=False)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=4,
        shuffle=True,
        verbose=0,
        callbacks=[watch, keras.callbacks.LambdaCallback(on_train_batch_end=spy)],
    )
    found = {f.code: f for f in watch.findings}
    assert "single-class" in found
    f = found["single-class"]
    assert f.severity == "error" and "single class" in f.evidence and "45 classes" in f.evidence
    # On TensorFlow the softmax/from_logits pair is bypassed by Keras: a warning, not the cause.
    assert found["double-softmax"].severity == "warning" and f.cause != "double-softmax"
    # named within the 20-step window (+ rule cadence) of the collapse's onset, with no grace
    # period: the loss exceeds the entropy of the model's own predictions (a committed answer)
    assert seen_at["step"] - f.steps[0] <= 20 + 8 and seen_at["step"] < 40
    assert "committed constant answer" in f.evidence
    h = watch.history
    assert abs(h.loss.tail(20).mean() - np.log(45)) < 0.25 * np.log(45)


def test_chance_loss_fires_when_labels_carry_no_signal_and_is_withdrawn_when_learning():
    x, y, _ = token_data(n=640, k=4, learnable=False)  # labels independent of the text
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=2, batch_size=16)
    f = {f.code: f for f in watch.findings}["chance-loss"]
    assert "ln 4" in f.evidence and f.steps[1] == watch.run.steps - 1

    # The same Watch's findings go away once the model learns (a learnable task).
    xl, yl, _ = token_data(n=640, k=4)
    model.fit(xl, yl, batch_size=16, epochs=4, verbose=0, callbacks=[watch])
    assert "chance-loss" not in codes(watch)
    resolved = [d for d in watch.run.findings if d["code"] == "chance-loss"]
    assert resolved and resolved[0]["status"] == "resolved"


def test_nan_loss_is_named_on_the_step_it_happens_with_the_first_bad_quantity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    x[100, 3] = np.nan  # batch 3 (batch size 32, no shuffling)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=sparse_ce())
    named_at = []

    def spy(batch, logs):
        if "nan-loss" in codes(watch) and not named_at:
            named_at.append(batch)

    watch = bertlab.Watch(verbose=False)
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[watch, keras.callbacks.LambdaCallback(on_train_batch_end=spy)],
    )
    f = {f.code: f for f in watch.findings}["nan-loss"]
    assert named_at == [3] and f.steps[0] == 3
    assert "inputs contain NaN" in f.evidence


def test_label_out_of_range_is_attached_to_the_exception_fit_raises():
    """Labels made by a TextVectorization-like lookup (2..6) for a 5-way softmax."""
    x, y, _ = token_data(n=128, k=5)
    y = y + 2
    model = embedding_classifier(k=5)
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = bertlab.Watch(verbose=False)
    with pytest.raises(Exception, match="valid range") as info:
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[watch])
    notes = getattr(info.value, "__notes__", [])
    assert any(n.startswith("bertlab: [label-out-of-range]") for n in notes), notes
    f = {f.code: f for f in watch.findings}["label-out-of-range"]
    assert "TextVectorization" in f.evidence and "0..4" in f.evidence


def test_check_finds_setup_errors_before_training():
    x, y, _ = token_data(n=64, k=5)
    model = embedding_classifier(k=5, activation="softmax")
    model.compile(optimizer="adam", loss=sparse_ce(from_logits=True))
    weights = [w.copy() for w in model.get_weights()]
    found = {f.code: f for f in bertlab.check(model, x, y + 2)}
    assert found["label-out-of-range"].severity == "error"
    assert found["double-softmax"].code == "double-softmax"
    order = [f.code for f in bertlab.check(model, x, y + 2)]
    # The loudest first: labels past the output break training; the softmax that Keras on
    # TensorFlow silently bypasses is quieter (rank order only within the same loudness).
    assert found["double-softmax"].severity != "error"
    assert order.index("label-out-of-range") < order.index("double-softmax")
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # nothing trained
    uncompiled = embedding_classifier(k=5)
    with pytest.raises(ValueError, match="compile"):
        bertlab.check(uncompiled, x, y)


def test_high_learning_rate_on_an_encoder_is_info_alone():
    x, y, mask = token_data(n=160, k=4)
    model = tiny_bert(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce())
    watch = fit_watched(model, bert_inputs(x, mask), y, epochs=1, batch_size=16)
    f = {f.code: f for f in watch.findings}["high-learning-rate"]
    assert f.severity == "info" and "0.01" in f.evidence and "BertBackbone" in f.evidence


def test_engine_orders_cause_first_links_symptom_and_withdraws():
    """Engine contract with the real high-learning-rate rule and a symptom that we switch."""
    from bertlab.rules import high_learning_rate
    from bertlab.rules.base import Evidence, Rule

    collapsed = {"now": True}
    symptom = Rule(
        check=lambda ctx: Evidence("every batch one class") if collapsed["now"] else None,
        code="single-class",
        severity="error",
        phase="live",
        title="t",
        explanation="x",
        fix="f",
        rank=60,
        causes=("high-learning-rate",),
    )
    diag = Diagnoser(Run(), rules=[symptom, high_learning_rate.RULE])
    facts = ModelFacts(encoders=["BertBackbone"], learning_rate=1e-3)
    ctx = Context(facts=facts, layout=Layout("multiclass", 4))
    diag.evaluate(ctx, ("live",))
    ordered = diag.findings
    assert [f.code for f in ordered] == ["high-learning-rate", "single-class"]
    assert ordered[0].severity == "warning" and ordered[1].cause == "high-learning-rate"

    collapsed["now"] = False  # the model recovered
    diag.evaluate(Context(facts=facts, layout=Layout("multiclass", 4)), ("live",))
    assert [(f.code, f.severity) for f in diag.findings] == [("high-learning-rate", "info")]
    record = {d["code"]: d["status"] for d in diag.run.findings}
    assert record == {"high-learning-rate": "live", "single-class": "resolved"}

    # Raised again later: the same problem returning keeps when it was first raised and loud
    diag.record["single-class"].extra.update(raised_at=7, loud_at=9)  # as if at steps 7, 9
    collapsed["now"] = True
    diag.evaluate(Context(facts=facts, layout=Layout("multiclass", 4)), ("live",))
    again = next(d for d in diag.run.findings if d["code"] == "single-class")
    assert again["status"] == "live"
    assert (again["extra"]["raised_at"], again["extra"]["loud_at"]) == (7, 9)


def test_chance_level_of_many_classes_is_not_underestimated_from_a_short_window():
    """45 balanced classes seen in 160 labels: the plug-in entropy reads ~3.67, not ln 45."""
    from bertlab.rules._stats import chance_loss, entropy

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 45, size=(40, 4))
    counts = np.stack([np.bincount(row, minlength=45) for row in labels])
    sizes = np.full(40, 4.0)
    plug_in = entropy(counts.sum(0))
    level = chance_loss(counts, "multiclass", sizes)
    assert plug_in < 0.965 * np.log(45)  # would eat most of chance-loss's 5 % tolerance
    assert abs(level - np.log(45)) < 0.02 * np.log(45)
    # Few classes and many labels: the correction is negligible and never exceeds ln K.
    two = np.array([[500.0, 500.0]])
    assert chance_loss(two, "multiclass", np.array([1000.0])) == np.log(2)


def test_a_finding_that_comes_back_is_printed_as_again(capsys):
    """A plain script prints a finding's full line once; when it is withdrawn and raised
    again, a short "again" line with the new evidence."""
    from bertlab.findings import Finding

    watch = bertlab.Watch(verbose=True, dashboard=False)

    def finding(evidence):
        return Finding(
            "single-class", "error", "Every prediction is the same class", evidence, "why", "fix"
        )

    watch._announce(finding("steps 52–71: one class"))
    watch._announce(finding("steps 60–79: one class"))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "bertlab error: [single-class] Every prediction is the same class — steps 52–71: one class",
        "bertlab error: [single-class] again — steps 60–79: one class",
    ]


def test_a_cause_is_never_quieter_than_its_symptoms():
    """An info named as the cause of a live warning/error is a warning while that holds (along
    chains too), and goes back to info when the symptom is withdrawn."""
    from bertlab.rules.base import Evidence, Rule

    state = {"collapsed": True}

    def rule(code, severity, rank, causes=(), when=lambda: True):
        return Rule(
            check=lambda ctx: Evidence(f"{code} holds") if when() else None,
            code=code,
            severity=severity,
            phase="live",
            title=code,
            explanation="x",
            fix="f",
            rank=rank,
            causes=causes,
        )

    rules = [
        rule("root", "info", 10),
        rule("middle", "info", 20, causes=("root",)),
        rule("symptom", "error", 60, causes=("middle",), when=lambda: state["collapsed"]),
    ]
    diag = Diagnoser(Run(), rules=rules)
    ctx = Context(facts=ModelFacts(), layout=Layout("multiclass", 4))
    diag.evaluate(ctx, ("live",))
    assert [(f.code, f.severity) for f in diag.findings] == [
        ("root", "warning"),
        ("middle", "warning"),
        ("symptom", "error"),
    ]
    state["collapsed"] = False
    diag.evaluate(Context(facts=ModelFacts(), layout=Layout("multiclass", 4)), ("live",))
    assert {f.code: f.severity for f in diag.findings} == {"root": "info", "middle": "info"}
