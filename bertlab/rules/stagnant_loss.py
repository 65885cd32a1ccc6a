"""stagnant-loss: the loss stopped moving, well above zero and away from the chance level."""

from __future__ import annotations

import numpy as np

from bertlab.rules import chance_loss
from bertlab.rules._dynamics import chance, rel_trend, smoothing_floor
from bertlab.rules.base import Context, Evidence, Rule

#: A plateau is judged over the latest WINDOW steps: long enough that the per-batch noise of
#: small batches (+-40 % at batch size 8) averages out in a fitted trend.
WINDOW = 100
#: "Not moving": the fitted trend lowers the loss by less than MAX_DROP of its level over the
#: window, even allowing for batch noise (the drop plus two standard errors of the fitted
#: change stays below MAX_DROP, so small noisy batches cannot fake a plateau), and raises it
#: by less than MAX_RISE (a climbing loss is exploding-loss). Healthy runs of the suite and
#: longer ones (tiny BERT at 5e-5, noisy labels at batch sizes 4 and 8) fall 5-30 % per 100
#: steps until they reach a low plateau.
MAX_DROP = 0.02
MAX_RISE = 0.1
#: "Far above zero": at least FLOOR of the way from the lowest reachable loss (0, or the
#: entropy of label-smoothed targets) up to the no-information level. A model that has taken
#: half of the information out of the labels and levels off has usually converged at what the
#: task allows (noisy labels, a hard task); below that a plateau is not reported.
FLOOR = 0.5
#: Within chance-loss's own tolerance of the no-information level the loss is "at chance":
#: that rule reports it (it reads the same constant), so this one stays silent there.
AT_CHANCE = chance_loss.TOLERANCE
#: A loss that jumps around or climbs is not "stuck"; those rules name it better.
BETTER_NAMED = ("chance-loss", "oscillating-loss", "exploding-loss")


def check(ctx: Context) -> Evidence | None:
    if ctx.n_steps < WINDOW or any(code in ctx.live for code in BETTER_NAMED):
        return None
    loss = ctx.col("loss")[-WINDOW:]
    level = chance(ctx, WINDOW)
    if level is None or not np.isfinite(loss).all():
        return None
    mean = float(loss.mean())
    change, noise = rel_trend(loss)
    floor = smoothing_floor(ctx)
    if mean - floor < FLOOR * (level - floor) or abs(mean - level) <= AT_CHANCE * level:
        return None
    if -change + 2 * noise > MAX_DROP or change > MAX_RISE:
        return None
    steps = ctx.step_range(ctx.n_steps - WINDOW)
    side = "above" if mean > level else "below"
    lr = ctx.col("lr")[-WINDOW:]
    lr_text = ""
    if np.isfinite(lr).all() and len(lr):
        peak = float(np.nanmax(ctx.col("lr")))
        lr_text = f"; learning rate {lr[-1]:.2g}"
        if peak > 0 and lr[-1] < 0.01 * peak:
            lr_text += f" (decayed from {peak:.2g}: the schedule has all but stopped training)"
    low = f"the lowest reachable {floor:.3g} (label smoothing)" if floor > 0 else "0"
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: mean batch loss {mean:.3g} changed {100 * change:+.1f} % "
        f"over {WINDOW} steps; {side} the no-information level {level:.3g}, far above {low}"
        f"{lr_text}",
        steps=steps,
        extra={"change": change},
    )


RULE = Rule(
    check=check,
    code="stagnant-loss",
    severity="warning",
    phase="live",
    panel="overview",
    rank=72,
    causes=(
        "saturated-logits",
        "dead-gradients",
        "vanishing-gradients",
        "multilabel-collapse",
        "logits-as-probabilities",
        "loss-activation-mismatch",
        "double-softmax",
        "params-not-in-optimizer",
        "frozen-layers",
        "high-learning-rate",
        "low-learning-rate",
    ),
    title="The loss stopped improving",
    explanation=(
        "For the last steps the loss has not gone down although it is far from 0, so the "
        "updates no longer improve the model. Either they are too small to matter (a learning "
        "rate that decayed to ~0, frozen or gradient-starved layers), or the outputs are "
        "saturated so the loss gives no usable gradient, or the model has reached what it can "
        "learn from these inputs. Below the no-information level it learned something and then "
        "stopped; above it, it is confidently wrong."
    ),
    fix=(
        "Check the learning rate the optimizer actually uses (watch.history['lr']): a schedule "
        "that decays too fast freezes training — set decay_steps to the total number of steps. "
        "Fix any listed cause. If training simply converged, more epochs will not help: "
        "unfreeze the encoder, use a larger model, or stop earlier with "
        "keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)."
    ),
    fixes={
        "torch": (
            "Check the learning rate the optimizer actually uses (watch.history['lr']): a "
            "schedule that decays too fast freezes training — give "
            "get_linear_schedule_with_warmup the real num_training_steps (epochs * "
            "len(train_loader)) and call scheduler.step() once per optimizer step. Fix any "
            "listed cause. If training simply converged, more epochs will not help: unfreeze "
            "the encoder (requires_grad_(True)), use a larger model, or stop earlier (Trainer: "
            "EarlyStoppingCallback(early_stopping_patience=2))."
        ),
    },
)
