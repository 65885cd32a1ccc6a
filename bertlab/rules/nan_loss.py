"""nan-loss: the loss became NaN or infinite; names the first step and the first bad quantity."""

from __future__ import annotations

import numpy as np

from bertlab.rules.base import Context, Evidence, Rule


def _first_bad_quantity(ctx: Context, i: int) -> str:
    """What was already non-finite at window position i (inputs -> outputs -> gradients)."""
    checks = [
        ("input_nonfinite", "the inputs contain NaN/inf"),
        ("out_nonfinite", "the model outputs were already NaN/inf"),
    ]
    for name, text in checks:
        col = ctx.col(name)
        if len(col) > i and col[i] > 0:
            return text
    grad = ctx.col("grad_nonfinite")
    if i > 0 and len(grad) > i - 1 and grad[i - 1] > 0:
        return "the gradients of the step before were already NaN/inf"
    label_max = ctx.col("label_max")
    if ctx.layout is not None and len(label_max) > i and label_max[i] >= ctx.layout.n_outputs > 1:
        k = ctx.layout.n_outputs
        return f"labels up to {label_max[i]:g} reach the loss, which has {k} outputs"
    return "the loss itself (inputs, outputs and earlier gradients were finite)"


def check(ctx: Context) -> Evidence | None:
    bad = ctx.col("loss_nonfinite")
    if not len(bad) or not np.any(bad > 0):
        return None
    idx = np.flatnonzero(bad > 0)
    first = int(idx[0])
    loss = ctx.col("loss")[first]
    steps = ctx.step_range(first)
    return Evidence(
        f"loss is {loss} from step {steps[0]} on ({len(idx)} of the last {len(bad)} steps); "
        f"first non-finite quantity: {_first_bad_quantity(ctx, first)}",
        steps=steps,
    )


RULE = Rule(
    check=check,
    code="nan-loss",
    severity="error",
    phase="live",
    panel="overview",
    rank=40,
    sticky=True,
    causes=(
        "nan-input",
        "label-out-of-range",
        "label-format-mismatch",
        "logits-as-probabilities",
        "high-learning-rate",
        "exploding-gradients",
    ),
    title="The loss is NaN/inf: training has stopped learning",
    explanation=(
        "Once the loss is NaN its gradients are NaN, and a single update turns every weight into "
        "NaN, so nothing after that step learns; metrics such as categorical_accuracy can still "
        "print a number that looks fine. The usual sources are invalid labels (outside [0, K) or "
        "in the wrong format for the loss), NaN inputs, a log of 0 when outputs that are not "
        "probabilities reach a probability loss, or an update so large that the weights overflow."
    ),
    fix=(
        "Look at the first non-finite quantity named above. Check labels: "
        "`np.unique(y)` must be 0..K-1 for sparse losses. Check inputs: "
        "`np.isfinite(x).all()`. If gradients exploded, lower the learning rate or clip: "
        "`keras.optimizers.Adam(2e-5, clipnorm=1.0)`."
    ),
    fixes={
        "torch": (
            "Look at the first non-finite quantity named above. Check labels: "
            "`torch.unique(y)` must be 0..K-1 for nn.CrossEntropyLoss. Check inputs: "
            "`torch.isfinite(x).all()`. If gradients exploded, lower the learning rate or "
            "clip: `torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)` before "
            "`optimizer.step()`, with `torch.optim.AdamW(model.parameters(), lr=2e-5)`. Under "
            "fp16 autocast, scale the loss with `torch.amp.GradScaler()` (the Trainer does "
            "with fp16=True) or use bf16."
        ),
    },
)
