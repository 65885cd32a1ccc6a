"""dead-gradients: trainable layers whose gradient is exactly zero (or missing) step after step,
or logits clamped at 0 (a ReLU on the output) so that the clamped ones pass no gradient."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import layer_name, layer_norms, names, update_ratios
from bertlab.rules.base import Context, Evidence, Rule

#: A layer is dead when its gradient norm is exactly 0 in each of the latest WINDOW steps. One
#: step of zeros happens (a layer behind a zero-initialised one, the very first update); a
#: healthy layer never gets *exactly* zero for 20 batches running: even BERT's attention
#: query/key, the smallest gradients of a fresh tiny BERT, stay around 1e-4.
WINDOW = 20


#: How the loss reads the outputs when they are logits (``Layout.prob_mode``): a logit is any real
#: number, so one that is never below 0 and exactly 0 in every batch has been clamped.
_LOGIT_MODES = ("softmax", "sigmoid")


def _clamped_logits(ctx: Context) -> Evidence | None:
    """The loss reads logits, and every batch's smallest logit is exactly 0 (none below).

    A linear output takes continuous values: exactly 0 as the minimum of 20 batches running,
    never negative, means something clamps the logits at 0, a ReLU on the output layer
    (benchmark b34: 54 % of its validation logits are exactly 0). Where the ReLU is off the
    logit gets no gradient: the loss cannot push a wrong class's score down, and a class whose
    logit is 0 for every row can never be learned. Outputs whose mean is exactly 0 over the
    whole window are such classes.
    """
    layout = ctx.layout
    if layout is None or layout.prob_mode not in _LOGIT_MODES:
        return None
    lo, hi = ctx.col("out_min")[-WINDOW:], ctx.col("out_max")[-WINDOW:]
    if len(lo) < WINDOW or not (np.all(lo == 0) and np.all(hi > 0)):
        return None
    means = ctx.col("out_mean")[-WINDOW:].reshape(len(lo), -1)
    off = (
        [int(j) for j in np.flatnonzero(np.all(means == 0, axis=0))]
        if means.shape[1] == layout.n_outputs and np.isfinite(means).all()
        else []
    )
    steps = ctx.step_range(ctx.n_steps - WINDOW)
    act = ctx.facts.output_activation
    by = f"the output layer's {act} activation" if act not in (None, "linear") else "a clamp"
    text = (
        f"steps {steps[0]}–{steps[1]}: the loss reads the outputs as logits, yet no logit is "
        f"below 0 and the smallest is exactly 0 in every batch: {by} pins them at 0, and a "
        "logit held at 0 passes no gradient back"
    )
    if off:
        text += (
            f"; output{'s' if len(off) > 1 else ''} {', '.join(map(str, off))} "
            f"{'are' if len(off) > 1 else 'is'} 0 for every row of every batch: "
            f"{'those classes get' if len(off) > 1 else 'that class gets'} no gradient and "
            "can never be predicted"
        )
    return Evidence(
        text,
        steps=steps,
        title="Logits pinned at 0: the clamped outputs get no gradient",
        extra={"clamped_logits": True, "dead_outputs": off},
    )


def _count(ctx: Context, name: str) -> int:
    """Largest recorded value of a per-step count over the window (0 when not recorded)."""
    col = ctx.col(name)[-WINDOW:]
    col = col[np.isfinite(col)]
    return int(col.max()) if len(col) else 0


def _no_gradient_at_all(ctx: Context) -> Evidence | None:
    """Every variable's gradient is None: the loss does not depend on any trainable weight."""
    missing = ctx.col("grad_missing")[-WINDOW:]
    norm = ctx.col("grad_norm")[-WINDOW:]
    loss = ctx.col("loss")[-WINDOW:]
    if not (np.all(missing > 0) and np.all(np.isnan(norm)) and np.all(np.isfinite(loss))):
        return None
    steps = ctx.step_range(ctx.n_steps - len(norm))
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: none of the {int(missing[-1])} trainable variables got a "
        "gradient: the loss does not depend on any of them",
        steps=steps,
        severity="error",
        title="No gradient reaches any trainable weight",
    )


def _movement(ctx: Context, idx: list[int]) -> str:
    """What the dead layers' weights did over the window, from the update ratio.

    A layer that gets no gradient and moves by exactly 0 is what this rule names ("gets no
    gradient and does not move"). One that still moves without a gradient drifts on the
    optimizer's momentum or weight decay alone: it learns nothing from the loss either. A layer
    with a gradient that does not move is never counted here (the optimizer does not hold it:
    params-not-in-optimizer).
    """
    ratios = update_ratios(ctx)[-WINDOW:]
    if ratios.shape[1] == 0 or not np.isfinite(ratios[:, idx]).all():
        return ""
    sub = ratios[:, idx]
    still = np.all(sub == 0, axis=0)
    if still.all():
        who = "they get" if len(idx) > 1 else "it gets"
        verb = "do" if len(idx) > 1 else "does"
        return f"{who} no gradient and {verb} not move (update ratio exactly 0 in every step)"
    drift = [layer_name(ctx, idx[j]) for j in np.flatnonzero(~still)]
    largest = float(sub[:, ~still].max())
    return (
        f"{names(drift)} still move (update ratio up to {largest:.1e}) on the optimizer's "
        "momentum or weight decay alone, not on a gradient"
    )


def check(ctx: Context) -> Evidence | None:
    if ctx.n_steps < WINDOW:
        return None
    norms = layer_norms(ctx)[-WINDOW:]
    if norms.shape[1] == 0 or np.isnan(norms).all():
        return _no_gradient_at_all(ctx)
    dead = np.all(norms == 0, axis=0)  # NaN (not recorded) never counts as zero
    if not dead.any():
        return _clamped_logits(ctx)
    idx = [int(i) for i in np.flatnonzero(dead)]
    layers = [layer_name(ctx, i) for i in idx]
    # Where the dead stretch began: the last step at which one of these layers still moved.
    alive = np.any(layer_norms(ctx)[:, idx] != 0, axis=1)
    start = int(np.flatnonzero(alive)[-1]) + 1 if alive.any() else 0
    steps = ctx.step_range(start)
    missing, zero = _count(ctx, "grad_missing"), _count(ctx, "grad_zero")
    how = []
    if missing:
        how.append(f"{missing} variables get no gradient at all: not connected to the loss")
    if zero:
        how.append(f"{zero} variables get an all-zero gradient")
    moved = _movement(ctx, idx)
    if moved:
        how.insert(0, moved)
    every = len(idx) == norms.shape[1]
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: {len(idx)} of {norms.shape[1]} trainable layers got "
        f"exactly zero gradient in every step: {names(layers)}"
        + (f"; {'; '.join(how)}" if how else ""),
        steps=steps,
        severity="error" if every else None,
        title="No gradient reaches any trainable weight" if every else None,
        extra={"layers": layers},
    )


RULE = Rule(
    check=check,
    code="dead-gradients",
    severity="warning",
    phase="live",
    panel="gradients",
    rank=34,
    causes=("saturated-logits", "logits-as-probabilities", "high-learning-rate"),
    title="Trainable layers get no gradient",
    explanation=(
        "These weights are trainable but their gradient is exactly zero, so they never change. "
        "Either they are not on the path from the inputs to the loss (a branch whose output is "
        "computed but not used, an output without a loss, a stop_gradient), or every unit "
        "behind them is switched off: a ReLU layer whose inputs went negative for all examples "
        "('dead ReLU', often after a too-large update) passes no gradient back. Outputs "
        "saturated beyond the loss's clipping also give exactly zero. A ReLU on the output "
        "layer does it to the logits: a class whose logit is clamped at 0 gets no gradient, so "
        "the loss cannot lower a wrong class's score and a class clamped for every row is never "
        "learned."
    ),
    fix=(
        "If the layers should learn, connect their output to what the loss sees (return it, or "
        "add its output to the model's outputs with a loss). If they are meant to be unused, "
        "remove them or freeze them: `layer.trainable = False`. For dead ReLUs lower the "
        "learning rate and use `activation='gelu'` or `keras.layers.LeakyReLU()`, with "
        "`kernel_initializer='he_normal'`. Logits need no activation: "
        "`Dense(K)` with `from_logits=True`."
    ),
    fixes={
        "torch": (
            "If the layers should learn, connect their output to what the loss sees (use it in "
            "forward()). If they are meant to be unused, remove them or freeze them: `for p in "
            "layer.parameters(): p.requires_grad_(False)` (DistributedDataParallel also needs "
            "find_unused_parameters=True for unused ones). For dead ReLUs lower the learning "
            "rate and use `nn.GELU()` or `nn.LeakyReLU()`, with "
            "`nn.init.kaiming_normal_(linear.weight)`. Logits need no activation: end the "
            "model with `nn.Linear(hidden, K)`, no `nn.ReLU()` after it."
        ),
    },
)
