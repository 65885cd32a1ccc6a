"""grads-not-zeroed: gradients carry over from one optimizer step to the next (PyTorch).

PyTorch adds each backward pass's gradients into ``param.grad``; only the loop clears them
(``optimizer.zero_grad()``). The PyTorch probe records ``grad_stale``: the largest |gradient| a
reference parameter already held when the first backward pass of an optimizer step began. It is
exactly 0 when the gradients were zeroed or set to None since the previous optimizer step, so
gradient accumulation done right (zeroing after each ``optimizer.step()``, every k backward
passes) reads 0 on every step. Keras runs have no such channel: the rule stays silent.
"""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Optimizer steps (the run's first excluded: nothing can carry over into it) with a known
#: ``grad_stale`` before the rule speaks. The channel has no noise (a zeroed gradient is exactly
#: 0, a carried-over one exactly what the last backward left), so two rule evaluations (rules
#: run every 4 steps) suffice; fewer could name a one-off, such as a backward pass run once as
#: a sanity check before the loop.
MIN_STEPS = 8
#: Recent optimizer steps looked at: the loop as it runs now.
WINDOW = 50
#: Share of those steps that began on leftover gradients. A loop that zeroes once per epoch of
#: 10 or more steps still applies sums of past gradients on ≥ 90 % of its steps: also named.
STALE_SHARE = 0.9

TITLE = "Gradients are never zeroed: every step applies the sum of all past gradients"


def check(ctx: Context) -> Evidence | None:
    """Fire when (nearly) every optimizer step began with the previous steps' gradients."""
    stale, steps = ctx.col("grad_stale"), ctx.col("step")
    if not len(stale) or len(stale) != len(steps):
        return None  # not recorded (Keras)
    stale, steps = stale[-WINDOW:], steps[-WINDOW:]
    known = np.isfinite(stale) & (steps >= 1)
    if known.sum() < MIN_STEPS:
        return None
    carried = stale[known] > 0
    if carried.mean() < STALE_SHARE:
        return None
    idx = np.flatnonzero(known)
    first, last = int(idx[0]), int(idx[-1])
    offset = ctx.n_steps - len(stale)  # window positions -> context positions
    span = ctx.step_range(offset + first, offset + last + 1)
    text = (
        f"steps {span[0]}–{span[1]}: {int(carried.sum())} of {len(carried)} optimizer steps "
        f"({pct(carried.mean())}) began with gradients left over from earlier steps (largest "
        f"leftover |gradient| on a reference parameter: median {np.median(stale[known]):.3g}), "
        "so optimizer.step() applied the running sum of every gradient since training began"
    )
    norm = ctx.col("grad_norm")[-WINDOW:]
    if len(norm) == len(stale) and np.isfinite(norm[[first, last]]).all():
        text += f"; the gradient norm went from {norm[first]:.3g} to {norm[last]:.3g}"
    micro = ctx.col("micro_batches")[-WINDOW:]
    k = np.nanmedian(micro) if len(micro) and np.isfinite(micro).any() else 1.0
    if k > 1:
        text += (
            f"; the loop accumulates {k:.0f} backward passes per optimizer step but does not "
            "zero the gradients after optimizer.step()"
        )
    return Evidence(text, steps=span)


RULE = Rule(
    check=check,
    code="grads-not-zeroed",
    severity="error",
    phase="live",
    panel="gradients",
    rank=17,
    title=TITLE,
    explanation=(
        "loss.backward() does not replace param.grad, it adds to it: PyTorch leaves clearing the "
        "gradients to the loop, so that gradients can be accumulated over several batches on "
        "purpose. Without optimizer.zero_grad() between steps, the gradient of step t is the sum "
        "of the gradients of every batch so far: it grows with each step, keeps pushing in the "
        "direction of the first batches long after the model has moved on, and the step size "
        "grows with it. With SGD the updates grow until the loss oscillates or diverges; with "
        "Adam, which rescales the update, the model follows a stale average direction and learns "
        "far more slowly than it should. The loss may still go down for a while, which hides it."
    ),
    fix=(
        "Zero the gradients once per optimizer step:\n"
        "  for batch in train_loader:\n"
        "      optimizer.zero_grad()  # or model.zero_grad(); set_to_none=True is the default\n"
        "      loss = loss_fn(model(**inputs), labels)\n"
        "      loss.backward()\n"
        "      optimizer.step()\n"
        "With gradient accumulation over k batches, zero right after each optimizer.step():\n"
        "  for i, batch in enumerate(train_loader):\n"
        "      (loss_fn(model(**inputs), labels) / k).backward()\n"
        "      if (i + 1) % k == 0:\n"
        "          optimizer.step()\n"
        "          optimizer.zero_grad()"
    ),
)
