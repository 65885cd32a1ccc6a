"""Helpers shared by the training-dynamics rules (loss curves and gradient norms; pure numpy)."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import binary_entropy, chance_loss
from bertlab.rules.base import Context


def rolling_median(x: np.ndarray, width: int) -> np.ndarray:
    """Median of every run of ``width`` consecutive values (``len(x) - width + 1`` of them).

    A median of a few steps keeps the level of a curve and drops single-batch outliers (a
    batch of hard examples), which a mean would smear over the neighbouring steps.
    """
    x = np.asarray(x, dtype=float)
    if len(x) < width:
        return np.empty(0)
    return np.median(np.lib.stride_tricks.sliding_window_view(x, width), axis=1)


def finite_loss(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """The finite batch losses of the window and their window positions."""
    loss = ctx.col("loss")
    pos = np.flatnonzero(np.isfinite(loss))
    return loss[pos], pos


def chance(ctx: Context, last: int | None = None, exact: bool = True) -> float | None:
    """No-information loss of the labels seen in the last ``last`` steps (all if None).

    ``None`` for regression, when no labels were recorded, when the loss is not a plain
    cross-entropy (the chance level of a hinge, MSE or focal loss is not the label entropy), or,
    if ``exact``, when sample/class weights reach the loss (the weighted loss of a constant
    guess differs; ``exact=False`` still gives the unweighted level as a rough scale).
    """
    layout = ctx.layout
    if layout is None or layout.task == "regression" or ctx.n_steps == 0:
        return None
    if exact and ctx.meta.get("sample_weight") is True:
        return None
    name = (ctx.facts.loss or "crossentropy").lower()
    if "crossentropy" not in name or "focal" in name:
        return None
    labels = ctx.col("label_count").reshape(ctx.n_steps, -1)
    sizes = ctx.col("batch_size")
    if last is not None:
        labels, sizes = labels[-last:], sizes[-last:]
    level = chance_loss(labels, layout.task, sizes)
    return level if level is not None and level > 0 else None


def smoothing_floor(ctx: Context) -> float:
    """Lowest loss reachable with the loss's label smoothing (0 without smoothing).

    Smoothed targets are never one-hot, so even a perfect model keeps their entropy as loss:
    K classes, smoothing e: target 1 - e + e/K on the true class and e/K on the others; binary
    targets become e/2 and 1 - e/2.
    """
    eps = float(ctx.facts.label_smoothing or 0.0)
    layout = ctx.layout
    if eps <= 0 or layout is None:
        return 0.0
    if layout.task == "multiclass" and layout.n_outputs > 1:
        k = layout.n_outputs
        q = np.array([1 - eps + eps / k] + [eps / k] * (k - 1))
        return float(-(q * np.log(q)).sum())
    return float(binary_entropy(np.array(eps / 2)))


def layer_matrix(ctx: Context, channel: str) -> np.ndarray:
    """A per-layer channel (one value per gradient group) as (steps, layers); (steps, 0) when
    not recorded (no layout, no gradient groups, or a run saved before the channel existed)."""
    layout = ctx.layout
    width = len(layout.layers) if layout is not None else 0
    col = ctx.col(channel)
    if width == 0 or col.size == 0:
        return np.empty((ctx.n_steps, 0))
    return col.reshape(len(col), width)


def layer_norms(ctx: Context) -> np.ndarray:
    """Per-layer gradient norms as (steps, layers); (steps, 0) when not recorded."""
    return layer_matrix(ctx, "grad_layer_norm")


def update_ratios(ctx: Context) -> np.ndarray:
    """Per-layer update ratios ||w_after - w_before|| / ||w_before|| as (steps, layers);
    (steps, 0) when not recorded."""
    return layer_matrix(ctx, "update_ratio")


def held_still(ctx: Context, last: int | None = None) -> list[int]:
    """Gradient groups that got a non-zero gradient in every one of the last ``last`` steps
    (all if None) and moved by exactly 0 in each: trainable and connected to the loss, but no
    optimizer step applies anything to them (a PyTorch optimizer that does not hold them)."""
    grads, ratios = layer_norms(ctx), update_ratios(ctx)
    if ratios.shape[1] == 0 or ratios.shape != grads.shape or len(ratios) == 0:
        return []
    if last is not None:
        grads, ratios = grads[-last:], ratios[-last:]
    still = np.all(ratios == 0, axis=0) & np.all(grads > 0, axis=0)
    return [int(i) for i in np.flatnonzero(still)]


#: Steps over which ``encoder_pace`` takes the median: long enough that one large step (Adam's
#: first, or a batch of hard examples) does not count as a pace, short enough to catch the burst
#: of a schedule's peak before a wrecked model's gradients fade (benchmark b28: the encoder's
#: median layer moved 0.46 of its norm in step 0, 0.1 over its fastest 10–20 steps, 6e-4 at the
#: end of the run).
PACE_WINDOW = 10


def encoder_pace(ctx: Context) -> tuple[float, str, tuple[int, int]] | None:
    """How fast the encoder's weights moved at their fastest: the largest median, over
    PACE_WINDOW consecutive steps, of the per-step median update ratio of the encoder's layers;
    with the fastest encoder layer of that stretch and its steps. None when not measured.

    The encoder is every gradient group but the last, the classifier head (both probes list
    groups in the model's own order, the head built last); with a single group (a frozen
    encoder under a head) there is no encoder to measure. The median layer, not the fastest:
    LayerNorm scales (≈1) and a fresh pooler move at their own paces.
    """
    ratios = update_ratios(ctx)
    if ratios.shape[1] < 2:
        return None
    enc = ratios[:, :-1]
    seen = np.isfinite(enc).any(axis=1)
    if seen.sum() < PACE_WINDOW:
        return None
    per_step = np.full(len(enc), np.nan)
    per_step[seen] = np.nanmedian(enc[seen], axis=1)
    rows = np.flatnonzero(seen)
    paces = rolling_median(per_step[rows], PACE_WINDOW)
    at = int(np.argmax(paces))
    stretch = enc[rows[at] : rows[at + PACE_WINDOW - 1] + 1]
    with np.errstate(all="ignore"):
        fastest = int(np.nanargmax(np.nanmedian(np.where(np.isfinite(stretch), stretch, -1), 0)))
    steps = ctx.step_range(int(rows[at]), int(rows[at + PACE_WINDOW - 1]) + 1)
    return float(paces[at]), layer_name(ctx, fastest), steps


def layer_name(ctx: Context, i: int) -> str:
    """Name of gradient group ``i`` (its layer path)."""
    layers = ctx.layout.layers if ctx.layout is not None else ()
    return layers[i] if 0 <= i < len(layers) else f"layer {i}"


def names(items: list[str], most: int = 4) -> str:
    """A short comma-separated list: the first ``most`` items and how many more."""
    head = ", ".join(items[:most])
    return head + (f" and {len(items) - most} more" if len(items) > most else "")


def rel_slope(y: np.ndarray) -> float:
    """Least-squares change of ``y`` over its whole span, relative to its mean level.

    -0.1 means the fitted line falls by 10 % of the level from the first to the last value.
    """
    return rel_trend(y)[0]


def rel_trend(y: np.ndarray) -> tuple[float, float]:
    """``rel_slope`` of ``y`` and its standard error (how far batch noise can move it)."""
    y = np.asarray(y, dtype=float)
    level = abs(float(np.mean(y))) if len(y) else 0.0
    if len(y) < 3 or level <= 0:
        return 0.0, float("inf")
    t = np.arange(len(y), dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    resid = y - (slope * t + intercept)
    se = np.sqrt(np.sum(resid**2) / (len(y) - 2) / np.sum((t - t.mean()) ** 2))
    span = (len(y) - 1) / level
    return float(slope * span), float(se * span)


#: Noise allowance of ``informative``: the window's mean of (loss − entropy of the
#: model's own predictions) must be below zero by this many standard errors.
INFO_SE = 2.0
#: ...and by at least this much (nats): labels the model cannot learn (random labels, memorised
#: slowly) read -0.004 to -0.006 with a standard error of 0.002; slow healthy learners read
#: -0.015 to -0.05 (benchmarks h12, h14).
INFO_GAP = 0.01


def informative(ctx: Context, last: int) -> float | None:
    """The mean (loss − own prediction entropy) of the last ``last`` steps when it is below zero
    by more than batch noise and by INFO_GAP, else None.

    A model whose predictions carry no information about the labels (a fresh symmetric head, a
    constant answer at the label frequencies, a dead network) scores a loss equal to or above
    the entropy of its own predictions; only one that already gives the true class more than its
    average confidence scores below it. So a clearly negative gap means learning, even while
    every argmax is the same class and the loss is still near the no-information level
    (benchmark h12: −0.03 to −0.05 nats while predicting one class for 80 steps).
    """
    loss = ctx.col("loss")[-last:]
    own = ctx.col("prob_entropy")[-last:]
    if len(loss) != len(own) or len(loss) < 3:
        return None
    gap = loss - own
    gap = gap[np.isfinite(gap)]
    if len(gap) < 3:
        return None
    mean = float(gap.mean())
    se = float(gap.std(ddof=1) / np.sqrt(len(gap)))
    return mean if mean + INFO_SE * se < 0 and mean <= -INFO_GAP else None


#: Passes over the training data during which a model that sits at the no-information level
#: with no committed wrong answer and no named cause is taken to be a slow learner that has
#: fitted the label prior but not yet the features: keras-io's embedding + pooling recipes leave
#: the prior after 1-2.5 epochs (benchmark h03: a 77/23 binary task, 2.4 epochs; h04: three
#: tags, 1.3 epochs). A committed constant answer, a named cause (a learning rate, a frozen
#: encoder, a loss/activation mismatch...) or an unknown epoch length is never held.
PRIOR_EPOCHS = 2
#: After that, a validation loss that fell by at least this share from each epoch to the next
#: over the last two or three epochs is learning: the same validation rows every epoch make the
#: difference paired, far less noisy than batch losses (h04: 0.664, 0.654, 0.640...; h03:
#: 0.551, 0.525, 0.489... while every validation prediction is still the majority class).
VAL_FALL = 0.005


def prior_hold(ctx: Context, causes: tuple[str, ...]) -> str | None:
    """Why a model at the no-information level is still taken to be learning, or None.

    Used by the rules that name a model stuck at the label prior (single-class without a
    committed answer, chance-loss, multilabel-collapse): a slow but healthy learner sits there
    for its first passes over the data, a broken one stays.
    """
    if ctx.live & set(causes):
        return None
    per_epoch = ctx.meta.get("steps_per_epoch")
    steps = ctx.col("step")
    if not per_epoch or not len(steps):
        return None
    if float(steps[-1]) + 1 < PRIOR_EPOCHS * float(per_epoch):
        return f"within the first {PRIOR_EPOCHS} passes over the training data"
    val = [e.get("val_loss") for e in ctx.epochs[-3:]]
    if len(val) < 2 or not all(v is not None and np.isfinite(v) for v in val):
        return None
    level = _val_level(ctx)
    falling = all(b <= a * (1 - VAL_FALL) for a, b in zip(val, val[1:], strict=False))
    # Below the validation labels' no-information level, not merely approaching it from above
    # (a model settling on the prior also lowers its loss for a while: benchmark b16).
    if falling and level is not None and val[-1] < level:
        return "the validation loss keeps falling epoch after epoch, below the label prior's"
    return None


def behind_prior(ctx: Context) -> str | None:
    """Why the model has not even matched the label frequencies after PRIOR_EPOCHS passes, or
    None: the last validation loss is still at or above its labels' no-information level.

    A model that is still lowering its loss toward the label prior is given time (its outputs
    start far from the label frequencies); after PRIOR_EPOCHS passes over the training data a
    validation loss that has not reached even the constant guess of those frequencies means
    the falling loss was the outputs sinking toward the prior, not features being learned
    (benchmark b17: 64 labels, 2 on per row, validation loss 0.55, 0.30, 0.17 against a
    level of 0.135 while 59 of 64 labels are never predicted).
    """
    per_epoch = ctx.meta.get("steps_per_epoch")
    steps = ctx.col("step")
    if not per_epoch or not len(steps) or not ctx.epochs:
        return None
    if float(steps[-1]) + 1 < PRIOR_EPOCHS * float(per_epoch):
        return None
    val = ctx.epochs[-1].get("val_loss")
    level = _val_level(ctx)
    if val is None or level is None or not np.isfinite(val) or val < level:
        return None
    return (
        f"after {len(ctx.epochs)} passes over the training data the validation loss {val:.3g} "
        f"is still above {level:.3g}, what predicting the label frequencies gives"
    )


def _val_level(ctx: Context) -> float | None:
    """No-information loss of the last epoch's validation labels (their entropy)."""
    last = ctx.epochs[-1]
    counts, rows = last.get("val_label_count"), last.get("val_samples")
    layout = ctx.layout
    if counts is None or layout is None:
        return None
    counts = np.asarray(counts, dtype=float).ravel()
    rows = float(rows) if rows else float(counts.sum())
    return chance_loss(counts[None, :], layout.task, np.array([rows]))
