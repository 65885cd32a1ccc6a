"""loss-activation-mismatch: an output activation or a loss that does not fit the task: sigmoid
outputs with a softmax cross-entropy, softmax outputs with a binary cross-entropy, a softmax over
a single output, or a regression loss (MSE/MAE...) on class labels."""

from __future__ import annotations

import math
import re

from bertlab.rules._lossconfig import (
    evidence,
    label_width,
    loss_kind,
    loss_text,
    n_outputs,
    output_squash,
)
from bertlab.rules._lossconfig import tf_swaps_logits as swaps
from bertlab.rules.base import Context, Evidence, Rule

#: Rows with more than one positive label from which the data counts as multi-label; those setups
#: are the multilabel-softmax finding's, not this one's (a few stray rows are a data glitch).
MULTIHOT_SHARE = 0.01
#: Keras's message when (N,) labels meet (N, K) outputs in an element-wise loss (MSE, MAE...).
_ELEMENTWISE = re.compile(r"Dimensions must be equal.*compile_loss.*input shapes: \[\d*\], \[\d*,")

TITLE = "The output activation or the loss does not fit the task"
_SWAPPED = (
    "; on TensorFlow Keras computes the cross-entropy from the pre-{act} logits it finds on "
    "the output tensor, so training is right on this backend only, but the model returns "
    "{what}, which are not the probabilities the loss trained (argmax is unaffected)"
)


def _sigmoid_softmax_ce(ctx: Context, k: int, loss: str) -> Evidence:
    """Sigmoid outputs with a (sparse) categorical cross-entropy."""
    text = f"{k} sigmoid outputs with {loss}, which scores one class per row with a softmax"
    if swaps(ctx, "sigmoid"):
        what = f"{k} independent sigmoids that do not sum to 1"
        return evidence(
            text + _SWAPPED.format(act="sigmoid", what=what), "warning", TITLE, harmless=True
        )
    if ctx.facts.from_logits:
        cap = math.e / (math.e + k - 1)
        return evidence(
            text + f"; a softmax over values squashed into (0, 1) gives the right class at most "
            f"{cap:.2f} probability, so the loss cannot fall below {-math.log(cap):.2f}",
            "error",
            TITLE,
        )
    return evidence(
        text + "; the loss divides the sigmoids by their sum: it trains, but the outputs are "
        "not class probabilities",
        "warning",
        TITLE,
    )


def _softmax_bce(ctx: Context, k: int, loss: str) -> Evidence:
    """Softmax outputs with a binary cross-entropy, one class per row."""
    text = f"{k} softmax outputs with {loss}, which scores every output as its own yes/no"
    if swaps(ctx, "softmax"):
        what = "a softmax over the classes"
        return evidence(
            text + _SWAPPED.format(act="softmax", what=what), "warning", TITLE, harmless=True
        )
    if ctx.facts.from_logits:
        return evidence(
            text + "; the loss applies sigmoid to the softmax outputs, so every probability it "
            "sees lies in (0.50, 0.73)",
            "error",
            TITLE,
        )
    right = (  # the loss for one class per row, in the user's framework
        "nn.CrossEntropyLoss() on the logits is the loss for one class per row"
        if ctx.facts.framework == "torch"
        else "CategoricalCrossentropy is the loss for a softmax"
    )
    return evidence(
        text + "; with one class per row it trains, but it averages K coupled outputs as if "
        "they were independent: " + right,
        "warning",
        TITLE,
    )


def _single_softmax(ctx: Context) -> Evidence:
    """Dense(1, activation="softmax"): a softmax over one number is always 1.0."""
    text = "the model has a single output and applies softmax to it, so it always outputs 1.0"
    if swaps(ctx, "softmax") and loss_kind(ctx.facts.loss) == "binary":
        text += (
            "; on TensorFlow the binary cross-entropy quietly reads the logit under the softmax, "
            "so the loss falls while predictions and accuracy never move"
        )
    return evidence(text, "error", "Softmax over a single output: the model always predicts 1.0")


def _regression(ctx: Context, k: int) -> Evidence | None:
    """A regression loss on class labels (ids, one-hot rows, or 0/1 with one output)."""
    f, data = ctx.facts, ctx.data
    name = loss_text(f, settings=False)
    if k > 1 and _ELEMENTWISE.search(ctx.error or ""):
        text = f"fit failed: {name} compared (N,) class ids with the {k} outputs one by one"
        return evidence(text, "error", TITLE)
    if data is None or not data.label_integer or data.label_min is None or data.label_min < 0:
        return None
    width = label_width(ctx)
    binary01 = data.label_max is not None and data.label_max <= 1
    if k > 1 and width == 1:
        return evidence(
            f"{name} between class ids {data.label_min:g}..{data.label_max:g} (one column) and "
            f"{k} outputs: each id is broadcast against every output, so all {k} outputs regress "
            "to the id and their argmax means nothing",
            "error",
            TITLE,
        )
    if not ((k > 1 and width == k and binary01) or (k == 1 and width == 1 and binary01)):
        return None
    what = f"0/1 class labels over {k} outputs" if k > 1 else "0/1 labels with one output"
    text = f"{name} on {what}: a regression loss learns a classifier more slowly than a "
    text += "cross-entropy (through a sigmoid/softmax its gradient vanishes on confidently wrong "
    return evidence(text + "outputs) and its outputs are not probabilities", "warning", TITLE)


def check(ctx: Context) -> Evidence | None:
    """Fire on an activation/loss pair or a loss/label pair that does not fit the task."""
    f = ctx.facts
    kind = loss_kind(f.loss)
    k = n_outputs(ctx)
    if kind is None or k is None or f.n_model_outputs > 1:
        return None
    if kind == "regression":
        return _regression(ctx, k)
    squash = output_squash(ctx)
    if k == 1 and squash == "softmax":
        return _single_softmax(ctx)
    data = ctx.data
    if k < 2 or data is None or (data.multihot_share or 0.0) >= MULTIHOT_SHARE:
        return None  # labels not seen yet, or multi-hot targets: multilabel-softmax's setup
    loss = loss_text(f)
    if squash == "sigmoid" and kind in ("sparse", "categorical"):
        return _sigmoid_softmax_ce(ctx, k, loss)
    if squash == "softmax" and kind == "binary":
        return _softmax_bce(ctx, k, loss)
    return None


RULE = Rule(
    check=check,
    code="loss-activation-mismatch",
    severity="error",
    phase="preflight",
    panel="outputs",
    rank=12,
    sticky=True,
    title=TITLE,
    explanation=(
        "Each loss assumes one kind of output: softmax cross-entropies (sparse/categorical) want "
        "one score per class that a softmax turns into a distribution; binary cross-entropy "
        "wants one independent sigmoid per label; MSE/MAE want a number to regress to. Mixing "
        "them trains the wrong thing: a softmax over sigmoid outputs can never be confident, a "
        "regression loss on class ids treats class 3 as 'three times class 1'. Keras on "
        "TensorFlow quietly rescues some pairs by reading the logits under a final activation, "
        "which hides the mismatch until the model is used or moved to another backend."
    ),
    fix=(
        "Match the head to the task:\n"
        "  one class per row: Dense(K) + SparseCategoricalCrossentropy(from_logits=True)\n"
        "  several labels per row: Dense(K) + BinaryCrossentropy(from_logits=True)\n"
        "  one yes/no: Dense(1) + BinaryCrossentropy(from_logits=True)\n"
        "Use MSE/MAE only for real-valued targets."
    ),
    fixes={
        "torch": (
            "Match the head to the task (forward() returns logits, the loss applies the "
            "activation):\n"
            "  one class per row: nn.Linear(hidden, K) + nn.CrossEntropyLoss() on class ids "
            "(torch.long)\n"
            "  several labels per row: nn.Linear(hidden, K) + nn.BCEWithLogitsLoss() on float "
            "0/1 rows\n"
            "  one yes/no: nn.Linear(hidden, 1) + nn.BCEWithLogitsLoss() on float labels of "
            "shape (N, 1)\n"
            "Hugging Face: from_pretrained(name, num_labels=K, "
            "problem_type='single_label_classification' or 'multi_label_classification'). Use "
            "nn.MSELoss/nn.L1Loss only for real-valued targets."
        ),
    },
)
