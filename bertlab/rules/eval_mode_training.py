"""eval-mode-training: training steps run with the model in eval() mode (PyTorch).

A PyTorch module switches dropout and batch normalisation between training and inference
behaviour by its ``training`` flag, which only the loop sets (``model.train()`` /
``model.eval()``). The PyTorch probe records ``train_mode`` per optimizer step (the flag during
the step's forward) and counts the model's mode-dependent modules (``facts.mode_dependent``:
dropout with p > 0, batch norm). A model without such modules computes the same thing in both
modes, so the rule stays silent for it; Keras runs (which set the mode themselves, no channel)
too.
"""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Recent optimizer steps looked at: the loop as it runs now.
WINDOW = 20
#: Steps with a known mode before the rule speaks. ``model.training`` is read exactly (no
#: noise), so one rule evaluation's worth of steps (rules run every 4 steps) is enough.
MIN_STEPS = 4
#: Share of the recent steps in eval() mode: most of them, the latest included. A loop calls
#: model.train() once per epoch, so a forgotten call affects whole stretches of steps, never a
#: scattered few; a loop back in train() mode has fixed itself (the finding is withdrawn).
EVAL_SHARE = 0.5

TITLE = "Training runs in eval() mode: dropout is off and batch norm does not learn"


def _modules(n: int) -> str:
    return f"{n} module that behaves" if n == 1 else f"{n} modules that behave"


def check(ctx: Context) -> Evidence | None:
    """Fire when most recent training steps ran in eval() mode on a model with dropout/BN."""
    modes, steps = ctx.col("train_mode"), ctx.col("step")
    n_modules = ctx.facts.mode_dependent
    if not len(modes) or len(modes) != len(steps) or not n_modules:
        return None  # not recorded (Keras), or nothing in the model depends on the mode
    modes, steps = modes[-WINDOW:], steps[-WINDOW:]
    known = np.isfinite(modes)
    if known.sum() < MIN_STEPS:
        return None
    evaluating = modes[known] == 0
    if evaluating.mean() < EVAL_SHARE or not evaluating[-1]:
        return None  # mostly train() mode, or back in it now
    idx = np.flatnonzero(known)
    offset = ctx.n_steps - len(modes)
    span = ctx.step_range(offset + int(idx[0]), offset + int(idx[-1]) + 1)
    text = (
        f"steps {span[0]}–{span[1]}: {int(evaluating.sum())} of {len(evaluating)} optimizer "
        f"steps ({pct(evaluating.mean())}) ran their forward pass with model.training == False, "
        f"and the model has {_modules(n_modules)} differently in train() mode (dropout with "
        "p > 0, batch norm)"
    )
    # Earlier steps in train() mode: the classic model.eval() for a validation pass with no
    # model.train() after it.
    all_modes = ctx.col("train_mode")
    trained = np.flatnonzero(all_modes == 1)
    if len(trained):
        last_train = int(ctx.col("step")[trained[-1]])
        text += (
            f"; the model was last in train() mode at step {last_train}: a model.eval() call "
            "(for validation?) was not followed by model.train()"
        )
    return Evidence(text, steps=span)


RULE = Rule(
    check=check,
    code="eval-mode-training",
    severity="warning",
    phase="live",
    panel="overview",
    rank=19,
    title=TITLE,
    explanation=(
        "In PyTorch the loop, not the framework, decides whether dropout and batch "
        "normalisation behave as in training or as in inference: model.eval() switches them to "
        "inference for good, until model.train() is called. Trained in eval() mode, dropout is "
        "silently off (the regularisation a pretrained transformer was tuned with is gone, so "
        "fine-tuning overfits sooner) and batch-norm layers normalise with their running "
        "statistics instead of the batch's and never update them. The usual cause is a "
        "validation pass that calls model.eval() in the middle of training, or once before the "
        "first epoch, and no model.train() when training resumes."
    ),
    fix=(
        "Set the mode at the start of every training epoch (and after every evaluation):\n"
        "  for epoch in range(epochs):\n"
        "      model.train()\n"
        "      for batch in train_loader:\n"
        "          ...\n"
        "      model.eval()\n"
        "      with torch.no_grad():\n"
        "          ...  # validation\n"
        "If training without dropout is intended, say so in the model instead: "
        "nn.Dropout(p=0.0), or a Hugging Face config with hidden_dropout_prob=0.0 and "
        "attention_probs_dropout_prob=0.0."
    ),
)
