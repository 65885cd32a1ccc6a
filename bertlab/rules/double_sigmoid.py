"""double-sigmoid: sigmoid outputs fed to a binary cross-entropy told they are logits."""

from __future__ import annotations

import numpy as np

from bertlab.rules._lossconfig import (
    evidence,
    finite,
    loss_kind,
    loss_text,
    output_squash,
    tf_swaps_logits,
)
from bertlab.rules.base import Context, Evidence, Rule

#: Runtime evidence when the facts do not show the sigmoid (e.g. Dense(1, "sigmoid") followed by
#: a Reshape): outputs read as logits that never leave [0, 1] over this many steps. A freshly
#: initialised logit head is centred on 0 (half its outputs negative at step 0), and logits trained
#: with a from_logits loss go negative for the negative examples as soon as the head learns.
MIN_STEPS = 30
#: ...and that differ between samples by at least this much: a stuck logit model whose constant
#: output happens to sit in [0, 1] (a positive rate between 50 % and 73 %) must not count.
MIN_SPREAD = 0.25

TITLE = "Sigmoid applied twice: sigmoid outputs and a loss with from_logits=True"


def _runtime(ctx: Context) -> Evidence | None:
    """Outputs that behave like probabilities although the loss treats them as logits."""
    unit = ctx.col("out_unit_share")
    low, high = finite(ctx.col("out_min")), finite(ctx.col("out_max"))
    labels_low, labels_high = finite(ctx.col("label_min")), finite(ctx.col("label_max"))
    if ctx.n_steps < MIN_STEPS or not len(low) or not len(labels_low):
        return None
    both = labels_low.min() <= 0 and labels_high.max() >= 1
    if not both or not np.all(unit == 1.0) or high.max() - low.min() < MIN_SPREAD:
        return None
    steps = ctx.step_range(0)
    op = ctx.meta.get("output_op")
    made_by = f" (the output is made by a {op} op, so no backend skips the extra sigmoid)"
    return evidence(
        f"steps {steps[0]}–{steps[1]}: every output stayed inside [0, 1] (range "
        f"{low.min():.2f}–{high.max():.2f}) although {loss_text(ctx.facts)} reads "
        "them as logits; the model very likely ends in a sigmoid (or softmax) followed by "
        "another op" + (made_by if op else ""),
        "error",
        TITLE,
        steps=steps,
    )


def check(ctx: Context) -> Evidence | None:
    """Fire when a binary cross-entropy with from_logits=True receives sigmoid outputs.

    Keras on TensorFlow rescues the plain binary cross-entropy when the sigmoid is the model's
    last op (it takes the op's input instead: a warning); everywhere else the loss applies a
    second sigmoid (an error).
    """
    f = ctx.facts
    if f.from_logits is not True or loss_kind(f.loss) != "binary":
        return None
    squash = output_squash(ctx)
    if squash in ("linear", None):
        return _runtime(ctx)
    if squash != "sigmoid":
        return None
    text = f"the model's output applies sigmoid and the loss is {loss_text(f)}"
    if f.loss == "binary_focal_crossentropy":
        return evidence(
            text + "; BinaryFocalCrossentropy applies sigmoid itself before its cross-entropy, "
            "so on every backend it computes sigmoid(sigmoid(z))",
            "error",
            TITLE,
        )
    if tf_swaps_logits(ctx, "sigmoid"):
        return evidence(
            text + "; on TensorFlow Keras silently feeds the pre-sigmoid logits to the loss "
            "(only a UserWarning), so the loss is right on this backend only",
            "warning",
            "Sigmoid output with from_logits=True (works only by a TensorFlow shortcut)",
            harmless=True,
        )
    return evidence(
        text + "; the loss applies sigmoid a second time, so every probability it sees lies "
        "in (0.50, 0.73)",
        "error",
        TITLE,
    )


RULE = Rule(
    check=check,
    code="double-sigmoid",
    severity="error",
    phase="preflight",
    panel="outputs",
    rank=10,
    sticky=True,
    title=TITLE,
    explanation=(
        "from_logits=True tells the loss to apply sigmoid itself. If the model already ends in a "
        "sigmoid, the loss sees sigmoid(p) with p in (0, 1), which lies in (0.50, 0.73): the "
        "loss can never drop below 0.31 for a positive or 0.69 for a negative example, its "
        "gradients are several times smaller, and training is slow or stalls on one class. Keras "
        "on TensorFlow detects a sigmoid that is the very last op and uses its input instead, so "
        "the same code trains on TensorFlow but not on JAX or PyTorch, nor once any op (a "
        "Reshape, a cast, a focal loss) follows the sigmoid."
    ),
    fix=(
        "Pick one: output logits and keep from_logits=True (recommended, more stable):\n"
        "  outputs = keras.layers.Dense(1)(h)  # no activation\n"
        "  loss = keras.losses.BinaryCrossentropy(from_logits=True)\n"
        "or keep the sigmoid and set from_logits=False (then metrics' threshold 0.5 is right)."
    ),
    fixes={
        "torch": (
            "Pick one: return logits and keep nn.BCEWithLogitsLoss (recommended, more stable):\n"
            "  self.head = nn.Linear(hidden, 1)  # no nn.Sigmoid() / torch.sigmoid in forward()\n"
            "  loss_fn = nn.BCEWithLogitsLoss()\n"
            "  probs = torch.sigmoid(logits)  # only where you need probabilities, outside the "
            "loss\n"
            "or keep the sigmoid and use nn.BCELoss() (then a 0.5 threshold on the outputs is "
            "right)."
        ),
    },
    explanations={
        "torch": (
            "nn.BCEWithLogitsLoss applies sigmoid itself. If the model already ends in a "
            "sigmoid, the loss sees sigmoid(p) with p in (0, 1), which lies in (0.50, 0.73): "
            "the loss can never drop below 0.31 for a positive or 0.69 for a negative example, "
            "its gradients are several times smaller, and training is slow or stalls on one "
            "class."
        ),
    },
)
