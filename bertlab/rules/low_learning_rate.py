"""low-learning-rate: the weights practically do not move, and the loss stays where it began."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import held_still, layer_name, update_ratios
from bertlab.rules.base import Context, Evidence, Rule

#: Judged over the latest WINDOW steps, once there are that many.
WINDOW = 30
#: Healthy training moves each layer's weights by about 1e-3 of their norm per step (the rule of
#: thumb of CS231n and Karpathy's "A Recipe for Training Neural Networks"); fine-tuning a
#: pretrained encoder typically 1e-5..1e-3 (BERT's 2e-5 with Adam moves weights of scale 0.02
#: by ~1e-3). "Practically do not move": the fastest layer's typical step in the window stays
#: below LOW_RATIO, two orders of magnitude under the 1e-3 rule and under the bottom of the
#: fine-tuning range (a typed 1e-8 instead of 1e-5 gives ~1e-7; 0 gives exactly 0). Typical: the
#: median over the window's steps that moved at all (a gradient-accumulation step that applies
#: nothing reads 0 and is left out), so one noisy step does not hide a stall (benchmark b45:
#: torch SGD at 5e-5, median 8e-6, one step at 2.8e-5).
LOW_RATIO = 1e-5
#: "Flat at its starting level": the latest steps' mean loss lies less than MAX_DROP below the
#: mean of the window's first START steps, and below that of the run's first START steps (batch
#: noise of the means stays well inside it): a run that learned and then let its schedule decay
#: at the end is not stuck.
START = 10
MAX_DROP = 0.1


def check(ctx: Context) -> Evidence | None:
    if ctx.n_steps < WINDOW:
        return None
    ratios = update_ratios(ctx)[-WINDOW:]
    grads = ctx.col("grad_norm")[-WINDOW:]
    loss = ctx.col("loss")[-WINDOW:]
    if ratios.shape[1] == 0 or not np.isfinite(ratios).any() or not np.isfinite(loss).all():
        return None
    # Gradients must reach the weights: with none, the step has nothing to apply whatever the
    # learning rate (dead-gradients names that).
    if not (np.isfinite(grads).all() and np.all(grads > 0)):
        return None
    # Layers with a gradient that move by exactly 0 are outside the PyTorch optimizer, not
    # slow (benchmark b42: the optimizer of an old network at lr 0.03): params-not-in-optimizer
    # names them; the rate is judged on the layers it reaches.
    if ctx.meta.get("unoptimized_params"):
        still = held_still(ctx, WINDOW)
        ratios = ratios.copy()
        ratios[:, still] = np.nan
        if not np.isfinite(ratios).any():
            return None
    lr = ctx.col("lr")[-WINDOW:]
    if np.isfinite(lr).all() and len(lr) and lr[-1] > lr[0] * 1.01:
        return None  # a warm-up still raising the rate: its first steps are small on purpose
    largest = float(np.nanmax(ratios))
    per_step = np.nanmax(np.where(np.isfinite(ratios), ratios, -1.0), axis=1)
    moved = per_step[per_step > 0]
    typical = float(np.median(moved)) if len(moved) else largest
    if typical >= LOW_RATIO:
        return None
    start, recent = float(loss[:START].mean()), float(loss[-START:].mean())
    first = ctx.col("loss")[:START]
    first = float(np.mean(first[np.isfinite(first)])) if np.isfinite(first).any() else start
    for level in (start, first):
        if level <= 0 or (level - recent) / level >= MAX_DROP:
            return None
    fastest = layer_name(ctx, int(np.nanargmax(np.nanmax(ratios, axis=0))))
    steps = ctx.step_range(ctx.n_steps - WINDOW)
    lr_text = ""
    if np.isfinite(lr).all() and len(lr):
        peak = float(np.nanmax(ctx.col("lr")))
        lr_text = f"; learning rate {lr[-1]:.2g}"
        if peak > 0 and lr[-1] < 0.01 * peak:
            lr_text += f", decayed from {peak:.2g}"
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: the fastest layer ({fastest}) moved its weights by a "
        f"median {typical:.1e} of their norm per step (largest {largest:.1e}); "
        "training needs ~1e-3 (1e-5–1e-3 when "
        f"fine-tuning); loss {start:.3g} at the start of the window, {recent:.3g} now{lr_text}",
        steps=steps,
        extra={"largest_ratio": largest, "typical_ratio": typical},
    )


RULE = Rule(
    check=check,
    code="low-learning-rate",
    severity="warning",
    phase="live",
    panel="gradients",
    rank=31,
    title="The weights practically do not move: learning rate far too small",
    explanation=(
        "Each optimizer step changes the weights by a tiny fraction of their size (the update "
        "ratio ||Δw||/||w||), orders of magnitude below the ~1e-3 of healthy training, so the "
        "loss stays at its starting level however long training runs. The usual causes are a "
        "learning rate typed with the wrong exponent (1e-8 for 1e-5), a schedule that decays "
        "to nothing within the first steps (decay_steps counted in epochs, not steps), or a "
        "learning rate of 0 left from a freeze."
    ),
    fix=(
        "Use a learning rate that moves the weights (fine-tuning: 2e-5..5e-5 with Adam; a small "
        "model from scratch: 1e-3), and give schedules the total number of steps:\n"
        "  schedule = keras.optimizers.schedules.CosineDecay(\n"
        "      2e-5, decay_steps=epochs * steps_per_epoch)\n"
        "  model.compile(optimizer=keras.optimizers.AdamW(schedule), loss=..., metrics=[...])\n"
        "Check what the optimizer really uses: watch.history['lr']."
    ),
    fixes={
        "torch": (
            "Use a learning rate that moves the weights (fine-tuning: 2e-5..5e-5 with AdamW; a "
            "small model from scratch: 1e-3), and give schedules the real number of steps:\n"
            "  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)\n"
            "  scheduler = transformers.get_linear_schedule_with_warmup(\n"
            "      optimizer, num_warmup_steps=total_steps // 10, "
            "num_training_steps=total_steps)  # total_steps = epochs * len(train_loader)\n"
            "Hugging Face Trainer: TrainingArguments(..., learning_rate=2e-5). Check what the "
            "optimizer really uses: watch.history['lr']."
        ),
    },
)
