"""Automatic mixed precision in a PyTorch loop: the numbers of a ``GradScaler`` step as a
float32 step would have them.

The AMP recipe multiplies the loss by the scaler's current scale before ``backward()``
(``scaler.scale(loss).backward()``), so the gradients the probe measures as they accumulate are
scaled too (by 2**16 at the start); ``scaler.step(optimizer)`` divides them back, skips
``optimizer.step()`` when any is inf/NaN, and ``scaler.update()`` halves the scale after a skip
(doubling it after ``growth_interval`` good steps). Given the scaler
(``bertlab.torch.Watch(..., scaler=scaler)``), the probe divides the recorded gradient norms by
the scale of the step (a device tensor: no host sync), records it as the optional ``loss_scale``
channel (``loss-scale-collapse`` reads it, as on Keras), and writes a row for a skipped step,
which never reaches the optimizer's step hooks: ``scaler.update`` of this one scaler object is
tapped for that (an instance attribute, removed on close; the class is untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: Gradient statistics that scale with the loss (counts of zero/missing/non-finite do not).
SCALED = ("grad_norm", "grad_layer_norm")


class ScalerTap:
    """The loss scale of ``scaler`` for the probe's rows, and a row for every skipped step."""

    def __init__(self, scaler: Any, on_skip: Callable[[], None], on_fault: Callable) -> None:
        self.scaler = scaler
        self.on_skip = on_skip
        self.on_fault = on_fault
        self.stepped = False  # a row was closed since the last ``update()``

    def install(self) -> None:
        original = self.scaler.update

        def update(*args: Any, **kwargs: Any) -> Any:
            try:
                if not self.stepped:  # scaler.step skipped optimizer.step(): no hook saw it
                    self.on_skip()
            except Exception as exc:  # noqa: BLE001 - a fault in bertlab must not stop training
                self.on_fault("recording a skipped mixed-precision step", exc)
            self.stepped = False
            return original(*args, **kwargs)

        self.scaler.update = update

    def remove(self) -> None:
        self.scaler.__dict__.pop("update", None)

    def scale(self) -> torch.Tensor | None:
        """The scale this step's gradients carry (a float32 scalar copy), None when unscaled."""
        current = getattr(self.scaler, "_scale", None)
        if current is None or not self.scaler.is_enabled():
            return None
        return current.detach().to(torch.float32).reshape(()).clone()  # update() changes it

    def unscale(self, vals: dict[str, Any]) -> dict[str, Any]:
        """The values of ``vals`` that change: scaled norms divided back, ``loss_scale``."""
        self.stepped = True
        scale = self.scale()
        if scale is None:
            return {}
        out = {name: vals[name] / scale for name in SCALED if torch.is_tensor(vals.get(name))}
        out["loss_scale"] = scale
        return out


def accelerate_scaler(optimizer: Any) -> Any:
    """The GradScaler of Accelerate's ``AcceleratedOptimizer`` (``accelerator.prepare`` and the
    Hugging Face Trainer with ``fp16=True`` on a GPU), whose ``step()`` runs ``scaler.step`` and
    ``scaler.update``; None for any other optimizer or without fp16."""
    scaler = getattr(optimizer, "scaler", None)
    if scaler is None or not callable(getattr(scaler, "is_enabled", None)):
        return None
    return scaler
