"""Findings speak the user's framework: a PyTorch or Hugging Face run is shown PyTorch code in
its fixes and its own loss in the evidence, a Keras run keeps the Keras fix word for word.

Real trainings with a known mistake in both frameworks (a sigmoid head with a logits loss, a
from-scratch learning rate on a BERT encoder), the engine's choice of fix on hand-built
contexts, and a sweep over every rule's texts.
"""

from __future__ import annotations

import keras
import pytest
import torch
from conftest import embedding_classifier
from torch import nn
from torch_training import MeanPool, model_and_optimizer, tensors, tiny_hf_bert, train_loop
from training import bert_inputs, fit_watched, sparse_ce, tiny_bert, token_data

import bertlab.torch
from bertlab.diagnose import Diagnoser
from bertlab.facts import ModelFacts
from bertlab.rules import all_rules, double_sigmoid, high_learning_rate
from bertlab.rules._lossconfig import loss_text
from bertlab.rules.base import Context, Evidence, Rule
from bertlab.run import Run

#: Rules whose Keras fix needs no torch counterpart: they read what only Keras has (the metrics
#: passed to ``compile``), so they cannot fire on a torch run.
KERAS_ONLY = {"metric-mismatch"}
#: Marks of Keras code or vocabulary a PyTorch user cannot act on.
KERAS_MARKS = ("keras.", "keras_hub", "model.compile", "model.fit", "from_logits")


def _keras_code(text: str) -> bool:
    return "keras." in text or "model.compile" in text or "keras_hub" in text


def _finding(watch, code: str):
    found = [f for f in watch.findings if f.code == code]
    assert found, f"{code} not raised; live: {[f.code for f in watch.findings]}"
    return found[0]


def _no_keras(text: str) -> None:
    for mark in KERAS_MARKS:
        assert mark not in text, f"{mark!r} in {text!r}"


# --------------------------------------------------------------------------- real trainings
def test_double_sigmoid_on_pytorch_shows_pytorch_code_and_the_users_loss():
    """A sigmoid head trained with nn.BCEWithLogitsLoss: the loss applies a second sigmoid."""
    model, opt = model_and_optimizer(k=1, activation=nn.Sigmoid())
    watch = train_loop(
        model, opt, nn.BCEWithLogitsLoss(), tensors(k=2), target=lambda y: y.float()[:, None]
    )
    f = _finding(watch, "double-sigmoid")
    assert f.severity == "error"
    assert f.fix == double_sigmoid.RULE.fixes["torch"]
    assert "nn.BCEWithLogitsLoss()" in f.fix and "nn.Linear" in f.fix
    assert "nn.BCEWithLogitsLoss()" in f.evidence and "binary_crossentropy" not in f.evidence
    _no_keras(f.fix)
    _no_keras(f.evidence)
    _no_keras(f.explanation)


def test_double_sigmoid_on_keras_keeps_the_keras_fix():
    """The same mistake in Keras (Dense(1, sigmoid) + from_logits=True) keeps its Keras fix."""
    x, y, _ = token_data(n=256, k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    watch = fit_watched(model, x, y.astype("float32"), epochs=1)
    f = _finding(watch, "double-sigmoid")
    assert f.fix == double_sigmoid.RULE.fix and "keras.layers.Dense(1)" in f.fix
    assert "binary_crossentropy(from_logits=True)" in f.evidence
    assert f.explanation == double_sigmoid.RULE.explanation


def test_high_learning_rate_on_hugging_face_shows_adamw_warmup_and_trainer_arguments():
    """A from-scratch learning rate (1e-2) on a small BertForSequenceClassification."""
    model = tiny_hf_bert()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids, mask, y = tensors(n=192)
    with bertlab.torch.Watch(model, opt, verbose=False) as watch:
        model.train()
        for i in range(0, 192, 16):
            s = slice(i, i + 16)
            out = model(input_ids=ids[s], attention_mask=mask[s], labels=y[s])
            out.loss.backward()
            opt.step()
            opt.zero_grad()
    f = [d for d in watch.run.findings if d["code"] == "high-learning-rate"]
    assert f, [d["code"] for d in watch.run.findings]
    fix = f[0]["fix"]
    assert fix == high_learning_rate.RULE.fixes["torch"]
    assert "torch.optim.AdamW" in fix and "get_linear_schedule_with_warmup" in fix
    assert "TrainingArguments(" in fix and "learning_rate=2e-5" in fix
    _no_keras(fix)


def test_high_learning_rate_on_keras_keeps_the_keras_fix():
    x, y, mask = token_data(n=128, k=4)
    model = tiny_bert(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce())
    watch = fit_watched(model, bert_inputs(x, mask), y, epochs=1)
    fix = _finding(watch, "high-learning-rate").fix
    assert fix == high_learning_rate.RULE.fix and "keras.optimizers.Adam" in fix


# --------------------------------------------------------------------------- engine and helper
def _rule(evidence: Evidence) -> Rule:
    return Rule(
        check=lambda ctx: evidence,
        code="probe",
        severity="error",
        phase="preflight",
        title="t",
        explanation="keras explanation",
        fix="keras fix",
        fixes={"torch": "torch fix"},
        explanations={"torch": "torch explanation"},
    )


@pytest.mark.parametrize(
    ("framework", "fix", "explanation"),
    [
        ("keras", "keras fix", "keras explanation"),
        ("torch", "torch fix", "torch explanation"),
        ("jax", "keras fix", "keras explanation"),  # no entry: the default texts
    ],
)
def test_engine_picks_the_fix_and_explanation_of_the_run_framework(framework, fix, explanation):
    diag = Diagnoser(Run(), rules=[_rule(Evidence("seen"))])
    diag.evaluate(Context(facts=ModelFacts(framework=framework)), ("preflight",))
    (found,) = diag.findings
    assert (found.fix, found.explanation) == (fix, explanation)


def test_a_fix_written_by_the_rule_for_this_run_still_wins():
    diag = Diagnoser(Run(), rules=[_rule(Evidence("seen", fix="this run's fix"))])
    diag.evaluate(Context(facts=ModelFacts(framework="torch")), ("preflight",))
    assert diag.findings[0].fix == "this run's fix"


def test_loss_text_names_the_loss_as_each_framework_writes_it():
    keras_facts = ModelFacts(loss="binary_crossentropy", from_logits=True)
    assert loss_text(keras_facts) == "binary_crossentropy(from_logits=True)"
    assert loss_text(keras_facts, settings=False) == "binary_crossentropy"
    torch_bce = ModelFacts(framework="torch", loss="binary_crossentropy", from_logits=False)
    assert loss_text(torch_bce) == "nn.BCELoss()"
    torch_ce = ModelFacts(framework="torch", loss="categorical_crossentropy", from_logits=True)
    assert loss_text(torch_ce) == "nn.CrossEntropyLoss() with probability targets"
    written = ModelFacts(framework="torch", loss="binary_crossentropy", loss_display="F.foo")
    assert loss_text(written) == "F.foo"
    hf = ModelFacts(
        framework="torch",
        model_class="BertForSequenceClassification",
        loss="sparse_categorical_crossentropy",
        from_logits=True,
    )
    assert "config.problem_type='single_label_classification'" in loss_text(hf)
    assert "nn.CrossEntropyLoss()" in loss_text(hf)
    unknown = ModelFacts(framework="torch", model_class="BertForSequenceClassification")
    assert loss_text(unknown) == "the model's built-in loss"


def test_loss_display_records_the_torch_loss_as_written():
    from bertlab.probes.torch.facts import model_facts

    assert model_facts(MeanPool(k=2), None, nn.BCEWithLogitsLoss()).loss_display == (
        "nn.BCEWithLogitsLoss()"
    )
    assert model_facts(MeanPool(), None, nn.functional.cross_entropy).loss_display == (
        "F.cross_entropy"
    )
    assert model_facts(MeanPool(), None, None).loss_display is None


# --------------------------------------------------------------------------- every rule's texts
@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_torch_texts_carry_no_keras_code(rule: Rule):
    """Every rule with Keras code in its fix has a torch fix (unless it cannot fire on torch),
    and no torch text shows Keras code or vocabulary."""
    if _keras_code(rule.fix):
        assert "torch" in rule.fixes or rule.code in KERAS_ONLY, rule.code
    assert set(rule.fixes) <= {"torch"} and set(rule.explanations) <= {"torch"}
    for text in (*rule.fixes.values(), *rule.explanations.values()):
        _no_keras(text)
        assert "Keras" not in text, text
    assert rule.fix_for("keras") == rule.fix and rule.fix_for(None) == rule.fix
    assert rule.explanation_for("keras") == rule.explanation
