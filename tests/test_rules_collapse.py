"""single-class without a grace period: what tells a collapse from a fresh head, and the
validation pass that keeps the finding (the real 45-class collapse is in test_rules_core.py)."""

from __future__ import annotations

import numpy as np
from test_rules_dynamics import _ctx

from bertlab.rules import single_class


def _collapsed(n: int, *, loss: float, entropy: float, k: int = 4):
    """n steps where every batch predicts class 0 while the labels are balanced."""
    pred = np.zeros((n, k))
    pred[:, 0] = 32
    return _ctx(
        {
            "loss": np.full(n, loss),
            "prob_entropy": np.full(n, entropy),
            "pred_count": pred,
        },
        k=k,
    )


def test_fresh_symmetric_head_is_not_a_collapse_before_it_could_break_symmetry_unit():
    # the demo's from-scratch BERT: one class by tiny margins, loss = its own entropy = ln 4
    ctx = _collapsed(30, loss=1.386, entropy=1.383)
    assert single_class.check(ctx) is None


def test_committed_constant_answer_is_named_from_step_0_unit():
    # the same predictions, but the loss pays for a confident constant answer
    ctx = _collapsed(20, loss=1.9, entropy=1.2)
    ev = single_class.check(ctx)
    assert ev is not None and ev.steps == (0, 19)
    assert "committed constant answer" in ev.text and "0.70 nats" in ev.text


def test_a_model_that_beats_the_no_information_level_is_not_collapsed_unit():
    ctx = _collapsed(20, loss=0.9, entropy=0.5)  # 0.9 < 0.95 x ln 4: it has learned something
    assert single_class.check(ctx) is None


def test_validation_all_one_class_keeps_the_finding_while_training_wavers_unit():
    n, k = 80, 4
    ctx = _ctx({"loss": np.full(n, 1.3), "prob_entropy": np.full(n, 1.3)}, k=k)  # mixed preds
    ctx.epochs = [
        {
            "epoch": 0,
            "steps": 80,
            "val_pred_count": np.array([0, 64, 0, 0]),
            "val_label_count": np.array([16, 16, 16, 16]),
            "val_loss": 1.40,
        }
    ]
    ev = single_class.check(ctx)
    assert ev is not None and "epoch 1 validation: 100 % of 64 predictions are class 1" in ev.text
    # a validation pass that has learned (loss well below ln 4) is not a collapse
    ctx.epochs[0]["val_loss"] = 0.9
    assert single_class.check(ctx) is None
    # early in training it raises nothing by itself, but keeps a live finding
    ctx.epochs[0]["val_loss"] = 1.40
    early = _ctx({"loss": np.full(30, 1.3), "prob_entropy": np.full(30, 1.3)}, k=k)
    early.epochs = [{**ctx.epochs[0], "steps": 30}]
    assert single_class.check(early) is None
    early.live = frozenset({"single-class"})
    assert single_class.check(early) is not None
    # training batches whose loss is below the entropy of the model's own predictions are
    # learning: a validation pass still all one class does not raise the finding by itself
    rng = np.random.default_rng(0)
    learning = _ctx({"loss": 1.2 + 0.02 * rng.standard_normal(n), "prob_entropy": np.full(n, 1.3)})
    learning.epochs = ctx.epochs
    assert single_class.check(learning) is None
