"""Shared helpers of the output/loss/label configuration rules (pure: facts, meta, numbers).

What the rules of this group need to agree on: which family a loss belongs to, what the model's
last op squashes its outputs with, how wide the labels are, whether Keras on TensorFlow will
quietly swap the model's output for its pre-activation logits, and the shapes Keras names in the
exception it raises when labels and outputs do not fit.
"""

from __future__ import annotations

import re

import numpy as np

from bertlab.facts import ModelFacts
from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence

SPARSE = ("sparse_categorical_crossentropy",)
CATEGORICAL = ("categorical_crossentropy", "categorical_focal_crossentropy")
BINARY = ("binary_crossentropy", "binary_focal_crossentropy")
REGRESSION = (
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
    "log_cosh",
    "mean_squared_logarithmic_error",
    "mean_absolute_percentage_error",
)
#: TF op types of the two squashing activations (``y_pred.op.type`` as the probe traced it).
_OPS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}

#: Recent steps whose predicted-class counts show what accuracy on one-column labels counts.
WINDOW = 20

# Keras 3 (TensorFlow backend, keras/src/backend/tensorflow/nn.py) names both shapes this way in
# every label/output shape error of its cross-entropies.
_SHAPES = re.compile(r"target\.shape=\(([^)]*)\),\s*output\.shape=\(([^)]*)\)")


def loss_kind(loss: str | None) -> str | None:
    """``"sparse"``, ``"categorical"``, ``"binary"``, ``"regression"`` or None (unknown)."""
    if loss in SPARSE:
        return "sparse"
    if loss in CATEGORICAL:
        return "categorical"
    if loss in BINARY:
        return "binary"
    if loss in REGRESSION:
        return "regression"
    return None


#: (Keras-style loss, from_logits) -> the torch loss the torch probe reads it from.
_TORCH_LOSSES = {
    ("binary_crossentropy", False): "nn.BCELoss()",
    ("binary_crossentropy", True): "nn.BCEWithLogitsLoss()",
    ("sparse_categorical_crossentropy", True): "nn.CrossEntropyLoss()",
    ("categorical_crossentropy", True): "nn.CrossEntropyLoss() with probability targets",
    ("mean_squared_error", None): "nn.MSELoss()",
}
#: Keras-style loss -> the Hugging Face ``config.problem_type`` whose built-in loss it is.
_HF_PROBLEMS = {
    "sparse_categorical_crossentropy": "single_label_classification",
    "binary_crossentropy": "multi_label_classification",
    "mean_squared_error": "regression",
}


def loss_text(facts: ModelFacts, settings: bool = True) -> str:
    """The loss as the user wrote it, for evidence text.

    Keras: the canonical name with ``(from_logits=...)`` (``settings``); PyTorch: the loss
    module or function (``nn.BCEWithLogitsLoss()``), or a Hugging Face model's built-in loss
    with the ``config.problem_type`` that picks it: a torch user has no ``from_logits`` to find.
    """
    if facts.framework != "torch":
        return f"{facts.loss}(from_logits={facts.from_logits})" if settings else str(facts.loss)
    if facts.loss_display:
        return facts.loss_display
    module = _TORCH_LOSSES.get((str(facts.loss), facts.from_logits))
    if (facts.model_class or "").endswith("ForSequenceClassification"):
        problem = _HF_PROBLEMS.get(str(facts.loss))
        if problem is None:
            return "the model's built-in loss"
        return f"the model's built-in loss (config.problem_type={problem!r}: {module})"
    return module or str(facts.loss)


def n_outputs(ctx: Context) -> int | None:
    """K: the width of the model output's last axis."""
    if ctx.layout is not None:
        return ctx.layout.n_outputs
    return ctx.facts.n_outputs


def output_squash(ctx: Context) -> str | None:
    """What the model's output ends in: ``"softmax"``, ``"sigmoid"``, ``"linear"``, another
    activation's name, or None when unknown.

    The op that produced ``y_pred`` (traced) wins over the output layer's declared activation:
    it also sees a ``keras.ops.sigmoid`` in a subclassed model's ``call``.
    """
    op = ctx.meta.get("output_op")
    if op in _OPS:
        return _OPS[op]
    f = ctx.facts
    if f.output_activation in ("softmax", "sigmoid"):
        return f.output_activation
    if f.softmax_layers:
        return "softmax"
    return f.output_activation


def last_op_is(ctx: Context, activation: str) -> bool:
    """Whether ``activation`` is the very last op of the model (what the loss receives).

    Only then does Keras on TensorFlow find the pre-activation logits on the output tensor
    (``_keras_logits`` / ``output.op.inputs[0]``). Before the first traced step the output layer's
    declared activation stands in for the traced op.
    """
    op = ctx.meta.get("output_op")
    if op:
        return _OPS.get(op) == activation
    return ctx.facts.output_activation == activation


def tf_swaps_logits(ctx: Context, activation: str) -> bool:
    """Whether Keras's TensorFlow backend will compute the cross-entropy from the logits.

    ``keras/src/backend/tensorflow/nn.py::_get_logits``: when the output tensor carries
    ``_keras_logits`` (set by Keras's softmax *and* sigmoid) or was made by the op the loss
    expects, the loss uses the pre-activation tensor with ``from_logits=True``, whatever
    ``from_logits`` says and whichever of the two activations it was.
    """
    return ctx.facts.backend == "tensorflow" and last_op_is(ctx, activation)


def label_width(ctx: Context) -> int | None:
    """Label columns per sample: 1 for class ids ((N,) or (N, 1)), K' for dense labels, None
    when unknown (no data yet, a dataset whose label shape is not static, per-token outputs)."""
    out = ctx.meta.get("output_shape")
    if out and len(out) > 2:
        return None  # per-token outputs (B, T, K): not a one-label-per-row classifier
    data = ctx.data
    shape = data.label_shape if data is not None else None
    if shape is None and ctx.meta.get("label_shape"):
        shape = tuple(int(d or 0) for d in ctx.meta["label_shape"][1:])
    if shape is None or any(d == 0 for d in shape):
        return None
    if shape in ((), (1,)):
        return 1
    return int(shape[-1]) if len(shape) == 1 else None


def error_shapes(error: str | None) -> tuple[tuple[int | None, ...], tuple[int | None, ...]] | None:
    """``(target shape, output shape)`` named in a Keras loss shape error, or None."""
    match = _SHAPES.search(error or "")
    if not match:
        return None

    def parse(text: str) -> tuple[int | None, ...]:
        dims = [d.strip() for d in text.split(",") if d.strip()]
        return tuple(None if d == "None" else int(d) for d in dims)

    try:
        return parse(match.group(1)), parse(match.group(2))
    except ValueError:
        return None


def finite(values: np.ndarray) -> np.ndarray:
    """The finite entries of a recorded column."""
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def id_offset_hint(low: float | None) -> str:
    """Where class ids starting at 2 usually come from."""
    if low is not None and low >= 2:
        return (
            f"; ids start at {low:g}: TextVectorization/StringLookup reserve 0 (padding) and "
            "1 ([UNK]), so label strings encoded with them never map to 0..K-1"
        )
    return ""


def evidence(
    text: str,
    severity: str,
    title: str,
    *,
    harmless: bool = False,
    steps: tuple[int, int] | None = None,
) -> Evidence:
    """Evidence that states its severity, title and cause-eligibility every time.

    A sticky finding is updated in place and keeps any override a later evidence leaves unset,
    so a rule whose verdict can change (a TensorFlow-rescued warning that becomes an error once
    the traced output op is known) must restate all three.
    """
    return Evidence(
        text, steps=steps, severity=severity, title=title, extra={"not_a_cause": harmless}
    )


# ---------------------------------------------------------------- metric evidence
def logged(ctx: Context, name: str) -> str:
    """The metric's latest logged value, as text (empty before the first epoch ends)."""
    value = ctx.epochs[-1].get(name) if ctx.epochs else None
    return f"; Keras reports {name} = {value:.3f}" if isinstance(value, float) else ""


def class0_share(ctx: Context) -> str:
    """Share of recent predictions that are class 0: what accuracy with 1-wide labels counts."""
    n = ctx.n_steps
    pred = ctx.col("pred_count")
    if n == 0 or pred.ndim != 2:
        return ""
    recent = pred.reshape(n, -1)[-WINDOW:]
    total = np.nansum(recent)
    return f", here {pct(np.nansum(recent[:, 0]) / total)} of predictions" if total > 0 else ""


def label_accuracy(ctx: Context) -> str:
    """Mean per-label (binary) validation accuracy from the probe's own counts, as text."""
    rec = ctx.epochs[-1] if ctx.epochs else {}
    recall, n = rec.get("val_recall"), rec.get("val_samples")
    pred, true = rec.get("val_pred_count"), rec.get("val_label_count")
    if recall is None or pred is None or true is None or not n:
        return ""
    true, pred = np.asarray(true, float), np.asarray(pred, float)
    tp = np.where(true > 0, np.nan_to_num(np.asarray(recall, float)) * true, 0.0)
    acc = 1.0 - ((pred - tp) + (true - tp)) / float(n)
    return f"; bertlab's per-label validation accuracy is {acc.mean():.3f}"
