"""What one recorded row of a PyTorch step holds, from the tensors the hooks saw.

:class:`RowMaker` is the half of :class:`bertlab.probes.torch.instrument.Instrument` that turns
a forward's tensors into a summary (outputs, labels, inputs: :mod:`quantities`), fixes the row
layout at the first batch, packs and writes rows into the ring, adds validation batches into
the epoch's sums, and reads both back on the host. The instrument decides when (the hooks on the
model, loss and optimizer). The same split as the Keras probe's ``rows.py``/``instrument.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bertlab.layout import Layout
from bertlab.probes.torch import overlap
from bertlab.probes.torch import quantities as q
from bertlab.probes.torch.facts import refine_loss
from bertlab.probes.torch.ring import Ring, ValSums

#: Optional channels (``Layout.extras``) this probe records (``loss_scale`` with a GradScaler).
EXTRAS = ("train_mode", "grad_stale", "micro_batches", "mask_pad_share", "update_ratio")


class RowMaker:
    """Summaries, layout, ring and validation sums of an :class:`Instrument` (a mixin: the
    attributes it reads, such as ``facts``, ``groups``, ``amp`` and ``seen``, are the
    instrument's)."""

    def _set_output_op(self, op: str | None) -> None:
        """What made the outputs the loss reads (the autograd node): sigmoid, softmax, or not."""
        self.trace_facts["output_op"] = op
        if op is not None:
            names = {
                "Sigmoid": "sigmoid",
                "Softmax": "softmax",
                "LogSoftmax": "log_softmax",
                "Relu": "relu",
            }
            self.facts.output_activation = names.get(op, "linear")
            self.facts.softmax_layers = int(op == "Softmax")

    def _refine_loss(self, y_pred: torch.Tensor, y: torch.Tensor | None) -> None:
        """Settle what the targets say about the loss family (once, at the first batch)."""
        if y is None or "output_shape" in self.trace_facts:  # set here only: once per run
            return
        self.trace_facts["label_shape"] = list(y.shape)
        self.trace_facts["label_dtype"] = str(y.dtype).removeprefix("torch.")
        self.trace_facts["output_shape"] = list(y_pred.shape)
        refine_loss(self.facts, y_pred, y, builtin=self.loss_fn is None)

    def _ensure_layout(self, device: torch.device, ids: torch.Tensor | None, k: int) -> Layout:
        if self.layout is not None:
            return self.layout
        f = self.facts
        seq_len = int(ids.shape[1]) if ids is not None and ids.dim() == 2 else None
        self.layout = Layout.for_model(
            loss=f.loss,
            from_logits=f.from_logits,
            output_activation=f.output_activation,
            n_outputs=k,
            layers=tuple(dict.fromkeys(self.groups)),
            seq_len=seq_len,
            extras=EXTRAS + (("loss_scale",) if self.amp is not None else ()),
        )
        self.ring = Ring(self.layout, device, reduce=self.reduce, group=self.group)
        self.val = ValSums(self.layout, device)
        return self.layout

    def _summarize(self, batch: dict) -> dict | None:
        """The summary of one training micro-batch (device tensors and host floats)."""
        y_pred, y, loss = batch.get("y_pred"), batch.get("y"), batch.get("loss")
        ids = batch.get("ids")
        if y_pred is None:  # a step that failed inside the model: its inputs and labels only
            return self._summarize_inputs(ids, batch.get("mask"), y)
        if y_pred.dim() > 2:  # per-token outputs: one row per token, as the Keras probe reads
            y_pred = y_pred.reshape(-1, y_pred.shape[-1])
        self._refine_loss(y_pred, y)
        layout = self._ensure_layout(y_pred.device, ids, self._width(y_pred))
        vals: dict = {"train_mode": batch.get("train_mode", float("nan"))}
        if torch.is_tensor(loss):
            loss = loss.detach().float().mean()
            vals["loss"] = loss
            vals["loss_nonfinite"] = (~torch.isfinite(loss)).float()
        vals.update(q.output_stats(y_pred, layout))
        if torch.is_tensor(y) and layout.task != "regression":
            vals.update(q.class_counts(y.detach(), y_pred.detach(), layout)[0])
        if ids is not None and ids.dim() == 2:
            pad_id = getattr(self.facts, "pad_token_id", None)
            mask, unk = batch.get("mask"), self.facts.unk_token_id
            vals.update(q.input_stats(ids, mask, unk, layout.len_edges, pad_id))
        return vals

    def _summarize_inputs(self, ids: Any, mask: Any, y: Any) -> dict | None:
        """Input and label facts of a batch whose forward failed (no outputs to summarise)."""
        k = self.layout.n_outputs if self.layout is not None else self.facts.n_outputs
        if not torch.is_tensor(ids) or ids.dim() != 2 or k is None:
            return None
        layout = self._ensure_layout(ids.device, ids, int(k))
        pad_id = getattr(self.facts, "pad_token_id", None)
        vals = q.input_stats(ids, mask, self.facts.unk_token_id, layout.len_edges, pad_id)
        vals["batch_size"] = float(ids.shape[0])  # the batch counts: its label facts are data
        if torch.is_tensor(y) and layout.task != "regression":
            self.trace_facts.setdefault("label_shape", list(y.shape))
            vals.update(q.label_matrix(y.detach(), layout)[1])
        return vals

    @staticmethod
    def _width(y_pred: torch.Tensor) -> int:
        return int(y_pred.shape[-1]) if y_pred.dim() > 1 else 1

    def _row_hashes(self, args: tuple, kwargs: dict) -> tuple | None:
        """Slots and tags of the forward's input rows (:mod:`overlap`), or None."""
        try:
            parts = overlap.hash_parts(args, kwargs)
            return overlap.slot_and_tag(parts) if parts is not None else None
        except Exception as exc:  # noqa: BLE001 - the overlap count is optional
            self.trace_facts["row_hash_error"] = repr(exc)[:200]
            return None

    def _accumulate_val(self, batch: dict) -> None:
        self._val_pending = None
        y_pred = batch.get("y_pred")
        if self.layout is not None and self.val is not None and y_pred is not None:
            vals = q.val_stats(y_pred, batch.get("y"), batch.get("loss"), self.layout)
            rows = batch.get("rows")
            if rows is not None and self.seen is not None:
                vals["overlap"], vals["hashed"] = self.seen.matches(rows), float(len(rows[0]))
            self.val.add(vals)

    def _param_group_ids(self, device: torch.device) -> torch.Tensor:
        """The gradient group of every trained parameter, on the device (built once)."""
        ids = self._group_ids.get(("params",))
        if ids is None:
            index = {name: i for i, name in enumerate(self.layout.layers)}
            ids = torch.tensor([index[g] for g in self.groups], device=device)
            self._group_ids[("params",)] = ids
        return ids

    def _write(self, vals: dict) -> None:
        if self.layout is None or self.ring is None:
            return
        channels = self.layout.channels()
        self.ring.write(q.assemble(vals, channels, self.ring.nan), q.host_values(vals))
        self.on_step()

    def read_rows(self) -> np.ndarray | None:
        """Rows written since the last read, oldest first, as float64 (n, D); None if none."""
        return self.ring.read() if self.ring is not None else None

    def read_val(self) -> dict[str, np.ndarray] | None:
        """The validation sums by channel name (and zero them), or None before any step."""
        return self.val.read() if self.val is not None else None
