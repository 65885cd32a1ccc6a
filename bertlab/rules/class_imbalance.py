"""class-imbalance: a very skewed label distribution, and whether the model is drowning in it."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: The most common class holding this share of single-label data is "very skewed": a constant
#: guess already scores 80 % accuracy, the classic case of a model that looks good and learned
#: nothing. (single-class stops firing above the same share and leaves it to this rule.)
MAJORITY_SHARE = 0.8
#: ...or a class this many times rarer than the most common one (the usual "severe imbalance"
#: line, 20:1); for multi-label data a label positive in under 1/21 (4.8 %) of rows, or negative.
RARE_RATIO = 20.0
#: Fewer labelled samples than this say little about the distribution (1 vs 20 rows is noise).
MIN_SAMPLES = 200
#: Predictions are judged over the latest WINDOW steps, once MIN_STEPS steps have run (a fresh
#: head needs a few dozen updates before its predictions mean anything).
WINDOW = 30
MIN_STEPS = 30
#: The rare classes are "drowned" when predicted less than half as often as they occur.
UNDER_PREDICTED = 0.5
TITLE = "The labels are very imbalanced"


def _minority(counts: np.ndarray, n: int, task: str) -> tuple[str, list[int]] | None:
    """A description of the skew and the minority class/label indices, or None if not skewed."""
    if task == "multilabel":
        rates = counts / max(n, 1)
        side = np.minimum(rates, 1 - rates)
        rare = [j for j in range(len(counts)) if 0 < side[j] <= 1 / (1 + RARE_RATIO)]
        if not rare:
            return None
        parts = [f"label {j} positive in {pct(rates[j])} of rows" for j in rare[:4]]
        return f"{', '.join(parts)} ({n} rows)", rare
    present = counts > 0
    if present.sum() < 2:
        return None  # one class only: not imbalance, see label rules
    top = int(np.argmax(counts))
    share = counts[top] / counts.sum()
    low = int(np.argmin(np.where(present, counts, np.inf)))
    ratio = counts[top] / counts[low]
    if share >= MAJORITY_SHARE:
        rare = [c for c in range(len(counts)) if c != top and present[c]]
    elif ratio >= RARE_RATIO:
        rare = [
            c for c in range(len(counts)) if present[c] and counts[top] / counts[c] >= RARE_RATIO
        ]
    else:
        return None
    text = (
        f"class {top} holds {pct(share)} of {int(counts.sum())} labels; rarest class {low}: "
        f"{counts[low] / counts.sum():.1%} (ratio {ratio:.0f}:1)"
    )
    return text, rare


def _drowned(ctx: Context, rare: list[int], task: str) -> str | None:
    """Evidence that the rare classes are predicted far less often than they occur."""
    n = ctx.n_steps
    recorded = ctx.col("pred_count").reshape(n, -1)[-WINDOW:]
    pred = np.nansum(recorded, axis=0)
    true = np.nansum(ctx.col("label_count").reshape(n, -1)[-WINDOW:], axis=0)
    rows = float(np.nansum(ctx.col("batch_size")[-WINDOW:]))
    # No prediction recorded at all is "nothing to judge"; predictions that are all zero (a
    # multi-label model that never says yes) are the strongest evidence, not none.
    if not recorded.size or not np.isfinite(recorded).any() or rows <= 0:
        return None
    if task == "multilabel":
        flip = [j for j in rare if true[j] > rows / 2]  # the rare side is "negative"
        pred = np.where(np.isin(np.arange(len(pred)), flip), rows - pred, pred)
        true = np.where(np.isin(np.arange(len(true)), flip), rows - true, true)
    p, t = pred[rare].sum(), true[rare].sum()
    if t <= 0 or p >= UNDER_PREDICTED * t:
        return None
    steps = ctx.step_range(max(0, n - WINDOW))
    what = "labels" if task == "multilabel" else "classes"
    names = ", ".join(str(c) for c in rare[:6]) + (" ..." if len(rare) > 6 else "")
    return (
        f"steps {steps[0]}–{steps[1]}: the model predicted the rare {what} ({names}) "
        f"{int(p)} times while they occur {int(t)} times"
    )


def check(ctx: Context) -> Evidence | None:
    data, layout = ctx.data, ctx.layout
    if data is None or data.label_counts is None or data.n < MIN_SAMPLES:
        return None
    task = layout.task if layout is not None else ("multilabel" if data.multihot_share else "")
    if task == "regression":
        return None
    counts = np.nan_to_num(np.asarray(data.label_counts, dtype=float))
    skew = _minority(counts, data.n, task)
    if skew is None:
        return None
    text, rare = skew
    loss = (ctx.facts.loss or "").lower()
    if ctx.meta.get("sample_weight") is True or "focal" in loss:
        how = "sample/class weights reach the loss" if "focal" not in loss else "a focal loss"
        return Evidence(f"{text}; handled: {how}", severity="info", title=TITLE)
    if layout is None or ctx.n_steps < MIN_STEPS:
        return Evidence(text, severity="info", title=TITLE)
    drowned = _drowned(ctx, rare, task)
    if drowned is None:
        text += "; the model predicts the rare classes too"
        return Evidence(text, severity="info", title=TITLE)
    return Evidence(
        f"{text}; {drowned}",
        severity="warning",
        title="Imbalanced labels: the model predicts the majority and ignores the rare classes",
    )


RULE = Rule(
    check=check,
    code="class-imbalance",
    severity="info",
    phase="preflight",
    panel="predictions",
    rank=25,
    # a split that moved a class's rows into validation starves training of it (benchmark b19)
    causes=("split-label-shift",),
    title=TITLE,
    explanation=(
        "When one class dominates, always predicting it already gives a low loss and a high "
        "accuracy (80 % majority = 80 % accuracy for a model that learned nothing), so the "
        "gradient from the rare classes is small and the model may never learn them. Accuracy "
        "then hides the problem; per-class recall or macro-F1 shows it."
    ),
    fix=(
        "Weight the loss by inverse class frequency:\n"
        "  counts = np.bincount(y); w = len(y) / (len(counts) * counts)\n"
        "  model.fit(x, y, class_weight=dict(enumerate(w)), ...)\n"
        "or resample the training set to balance it, and track macro-F1/recall instead of "
        "accuracy (`keras.metrics.F1Score(average='macro')` on one-hot labels). For "
        "multi-label, pass per-row `sample_weight` or use "
        "`keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True)`."
    ),
    fixes={
        "torch": (
            "Weight the loss by inverse class frequency:\n"
            "  counts = torch.bincount(y_train); w = len(y_train) / (len(counts) * "
            "counts.float())\n"
            "  loss_fn = nn.CrossEntropyLoss(weight=w)\n"
            "  # binary / multi-label: nn.BCEWithLogitsLoss(pos_weight=negatives / positives), "
            "per label\n"
            "or resample the training set to balance the batches:\n"
            "  sampler = WeightedRandomSampler(w[y_train], num_samples=len(y_train))\n"
            "  loader = DataLoader(train_set, batch_size=32, sampler=sampler)  # no "
            "shuffle=True with a sampler\n"
            "and track macro-F1/recall instead of accuracy (`sklearn.metrics.f1_score(y, pred, "
            "average='macro')`). With the Hugging Face Trainer, pass the weighted loss as "
            "`Trainer(..., compute_loss_func=...)` or override `compute_loss`."
        ),
    },
)
