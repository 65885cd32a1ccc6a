"""chance-loss: the loss is stuck at the no-information level (ln K when classes are balanced)."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import informative, prior_hold, rel_trend
from bertlab.rules._stats import chance_loss
from bertlab.rules.base import Context, Evidence, Rule

#: Healthy runs often sit near chance for their first dozens of steps; judge only after this
#: many steps, over the latest WINDOW steps.
MIN_STEPS = 60
WINDOW = 40
#: "At chance": the window's mean loss within this relative distance of the chance level...
TOLERANCE = 0.05
#: ...and not trending down (relative drop of the loss over the window below this).
MAX_DROP = 0.03
#: A fitted downward trend this many standard errors below zero is a falling loss.
TREND_SE = 2.0


def check(ctx: Context) -> Evidence | None:
    layout = ctx.layout
    if layout is None or ctx.n_steps < MIN_STEPS or layout.task == "regression":
        return None
    loss = ctx.col("loss")[-WINDOW:]
    if not np.all(np.isfinite(loss)):
        return None
    n = ctx.n_steps
    labels = ctx.col("label_count").reshape(n, -1)[-WINDOW:]
    chance = chance_loss(labels, layout.task, ctx.col("batch_size")[-WINDOW:])
    if chance is None or chance <= 0:
        return None
    mean = float(loss.mean())
    half = len(loss) // 2
    drop = (loss[:half].mean() - loss[half:].mean()) / chance
    if abs(mean - chance) / chance > TOLERANCE or drop > MAX_DROP:
        return None
    # Near chance, but its probabilities already favour the true class, or the loss falls by
    # MAX_DROP along the fitted trend, by more than batch noise (two standard errors; benchmark
    # h14: -4.5 % ± 0.9 % over 40 steps, where the halves of the window differ by 2.3 %).
    if informative(ctx, WINDOW) is not None or prior_hold(ctx, RULE.causes) is not None:
        return None
    change, noise = rel_trend(loss)
    if change <= -MAX_DROP and change + TREND_SE * noise < 0:
        return None
    k = labels.shape[1]
    level = f"ln {k} = {np.log(k):.3f}" if layout.task == "multiclass" else f"{chance:.3f}"
    steps = ctx.step_range(n - len(loss))
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: mean batch loss {mean:.3f} vs no-information level "
        f"{chance:.3f} (label entropy; balanced classes give {level}), no downward trend",
        steps=steps,
    )


RULE = Rule(
    check=check,
    code="chance-loss",
    severity="warning",
    phase="live",
    panel="overview",
    rank=70,
    causes=(
        "double-softmax",
        "double-sigmoid",
        "multilabel-softmax",
        "high-unk-rate",
        "logits-as-probabilities",
        "loss-activation-mismatch",
        "label-format-mismatch",
        "params-not-in-optimizer",
        "high-learning-rate",
        "low-learning-rate",
        "single-class",
        "multilabel-collapse",
        "frozen-layers",
        "vanishing-gradients",
        "dead-gradients",
    ),
    title="The loss is stuck at the no-information level",
    explanation=(
        "A classifier that ignores its input and always predicts the label frequencies gets "
        "exactly this loss (ln K for K balanced classes). Sitting there for many steps means the "
        "model is not using the text at all: the updates are not reaching useful weights, or they "
        "are so large that the model keeps being reset to the safest constant answer."
    ),
    fix=(
        "Fix any listed cause first. Otherwise check the learning rate (2e-5 to 5e-5 for "
        "fine-tuning a pretrained encoder; higher for a model trained from scratch), that the "
        "labels match the inputs (shuffle x and y together), and that the encoder is trainable."
    ),
    fixes={
        "torch": (
            "Fix any listed cause first. Otherwise check the learning rate (2e-5 to 5e-5 for "
            "fine-tuning a pretrained encoder; higher for a model trained from scratch), that "
            "the labels match the inputs (shuffle ids and labels together, e.g. one Dataset of "
            "both), that the encoder's parameters have requires_grad=True and are in the "
            "optimizer, and that optimizer.step() runs after loss.backward()."
        ),
    },
)
