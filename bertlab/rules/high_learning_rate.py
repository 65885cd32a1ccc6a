"""high-learning-rate: fine-tuning a transformer encoder with a learning rate far above 1e-4,
or with updates that move the encoder's weights far faster than fine-tuning does."""

from __future__ import annotations

import numpy as np

from bertlab.rules._dynamics import encoder_pace
from bertlab.rules.base import Context, Evidence, Rule

#: Fine-tuning BERT-family encoders uses 1e-5..1e-4 (BERT paper: 2e-5..5e-5). "Far above" =
#: more than twice the top of that range.
HIGH_LR = 2e-4
#: The measured side of the same judgement: the encoder's median layer moving by more than this
#: share of its weights per step (``_dynamics.encoder_pace``) is an update sized for training
#: from scratch. Measured with Adam, batch 16, on BBC News: pretrained MiniLM (2 of its 6
#: layers) moves 5e-5 per step at lr 2e-5, 1.4e-4..2.2e-4 at 5e-5, 3.6e-3..4.8e-3 at Keras's
#: default 1e-3 (with or without a warm-up to it); the randomly initialised tiny BERT of the
#: tests (weights of scale 0.02, so every step is relatively larger) 4e-4 at 2e-5 and 1.1e-3
#: at 5e-5. 2e-3 sits 1.8x above the fastest fine-tune and 1.8x below the slowest 1e-3 run.
#: It cannot tell a pretrained encoder from one trained from scratch (the healthy tiny BERTs of
#: benchmarks h02, h06, h09 at 2e-3 move 3e-2..4e-2; b28 at 0.01, 0.1): alone it stays info.
FAST_RATIO = 2e-3
#: Below this the encoder moves at a fine-tuning pace whatever the configured number says
#: (plain SGD at 2e-3 moves the tiny BERT's encoder by 3e-6 per step: SGD's step is lr x
#: gradient, not lr): then the number is no evidence. 2.3x above the fastest fine-tune measured
#: on the pretrained encoder (2.2e-4), 7x below Adam at 1e-3 on it.
SLOW_RATIO = 5e-4
#: Symptoms a too-high learning rate causes; with one of them live the rule becomes a warning.
SYMPTOMS = (
    "single-class",
    "chance-loss",
    "nan-loss",
    "exploding-loss",
    "exploding-gradients",
    "oscillating-loss",
    "multilabel-collapse",
    "stagnant-loss",
    "vanishing-gradients",
)
TITLE_WARNING = "Learning rate far too high for fine-tuning a pretrained encoder"


def _learning_rate(ctx: Context) -> float | None:
    """The largest learning rate recorded in the window (a schedule's peak), else the
    configured one."""
    lr_col = ctx.col("lr")
    recorded = lr_col[np.isfinite(lr_col)] if len(lr_col) else lr_col
    return float(recorded.max()) if len(recorded) else ctx.facts.learning_rate


def check(ctx: Context) -> Evidence | None:
    f = ctx.facts
    if not f.encoders:
        return None
    lr = _learning_rate(ctx)
    high_lr = lr is not None and lr > HIGH_LR
    pace = encoder_pace(ctx)
    fast = pace is not None and pace[0] > FAST_RATIO
    if not (high_lr or fast):
        return None
    encoder = ", ".join(f.encoders[:2])
    parts = []
    if high_lr:
        parts.append(f"learning rate {lr:.2g} while fine-tuning {encoder}; usual range 1e-5–1e-4")
    if pace is not None:
        ratio, layer, steps = pace
        moved = (
            f"the encoder's median layer moved by {ratio:.1e} of its weights per step in steps "
            f"{steps[0]}–{steps[1]} ({layer} fastest; fine-tuning a pretrained encoder moves "
            "~1e-4)"
        )
        parts.append(moved if high_lr else f"fine-tuning {encoder}: {moved}")
    text = "; ".join(parts)
    if pace is not None and pace[0] <= SLOW_RATIO:
        # The configured number does not make the encoder's updates large (plain SGD, a
        # parameter group of its own): it is not what wrecks this model.
        return Evidence(
            text + ": a fine-tuning pace, so the learning rate is not too high for it",
            severity="info",
            extra={"not_a_cause": True, "encoder_ratio": pace[0]},
        )
    extra = {"encoder_ratio": pace[0]} if pace is not None else {}
    # A frozen encoder cannot be wrecked by its learning rate: its stall has another cause.
    frozen = "frozen-layers" in ctx.live
    symptoms = [] if frozen else [code for code in SYMPTOMS if code in ctx.live]
    if symptoms:
        return Evidence(
            text + f"; symptoms present: {', '.join(symptoms)}",
            severity="warning",
            title=TITLE_WARNING,
            extra=extra,
        )
    return Evidence(
        text + " (fine if this encoder is trained from scratch, not a pretrained one)",
        severity="info",
        # The frozen encoder's stall has another cause: never name this one for it.
        extra={**extra, "not_a_cause": True} if frozen else extra,
    )


RULE = Rule(
    check=check,
    code="high-learning-rate",
    severity="info",
    phase="live",
    panel="overview",
    rank=30,
    title="Learning rate above the usual range for fine-tuning a transformer",
    explanation=(
        "A pretrained encoder already sits in a good region of weight space; updates sized for "
        "training from scratch (1e-3, Adam's default) destroy what it learned in the first few "
        "steps. The model then falls back to the safest constant answer: one class for every "
        "input, loss at ln K. This is the most common root cause of 'every prediction is the "
        "same class' in BERT fine-tuning questions."
    ),
    fix=(
        "Use a fine-tuning learning rate, optionally with warm-up and decay:\n"
        "model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-5), ...)"
    ),
    fixes={
        "torch": (
            "Use a fine-tuning learning rate with warm-up and decay:\n"
            "  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)\n"
            "  scheduler = transformers.get_linear_schedule_with_warmup(\n"
            "      optimizer, num_warmup_steps=total_steps // 10, "
            "num_training_steps=total_steps)\n"
            "  # scheduler.step() after every optimizer.step()\n"
            "Hugging Face Trainer: TrainingArguments(..., learning_rate=2e-5, "
            "warmup_steps=0.1)  # a ratio; warmup_ratio=0.1 before transformers 5"
        ),
    },
)
