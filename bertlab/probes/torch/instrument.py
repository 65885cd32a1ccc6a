"""Record every optimizer step of a PyTorch loop from hooks on the model, loss and optimizer.

The user's loop is not wrapped or changed. While a Watch is attached:

* a forward hook on the model sees the inputs (token ids, attention mask, ``labels=``) and the
  outputs (a tensor, or a Hugging Face ``ModelOutput`` with ``.logits``/``.loss``);
* a forward hook on the loss module (``loss_fn=``) sees what the loss receives and the targets;
* a post-accumulate-grad hook on every trainable parameter marks a backward pass; at its end
  a callback (queued on the autograd engine, then queued once more so that it runs after
  DistributedDataParallel's own end-of-backward reduction) reads the accumulated gradients
  *before* any clipping the loop does between ``backward()`` and ``step()``;
* a tensor hook on one reference parameter sees, as the first backward pass of a step begins,
  whether the gradient from the previous step was zeroed (``grad_stale``);
* a step pre-hook on the optimizer closes the step: the micro-batches of the step are merged
  (gradient accumulation gives one row per optimizer step) and the row is written into a ring
  of rows on the model's device.

The summaries are computed on detached tensors under ``torch.no_grad``: no extra forward or
backward pass, no random op (same seed => same weights), and no host sync per step: the ring is
copied to the host when the Watch reads it (:meth:`Instrument.read_rows`). Forwards under
``no_grad``/``inference_mode`` with labels are validation batches; they add into per-epoch
accumulators instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.probes.torch import overlap
from bertlab.probes.torch import quantities as q
from bertlab.probes.torch.facts import output_op, unwrap_model, unwrap_optimizer
from bertlab.probes.torch.ring import Ring, ValSums
from bertlab.probes.torch.rows import RowMaker


class Instrument(RowMaker):
    """Hooks on one model/optimizer/loss on behalf of one Watch.

    Parameters
    ----------
    model, optimizer, loss_fn
        The user's objects (wrappers such as DDP or Accelerate's are looked through).
    facts
        The setup's facts; the loss family may be refined from the first targets seen.
    on_fault
        ``(where, exception)``: bertlab's own code failed; the Watch reports it and detaches.
    on_step, on_train_forward
        Called after each recorded optimizer step, and before each training forward.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Any,
        facts: ModelFacts,
        on_fault: Callable[[str, BaseException], None],
        on_step: Callable[[], None],
        on_train_forward: Callable[[], None],
    ) -> None:
        self.model = unwrap_model(model)
        self.optimizer = unwrap_optimizer(optimizer)
        self.loss_fn = loss_fn
        self.facts = facts
        self.on_fault = on_fault
        self.on_step = on_step
        self.on_train_forward = on_train_forward
        self.layout: Layout | None = None
        self.trace_facts: dict[str, Any] = {}
        names, params = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                names.append(name)
                params.append(p)
        self.param_names, self.params = names, params
        self.groups = [n.rsplit(".", 1)[0] if "." in n else n for n in names]
        self._handles: list[Any] = []
        self.ring: Ring | None = None
        self.reduce = False  # set by the Watch: combine rows over the ranks of a process group
        self.group: Any = None
        self.val: ValSums | None = None
        self.seen: overlap.SeenRows | None = None  # training rows' hash tags (train-val-overlap)
        self._group_ids: dict[tuple, torch.Tensor] = {}
        self._micro: list[dict] = []
        self._candidate: dict | None = None
        self._val_pending: dict | None = None
        self._grads: dict | None = None
        self._stale: Any = None
        self._backwards = 0
        self._queued = False
        self.val_batches = 0
        self.val_train_mode = 0
        self._grad_mode = True
        self._opt_signature: tuple | None = None
        self._calling: dict | None = None
        self._calling_loss: tuple | None = None
        self._row: dict | None = None  # the step's values, written once the update is measured
        self._snap: list[torch.Tensor] | None = None  # the weights before the update
        self._snap_sq: torch.Tensor | None = None
        #: Labels the loop keeps from the model (the HF Trainer's compute_loss_func), if shown.
        self.external_labels: Any = None
        #: The AMP GradScaler's tap (:mod:`amp`), when the loop scales its loss.
        self.amp: Any = None

    # ---------------------------------------------------------------- install / remove
    def install(self) -> None:
        """Register the hooks (removed again by :meth:`remove`)."""
        add = self._handles.append
        add(self.model.register_forward_pre_hook(self._guard(self._on_call), with_kwargs=True))
        add(self.model.register_forward_hook(self._guard(self._on_forward), with_kwargs=True))
        if isinstance(self.loss_fn, torch.nn.Module):
            add(self.loss_fn.register_forward_pre_hook(self._guard(self._on_loss_call)))
            add(self.loss_fn.register_forward_hook(self._guard(self._on_loss)))
        for p in self.params:
            add(p.register_post_accumulate_grad_hook(self._on_grad))
        held = self._optimizer_params()
        ref = next((p for p in reversed(self.params) if id(p) in held), None)
        if ref is not None:
            add(ref.register_hook(self._guard(lambda grad, p=ref: self._on_ref_grad(p))))
        if self.optimizer is not None:
            add(self.optimizer.register_step_pre_hook(self._guard(self._on_step)))
            add(self.optimizer.register_step_post_hook(self._guard(self._after_step)))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _optimizer_params(self) -> set[int]:
        groups = getattr(self.optimizer, "param_groups", None) or []
        return {id(p) for group in groups for p in group.get("params", [])}

    def _guard(self, hook: Callable) -> Callable:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                self._grad_mode = torch.is_grad_enabled()  # the loop's mode, before no_grad
                with torch.no_grad():
                    hook(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a fault in bertlab must not stop training
                self.on_fault(f"recording ({hook.__name__})", exc)
            return None

        return guarded

    # ---------------------------------------------------------------- forward / loss
    def _on_forward(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        self._calling = None
        logits, hf_loss = q.logits_and_loss(output)
        labels = kwargs.get("labels", self.external_labels)
        ids, mask = q.find_text_inputs(args, kwargs)
        batch = {"y_pred": logits, "y": labels, "loss": hf_loss, "ids": ids, "mask": mask}
        batch["rows"] = self._row_hashes(args, kwargs)
        if self._grad_mode:
            if batch["rows"] is not None:
                if self.seen is None:
                    self.seen = overlap.SeenRows(batch["rows"][0].device)
                self.seen.mark(batch["rows"])
            self.on_train_forward()
            batch["train_mode"] = float(module.training)
            if logits is not None and "output_op" not in self.trace_facts:
                self._set_output_op(output_op(logits))
            self._candidate = batch
            if self.loss_fn is None or not isinstance(self.loss_fn, torch.nn.Module):
                self._candidate = self._summarize(batch)
        else:
            self.val_batches += 1
            self.val_train_mode += int(module.training)
            self._val_pending = batch
            waits = isinstance(self.loss_fn, torch.nn.Module) or self.external_labels is not None
            if hf_loss is not None or not waits:
                self._accumulate_val(batch)

    def _on_loss(self, module: Any, args: tuple, output: Any) -> None:
        self._calling_loss = None
        if len(args) < 2 or not torch.is_tensor(args[0]):
            return
        if self._grad_mode:
            pending = self._candidate if self._candidate and "y_pred" in self._candidate else {}
            batch = dict(pending)
            if "loss_input" not in self.trace_facts:  # what the loss receives decides
                self._set_output_op(output_op(args[0]))
                self.trace_facts["loss_input"] = list(args[0].shape)
            batch.update(y_pred=args[0], y=args[1], loss=output)
            batch.setdefault("train_mode", float(self.model.training))
            self._candidate = self._summarize(batch)
        else:
            batch = dict(self._val_pending or {})
            batch.update(y_pred=args[0], y=args[1], loss=output)
            self._accumulate_val(batch)

    def failed_step(self) -> None:
        """The loop raised inside a training step: record what that step had reached (the
        inputs and labels it was called with) so the rules can name the cause."""
        batch: dict = dict(self._calling or {})
        if self._candidate is not None and "y_pred" in self._candidate:
            batch.update(self._candidate)  # the model ran, the loss failed
        if self._calling_loss is not None:
            batch["y_pred"], batch["y"] = self._calling_loss
        self._calling = self._calling_loss = None
        if self._candidate is not None and "y_pred" not in self._candidate:
            self._micro.append(self._candidate)
        elif batch:
            vals = self._summarize(batch)
            if vals is not None:
                self._micro.append(vals)
        self._candidate = None
        if self._micro and self.optimizer is not None:
            self._on_step(self.optimizer, (), {}, snapshot=False)
        self._snap_sq = None  # a step that failed inside optimizer.step(): no measured update
        self._after_step(self.optimizer, (), {})

    def skipped_step(self) -> None:
        """The GradScaler skipped ``optimizer.step()`` (non-finite gradients): the step's row,
        without an update, so that the skip and its gradients are on record."""
        if self._micro or self._grads is not None:
            self._on_step(self.optimizer, (), {}, snapshot=False)
            self._after_step(self.optimizer, (), {})

    def observe_loss(self, loss: Any) -> None:
        """The loss of the latest training forward, computed outside the model and the loss
        module (shown by a wrapper, e.g. around the HF Trainer's compute_loss)."""
        if self._val_pending is not None:  # a validation batch waiting for its loss
            self._accumulate_val({**self._val_pending, "loss": loss})
            return
        vals = self._candidate
        if torch.is_tensor(loss) and vals is not None and "y_pred" not in vals:
            value = loss.detach().float().mean()
            vals.setdefault("loss", value)
            vals.setdefault("loss_nonfinite", (~torch.isfinite(value)).float())

    def _on_call(self, module: Any, args: tuple, kwargs: dict) -> None:
        """Before a training forward: its inputs, in case the forward raises."""
        if self._grad_mode:
            ids, mask = q.find_text_inputs(args, kwargs)
            self._calling = {
                "ids": ids,
                "mask": mask,
                "y": kwargs.get("labels", self.external_labels),
            }

    def _on_loss_call(self, module: Any, args: tuple) -> None:
        """Before a training loss: what it receives, in case it raises (e.g. a bad label)."""
        if self._grad_mode and len(args) >= 2 and torch.is_tensor(args[0]):
            self._calling_loss = (args[0], args[1])

    # ---------------------------------------------------------------- backward / step
    def _on_ref_grad(self, param: torch.Tensor) -> None:
        """The first backward pass of a step reaches the reference parameter: what does its
        ``.grad`` still hold from before? (None or zeros after ``zero_grad()``.)"""
        if self._backwards == 0 and self._stale is None:
            held = param.grad
            self._stale = 0.0 if held is None else held.detach().abs().amax().float()

    def _on_grad(self, param: torch.Tensor) -> None:
        if not self._queued:
            self._queued = True
            engine = torch.autograd.Variable._execution_engine
            engine.queue_callback(lambda: engine.queue_callback(self._guard(self._after_backward)))

    def _after_backward(self) -> None:
        self._queued = False
        self._backwards += 1
        candidate, self._candidate = self._candidate, None
        if candidate is not None and "y_pred" in candidate:  # no loss hook saw it: no labels
            candidate = self._summarize(candidate)
        if candidate is not None:
            self._micro.append(candidate)  # the forward this backward pass trained on
        grads = [p.grad for p in self.params]
        present = tuple(i for i, g in enumerate(grads) if g is not None)
        if self.layout is None or not present:
            self._grads = {"grad_missing": float(len(grads) - len(present))}
            return
        index = {name: i for i, name in enumerate(self.layout.layers)}
        ids = self._group_ids.get(present)
        if ids is None:
            device = grads[present[0]].device
            ids = torch.tensor([index[self.groups[i]] for i in present], device=device)
            self._group_ids[present] = ids
        self._grads = q.gradient_stats(grads, ids, max(1, len(self.layout.layers)))
        groups = getattr(self.optimizer, "param_groups", None) or []
        signature = (len(groups), sum(len(g.get("params", ())) for g in groups), present)
        if signature != self._opt_signature:  # first backward, or add_param_group since
            self._opt_signature = signature
            held = self._optimizer_params()
            self.trace_facts["unoptimized_params"] = [
                self.param_names[i] for i in present if id(self.params[i]) not in held
            ]
            self.trace_facts["unused_params"] = len(grads) - len(present)

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any, snapshot: bool = True) -> None:
        """Before ``optimizer.step()``: close the step's values and snapshot the weights."""
        if self._row is not None:  # the previous step raised inside optimizer.step()
            self._write(self._row)
            self._row = None
        layout = self.layout
        micro, grads, stale, backwards = self._micro, self._grads, self._stale, self._backwards
        self._micro, self._grads, self._stale, self._backwards = [], None, None, 0
        if layout is None or self.ring is None:
            return
        vals = q.combine(micro) if micro else {}
        vals.update(grads or {})
        if self.amp is not None:
            vals.update(self.amp.unscale(vals))
        vals["grad_stale"] = stale if stale is not None else float("nan")
        vals["micro_batches"] = float(backwards)
        groups = getattr(optimizer, "param_groups", None)
        lr = groups[0].get("lr") if groups else None
        if isinstance(lr, (int, float)):
            vals["lr"] = float(lr)
        elif torch.is_tensor(lr):
            vals["lr"] = lr.detach().float()
        self._row = vals
        if snapshot:
            self._take_snapshot()

    def _take_snapshot(self) -> None:
        """Copy the trained weights into a buffer kept between steps (one fused copy)."""
        params = [p.detach() for p in self.params]
        device = self.ring.rows.device if self.ring is not None else None
        if not params or any(p.device != device or p.is_sparse for p in params):
            return  # weights spread over devices (offloading): no ratio, never a failure
        if self._snap is None:
            self._snap = [torch.empty_like(p) for p in params]
        torch._foreach_copy_(self._snap, params)
        self._snap_sq = q.weight_norms(self._snap)

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """After ``optimizer.step()``: measure the update and write the step's row."""
        vals, before_sq = self._row, self._snap_sq
        self._row = self._snap_sq = None
        if vals is None:
            return
        if before_sq is not None and self.layout is not None:
            ids = self._param_group_ids(before_sq.device)
            n = max(1, len(self.layout.layers))
            vals.update(q.update_ratio(self._snap, self.params, before_sq, ids, n))
        self._write(vals)

    def read_val(self) -> dict[str, np.ndarray] | None:
        """The validation sums by channel name (and zero them), or None before any step."""
        return self.val.read() if self.val is not None else None
