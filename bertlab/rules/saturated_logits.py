"""saturated-logits: outputs pinned at 0/1 (or logits of huge magnitude) while the loss is high."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import chance, smoothing_floor
from bertlab.rules.base import Context, Evidence, Rule

#: Judged over the latest WINDOW steps.
WINDOW = 20
#: Saturated: the mean top probability (as the loss reads the outputs) is at least CONFIDENT...
CONFIDENT = 0.9
#: ...and the loss is OVERCONFIDENT times the loss the model itself expects (the mean entropy
#: of its predicted distributions, what a calibrated model would score) and at least HIGH_LOSS
#: times the no-information level: confidently wrong. Measured over 20-step windows: healthy
#: runs (the suite, noisy labels, class weights, label smoothing, tiny BERT) never exceed 1.05x
#: their own entropy (a model predicting the label frequencies scores 1x), 0.35-0.43x when
#: confident; outputs blown up by a too-high learning rate (Adam at 0.3-1, SGD+momentum at 2+)
#: reach 16-500x, and far more while exploding.
OVERCONFIDENT = 10.0
HIGH_LOSS = 0.5
#: Logits beyond this magnitude: exp(-100) underflows every other class to exactly 0 in float32,
#: so no gradient flows through them. Long healthy fine-tunes stay within ~20.
HUGE_LOGIT = 100.0


def _edge_share(ctx: Context) -> float | None:
    """Share of output values in the histogram's two edge bins over the window."""
    hist = ctx.col("out_hist")
    if hist.size == 0:
        return None
    counts = np.nansum(hist.reshape(ctx.n_steps, -1)[-WINDOW:], axis=0)
    total = counts.sum()
    return float((counts[0] + counts[-1]) / total) if total > 0 else None


def check(ctx: Context) -> Evidence | None:
    layout = ctx.layout
    if layout is None or layout.task == "regression" or ctx.n_steps < WINDOW:
        return None
    loss = ctx.col("loss")[-WINDOW:]
    conf = ctx.col("prob_max")[-WINDOW:]
    ent = ctx.col("prob_entropy")[-WINDOW:]
    if not (np.isfinite(loss).all() and np.isfinite(conf).all() and np.isfinite(ent).all()):
        return None
    level = chance(ctx, WINDOW, exact=False)
    mean_loss, mean_conf, mean_ent = float(loss.mean()), float(conf.mean()), float(ent.mean())
    floor = smoothing_floor(ctx)
    high = level is not None and mean_loss - floor >= HIGH_LOSS * (level - floor)
    confident = mean_conf >= CONFIDENT and mean_loss >= OVERCONFIDENT * mean_ent
    magnitude = np.fmax(np.abs(ctx.col("out_min")), np.abs(ctx.col("out_max")))[-WINDOW:]
    logits = layout.prob_mode in ("softmax", "sigmoid")
    huge = logits and bool(np.isfinite(magnitude).any()) and np.nanmedian(magnitude) >= HUGE_LOGIT
    wrong = high and (confident or huge)
    if not wrong and not huge:
        return None
    steps = ctx.step_range(ctx.n_steps - WINDOW)
    parts = [f"steps {steps[0]}–{steps[1]}: mean top probability {mean_conf:.4g}"]
    edge = _edge_share(ctx)
    if edge is not None and edge > 0:
        parts.append(f"{100 * edge:.0f} % of outputs in the histogram's edge bins")
    if huge:
        parts.append(f"logits up to {np.nanmax(magnitude):.3g} in magnitude")
    ratio = mean_loss / max(mean_ent, 1e-12)
    ref = f", no-information level {level:.3g}" if level is not None else ""
    parts.append(
        f"loss {mean_loss:.3g} vs {mean_ent:.2g} expected from the model's own confidence"
        f" (x{ratio:.3g}){ref}"
    )
    if wrong:
        return Evidence("; ".join(parts), steps=steps, extra={"ratio": ratio})
    return Evidence(
        "; ".join(parts) + " — predictions are right but infinitely confident",
        steps=steps,
        severity="info",
        title="Logits of huge magnitude",
    )


RULE = Rule(
    check=check,
    code="saturated-logits",
    severity="warning",
    phase="live",
    panel="outputs",
    rank=48,
    causes=(
        "logits-as-probabilities",
        "loss-activation-mismatch",
        "grads-not-zeroed",
        "high-learning-rate",
        "exploding-gradients",
    ),
    title="Saturated outputs: confidently wrong predictions",
    explanation=(
        "The output probabilities sit at 0 or 1, yet the loss is high: the model is certain "
        "and often wrong. A saturated softmax or sigmoid has a near-zero slope, and Keras clips "
        "probabilities to [1e-7, 1 - 1e-7], so a confidently wrong example costs ~16 nats but "
        "passes little or no gradient back: the loss stays stuck high (the classic 'loss stuck "
        "at 7.7' of a sigmoid classifier). Too large updates (learning rate) that blow the "
        "logits up are the usual cause."
    ),
    fix=(
        "Lower the learning rate, output logits and let the loss apply the squashing (more "
        "stable), and keep logits small with label smoothing:\n"
        "  outputs = keras.layers.Dense(K)(h)  # no activation\n"
        "  loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)\n"
        "  optimizer = keras.optimizers.Adam(2e-5, clipnorm=1.0)"
    ),
    fixes={
        "torch": (
            "Lower the learning rate, return logits and let the loss apply the squashing (more "
            "stable), and keep logits small with label smoothing:\n"
            "  self.head = nn.Linear(hidden, K)  # no softmax/sigmoid in forward()\n"
            "  loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)\n"
            "  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)\n"
            "  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # before "
            "optimizer.step()\n"
            "Hugging Face Trainer: TrainingArguments(label_smoothing_factor=0.1, "
            "learning_rate=2e-5)."
        ),
    },
    explanations={
        "torch": (
            "The output probabilities sit at 0 or 1, yet the loss is high: the model is "
            "certain and often wrong. A saturated softmax or sigmoid has a near-zero slope, so "
            "a confidently wrong example costs many nats (nn.BCELoss clamps its log at -100) "
            "but passes little or no gradient back through the activation: the loss stays "
            "stuck high. Too large updates (learning rate) that blow the logits up are the "
            "usual cause."
        ),
    },
)
