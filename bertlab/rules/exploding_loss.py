"""exploding-loss: the batch loss climbs far above the best level it reached, and keeps climbing."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import chance, finite_loss, rolling_median
from bertlab.rules.base import Context, Evidence, Rule

#: The loss level is the median of SMOOTH consecutive batches: one batch of hard examples
#: (a 3x batch loss is ordinary with class weights or batches of 8) moves a median of 10 little.
SMOOTH = 10
#: A loss 100x above the best level it reached has diverged, whatever it does next.
DIVERGED = 100.0
#: A loss 20x above its best level that is still climbing (the fitted trend over the last
#: RISE_SPAN finite steps multiplies it by RISE or more) is exploding. Too-high learning rates
#: that merely make the loss jump around (Adam at 1.0 on noisy labels) drift up to ~10x:
#: that is oscillating-loss.
RATIO = 20.0
RISE_SPAN = 30
RISE = 3.0
#: Unbounded without NaN: the epoch's mean training loss rose in each of the last EPOCH_RISES
#: epochs, to EPOCH_RATIO times where the rise began and above the no-information level (or the
#: first epoch's loss): a model that gets worse epoch after epoch, too slowly for the batch
#: window (a schedule that grows the learning rate, decay_rate > 1). Healthy runs, overfitting
#: ones included, lower their training loss; noise at a plateau moves it by percents.
EPOCH_RISES = 3
EPOCH_RATIO = 2.0


def _epoch_losses(ctx: Context) -> list[float]:
    losses = [r.get("loss") for r in ctx.epochs]
    return [float(v) for v in losses if isinstance(v, (int, float))]


def _epochs_growing(ctx: Context) -> Evidence | None:
    """The epoch losses keep growing while staying finite."""
    losses = _epoch_losses(ctx)
    if len(losses) < EPOCH_RISES + 1 or not np.isfinite(losses[-EPOCH_RISES - 1 :]).all():
        return None
    tail = losses[-EPOCH_RISES - 1 :]
    if any(b <= a for a, b in zip(tail, tail[1:], strict=False)):
        return None
    if tail[-1] < EPOCH_RATIO * tail[0]:
        return None
    level = chance(ctx, exact=False)
    ceiling = level if level is not None else losses[0]
    if tail[-1] < ceiling:
        return None
    first = len(ctx.epochs) - EPOCH_RISES  # 1-based number of the epoch the rise began after
    ref = f"the no-information level {level:.3g}" if level is not None else "the first epoch's"
    return Evidence(
        f"epochs {first}–{len(ctx.epochs)}: the mean training loss rose every epoch, "
        + " → ".join(f"{v:.3g}" for v in tail)
        + f" (x{tail[-1] / tail[0]:.3g}), above {ref}, finite but unbounded",
        extra={"ratio": tail[-1] / tail[0], "epoch_losses": tail},
    )


def _rising(values: np.ndarray) -> float:
    """Factor by which the log-linear trend of the last RISE_SPAN values grows over them."""
    tail = np.log(np.maximum(values[-RISE_SPAN:], 1e-12))
    if len(tail) < RISE_SPAN // 2:
        return 1.0
    t = np.arange(len(tail), dtype=float)
    return float(np.exp(np.polyfit(t, tail, 1)[0] * (len(tail) - 1)))


def check(ctx: Context) -> Evidence | None:
    return _batches_exploding(ctx) or _epochs_growing(ctx)


def _batches_exploding(ctx: Context) -> Evidence | None:
    values, pos = finite_loss(ctx)
    if len(values) < 2 * SMOOTH:
        return None
    med = rolling_median(values, SMOOTH)
    latest = float(med[-1])
    earlier = med[:-SMOOTH]  # levels of windows that end before the latest one begins
    best_i = int(np.argmin(earlier))
    best = max(float(earlier[best_i]), 1e-12)
    # "Far above" must also mean worse than knowing nothing: above the no-information level
    # for classifiers, above the starting level otherwise (a restart of a cyclic schedule
    # lifts a converged loss many times but not above where training began).
    level = chance(ctx)
    ceiling = level if level is not None else float(med[0])
    if latest < ceiling:
        return None
    ratio = latest / best
    growth = _rising(values)
    if ratio < DIVERGED and (ratio < RATIO or growth < RISE):
        return None
    start = ctx.step_range(int(pos[best_i]))[0]
    steps = (start, ctx.step_range(int(pos[-1]))[1])
    trend = f", still x{growth:.3g} over the last {RISE_SPAN} steps" if growth >= RISE else ""
    ref = f"the no-information level {level:.3g}" if level is not None else "its starting level"
    nonfinite = int(np.sum(~np.isfinite(ctx.col("loss"))))
    tail = f"; {nonfinite} later batch losses are NaN/inf" if nonfinite else ""
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: batch loss (median of {SMOOTH} steps) rose from "
        f"{best:.3g} to {latest:.3g} (x{ratio:.3g}){trend}, far above {ref}{tail}",
        steps=steps,
        extra={"ratio": ratio},
    )


RULE = Rule(
    check=check,
    code="exploding-loss",
    severity="error",
    phase="live",
    panel="overview",
    rank=45,
    causes=("grads-not-zeroed", "high-learning-rate", "exploding-gradients"),
    title="The loss is exploding",
    explanation=(
        "The loss climbed many times above the best level it had reached and keeps climbing, so "
        "the updates are making the model worse: each step overshoots so far that the next "
        "gradient is larger still. The usual cause is a learning rate far too high for the "
        "optimizer (plain SGD or momentum above ~0.1 on this kind of model), sometimes without "
        "gradient clipping; left alone the loss becomes inf and then NaN."
    ),
    fix=(
        "Lower the learning rate 10-100x and clip the gradient norm:\n"
        "  keras.optimizers.Adam(learning_rate=2e-5, clipnorm=1.0)  # fine-tuning\n"
        "  keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, clipnorm=1.0)\n"
        "A warm-up (keras.optimizers.schedules with a rising start) helps for transformers."
    ),
    fixes={
        "torch": (
            "Lower the learning rate 10-100x and clip the gradient norm:\n"
            "  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)  # fine-tuning\n"
            "  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # between backward() "
            "and step()\n"
            "A warm-up helps for transformers: "
            "transformers.get_linear_schedule_with_warmup(optimizer, num_warmup_steps, "
            "num_training_steps). Hugging Face Trainer: TrainingArguments(learning_rate=2e-5, "
            "warmup_steps=0.1, max_grad_norm=1.0)."
        ),
    },
)
