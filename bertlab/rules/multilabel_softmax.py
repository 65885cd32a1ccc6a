"""multilabel-softmax: multi-hot targets (several labels per row) with a softmax output or a
categorical cross-entropy, which can only express one label per row."""

from __future__ import annotations

from bertlab.rules._lossconfig import (
    loss_kind,
    loss_text,
    n_outputs,
    output_squash,
    tf_swaps_logits,
)
from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Share of label rows with more than one positive from which the task is multi-label. A single
#: stray row in a single-label dataset is a data glitch; 1 % of rows is a labelling scheme.
MULTIHOT_SHARE = 0.01


def check(ctx: Context) -> Evidence | None:
    """Fire when rows carry several 1s but the head or the loss picks exactly one class."""
    f, data = ctx.facts, ctx.data
    k = n_outputs(ctx)
    if data is None or data.multihot_share is None or k is None or k < 2:
        return None
    if data.multihot_share < MULTIHOT_SHARE or f.n_model_outputs > 1:
        return None
    kind = loss_kind(f.loss)
    squash = output_squash(ctx)
    if squash != "softmax" and kind != "categorical":
        return None
    share = pct(data.multihot_share)
    loss = loss_text(f)
    if kind == "categorical":
        head = "softmax outputs" if squash == "softmax" else "outputs"
        return Evidence(
            f"{share} of label rows have more than one positive among {k} labels, and {loss} "
            f"spreads one unit of probability over them: with m positives the best it can "
            f"reach is 1/m per label, so no label of such a row passes 0.5 ({head})",
        )
    text = (
        f"{share} of label rows have more than one positive among {k} labels, but the output "
        f"is a softmax: its {k} outputs sum to 1, so at most one label can pass 0.5"
    )
    if kind == "binary" and tf_swaps_logits(ctx, "softmax"):
        text += (
            f"; on TensorFlow {f.loss} quietly trains independent sigmoids on the pre-softmax "
            "logits, so the loss falls while the model still returns the softmax that "
            "predict() and every metric see"
        )
    return Evidence(text)


RULE = Rule(
    check=check,
    code="multilabel-softmax",
    severity="error",
    phase="preflight",
    panel="outputs",
    rank=13,
    sticky=True,
    title="Multi-label targets with a softmax or a categorical cross-entropy",
    explanation=(
        "Rows with several 1s are multi-label: each label is its own yes/no question. A softmax "
        "makes the labels compete for one unit of probability, and a categorical cross-entropy "
        "scores a row as one class, so a row with two true labels can at best get 0.5 for each "
        "and a 0.5 threshold never marks both. Multi-label heads use one independent sigmoid per "
        "label and a binary cross-entropy averaged over the labels."
    ),
    fix=(
        "outputs = keras.layers.Dense(num_labels)(h)  # logits, no softmax\n"
        "model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),\n"
        "              metrics=[keras.metrics.BinaryAccuracy(threshold=0.0),\n"
        "                       keras.metrics.AUC(multi_label=True, from_logits=True)])"
    ),
    fixes={
        "torch": (
            "One independent sigmoid per label: return logits and use a binary cross-entropy "
            "on float rows:\n"
            "  self.head = nn.Linear(hidden, num_labels)  # logits, no softmax\n"
            "  loss_fn = nn.BCEWithLogitsLoss()\n"
            "  loss = loss_fn(logits, labels.float())\n"
            "  predicted = torch.sigmoid(logits) > 0.5  # per label\n"
            "Hugging Face: AutoModelForSequenceClassification.from_pretrained(name, "
            "num_labels=num_labels, problem_type='multi_label_classification') with float labels."
        ),
    },
)
