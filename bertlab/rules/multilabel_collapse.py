"""multilabel-collapse: in a multi-label task, labels are predicted constant (never / always on)."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import behind_prior, chance, prior_hold, rel_trend
from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Judged over the latest WINDOW steps once MIN_STEPS have run: a fresh head predicts about
#: half of every label positive (logits ~0) and needs a few dozen updates to reach the label
#: frequencies (chance-loss waits 60 steps for the same reason).
WINDOW = 30
MIN_STEPS = 50
#: A label only counts when the window holds at least this many positive and negative rows.
MIN_ROWS = 3
#: Collapse: at least this share of those labels predicted constant over the whole window...
COLLAPSED_SHARE = 0.5
#: ...while the model is at the no-information level (loss at most NEAR_CHANCE x the mean
#: binary entropy of the label rates, i.e. it learned the label frequencies and no more), or
#: its loss has stopped falling (the fitted drop over the window, plus two standard errors of
#: batch noise, below MAX_DROP). A model still learning its label frequencies (loss 2x that
#: level and falling 10-15 % per 30 steps, measured on 13 rare tags at Adam 1e-3) is not
#: judged yet; measured on the 13-tag case, the loss sits at 1.02-1.2x that level once stuck.
#: Unless ``_dynamics.behind_prior``: after two passes validation is still above that level.
NEAR_CHANCE = 1.3
MAX_DROP = 0.05


def _label_list(idx: list[int], rates: np.ndarray) -> str:
    shown = ", ".join(str(j) for j in idx[:8]) + (" ..." if len(idx) > 8 else "")
    lo, hi = float(rates[idx].min()), float(rates[idx].max())
    span = pct(lo) if np.isclose(lo, hi) else f"{pct(lo)}–{pct(hi)}"
    return f"{shown}; {span} of rows positive"


def check(ctx: Context) -> Evidence | None:
    layout = ctx.layout
    n = ctx.n_steps
    if layout is None or layout.task != "multilabel" or n < max(MIN_STEPS, WINDOW):
        return None
    pred = ctx.col("pred_count").reshape(n, -1)[-WINDOW:]
    true = ctx.col("label_count").reshape(n, -1)[-WINDOW:]
    rows_col = ctx.col("batch_size")[-WINDOW:]
    loss = ctx.col("loss")[-WINDOW:]
    if np.isnan(pred).any() or np.isnan(true).any() or not np.isfinite(loss).all():
        return None
    rows = float(rows_col.sum())
    p, t = pred.sum(0), true.sum(0)
    mixed = (t >= MIN_ROWS) & (rows - t >= MIN_ROWS)
    never = mixed & (p == 0)
    always = mixed & (p == rows)
    collapsed = never | always
    if not mixed.any() or collapsed.sum() < COLLAPSED_SHARE * mixed.sum():
        return None
    level = chance(ctx, WINDOW)
    mean_loss = float(loss.mean())
    at_chance = level is not None and mean_loss <= NEAR_CHANCE * level
    change, noise = rel_trend(loss)
    # A falling loss defers judgement while the outputs may still be on their way to the label
    # frequencies, but not after passes over the data that left validation short of even them.
    behind = None if at_chance else behind_prior(ctx)
    if not at_chance and -change + 2 * noise > MAX_DROP and behind is None:
        return None
    if prior_hold(ctx, RULE.causes) is not None:
        return None
    rates = t / rows
    parts = []
    if never.any():
        parts.append(f"never positive: labels {_label_list(list(np.flatnonzero(never)), rates)}")
    if always.any():
        parts.append(f"always positive: labels {_label_list(list(np.flatnonzero(always)), rates)}")
    steps = ctx.step_range(n - WINDOW)
    ref = f" (predicting the label frequencies gives {level:.3g})" if level is not None else ""
    every = bool(collapsed.sum() == mixed.sum())
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: {int(collapsed.sum())} of {int(mixed.sum())} labels are "
        f"predicted the same for every row — {'; '.join(parts)}; loss {mean_loss:.3g}{ref}"
        + (f"; {behind}" if behind else ""),
        steps=steps,
        severity="error" if every else None,
        extra={"labels": [int(j) for j in np.flatnonzero(collapsed)]},
    )


RULE = Rule(
    check=check,
    code="multilabel-collapse",
    severity="warning",
    phase="live",
    panel="predictions",
    rank=58,
    causes=(
        "class-imbalance",
        "loss-activation-mismatch",
        "logits-as-probabilities",
        "label-format-mismatch",
        "params-not-in-optimizer",
        "high-learning-rate",
        "low-learning-rate",
        "frozen-layers",
        "dead-gradients",
        "vanishing-gradients",
        "saturated-logits",
    ),
    title="Multi-label outputs collapsed: labels predicted constant",
    explanation=(
        "With sigmoid outputs and binary cross-entropy every label is its own yes/no question. "
        "When most labels are rare, answering 'no' to all of them already gives a low loss and a "
        "high per-entry accuracy, so the model settles there: each rare label's probability "
        "stays below 0.5 and it is never predicted. Accuracy then looks stuck at a fixed value "
        "(the share of negatives) while the model has learned nothing about the tags."
    ),
    fix=(
        "Give the rare positives more weight and judge with per-label metrics:\n"
        "  # alpha weights the positives (Keras's default 0.25 weights them *down*)\n"
        "  loss = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.9)\n"
        "  metrics = [keras.metrics.AUC(multi_label=True), keras.metrics.Recall()]\n"
        "or weight positives per label (pos_weight = negatives / positives) in a custom loss, and "
        "tune each label's decision threshold on validation data instead of using 0.5."
    ),
    fixes={
        "torch": (
            "Give the rare positives more weight and judge with per-label metrics:\n"
            "  pos = y_train.sum(0); pos_weight = (len(y_train) - pos) / pos.clamp(min=1)\n"
            "  loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)  # one weight per label\n"
            "  # per-label AUC: sklearn.metrics.roc_auc_score(y_val, probs, average=None)\n"
            "and tune each label's decision threshold on validation data instead of using 0.5."
        ),
    },
)
