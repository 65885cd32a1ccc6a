"""validation-train-mode: validation forwards run with the model in train() mode (PyTorch).

The PyTorch probe counts, per epoch, the validation batches (forwards under ``torch.no_grad`` /
``inference_mode`` whose loss is computed) and how many of them ran while ``model.training``
was True (``val_train_mode``: their share). A model with no mode-dependent module
(``facts.mode_dependent == 0``) computes the same either way: silent. Keras epochs carry no
``val_train_mode`` (Keras sets the mode itself): silent.
"""

from __future__ import annotations

import math
from typing import Any

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Share of an epoch's validation batches run in train() mode: most of them. A loop either calls
#: model.eval() before validating or it does not, so the share is 0 or 1 in practice; a few
#: no_grad forwards in train() mode mixed into a validated epoch (a training-set metric computed
#: on the fly) do not make its validation numbers wrong.
TRAIN_MODE_SHARE = 0.5

TITLE = "Validation runs in train() mode: dropout is on while measuring"


def _share(epoch: dict[str, Any]) -> float | None:
    value = epoch.get("val_train_mode")
    try:
        share = float(value)
    except (TypeError, ValueError):
        return None
    return share if math.isfinite(share) else None


def _modules(n: int) -> str:
    return f"{n} module that behaves" if n == 1 else f"{n} modules that behave"


def check(ctx: Context) -> Evidence | None:
    """Fire when the latest validated epoch ran most validation batches in train() mode."""
    n_modules = ctx.facts.mode_dependent
    if not n_modules:
        return None  # Keras (None), or nothing in the model depends on the mode
    measured = [
        (e.get("epoch", i), s) for i, e in enumerate(ctx.epochs) if (s := _share(e)) is not None
    ]
    if not measured or measured[-1][1] < TRAIN_MODE_SHARE:
        return None
    bad = [(int(epoch), share) for epoch, share in measured if share >= TRAIN_MODE_SHARE]
    listed = ", ".join(f"{epoch} ({pct(share)})" for epoch, share in bad[-6:])
    text = (
        f"epoch{'s' if len(bad) > 1 else ''} {listed}: validation batches (forwards under "
        f"torch.no_grad) ran with model.training == True, and the model has {_modules(n_modules)} "
        "differently in train() mode (dropout with p > 0, batch norm): the validation numbers "
        "were measured with dropout on"
    )
    latest = ctx.epochs[-1]
    loss, val_loss = latest.get("loss"), latest.get("val_loss")
    if isinstance(loss, float) and isinstance(val_loss, float):
        text += f" (last epoch: training loss {loss:.3g}, val_loss {val_loss:.3g})"
    return Evidence(text)


RULE = Rule(
    check=check,
    code="validation-train-mode",
    severity="warning",
    phase="epoch",
    panel="overview",
    rank=19,
    title=TITLE,
    explanation=(
        "torch.no_grad() only stops gradient tracking: it does not switch dropout or batch "
        "normalisation to inference behaviour; only model.eval() does. Validated in train() "
        "mode, every validation forward drops a random share of activations, so val_loss and "
        "accuracy are noisy and pessimistic (they measure a randomly thinned model, not the one "
        "you will deploy), early stopping and checkpoint selection follow the noise, and "
        "batch-norm layers even update their running statistics from the validation data."
    ),
    fix=(
        "Switch to eval() mode for validation and back to train() mode for training:\n"
        "  model.eval()\n"
        "  with torch.no_grad():\n"
        "      for batch in val_loader:\n"
        "          ...\n"
        "  model.train()\n"
        "(torch.inference_mode() is a faster no_grad, but it does not change the mode either.)"
    ),
)
