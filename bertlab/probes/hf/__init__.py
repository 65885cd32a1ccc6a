"""Hugging Face ``Trainer`` adapter: ``bertlab.hf.Watch()`` is a ``TrainerCallback``.

It attaches a :class:`bertlab.torch.Watch` to the model and optimizer the Trainer hands its
callbacks when training begins, so the Trainer's own step is measured from the same hooks as a
plain loop (the loss comes from the model's output: callbacks never receive it; gradients are
read before the Trainer clips them). Epoch records follow the Trainer's evaluations: one per
evaluation with ``eval_strategy="epoch"`` or ``"steps"``, one per epoch with ``"no"``; the
Trainer's ``eval_*`` metrics are stored as ``val_*`` beside bertlab's own summaries.

With ``compute_loss_func=`` or ``label_smoothing_factor`` the Trainer takes the labels out of
the batch before calling the model and computes the loss itself, so neither reaches the model's
forward hook. The callback then finds the Trainer that called it and, while it trains, puts a
thin wrapper on that instance's ``compute_loss`` which shows the batch's labels and the loss it
returns to the Watch (the Trainer's own result is returned unchanged; removed at train end).
"""

from __future__ import annotations

import sys
from typing import Any

from transformers import Trainer, TrainerCallback

from bertlab.probes.torch import Watch as TorchWatch

__all__ = ["Watch"]


class Watch(TrainerCallback):
    """Watch a Hugging Face ``Trainer`` run: ``Trainer(..., callbacks=[bertlab.hf.Watch()])``.

    After (or during) training it reads like every Watch: ``watch.findings``,
    ``watch.history``, ``watch.epochs``, ``watch.report()``, ``watch.save(path)``,
    ``watch.to_html(path)``; in a notebook the live dashboard shows when training starts.

    Parameters
    ----------
    **options
        Passed to :class:`bertlab.torch.Watch` (``verbose``, ``dashboard``, ``class_names``,
        ``path``, ``rank``, ``budget_mb``...). The tokenizer is the Trainer's
        ``processing_class`` unless ``tokenizer=`` is given.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.watch: TorchWatch | None = None
        self._eval_strategy = "no"
        self._trainer: Any = None

    def __getattr__(self, name: str) -> Any:
        # history, findings, report, save, to_html, run, dashboard...: those of the torch Watch.
        watch = self.__dict__.get("watch")
        if watch is None or name.startswith("__"):
            raise AttributeError(
                f"{type(self).__name__} has no {name!r} before trainer.train() starts"
            )
        return getattr(watch, name)

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.watch is None:
            return {"text/plain": "<bertlab.hf.Watch: waiting for trainer.train()>"}
        return self.watch._repr_mimebundle_(include=include, exclude=exclude)

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.watch is not None:
            self.watch.close()
        options = dict(self.options)
        options.setdefault("tokenizer", kwargs.get("processing_class"))
        self._eval_strategy = str(getattr(args, "eval_strategy", "no")).rsplit(".", 1)[-1]
        self.watch = TorchWatch(model, optimizer, None, **options)
        self.watch.run.meta["trainer"] = {
            "max_grad_norm": getattr(args, "max_grad_norm", None),
            "gradient_accumulation_steps": getattr(args, "gradient_accumulation_steps", 1),
            "lr_scheduler_type": str(getattr(args, "lr_scheduler_type", "")).rsplit(".", 1)[-1],
            "eval_strategy": self._eval_strategy,
        }
        if self.watch._facts is not None:
            self.watch._facts.lr_schedule = self.watch.run.meta["trainer"]["lr_scheduler_type"]
        trainer = _calling_trainer()
        if trainer is not None and self.watch._instrument is not None:
            if trainer.compute_loss_func is not None or trainer.label_smoother is not None:
                self._see_labels(trainer)

    def _see_labels(self, trainer: Any) -> None:
        """Show the Watch the labels and loss that the Trainer keeps from the model."""
        instrument = self.watch._instrument
        original = trainer.compute_loss

        def compute_loss(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            instrument.external_labels = inputs.get("labels") if hasattr(inputs, "get") else None
            try:
                result = original(model, inputs, *args, **kwargs)
            finally:
                instrument.external_labels = None
            instrument.observe_loss(result[0] if isinstance(result, tuple) else result)
            return result

        trainer.compute_loss = compute_loss
        self._trainer = trainer

    def _unwrap(self) -> None:
        if self._trainer is not None:
            self._trainer.__dict__.pop("compute_loss", None)
            self._trainer = None

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.watch is not None and self._eval_strategy.lower() == "no":
            self.watch.end_epoch()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.watch is None:
            return
        logs = {}
        for key, value in (metrics or {}).items():
            name = f"val_{key[5:]}" if key.startswith("eval_") else key
            logs[name] = value
        self.watch.end_epoch(logs)

    def on_train_end(self, args, state, control, **kwargs):
        self._unwrap()
        if self.watch is not None:
            self.watch.close()


def _calling_trainer() -> Any:
    """The ``Trainer`` whose ``train()`` is calling this callback (found on the stack)."""
    frame = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Trainer):
            return candidate
        frame = frame.f_back
    return None
