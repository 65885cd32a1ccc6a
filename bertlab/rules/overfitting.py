"""overfitting: training keeps improving while validation gets worse or lags far behind."""

from __future__ import annotations

import math
from typing import Any

from bertlab.rules.base import Context, Evidence, Rule

#: Validation loss rising for at least RISING_EPOCHS epochs after its best epoch, by at least
#: MIN_RISE of its best value (epoch-to-epoch wobble of a healthy run is a few %), while the
#: training loss kept falling.
RISING_EPOCHS = 2
MIN_RISE = 0.05
#: Training accuracy at least MEMORISED while validation accuracy is GAP or more below it. A
#: healthy fine-tune typically ends within ~0.1 (the healthy suite: 0-0.1, imbalanced data with
#: class weights 0.095); 0.2 is twice that.
MEMORISED = 0.99
GAP = 0.2
#: Accuracy-like metric names Keras logs (the first one with a val_ counterpart is used).
ACCURACY_KEYS = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
)


def _number(value: Any) -> float | None:
    """A finite float from an epoch log entry, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _series(epochs: list[dict[str, Any]], key: str) -> list[float] | None:
    values = [_number(e.get(key)) for e in epochs]
    if any(v is None for v in values):
        return None
    return values  # type: ignore[return-value]


def _loss_divergence(epochs: list[dict[str, Any]]) -> str | None:
    val, train = _series(epochs, "val_loss"), _series(epochs, "loss")
    if val is None or train is None or len(val) < RISING_EPOCHS + 1:
        return None
    best = min(range(len(val)), key=val.__getitem__)
    last = len(val) - 1
    if last - best < RISING_EPOCHS or val[last] < (1 + MIN_RISE) * val[best]:
        return None
    if train[last] >= train[best]:
        return None
    return (
        f"val_loss rose from {val[best]:.3g} (epoch {best + 1}, its best) to {val[last]:.3g} "
        f"(epoch {last + 1}, +{100 * (val[last] / val[best] - 1):.0f} %) while the training loss "
        f"fell from {train[best]:.3g} to {train[last]:.3g}"
    )


def _accuracy_gap(epochs: list[dict[str, Any]]) -> str | None:
    last = epochs[-1]
    key = next((k for k in ACCURACY_KEYS if k in last and f"val_{k}" in last), None)
    if key is None:
        key = next((k for k in last if k.endswith("accuracy") and f"val_{k}" in last), None)
    if key is None:
        return None
    train, val = _number(last.get(key)), _number(last.get(f"val_{key}"))
    if train is None or val is None:
        return None
    if train < MEMORISED or train - val < GAP:
        return None
    return f"training {key} {train:.3f} vs validation {val:.3f} (gap {train - val:.2f})"


def check(ctx: Context) -> Evidence | None:
    epochs = ctx.epochs
    if not epochs:
        return None
    found = [text for text in (_accuracy_gap(epochs), _loss_divergence(epochs)) if text]
    if not found:
        return None
    return Evidence(f"epoch {len(epochs)}: " + "; ".join(found))


RULE = Rule(
    check=check,
    code="overfitting",
    severity="warning",
    phase="epoch",
    panel="overview",
    rank=80,
    title="Overfitting: the model memorises the training data",
    explanation=(
        "The training metrics keep improving while the validation metrics get worse or stay far "
        "behind: the model is learning the particular training examples (including their noise "
        "and mislabelled rows) instead of what generalises. With a small dataset and many "
        "epochs a BERT-sized model can memorise every training label; the weights from the "
        "later epochs are then worse on new data than earlier ones."
    ),
    fix=(
        "Stop at the best validation epoch and keep its weights:\n"
        "  stop = keras.callbacks.EarlyStopping(monitor='val_loss', patience=2,\n"
        "                                       restore_best_weights=True)\n"
        "  model.fit(..., validation_data=(x_val, y_val), callbacks=[stop, watch])\n"
        "Fine-tunes need 2-4 epochs; also add dropout or weight decay "
        "(keras.optimizers.AdamW(2e-5, weight_decay=0.01)) or collect more data."
    ),
    fixes={
        "torch": (
            "Stop at the best validation epoch and keep its weights: in a plain loop, save "
            "`best = copy.deepcopy(model.state_dict())` whenever the validation loss improves, "
            "stop after 2 epochs without improvement, then `model.load_state_dict(best)`. With "
            "the Hugging Face Trainer:\n"
            "  args = TrainingArguments(..., eval_strategy='epoch', save_strategy='epoch',\n"
            "                           load_best_model_at_end=True, "
            "metric_for_best_model='eval_loss')\n"
            "  Trainer(..., callbacks=[EarlyStoppingCallback(early_stopping_patience=2)])\n"
            "Fine-tunes need 2-4 epochs; also add dropout or weight decay "
            "(torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)) or collect "
            "more data."
        ),
    },
)
