"""single-class: predictions collapsed onto one class while the labels are mixed."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import chance_loss, pct
from bertlab.rules.base import Context, Evidence, Rule

#: Steps the collapse must persist. The issue asks for detection within 20 steps of onset; a
#: fresh classifier head often predicts one class for its first few steps, so fewer would cry wolf.
WINDOW = 20
#: A fresh classifier head predicts one class by tiny margins until symmetry breaks: measured
#: 30 steps for a from-scratch 2-layer BERT at lr 1e-3, batch 16 (the demo). The window must
#: start at or after this step, so a collapse is named at step GRACE_STEPS + WINDOW at the
#: earliest and otherwise within WINDOW (+ rule cadence) steps of its onset.
GRACE_STEPS = 40
#: A batch is collapsed when this share of its predictions is one class.
COLLAPSE_SHARE = 0.95
#: Share of the window's mixed-label batches that must be collapsed.
COLLAPSED_BATCHES = 0.9
#: Labels must be mixed: the most common label of the window below this share (else a
#: majority-class answer is class-imbalance, another finding).
MAX_LABEL_SHARE = 0.8


def check(ctx: Context) -> Evidence | None:
    """Fire when, batch after batch, all predictions are a single class while labels are mixed.

    The class may change from batch to batch: a learning rate far too high keeps resetting the
    model to a different constant answer, which is the same failure.
    """
    layout = ctx.layout
    if layout is None or layout.task not in ("multiclass", "binary") or ctx.n_steps < WINDOW:
        return None
    n = ctx.n_steps
    if ctx.col("step")[-WINDOW] < GRACE_STEPS:
        return None
    pred = ctx.col("pred_count").reshape(n, -1)
    true = ctx.col("label_count").reshape(n, -1)
    if np.isnan(pred[-WINDOW:]).any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        pred_top = pred.max(1) / pred.sum(1)
        true_top = true.max(1) / true.sum(1)
    collapsed = pred_top >= COLLAPSE_SHARE
    mixed = true_top < COLLAPSE_SHARE
    win_c, win_m = collapsed[-WINDOW:], mixed[-WINDOW:]
    if win_m.sum() < WINDOW // 2 or win_c[win_m].mean() < COLLAPSED_BATCHES:
        return None
    total_true = true[-WINDOW:].sum(0)
    label_share = total_true.max() / max(total_true.sum(), 1)
    if label_share > MAX_LABEL_SHARE:
        return None
    # The loss is reported, not required near chance: when Keras feeds the loss something other
    # than the outputs (a softmax over one unit on TensorFlow) it can fall while every
    # prediction stays the same class.
    chance = chance_loss(true[-WINDOW:], layout.task, ctx.col("batch_size")[-WINDOW:])
    window_loss = ctx.col("loss")[-WINDOW:]
    finite = window_loss[np.isfinite(window_loss)]
    loss = float(finite.mean()) if len(finite) else float("nan")
    # Onset: the start of the trailing run of collapsed (or single-label) batches.
    ok = collapsed | ~mixed
    start = n - int(np.argmin(ok[::-1])) if not ok.all() else 0
    steps = ctx.step_range(min(start, n - WINDOW))
    top_classes = np.argmax(pred[-WINDOW:], axis=1)[win_c]
    values, counts = np.unique(top_classes, return_counts=True)
    if len(values) == 1:
        which = f"class {int(values[0])}"
    else:
        listed = ", ".join(str(int(v)) for v in values[np.argsort(-counts)][:4])
        which = f"one class per batch, changing between batches (classes {listed}...)"
    n_classes = int((total_true > 0).sum())
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: in {pct(win_c[win_m].mean())} of batches ≥ 95 % of "
        f"predictions are a single class ({which}) while labels span {n_classes} classes; "
        f"loss {loss:.3g}" + (f" vs no-information level {chance:.3g}" if chance else ""),
        steps=steps,
        extra={"classes": [int(v) for v in values]},
    )


RULE = Rule(
    check=check,
    code="single-class",
    severity="error",
    phase="live",
    panel="predictions",
    rank=60,
    causes=(
        "double-softmax",
        "double-sigmoid",
        "multilabel-softmax",
        "high-unk-rate",
        "logits-as-probabilities",
        "loss-activation-mismatch",
        "label-format-mismatch",
        "params-not-in-optimizer",
        "high-learning-rate",
        "low-learning-rate",
        "frozen-layers",
        "unshuffled-batches",
        "dead-gradients",
        "vanishing-gradients",
    ),
    title="Every prediction is the same class",
    explanation=(
        "The model outputs the same class for every input, so it has learned nothing about the "
        "text: its best guess is a constant, and the loss sits near the level of guessing the "
        "label frequencies. When fine-tuning a pretrained encoder this is most often a learning "
        "rate far too high for it (the encoder's weights are wrecked in the first updates), or an "
        "output/loss pair that does not match (e.g. softmax outputs with from_logits=True)."
    ),
    fix=(
        "If a cause is listed, fix that first. For a pretrained encoder use a fine-tuning learning "
        "rate: `model.compile(optimizer=keras.optimizers.Adam(2e-5), ...)`; output raw logits "
        "(`Dense(K)`, no activation) with "
        "`SparseCategoricalCrossentropy(from_logits=True)`; shuffle the training data."
    ),
    fixes={
        "torch": (
            "If a cause is listed, fix that first. For a pretrained encoder use a fine-tuning "
            "learning rate: `torch.optim.AdamW(model.parameters(), lr=2e-5)` (Trainer: "
            "`TrainingArguments(learning_rate=2e-5)`); return raw logits (`nn.Linear(hidden, "
            "K)`, no softmax) with `nn.CrossEntropyLoss()`; shuffle the training data "
            "(`DataLoader(train_set, shuffle=True)`)."
        ),
    },
)
