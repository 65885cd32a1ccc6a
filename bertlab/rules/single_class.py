"""single-class: predictions collapsed onto one class while the labels are mixed.

Two states look alike in the predictions: a collapse (the model answers a constant and will not
recover) and a fresh classifier head whose outputs are still nearly symmetric (every row lands
on the same class by tiny margins until symmetry breaks; measured 30 steps for a from-scratch
2-layer BERT at lr 1e-3, batch 16, the demo). They differ in how the loss reads the outputs: a
fresh head's loss equals the entropy of its own near-uniform predictions, while a committed
constant answer pays the Kullback-Leibler distance from the label frequencies on top of it
(cross-entropy − prediction entropy ≥ KL(labels ‖ constant answer)). That gap, with a loss that
has not fallen below the no-information level, names a collapse from its first 20 steps, step 0
included; without it, 20 collapsed steps name one only once a fresh head would have broken
symmetry. Validation predictions all of one class at an epoch end keep (or raise) the finding
even when training batches waver.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bertlab.rules._dynamics import informative, prior_hold
from bertlab.rules._stats import chance_loss, entropy, pct
from bertlab.rules.base import Context, Evidence, Rule

#: Steps the collapse must persist: the issue asks for a collapse named within 20 steps of
#: its onset.
WINDOW = 20
#: Without other evidence, the window must start at or after this step: a fresh head predicts
#: one class by tiny margins until symmetry breaks (30 steps measured on the demo's
#: from-scratch BERT, which stays silent; 40 leaves a third to spare).
SYMMETRY_STEPS = 40
#: Evidence of a committed constant answer: mean batch loss − mean entropy of the model's own
#: predictions (nats) over the window. A near-uniform fresh head reads 0.00–0.01 (demo: loss
#: 1.39 vs entropy 1.38); the forum's collapse onto one of 45 classes reads 0.2. Noise of the
#: window mean at batch 16 is ~0.01.
COMMIT_GAP = 0.05
#: ... and the loss has not fallen below this share of the no-information level (a model that
#: beats a constant guess has learned something, whatever its argmax says).
NOT_LEARNED = 0.95
#: A batch is collapsed when this share of its predictions is one class (15 of a batch of 16:
#: a collapsed model still lets a stray row through now and then).
COLLAPSE_SHARE = 0.9
#: Share of the window's mixed-label batches that must be collapsed (the forum's 45-class
#: collapse: 17-20 of every 20 batches from step 3 on, with batch 16).
COLLAPSED_BATCHES = 0.8
#: A fresh model's initial bias that training is already removing is not a committed answer:
#: its own prediction entropy sits below the labels' no-information level (a confident constant
#: answer from initialisation) and climbs toward it, so the fitted rise over the window closes
#: at least this share of the distance it started from. Measured: benchmark h14 (a fresh
#: Conv1D head, 3 balanced classes) starts 0.03 nats below ln 3 and closes 65-77 % of that in
#: each 20-step window from step 0 to 36 while the gap falls 0.05 → 0.02 and the predictions
#: diversify by step 31; real collapses close 0-10 % (b35: entropy 1.5 nats below, rising 7 %;
#: b22's entropy sits above the level, so it is never read as a bias being removed).
UNLEARN_SHARE = 0.4
#: ...by more than batch noise: the fitted rise must exceed this many standard errors.
UNLEARN_SE = 3.0
#: Length of the stretches that date the onset of a collapse.
ONSET_RUN = 10
#: Labels must be mixed: the most common label of the window below this share (else a
#: majority-class answer is class-imbalance, another finding).
MAX_LABEL_SHARE = 0.8


def _mean_finite(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def _committed(ctx: Context, chance: float | None) -> float | None:
    """The calibration gap of the window when it shows a committed constant answer, else None."""
    loss = _mean_finite(ctx.col("loss")[-WINDOW:])
    own = _mean_finite(ctx.col("prob_entropy")[-WINDOW:])
    if not (np.isfinite(loss) and np.isfinite(own)) or chance is None:
        return None
    gap = loss - own
    return gap if gap >= COMMIT_GAP and loss >= NOT_LEARNED * chance else None


def _unlearning(ctx: Context, chance: float | None) -> bool:
    """True when a fresh model's confident constant answer is visibly being trained away.

    Only for windows that start before a fresh head would have broken symmetry: a model at its
    initial bias whose own prediction entropy climbs toward the labels' no-information level
    (the bias shrinking toward the label prior) is learning, and the committed-answer gap it
    still shows is its initial bias, not a collapse; later the other evidence decides.
    """
    if chance is None or ctx.col("step")[-WINDOW] >= SYMMETRY_STEPS:
        return False
    own = ctx.col("prob_entropy")[-WINDOW:]
    if not np.isfinite(own).all():
        return False
    t = np.arange(len(own), dtype=float)
    slope, start = np.polyfit(t, own, 1)
    resid = own - (slope * t + start)
    se = np.sqrt(np.sum(resid**2) / (len(own) - 2) / np.sum((t - t.mean()) ** 2))
    rise, distance = slope * (len(own) - 1), chance - start
    return bool(distance > 0 and rise >= UNLEARN_SHARE * distance and slope > UNLEARN_SE * se)


def _validation(ctx: Context) -> tuple[str, dict[str, Any]] | None:
    """Evidence text when the last epoch's validation predictions are all one class."""
    if not ctx.epochs:
        return None
    last = ctx.epochs[-1]
    pred, true = last.get("val_pred_count"), last.get("val_label_count")
    if pred is None or true is None:
        return None
    pred, true = np.asarray(pred, dtype=float).ravel(), np.asarray(true, dtype=float).ravel()
    if len(pred) != len(true) or pred.sum() <= 0 or true.sum() <= 0:
        return None
    if pred.max() / pred.sum() < COLLAPSE_SHARE or true.max() / true.sum() > MAX_LABEL_SHARE:
        return None
    level = entropy(true)
    val_loss = last.get("val_loss", last.get("val_loss_recorded"))
    if val_loss is not None and np.isfinite(val_loss) and val_loss < NOT_LEARNED * level:
        return None
    text = (
        f"epoch {int(last.get('epoch', len(ctx.epochs) - 1)) + 1} validation: "
        f"{pct(pred.max() / pred.sum())} of {int(pred.sum())} predictions are class "
        f"{int(pred.argmax())} while its labels span {int((true > 0).sum())} classes"
    )
    if val_loss is not None and np.isfinite(val_loss):
        text += f"; val loss {val_loss:.3g} vs no-information level {level:.3g}"
    return text, {"val_class": int(pred.argmax())}


def _train(ctx: Context) -> Evidence | None:
    """The training-batch evidence: WINDOW collapsed batches, committed or past symmetry."""
    layout = ctx.layout
    n = ctx.n_steps
    if layout is None or n < WINDOW:
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
    if total_true.max() / max(total_true.sum(), 1) > MAX_LABEL_SHARE:
        return None
    chance = chance_loss(true[-WINDOW:], layout.task, ctx.col("batch_size")[-WINDOW:])
    gap = _committed(ctx, chance)
    if gap is not None and _unlearning(ctx, chance):
        gap = None  # a fresh model's initial bias, already being trained away (benchmark h14)
    if gap is None and ctx.col("step")[-WINDOW] < SYMMETRY_STEPS:
        return None  # still possibly a fresh head breaking symmetry
    if gap is None and prior_hold(ctx, RULE.causes) is not None:
        return None  # at the label prior, as a slow learner's first passes over the data
    loss = _mean_finite(ctx.col("loss")[-WINDOW:])
    # Without the committed-answer evidence, a loss clearly below the no-information level means
    # the model ranks the rows although no score crosses the threshold yet (a 77/23 binary task
    # predicting the majority while its loss falls, benchmark h03): learning, not a collapse.
    # Unless a known cause is live: when Keras feeds the loss something other than the outputs
    # (a softmax over one unit on TensorFlow) the loss falls while every prediction stays one
    # class, and loss-activation-mismatch explains it.
    explained = bool(ctx.live & set(RULE.causes))
    if gap is None and not explained and chance is not None and loss < NOT_LEARNED * chance:
        return None
    # ...or below the entropy of its own predictions: they already favour the true class.
    if gap is None and not explained and informative(ctx, WINDOW) is not None:
        return None
    # Onset: the first collapsed batch after the last stretch of ONSET_RUN batches that was
    # not collapsed in at least COLLAPSED_BATCHES of them (a stray batch does not move it).
    ok = collapsed | ~mixed
    runs = np.convolve(ok, np.ones(ONSET_RUN), "valid") / ONSET_RUN
    bad = np.flatnonzero(runs < COLLAPSED_BATCHES)
    after = int(bad[-1]) + 1 if len(bad) else 0
    held = np.flatnonzero(ok[after:])
    start = after + int(held[0]) if len(held) else n - WINDOW
    steps = ctx.step_range(min(start, n - WINDOW))
    top_classes = np.argmax(pred[-WINDOW:], axis=1)[win_c]
    values, counts = np.unique(top_classes, return_counts=True)
    if len(values) == 1:
        which = f"class {int(values[0])}"
    else:
        listed = ", ".join(str(int(v)) for v in values[np.argsort(-counts)][:4])
        which = f"one class per batch, changing between batches (classes {listed}...)"
    n_classes = int((total_true > 0).sum())
    text = (
        f"steps {steps[0]}–{steps[1]}: in {pct(win_c[win_m].mean())} of batches ≥ 90 % of "
        f"predictions are a single class ({which}) while labels span {n_classes} classes; "
        f"loss {loss:.3g}" + (f" vs no-information level {chance:.3g}" if chance else "")
    )
    if gap is not None:
        text += (
            f"; the loss exceeds the entropy of the model's own predictions by {gap:.2f} nats, "
            "so this is a committed constant answer, not a fresh head still breaking symmetry"
        )
    return Evidence(text, steps=steps, extra={"classes": [int(v) for v in values]})


def check(ctx: Context) -> Evidence | None:
    """Fire when, batch after batch, all predictions are a single class while labels are mixed,
    or when the last validation pass predicted one class only.

    The class may change from batch to batch: a learning rate far too high keeps resetting the
    model to a different constant answer, which is the same failure.
    """
    layout = ctx.layout
    if layout is None or layout.task not in ("multiclass", "binary"):
        return None
    train = _train(ctx)
    val = _validation(ctx)
    if val is None:
        return train
    text, extra = val
    if train is not None:
        train.text += f"; {text}"
        train.extra.update(extra)
        return train
    # Validation alone keeps a live finding while training batches waver; it raises one only if
    # that epoch ended after a fresh head would have broken symmetry and the training batches
    # show no learning below the surface (loss under the entropy of the model's predictions).
    if "single-class" in ctx.live:
        return Evidence(text, extra=extra)
    if prior_hold(ctx, RULE.causes) is not None:
        return None
    trained = int(ctx.epochs[-1].get("steps", 0) or 0)
    if trained >= SYMMETRY_STEPS + WINDOW and informative(ctx, WINDOW) is None:
        return Evidence(text, extra=extra)
    return None


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
        # logits so large that the softmax is one-hot: one class wins every row (benchmark b37)
        "saturated-logits",
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
