"""oscillating-loss: the batch loss keeps swinging up and down by more than its own level."""

from __future__ import annotations

import math

import numpy as np

from bertlab.rules._dynamics import chance, rel_slope
from bertlab.rules.base import Context, Evidence, Rule

#: The loss is read per group of consecutive steps holding at least MIN_SAMPLES samples (1
#: step at batch size 32, 8 steps at batch size 4): the loss of 4 samples swings 0.1 <-> 0.9
#: by batch composition alone (measured: noisy binary labels, batch size 4), that of 32 does
#: not. Judged over the latest WINDOW groups (at most MAX_STEPS steps).
MIN_SAMPLES = 32
#: With sample or class weights in the loss, a batch's loss also depends on how many heavily
#: weighted rows it drew (Kish's design effect, 1 + CV^2 of the weights: class weights for a
#: class 7x rarer give ~2-4), so the loss is read over this many times more samples (benchmark
#: h11, balanced class weights on 87/13 topics: raised in one run of four read per batch,
#: in none of three since).
WEIGHTED_FACTOR = 4
WINDOW = 40
MAX_STEPS = 1024
#: A swing is a move of the group loss, up or down, by at least SWING x the scale, where the
#: scale is the window's median loss but no less than FLOOR x the no-information level (near
#: 0 a loss of 0.01 vs 0.1 is a 10x swing and means nothing). Losses without such a level
#: (regression, custom losses) are not judged.
SWING = 1.0
FLOOR = 0.5
#: Oscillating: at least MIN_SWINGS alternating swings in the window, with no downward trend
#: (the fitted line falls less than MAX_DROP of the level over the window). Measured on real
#: runs (every window of every step): the healthy suite and longer healthy runs (noisy labels
#: at batch sizes 4 and 8, class weights, SGD+momentum 0.1, tiny BERT) show 0 swings even at
#: SWING 0.5; Adam at lr 0.3-1.0, a sigmoid output at lr 1.0 and SGD+momentum at lr 1-2 on
#: noisy labels show 5-15 at SWING 1.0.
MIN_SWINGS = 4
MAX_DROP = 0.3


def swings(values: np.ndarray, size: float) -> int:
    """Number of alternating moves of at least ``size`` (a zig-zag count).

    A move continues while the values keep going its way; it only counts again once they turn
    back by ``size`` or more, so a slow drift or a single spike counts once or twice, not more.
    """
    count, state, pivot = 0, 0, float(values[0])
    for v in map(float, values[1:]):
        if (state == 1 and v > pivot) or (state == -1 and v < pivot):
            pivot = v  # the current move goes on
        elif abs(v - pivot) >= size:
            count, state, pivot = count + 1, (1 if v > pivot else -1), v
    return count


def grouped_loss(ctx: Context) -> tuple[np.ndarray, int] | None:
    """Sample-weighted mean loss of the latest WINDOW groups of steps, and the group size."""
    sizes = ctx.col("batch_size")
    if not len(sizes) or not np.isfinite(sizes).all() or np.median(sizes) <= 0:
        return None
    samples = MIN_SAMPLES * (WEIGHTED_FACTOR if ctx.meta.get("sample_weight") else 1)
    group = min(max(1, math.ceil(samples / float(np.median(sizes)))), MAX_STEPS // WINDOW)
    span = WINDOW * group
    if ctx.n_steps < span:
        return None
    loss, sizes = ctx.col("loss")[-span:], sizes[-span:]
    if not np.isfinite(loss).all():
        return None
    total = (loss * sizes).reshape(WINDOW, group).sum(axis=1)
    return total / sizes.reshape(WINDOW, group).sum(axis=1), group


def check(ctx: Context) -> Evidence | None:
    if "exploding-loss" in ctx.live:
        return None
    grouped = grouped_loss(ctx)
    if grouped is None:
        return None
    loss, group = grouped
    # Without a no-information level (regression, a custom loss) there is no scale to tell a
    # swing from the noise of a converged loss (a healthy MSE near its floor swings 2x).
    level = chance(ctx, WINDOW * group, exact=False)
    if level is None:
        return None
    median = float(np.median(loss))
    scale = max(median, FLOOR * level)
    count = swings(loss, SWING * scale)
    change = rel_slope(loss)
    if count < MIN_SWINGS or change < -MAX_DROP:
        return None
    steps = ctx.step_range(ctx.n_steps - WINDOW * group)
    ref = f"; no-information level {level:.3g}"
    what = "batch loss" if group == 1 else f"loss (mean of {group} steps)"
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: the {what} swung up and down {count} times by "
        f"{SWING * scale:.3g} or more (median {median:.3g}, range {loss.min():.3g}–"
        f"{loss.max():.3g}), fitted trend {100 * change:+.0f} %{ref}",
        steps=steps,
        extra={"swings": count},
    )


RULE = Rule(
    check=check,
    code="oscillating-loss",
    severity="warning",
    phase="live",
    panel="overview",
    rank=50,
    causes=(
        "grads-not-zeroed",
        "high-learning-rate",
        "exploding-gradients",
        "saturated-logits",
        # a class-sorted stream: every batch a new single-class objective, the loss jumps at
        # each class boundary
        "unshuffled-batches",
    ),
    title="The loss oscillates instead of going down",
    explanation=(
        "The loss keeps jumping between low and high values, by more than its own level, "
        "without a downward trend. Each update overshoots: the step is so large that the model "
        "lands on the other side of the valley and the next batch undoes it. That is a learning "
        "rate too high for the optimizer (momentum makes SGD overshoot for several steps in a "
        "row), not the ordinary batch-to-batch noise of small batches, which is much smaller."
    ),
    fix=(
        "Lower the learning rate (3-10x), or add warm-up and decay:\n"
        "  schedule = keras.optimizers.schedules.CosineDecay(\n"
        "      0.0, decay_steps=total_steps, warmup_target=2e-5, warmup_steps=total_steps // 10)\n"
        "  keras.optimizers.Adam(2e-5, clipnorm=1.0)  # fine-tuning a pretrained encoder\n"
        "With SGD, lower the learning rate or the momentum (0.9 -> 0.5)."
    ),
    fixes={
        "torch": (
            "Lower the learning rate (3-10x), or add warm-up and decay:\n"
            "  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)  # fine-tuning a "
            "pretrained encoder\n"
            "  scheduler = transformers.get_cosine_schedule_with_warmup(\n"
            "      optimizer, num_warmup_steps=total_steps // 10, "
            "num_training_steps=total_steps)\n"
            "  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # before "
            "optimizer.step()\n"
            "Hugging Face Trainer: TrainingArguments(learning_rate=2e-5, warmup_steps=0.1, "
            "lr_scheduler_type='cosine'). With SGD, lower the learning rate or the momentum "
            "(0.9 -> 0.5)."
        ),
    },
)
