"""vanishing-gradients: the first layers get gradients orders of magnitude below the last ones."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import chance, layer_name, layer_norms
from bertlab.rules.base import Context, Evidence, Rule

#: Judged over the latest WINDOW steps (median per step ratio), so one odd batch does not count.
WINDOW = 30
#: "Early" and "late" layers: the first and last EDGE share of the gradient groups (at least
#: one each), in the model's variable order (embeddings first, the head last).
EDGE = 0.25
#: Largest early-layer norm / largest late-layer norm below this = vanished. Measured per step
#: (min / median): tiny BERT (1 layer, 4 classes) at lr 1e-3 0.065 / 0.14, at 5e-5 0.25 / 0.55;
#: the healthy suite's Embedding -> Dense models 0.28 / 0.44-0.73; noisy labels at batch size
#: 4-8 0.2 / 1.5; a 10-layer tanh stack 0.26 / 1.9. Sigmoid stacks: 6 layers 4e-5 / 9e-5,
#: 10 layers 4e-7 / 4e-6. 1e-3 is 65x below the smallest healthy value.
RATIO = 1e-3
#: Or every gradient is this close to zero (global norm) while the loss is at least LOSS_FAR
#: times the no-information level: nothing reaches the weights although the model is wrong.
TINY_NORM = 1e-6
LOSS_FAR = 0.5
#: Mean top probability from which the evidence names saturated outputs as the reason.
SATURATED = 0.99


def _edges(n_layers: int) -> tuple[slice, slice]:
    k = max(1, int(round(EDGE * n_layers)))
    return slice(0, k), slice(n_layers - k, n_layers)


def _ratio(ctx: Context, norms: np.ndarray) -> Evidence | None:
    early, late = _edges(norms.shape[1])
    # Exactly-zero layers get no gradient at all: that is dead-gradients, not vanishing.
    top_early = norms[:, early].max(axis=1)
    top_late = norms[:, late].max(axis=1)
    usable = (top_early > 0) & (top_late > 0)
    ratio = top_early[usable] / top_late[usable]
    if len(ratio) < WINDOW // 2:
        return None
    typical = float(np.median(ratio))
    if typical >= RATIO:
        return None
    med = np.median(norms, axis=0)
    shown = [0, 1, norms.shape[1] - 2, norms.shape[1] - 1] if norms.shape[1] > 4 else None
    idx = shown or list(range(norms.shape[1]))
    chain = " → ".join(f"{layer_name(ctx, i)} {med[i]:.2g}" for i in dict.fromkeys(idx))
    steps = ctx.step_range(ctx.n_steps - len(norms))
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: the first layers' gradients are {typical:.2g} times the "
        f"last layers' (median over {len(norms)} steps); median norm per layer, first to last: "
        f"{chain}",
        steps=steps,
        extra={"ratio": typical},
    )


def _global(ctx: Context) -> Evidence | None:
    norm = ctx.col("grad_norm")[-WINDOW:]
    loss = ctx.col("loss")[-WINDOW:]
    level = chance(ctx, WINDOW, exact=False)
    if level is None or not np.isfinite(norm).all() or not np.isfinite(loss).all():
        return None
    typical, mean_loss = float(np.median(norm)), float(loss.mean())
    if not 0 < typical < TINY_NORM or mean_loss < LOSS_FAR * level:
        return None
    steps = ctx.step_range(ctx.n_steps - len(norm))
    conf = ctx.col("prob_max")[-WINDOW:]
    saturated = ""
    if len(conf) and np.isfinite(conf).all() and conf.mean() >= SATURATED:
        saturated = (
            f"; the outputs are saturated (mean top probability {conf.mean():.4g}), and a "
            "saturated sigmoid/softmax passes almost no gradient back"
        )
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: global gradient norm {typical:.2g} (median) while the "
        f"loss is {mean_loss:.3g}, no-information level {level:.3g}{saturated}",
        steps=steps,
        extra={"norm": typical},
    )


def check(ctx: Context) -> Evidence | None:
    if ctx.n_steps < WINDOW:
        return None
    norms = layer_norms(ctx)[-WINDOW:]
    if norms.shape[1] >= 2 and np.isfinite(norms).all():
        found = _ratio(ctx, norms)
        if found is not None:
            return found
    return _global(ctx)


RULE = Rule(
    check=check,
    code="vanishing-gradients",
    severity="warning",
    phase="live",
    panel="gradients",
    rank=36,
    causes=("saturated-logits", "logits-as-probabilities", "high-learning-rate"),
    title="Vanishing gradients: the first layers barely learn",
    explanation=(
        "Backpropagation multiplies the gradient by each layer's derivative on its way to the "
        "input. Saturating activations (sigmoid, tanh) and badly scaled initialisations shrink "
        "it at every layer, so after a few layers the embeddings and first layers receive almost "
        "nothing and stay where they were initialised, while only the head trains. In a healthy "
        "BERT the embedding gradients are smaller than the head's, but not by orders of "
        "magnitude. A learning rate far too high for a pretrained encoder does the same: its "
        "first updates wreck the encoder, whose collapsed layers then pass almost no gradient "
        "back."
    ),
    fix=(
        "Use non-saturating activations with a matching initialisation and normalisation, and "
        "keep extra layers on top of an encoder shallow:\n"
        "  keras.layers.Dense(64, activation='relu', kernel_initializer='he_normal')\n"
        "  keras.layers.LayerNormalization()\n"
        "For deep stacks add residual connections; for a pretrained encoder, classify from its "
        "pooled output with a single Dense(K) head."
    ),
    fixes={
        "torch": (
            "Use non-saturating activations with a matching initialisation and normalisation, "
            "and keep extra layers on top of an encoder shallow:\n"
            "  nn.Sequential(nn.Linear(hidden, 64), nn.GELU(), nn.LayerNorm(64))\n"
            "  nn.init.kaiming_normal_(linear.weight, nonlinearity='relu')  # for ReLU layers\n"
            "For deep stacks add residual connections; for a pretrained encoder, classify from "
            "its pooled output with a single nn.Linear(hidden, K) head (as "
            "*ForSequenceClassification does)."
        ),
    },
)
