"""exploding-gradients: the global gradient norm spikes or grows by orders of magnitude."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import layer_name, layer_norms
from bertlab.rules.base import Context, Evidence, Rule

#: A spike is a step whose gradient norm is SPIKE times the median of the up to REF steps
#: before it (at least MIN_REF of them). Healthy runs (the healthy suite, tiny BERT, SGD with
#: momentum at 0.1, batches of 8) stay within ~5x of that median; 100x is two orders of
#: magnitude, the size at which one update wrecks what the previous ones built.
SPIKE = 100.0
REF = 50
MIN_REF = 10
#: A spike must also exceed the norm the window started with: once a model fits its batches
#: its gradients fall to ~1e-10 and the next imperfect batch is "1000x" that, harmlessly.
#: A spike keeps the finding live while it is among the latest RECENT steps.
RECENT = 50
#: Unbounded growth: the norm (median of SMOOTH steps) GROWTH times its level at the start of
#: the window while the loss got no better. Healthy runs grow a few times from initialisation
#: (tiny BERT: 4x); a model escaping a plateau grows too, but its loss falls meanwhile.
SMOOTH = 5
GROWTH = 1000.0


def _spike(g: np.ndarray) -> tuple[int, float] | None:
    """The largest recent spike as (position in ``g``, factor over its reference)."""
    lo = max(MIN_REF, len(g) - RECENT)
    if lo >= len(g):
        return None
    idx = np.arange(lo, len(g))
    if lo >= REF:  # full reference windows g[i - REF : i], all at once
        windows = np.lib.stride_tricks.sliding_window_view(g, REF)[lo - REF : len(g) - REF]
        refs = np.median(windows, axis=1)
    else:
        refs = np.array([np.median(g[max(0, i - REF) : i]) for i in idx])
    start = float(np.median(g[:MIN_REF]))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(refs > 0, g[idx] / refs, 0.0)
    hit = (factor >= SPIKE) & (g[idx] >= start)
    if not hit.any():
        return None
    best = int(np.argmax(np.where(hit, factor, 0.0)))
    return int(idx[best]), float(factor[best])


def _growth(g: np.ndarray, loss: np.ndarray) -> float | None:
    """Growth factor of the norm since the start of the window, when it is GROWTH-fold.

    Measured from the start (not from the lowest point): after a model has fit its batches,
    its gradients can fall to 1e-12 and any later batch is "1000x" that; only growth above
    where training (or the window) began counts.
    """
    if len(g) < 2 * SMOOTH:
        return None
    start, now = float(np.median(g[:SMOOTH])), float(np.median(g[-SMOOTH:]))
    factor = now / start if start > 0 else float("inf")
    if factor < GROWTH:
        return None
    loss_then, loss_now = np.nanmedian(loss[:SMOOTH]), np.nanmedian(loss[-SMOOTH:])
    if np.isfinite(loss_then) and np.isfinite(loss_now) and loss_now < loss_then:
        return None
    return factor


def _largest_layer(ctx: Context, p: int) -> str:
    """'; largest layer gradient: NAME (NORM)' at window position ``p``, or ''."""
    layers = layer_norms(ctx)
    if not layers.shape[1] or not np.isfinite(layers[p]).any():
        return ""
    top = int(np.nanargmax(layers[p]))
    return f"; largest layer gradient: {layer_name(ctx, top)} ({layers[p, top]:.3g})"


def check(ctx: Context) -> Evidence | None:
    norm = ctx.col("grad_norm")
    pos = np.flatnonzero(np.isfinite(norm))
    if len(pos) < 2 * SMOOTH:
        return None
    g = norm[pos]
    loss = ctx.col("loss")[pos]
    grown = _growth(g, loss)
    spike = _spike(g)
    if grown is None and spike is None:
        return None
    if grown is not None:
        # The step to show: the largest norm of the recent steps, with its largest layer.
        recent = pos[-RECENT:]
        peak = int(recent[np.argmax(norm[recent])])
        step = ctx.step_range(peak)[0]
        steps = (ctx.step_range(int(pos[0]))[0], ctx.step_range(int(pos[-1]))[1])
        return Evidence(
            f"steps {steps[0]}–{steps[1]}: gradient norm grew x{grown:.3g} from "
            f"{np.median(g[:SMOOTH]):.3g} to {np.median(g[-SMOOTH:]):.3g} "
            f"(medians of {SMOOTH} steps) while the loss did not improve; step {step}: norm "
            f"{norm[peak]:.3g}{_largest_layer(ctx, peak)}",
            steps=steps,
            severity="error",
            extra={"factor": grown},
        )
    i, factor = spike
    at = ctx.step_range(int(pos[i]))[0]
    ref = float(np.median(g[max(0, i - REF) : i]))
    return Evidence(
        f"step {at}: gradient norm {g[i]:.3g} is x{factor:.3g} the median {ref:.3g} of the "
        f"{min(i, REF)} steps before{_largest_layer(ctx, int(pos[i]))}",
        steps=(at, at),
        extra={"factor": factor},
    )


RULE = Rule(
    check=check,
    code="exploding-gradients",
    severity="warning",
    phase="live",
    panel="gradients",
    rank=35,
    # unshuffled-batches: a class-sorted stream pulls the output layer to a new class with
    # every boundary, in large, alternating steps (benchmark b13).
    causes=("grads-not-zeroed", "high-learning-rate", "unshuffled-batches"),
    title="Exploding gradients",
    explanation=(
        "The gradient norm jumped by orders of magnitude. An update is the learning rate times "
        "the gradient, so such a step throws the weights far from where training had brought "
        "them; when each overshoot makes the next gradient larger, the norm grows without bound "
        "and the loss soon becomes inf/NaN. Typical causes are a learning rate too high for the "
        "optimizer (SGD/momentum especially), no gradient clipping, or a batch with extreme "
        "inputs or labels."
    ),
    fix=(
        "Clip the gradient norm and lower the learning rate:\n"
        "  keras.optimizers.Adam(learning_rate=2e-5, clipnorm=1.0)\n"
        "For a single spike, look at that batch's inputs and labels (outliers, wrong scale)."
    ),
    fixes={
        "torch": (
            "Clip the gradient norm and lower the learning rate:\n"
            "  loss.backward()\n"
            "  torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
            "  optimizer.step()\n"
            "  # optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)\n"
            "Hugging Face Trainer: TrainingArguments(max_grad_norm=1.0, learning_rate=2e-5) "
            "(1.0 is the default: check it is not 0 or None).\n"
            "For a single spike, look at that batch's inputs and labels (outliers, wrong scale)."
        ),
    },
)
