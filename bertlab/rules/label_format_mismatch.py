"""label-format-mismatch: labels in the wrong format for the loss: one-hot rows with a sparse
loss, class ids with a categorical (one-hot) loss, one label column for a multi-label loss."""

from __future__ import annotations

from bertlab.rules._lossconfig import (
    error_shapes,
    id_offset_hint,
    label_width,
    loss_kind,
    loss_text,
    n_outputs,
)
from bertlab.rules.base import Context, Evidence, Rule


def _mismatch(kind: str, width: int, k: int, loss: str) -> str | None:
    """What is wrong with ``width`` label columns for this loss and K outputs (None if fine)."""
    if kind == "sparse" and width > 1:
        return (
            f"the labels have {width} columns (one-hot rows) but {loss} expects one class id "
            "per row"
        )
    if kind == "categorical" and width == 1 and k > 1:
        return f"the labels are one class id per row but {loss} expects one-hot rows of {k}"
    if kind == "categorical" and width > 1 and width != k:
        return f"the one-hot labels have {width} columns but the model has {k} outputs"
    if kind == "binary" and width == 1 and k > 1:
        return (
            f"the labels are one column but {loss} with {k} outputs expects one 0/1 column per "
            "output (multi-label)"
        )
    if kind == "binary" and width > 1 and k == 1:
        return f"the labels have {width} columns (one-hot rows) but the model has a single output"
    return None


def _from_error(ctx: Context, kind: str, loss: str) -> Evidence | None:
    shapes = error_shapes(ctx.error)
    if shapes is None:
        return None
    target, output = shapes
    if not output or output[-1] is None:
        return None
    k = output[-1]
    width = 1 if len(target) < len(output) else target[-1]
    if width is None:
        return None
    problem = _mismatch(kind, width, k, loss)
    if problem is None:
        return None
    return Evidence(f"fit failed: {problem} (labels {target}, outputs {output})")


def check(ctx: Context) -> Evidence | None:
    """Fire when the label layout cannot be what the loss reads.

    Keras raises a shape error when both shapes are static (the exception is named here); when
    the label width is not static (a tf.data pipeline through TextVectorization) TensorFlow
    broadcasts instead and computes nonsense, which the recorded label values reveal.
    """
    f = ctx.facts
    text = ctx.data.label_text if ctx.data is not None else None
    if text:  # any loss: every one computes with numbers
        names = ", ".join(repr(t) for t in text)
        return Evidence(
            f"the labels are text ({names}...): a loss computes with numbers, so fit cannot "
            "convert them; map each class name to an id 0..K-1 first"
        )
    kind = loss_kind(f.loss)
    if kind not in ("sparse", "categorical", "binary") or f.n_model_outputs > 1:
        return None
    loss = loss_text(f, settings=False) if f.loss else "the loss"
    if ctx.error:
        found = _from_error(ctx, kind, loss)
        if found is not None:
            return found
    k, data = n_outputs(ctx), ctx.data
    if k is None or data is None:
        return None
    width = label_width(ctx)
    if kind == "sparse" and width != k and not ctx.meta.get("output_shape"):
        width = None  # (N, T) could be per-token ids until the traced output shape says (N, K)
    if width is not None:
        problem = _mismatch(kind, width, k, loss)
        hint = id_offset_hint(data.label_min) if problem and width == 1 else ""
        return Evidence(problem + hint) if problem else None
    # Width unknown: dense targets of these losses are 0/1 (or probabilities); ids are not.
    big = data.label_max is not None and data.label_max > 1
    if kind == "sparse" or not big or not data.label_integer or (kind == "binary" and k == 1):
        return None
    return Evidence(
        f"labels are integers {data.label_min:g}..{data.label_max:g} but {loss} expects 0/1 "
        f"rows of {k}: these are class ids, and the label width is not static, so TensorFlow "
        f"broadcasts each id across all {k} outputs; the loss becomes id × Σ −log p over the "
        "outputs, which never rewards the right class and can drive the logits to overflow "
        "(NaN)" + id_offset_hint(data.label_min),
    )


RULE = Rule(
    check=check,
    code="label-format-mismatch",
    severity="error",
    phase="preflight",
    panel="data",
    rank=14,
    sticky=True,
    title="Labels are in the wrong format for the loss (class ids vs one-hot)",
    explanation=(
        "Sparse losses (SparseCategoricalCrossentropy) take one integer class id per row; "
        "categorical losses (CategoricalCrossentropy) take one-hot rows with one column per "
        "output; binary cross-entropy takes one 0/1 column per output. With static shapes Keras "
        "stops with a shape error; when the label width is unknown (a tf.data pipeline, labels "
        "made by TextVectorization) TensorFlow broadcasts the ids over the outputs and trains on "
        "nonsense, often ending in a NaN loss while categorical_accuracy looks perfect."
    ),
    fix=(
        "Keep the labels and switch the loss to match them:\n"
        "  class ids 0..K-1: keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
        "  one-hot rows: keras.losses.CategoricalCrossentropy(from_logits=True)\n"
        "or convert the labels: `keras.utils.to_categorical(ids, K)` / `np.argmax(onehot, -1)`. "
        "Map label strings with `StringLookup(vocabulary=classes, num_oov_indices=0)` "
        "(ids 0..K-1), not TextVectorization."
    ),
    fixes={
        "torch": (
            "Give the loss the targets it reads:\n"
            "  nn.CrossEntropyLoss(): class ids of shape (N,), dtype torch.long (from one-hot "
            "rows: onehot.argmax(-1)), or float rows of class probabilities as wide as the "
            "output\n"
            "  nn.BCEWithLogitsLoss(): float 0/1 targets of the output's shape: (N, K) "
            "multi-label rows, or y.float().unsqueeze(1) for one output\n"
            "One-hot rows from ids: `F.one_hot(ids, K).float()`. Hugging Face: integer labels "
            "for 'single_label_classification', float rows for 'multi_label_classification'."
        ),
    },
    explanations={
        "torch": (
            "nn.CrossEntropyLoss takes one integer class id per row, or float rows of class "
            "probabilities as wide as the output; nn.BCEWithLogitsLoss and nn.BCELoss take "
            "float 0/1 targets of exactly the output's shape. PyTorch stops with a shape or "
            "dtype error for most mismatches, but integer one-hot rows, or ids read as "
            "probabilities, can train on nonsense without one."
        ),
    },
)
