"""single-class: predictions collapsed onto one class while the labels are mixed."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import chance_loss, pct
from bertlab.rules.base import Context, Evidence, Rule

#: Steps the collapse must persist. The issue asks for detection within 20 steps of onset; a
#: fresh classifier head often predicts one class for its first few steps, so fewer would cry wolf.
WINDOW = 20
#: Share of predictions on the top class that counts as "every prediction is the same class".
COLLAPSE_SHARE = 0.95
#: Labels must be mixed: the most common label below this share (else it is class-imbalance).
MAX_LABEL_SHARE = 0.8
#: A model that still has information (loss clearly below the no-information level) is
#: learning even if its argmax has not moved yet; only a loss near that level counts.
LOSS_NEAR_CHANCE = 0.8


def check(ctx: Context) -> Evidence | None:
    layout = ctx.layout
    if layout is None or layout.task not in ("multiclass", "binary") or ctx.n_steps < WINDOW:
        return None
    n = ctx.n_steps
    pred = ctx.col("pred_count").reshape(n, -1)[-WINDOW:]
    true = ctx.col("label_count").reshape(n, -1)[-WINDOW:]
    if np.isnan(pred).any() or pred.sum() <= 0:
        return None
    total_pred, total_true = pred.sum(0), true.sum(0)
    top = int(np.argmax(total_pred))
    share = total_pred[top] / total_pred.sum()
    label_share = total_true.max() / max(total_true.sum(), 1)
    if share < COLLAPSE_SHARE or label_share > MAX_LABEL_SHARE or (total_true > 0).sum() < 2:
        return None
    chance = chance_loss(true, layout.task, ctx.col("batch_size")[-WINDOW:])
    loss = float(np.nanmean(ctx.col("loss")[-WINDOW:]))
    if chance is not None and np.isfinite(loss) and loss < LOSS_NEAR_CHANCE * chance:
        return None
    # Find where the collapse began: the run of steps whose predictions are >= 95 % class `top`.
    all_pred = ctx.col("pred_count").reshape(n, -1)
    on_top = all_pred[:, top] >= COLLAPSE_SHARE * all_pred.sum(1)
    start = n - int(np.argmin(on_top[::-1])) if not on_top.all() else 0
    steps = ctx.step_range(min(start, n - WINDOW))
    n_classes = int((total_true > 0).sum())
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: {pct(share)} of predictions are class {top} while labels "
        f"span {n_classes} classes (most common label {pct(label_share)}); loss {loss:.3g} "
        + (f"vs no-information level {chance:.3g}" if chance is not None else ""),
        steps=steps,
        extra={"class": top},
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
        "logits-as-probabilities",
        "loss-activation-mismatch",
        "label-format-mismatch",
        "high-learning-rate",
        "frozen-layers",
        "unshuffled-batches",
        "dead-gradients",
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
)
