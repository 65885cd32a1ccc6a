"""logits-as-probabilities: raw scores (no softmax/sigmoid) fed to a cross-entropy that reads
its input as probabilities (from_logits=False)."""

from __future__ import annotations

import numpy as np

from bertlab.rules._lossconfig import finite, loss_kind, loss_text, n_outputs, output_squash
from bertlab.rules.base import Context, Evidence, Rule

#: Share of output entries outside [0, 1] that proves the outputs are not probabilities. A
#: softmax or sigmoid can never leave [0, 1]; 1 % leaves room for a hand-written normalisation
#: whose rounding lands a hair outside.
MIN_OUTSIDE_SHARE = 0.01

_HOW_KERAS_READS = {
    "binary": "clips them into [1e-7, 1 - 1e-7] before taking the log",
    "sparse": "clips them into [1e-7, 1 - 1e-7] and takes the log",
    "categorical": "divides each row by its sum (which may be near 0 or negative) and clips it "
    "into [1e-7, 1 - 1e-7]",
}


def _how_read(framework: str, kind: str) -> str:
    """What the loss does with scores outside [0, 1] in this framework."""
    if framework == "torch":  # nn.BCELoss checks the range (CUDA: a device-side assert)
        return "PyTorch stops with 'all elements of input should be between 0 and 1'"
    return f"Keras {_HOW_KERAS_READS[kind]}, so every entry it clips passes no gradient"


def check(ctx: Context) -> Evidence | None:
    """Fire when a from_logits=False cross-entropy receives outputs outside [0, 1].

    Keyed on the recorded outputs (``out_unit_share``): the declared activation alone can mislead
    (a custom normalising layer reports no activation). Without any recorded step (a pre-flight
    check on arrays) the declared linear output layer is the evidence.
    """
    f = ctx.facts
    kind = loss_kind(f.loss)
    if f.from_logits is not False or kind not in ("binary", "sparse", "categorical"):
        return None
    squash = output_squash(ctx)
    if squash in ("softmax", "sigmoid"):
        return None
    loss = loss_text(f)
    unit = finite(ctx.col("out_unit_share"))
    if not len(unit):
        if ctx.n_steps or ctx.data is None or ctx.error or squash != "linear":
            return None  # inside fit the first recorded step decides, a moment later
        return Evidence(f"the output layer has no activation and the loss is {loss}")
    outside = 1.0 - float(unit.mean())
    if outside < MIN_OUTSIDE_SHARE:
        return None
    low, high = finite(ctx.col("out_min")), finite(ctx.col("out_max"))
    k = n_outputs(ctx) or 1
    rows = finite(ctx.col("out_rowsum_dev"))
    rowsum = f"; rows sum to 1 ± {rows.mean():.2g} on average" if k > 1 and len(rows) else ""
    bad_steps = np.flatnonzero(ctx.col("out_unit_share") < 1.0)
    steps = ctx.step_range(int(bad_steps[0]) if len(bad_steps) else 0)
    activation = f"'{squash}'" if squash else "unknown"
    return Evidence(
        f"steps {steps[0]}–{steps[1]}: {100 * outside:.0f} % of the outputs lie outside [0, 1] "
        f"(range {low.min():.3g} to {high.max():.3g}{rowsum}; output activation {activation}) "
        f"while {loss} reads them as probabilities: " + _how_read(f.framework, kind),
        steps=steps,
    )


RULE = Rule(
    check=check,
    code="logits-as-probabilities",
    severity="error",
    phase="preflight",
    panel="outputs",
    rank=11,
    sticky=True,
    title="Raw scores fed to a loss that expects probabilities (from_logits=False)",
    explanation=(
        "With from_logits=False (the default of every Keras cross-entropy and of the string "
        "losses) the loss takes the outputs as probabilities. Scores of a layer without softmax "
        "or sigmoid are any real numbers; Keras clips them into [1e-7, 1 - 1e-7] before the log, "
        "and a clipped score has zero gradient, so once it leaves [0, 1] nothing brings it back. "
        "The loss freezes (at ln K when a row's scores are all clipped, near 16 for a wrongly "
        "clipped binary output) and learning stops; CategoricalCrossentropy first divides by the "
        "row sum, which gives NaN when the scores sum to 0."
    ),
    fix=(
        "Tell the loss the outputs are logits (recommended, numerically stable):\n"
        "  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
        "  # or BinaryCrossentropy(from_logits=True) for sigmoid-style heads\n"
        "or end the model in the activation: `Dense(K, activation='softmax')` "
        "(`Dense(1, activation='sigmoid')` for binary)."
    ),
    fixes={
        "torch": (
            "Give the loss logits (recommended, numerically stable):\n"
            "  loss_fn = nn.BCEWithLogitsLoss()  # instead of nn.BCELoss(): it applies the "
            "sigmoid itself\n"
            "  # nn.CrossEntropyLoss() for one class per row (it applies log-softmax itself)\n"
            "or end forward() in the activation and keep nn.BCELoss(): `return "
            "torch.sigmoid(self.head(h))`."
        ),
    },
    explanations={
        "torch": (
            "nn.BCELoss (and F.binary_cross_entropy) take the outputs as probabilities. Scores "
            "of a layer without a sigmoid are any real numbers: PyTorch stops with 'all "
            "elements of input should be between 0 and 1' on CPU (a device-side assert on "
            "CUDA) as soon as one leaves [0, 1], and scores that happen to lie inside are "
            "trained as probabilities through a log clamped at -100, which a linear layer does "
            "not keep them in."
        ),
    },
)
