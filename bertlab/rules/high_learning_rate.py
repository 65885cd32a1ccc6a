"""high-learning-rate: fine-tuning a transformer encoder with a learning rate far above 1e-4."""

from __future__ import annotations

import numpy as np

from bertlab.rules.base import Context, Evidence, Rule

#: Fine-tuning BERT-family encoders uses 1e-5..1e-4 (BERT paper: 2e-5..5e-5). "Far above" =
#: more than twice the top of that range.
HIGH_LR = 2e-4
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


def check(ctx: Context) -> Evidence | None:
    f = ctx.facts
    if not f.encoders:
        return None
    lr_col = ctx.col("lr")
    recorded = lr_col[np.isfinite(lr_col)] if len(lr_col) else lr_col
    lr = float(recorded.max()) if len(recorded) else f.learning_rate
    if lr is None or lr <= HIGH_LR:
        return None
    encoder = ", ".join(f.encoders[:2])
    # A frozen encoder cannot be wrecked by its learning rate: its stall has another cause.
    frozen = "frozen-layers" in ctx.live
    symptoms = [] if frozen else [code for code in SYMPTOMS if code in ctx.live]
    text = f"learning rate {lr:.2g} while fine-tuning {encoder}; usual range 1e-5–1e-4"
    if symptoms:
        return Evidence(
            text + f"; symptoms present: {', '.join(symptoms)}",
            severity="warning",
            title="Learning rate far too high for fine-tuning a pretrained encoder",
        )
    return Evidence(
        text + " (fine if this encoder is trained from scratch, not a pretrained one)",
        severity="info",
        # The frozen encoder's stall has another cause: never name this one for it.
        extra={"not_a_cause": True} if frozen else {},
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
