"""label-out-of-range: integer labels outside [0, K) (or binary labels outside [0, 1])."""

from __future__ import annotations

import re

from bertlab.rules.base import Context, Evidence, Rule

_KERAS_ERROR = re.compile(
    r"label value of (-?\d+) which is outside the valid range of \[0, (\d+)\)"
)


def _n_outputs(ctx: Context) -> int | None:
    if ctx.layout is not None:
        return ctx.layout.n_outputs
    return ctx.facts.n_outputs


def _hint(low: float, high: float, k: int) -> str:
    if low >= 1 and high >= k:
        return (
            f"; labels start at {low:g}, not 0 — ids made by TextVectorization/StringLookup "
            "reserve 0 (padding) and 1 ([UNK]), and 1-based class numbers are off by one"
        )
    return ""


def check(ctx: Context) -> Evidence | None:
    k = _n_outputs(ctx)
    if ctx.error:
        match = _KERAS_ERROR.search(ctx.error)
        if match:
            value, valid = int(match.group(1)), int(match.group(2))
            return Evidence(
                f"fit failed on label {value}: the model has {valid} outputs, so valid labels "
                f"are 0..{valid - 1}" + _hint(value, value, valid),
            )
    data = ctx.data
    if data is None or k is None or data.label_max is None or data.label_min is None:
        return None
    sparse = data.label_shape in ((), (1,))
    if not sparse or not data.label_integer:
        return None
    if k == 1:
        if data.label_min >= 0 and data.label_max <= 1:
            return None
        return Evidence(
            f"labels span {data.label_min:g}..{data.label_max:g} but a single sigmoid output "
            "needs 0/1 labels",
        )
    if data.label_min >= 0 and data.label_max < k:
        return None
    return Evidence(
        f"labels span {data.label_min:g}..{data.label_max:g} but the model has {k} outputs "
        f"(valid labels 0..{k - 1})" + _hint(data.label_min, data.label_max, k),
    )


RULE = Rule(
    check=check,
    code="label-out-of-range",
    severity="error",
    phase="preflight",
    panel="data",
    rank=20,
    sticky=True,
    title="Labels outside the range the output layer can predict",
    explanation=(
        "A sparse cross-entropy with K outputs accepts integer labels 0..K-1. A label of K or "
        "more has no output unit: on CPU Keras stops with 'Received a label value of ... outside "
        "the valid range', on GPU the loss can silently become NaN. Typical causes: class ids "
        "that start at 1, or labels encoded with TextVectorization/StringLookup, which reserve "
        "ids 0 and 1 for padding and out-of-vocabulary."
    ),
    fix=(
        "Map labels to 0..K-1, e.g. `classes, y = np.unique(labels, return_inverse=True)`, "
        "or use `keras.layers.StringLookup(num_oov_indices=0, vocabulary=classes)`; or make the "
        "output layer as wide as the number of classes: `Dense(len(classes))`."
    ),
    fixes={
        "torch": (
            "Map labels to 0..K-1, e.g. `classes, y = np.unique(labels, return_inverse=True)` "
            "(or `label2id = {c: i for i, c in enumerate(classes)}`); or make the output layer "
            "as wide as the number of classes: `nn.Linear(hidden, len(classes))` (Hugging "
            "Face: `from_pretrained(name, num_labels=len(classes), id2label=..., "
            "label2id=...)`). On a GPU, run with CUDA_LAUNCH_BLOCKING=1 to see the error where "
            "it happens."
        ),
    },
    explanations={
        "torch": (
            "A cross-entropy with K outputs accepts integer labels 0..K-1. A label of K or "
            "more has no output unit: on CPU PyTorch stops with 'IndexError: Target K is out "
            "of bounds', on CUDA a device-side assert fires, often reported at a later op. "
            "Typical causes: class ids that start at 1, or label ids made by a vocabulary that "
            "reserves ids for padding and unknown values."
        ),
    },
)
