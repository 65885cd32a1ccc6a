"""loss-scale-collapse: mixed precision skips step after step and the loss scale shrinks away.

In float16 training the loss is multiplied by a loss scale so that small gradients do not
underflow; a step whose gradients are not finite is skipped (the weights do not change) and the
scale is halved (Keras's ``LossScaleOptimizer``, torch's ``GradScaler``). A healthy run skips a
few steps at the start while the scale settles, then one now and then. When every step
overflows whatever the scale (a forward pass beyond float16's 65504: a large attention-mask
constant, an unscaled activation, a loss computed in float16), the scale halves on every step
towards zero and the model no longer trains at all. The probe records ``loss_scale`` (the scale
each step's gradients were computed with); a step is skipped when the next step's scale is
lower. Runs without a loss scale (float32, bfloat16) have no such channel: the rule is silent.
"""

from __future__ import annotations

import numpy as np

from bertlab.rules.base import Context, Evidence, Rule

#: Consecutive skipped steps (scale halved each time) that no healthy calibration reaches: the
#: scale has fallen 4096x (Keras starts at 2^15, torch at 2^16: down to 8 or 16). Healthy runs
#: settle within a handful of halvings (gradients up to ~2^11 fit float16 at scale 2^4).
MIN_RUN = 12
#: Below this scale the loss is scaled down, not up: no protection against underflow is left.
FLOOR = 1.0
#: With the scale under FLOOR, share of the recent steps skipped that names a collapse.
SKIP_SHARE = 0.5
#: Recent steps looked at.
WINDOW = 50

TITLE = "The loss scale collapses: mixed precision skips every step, the weights no longer move"


def check(ctx: Context) -> Evidence | None:
    """Fire on ≥ MIN_RUN consecutive skipped steps, or a scale under FLOOR with frequent skips."""
    scale, steps = ctx.col("loss_scale"), ctx.col("step")
    if not len(scale) or len(scale) != len(steps):
        return None  # no loss scaling in this run
    scale = scale[-WINDOW:]
    known = np.isfinite(scale)
    if known.sum() < 2:
        return None
    s = scale[known]
    skipped = s[1:] < s[:-1]
    run = 0
    for flag in skipped[::-1]:
        if not flag:
            break
        run += 1
    collapsed = run >= MIN_RUN or (s[-1] < FLOOR and skipped.mean() >= SKIP_SHARE)
    if not collapsed:
        return None
    idx = np.flatnonzero(known)
    first = int(idx[-1 - run]) if run else int(idx[0])
    offset = ctx.n_steps - len(scale)
    span = ctx.step_range(offset + first, offset + int(idx[-1]) + 1)
    text = (
        f"steps {span[0]}–{span[1]}: the loss scale fell from {s[-1 - run]:.6g} to {s[-1]:.6g}; "
        f"{int(skipped.sum())} of the last {len(skipped)} steps had non-finite gradients and were "
        f"skipped ({run} in a row up to now): the weights have not changed over those steps"
    )
    loss = ctx.col("loss")[-WINDOW:]
    if len(loss) == len(scale):
        bad = int((~np.isfinite(loss[known][-run - 1 :])).sum()) if run else 0
        if bad:
            text += (
                f"; the loss itself was NaN/inf on {bad} of them: the forward pass overflows "
                "float16, which no loss scale can repair"
            )
    return Evidence(text, steps=span)


RULE = Rule(
    check=check,
    code="loss-scale-collapse",
    severity="error",
    phase="live",
    panel="gradients",
    rank=38,
    title=TITLE,
    explanation=(
        "In float16 mixed precision the loss is multiplied by a loss scale before the backward "
        "pass so that small gradients survive float16; the optimizer divides the gradients "
        "back, skips any step whose gradients are not finite and halves the scale. A few "
        "skipped steps at the start are normal. Here the gradients are not finite at any "
        "scale, so every step is skipped and the scale halves towards zero: the weights stay "
        "where they are while training keeps running. The overflow is upstream: a value beyond "
        "float16's range (65504) in the forward or backward pass, such as an attention mask of "
        "-1e9, a large constant factor, an exp/softmax or a loss computed in float16."
    ),
    fix=(
        "Find the overflowing op and keep it in float32, or use bfloat16:\n"
        "  keras.mixed_precision.set_global_policy('mixed_bfloat16')  # float32's range\n"
        "  # keep the head, softmax and loss in float32:\n"
        "  outputs = keras.layers.Dense(num_classes, dtype='float32')(x)\n"
        "  # masks: a float16-safe constant, e.g. -1e4 (or the dtype's min), never -1e9\n"
        "  # custom layers: compute large intermediates with dtype='float32'\n"
        "Check the scale while training: model.optimizer.dynamic_scale."
    ),
    fixes={
        "torch": (
            "Find the overflowing op and keep it in float32, or autocast to bfloat16:\n"
            "  with torch.autocast(device_type='cuda', dtype=torch.bfloat16):  # no scaler needed\n"
            "      logits = model(**inputs)\n"
            "  loss = loss_fn(logits.float(), labels)  # the loss outside autocast, in float32\n"
            "  # masks: scores.masked_fill(~mask, torch.finfo(scores.dtype).min), never -1e9\n"
            "With float16 keep the GradScaler and watch it:\n"
            "  scaler.scale(loss).backward(); scaler.unscale_(optimizer)\n"
            "  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
            "  scaler.step(optimizer); scaler.update(); print(scaler.get_scale())"
        )
    },
)
