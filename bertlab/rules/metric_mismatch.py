"""metric-mismatch: an accuracy metric that cannot mean what its name says for these labels.

How Keras picks the accuracy (keras/src/trainers/compile_utils.py, ``get_metric``): the strings
"accuracy"/"acc" become BinaryAccuracy when y_pred has one column, SparseCategoricalAccuracy when
y_true has fewer dims than y_pred or is one column against several, and CategoricalAccuracy
otherwise; CategoricalAccuracy compares ``argmax(y_true) == argmax(y_pred)``.
"""

from __future__ import annotations

import re

import numpy as np

from bertlab.rules._lossconfig import (
    class0_share,
    evidence,
    label_accuracy,
    label_width,
    logged,
    loss_kind,
    n_outputs,
    output_squash,
)
from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Share of label rows that are not single-label (several 1s, or no 1 under a multi-label loss)
#: from which argmax-based accuracy stops meaning "right label": 1 % of rows is a scheme, not a
#: stray row.
MULTILABEL_SHARE = 0.01
#: The message TF gives when a sparse accuracy meets one-hot labels (shapes (B, K) vs (B,)).
_EQUAL_ERROR = re.compile(r"Dimensions must be equal.*node Equal")

TITLE = "The accuracy metric does not measure what its name says for these labels"


def _ids_with_categorical(ctx: Context, name: str, k: int) -> Evidence | None:
    data, width = ctx.data, label_width(ctx)
    ids = width == 1 or (
        width is None and data is not None and data.label_integer and (data.label_max or 0) > 1
    )
    if not ids or k < 2:
        return None
    if data is not None and data.label_shape == ():
        how = "the labels are (N,), so argmax runs over the batch: every prediction is compared "
        how += "with the position of the batch's largest label"
    else:
        how = "argmax of a one-column label is always 0, so it counts predictions of class 0"
    if "categorical" not in name.lower():
        how = "Keras resolves it to CategoricalAccuracy as the label width is not static; " + how
    text = f"{name} with one class id per row: {how}{class0_share(ctx)}" + logged(ctx, name)
    return evidence(text, "warning", TITLE)


def _multilabel(ctx: Context, name: str, k: int) -> Evidence | None:
    data = ctx.data
    if k < 2 or label_width(ctx) != k or data is None or data.multihot_share is None:
        return None
    share = data.multihot_share
    binary = data.label_integer and (data.label_min or 0) >= 0 and (data.label_max or 0) <= 1
    if binary and loss_kind(ctx.facts.loss) == "binary" and data.onehot_share is not None:
        share = 1.0 - data.onehot_share  # multi-hot rows and rows with no label at all
    if share < MULTILABEL_SHARE:
        return None
    resolved = (
        "" if "categorical" in name.lower() else " (Keras resolves it to CategoricalAccuracy)"
    )
    return evidence(
        f"'{name}' on multi-label targets{resolved}"
        f": {pct(share)} of rows do not have exactly one label, and the metric only checks "
        "whether the top-scored label is the first true one (a row with no label counts as "
        f"label 0){logged(ctx, name)}{label_accuracy(ctx)}",
        "warning",
        TITLE,
    )


def _unknown_width_2d(ctx: Context) -> bool:
    """Labels traced as (batch, None): Keras cannot see one column, so 'accuracy' resolves to
    CategoricalAccuracy even for class ids (``is_binary_or_sparse_categorical``)."""
    shape = ctx.meta.get("label_shape") or []
    return len(shape) == 2 and shape[-1] is None


def _sparse_on_onehot(ctx: Context, name: str, k: int) -> Evidence | None:
    if k > 1 and label_width(ctx) == k:
        text = f"{name} with one-hot labels ({k} columns): it compares the class id it predicts "
        text += "with every column of the one-hot row (Keras fails: 'Dimensions must be equal')"
    elif _EQUAL_ERROR.search(ctx.error or ""):
        text = f"fit failed inside {name}: with one-hot labels it compares a class id with each "
        text += "column of the one-hot row"
    else:
        return None
    return evidence(text, "error", TITLE)


def check(ctx: Context) -> Evidence | None:
    """Fire on the first metric whose accuracy is not what its name promises."""
    f = ctx.facts
    k = n_outputs(ctx)
    if k is None or f.n_model_outputs > 1 or not f.metrics:
        return None
    for name in f.metrics:
        kind = name.lower().replace("_", "")
        found = None
        if kind in ("accuracy", "acc", "categoricalaccuracy"):
            found = _multilabel(ctx, name, k)
            if found is None and (kind == "categoricalaccuracy" or _unknown_width_2d(ctx)):
                found = _ids_with_categorical(ctx, name, k)
            if found is None and kind != "categoricalaccuracy" and k == 1:
                found = _logit_threshold(ctx, name)
        elif kind == "sparsecategoricalaccuracy":
            found = _sparse_on_onehot(ctx, name, k)
        if found is not None:
            return found
    return None


def _logit_threshold(ctx: Context, name: str) -> Evidence | None:
    """'accuracy' on a single logit: BinaryAccuracy thresholds the logit at 0.5, not 0."""
    f = ctx.facts
    if f.from_logits is not True or output_squash(ctx) in ("softmax", "sigmoid"):
        return None
    unit = ctx.col("out_unit_share")
    if not np.any(unit < 1.0):
        return None  # only outputs seen leaving [0, 1] are surely logits (not a hidden sigmoid)
    found = evidence(
        f"'{name}' on a single logit output: Keras resolves it to BinaryAccuracy(threshold=0.5), "
        "which compares the logit (not a probability) with 0.5, i.e. it calls a row positive "
        "only when p > 0.62" + logged(ctx, name),
        "info",
        "Accuracy thresholds a logit at 0.5 (p > 0.62), not at p = 0.5",
    )
    found.fix = "metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)]  # logit 0 = p 0.5"
    return found


RULE = Rule(
    check=check,
    code="metric-mismatch",
    severity="warning",
    phase="preflight",
    panel="predictions",
    rank=18,
    sticky=True,
    title=TITLE,
    explanation=(
        "Keras turns 'accuracy' into a binary, sparse or categorical accuracy from the shapes of "
        "labels and outputs alone, and categorical_accuracy compares argmax(labels) with "
        "argmax(outputs). With class-id labels argmax(labels) is always 0; with multi-label rows "
        "it is only the first true label. Training itself is unaffected (the loss is right), but "
        "the number printed every epoch is meaningless, so it cannot tell you whether the model "
        "learns, and early stopping or checkpointing on it picks arbitrary epochs."
    ),
    fix=(
        "class ids: metrics=['sparse_categorical_accuracy'] (or 'accuracy')\n"
        "one-hot rows: metrics=['categorical_accuracy']\n"
        "multi-label: metrics=[keras.metrics.BinaryAccuracy(threshold=0.0),  # 0.5 for sigmoid\n"
        "                      keras.metrics.AUC(multi_label=True, from_logits=True)]"
    ),
)
