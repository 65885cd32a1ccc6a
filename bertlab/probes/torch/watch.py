"""``bertlab.torch.Watch``: watch a plain PyTorch training loop without changing it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from bertlab.probes.core import ALL_PHASES, READ_EVERY_S, WatchCore
from bertlab.probes.tokens import special_ids, vocabulary_kind
from bertlab.probes.torch.amp import ScalerTap, accelerate_scaler
from bertlab.probes.torch.facts import model_facts, unoptimized_parameters
from bertlab.probes.torch.instrument import Instrument
from bertlab.probes.torch.ring import RING_ROWS
from bertlab.run import DEFAULT_BUDGET_BYTES
from bertlab.validation import summarize


def process_rank() -> tuple[int, int]:
    """This process's rank and the world size in ``torch.distributed`` ((0, 1) when alone)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


def _token_ids(tokenizer: Any, unk_token_id: int | None) -> tuple[int | None, int | None]:
    """(unk, pad) ids of the tokenizer in use (Hugging Face, KerasHub, a Keras lookup layer:
    ``bertlab.probes.tokens``); an explicit ``unk_token_id`` wins."""
    unk, pad = special_ids(tokenizer)
    return (int(unk_token_id) if unk_token_id is not None else unk), pad


class Watch(WatchCore):
    """Record every optimizer step of a PyTorch training loop, from hooks (the loop is unchanged).

    ::

        watch = bertlab.torch.Watch(model, optimizer, loss_fn=criterion)
        for epoch in range(3):
            model.train()
            for batch in train_loader:
                optimizer.zero_grad()
                probs = model(batch["input_ids"], batch["attention_mask"])
                loss = criterion(probs, batch["labels"])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                for batch in val_loader:
                    criterion(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        watch.close()      # or use `with bertlab.torch.Watch(...) as watch:`
        watch.findings; watch.history; watch.report(); watch.save("run.bertlab")

    Each optimizer step gives one row (gradient accumulation included): the raw loss the loss
    function returned, the learning rate, gradient norms per layer *before* any clipping, zero /
    missing / non-finite gradients, what the loss received (range, already probabilities?,
    confidence, histogram), predicted vs true class counts, label and input facts, and whether
    the step ran in ``train()`` mode and on zeroed gradients. Forwards under ``torch.no_grad()``
    whose loss is computed (through ``loss_fn`` or a ``labels=`` argument, as Hugging Face models
    take) are validation batches: an epoch ends when training resumes after them (or at
    :meth:`end_epoch` / :meth:`close`), with the confusion matrix or per-label precision/recall.

    Nothing is added to the computation the loop differentiates and no random op runs, so the
    same seed gives bit-identical weights with and without Watch; the numbers stay on the device
    until the Watch reads them, a few times a second. A fault in bertlab is reported once as a
    ``BertlabWarning`` and training goes on unobserved.

    Parameters
    ----------
    model
        The ``nn.Module`` being trained (DistributedDataParallel and Accelerate wrappers are
        looked through).
    optimizer
        Its optimizer (``torch.optim``, or Accelerate's wrapper): steps, learning rate, and
        which trainable parameters it does not update.
    loss_fn
        The loss module the loop calls (``nn.CrossEntropyLoss()``, ``nn.BCELoss()``...): what it
        receives and the targets are recorded. Not needed for Hugging Face models called with
        ``labels=``. A plain function cannot be hooked: outputs are then recorded without labels.
    tokenizer
        The tokenizer in use (a Hugging Face or KerasHub tokenizer or preprocessor): its [UNK]
        id gives the [UNK] share of the inputs, its pad id tells padding from text.
    rank
        In a multi-process run (torchrun, DDP, Accelerate) only rank 0 records and shows, the
        other ranks' Watches stay idle; ``rank="all"`` records on every rank (with ``path=``,
        one file per rank).
    scaler
        The loop's ``torch.amp.GradScaler`` (mixed precision): gradient norms are divided back by
        its scale, the scale is recorded (``loss_scale``) and steps it skips get a row, so a
        collapsing scale is named (``loss-scale-collapse``). Found by itself on Accelerate's
        optimizer wrapper (so also under the Hugging Face Trainer with ``fp16=True``). Without
        it, norms measured under a scaled loss are as scaled as the gradients.
    budget_mb, unk_token_id, verbose, dashboard, class_names, path, flush_every_s
        As for the Keras ``bertlab.Watch``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: Any = None,
        loss_fn: Any = None,
        *,
        tokenizer: Any = None,
        unk_token_id: int | None = None,
        rank: int | str | None = None,
        scaler: Any = None,
        budget_mb: float = DEFAULT_BUDGET_BYTES / 2**20,
        verbose: bool | None = None,
        dashboard: bool | None = None,
        class_names: list[str] | None = None,
        path: Any = None,
        flush_every_s: float = 2.0,
    ) -> None:
        self.rank, world = process_rank()
        active = rank == "all" or self.rank == (0 if rank is None else rank)
        # Several processes, one record: every rank measures its shard of the batch and the
        # rows are combined over the ranks (ring.py); only the recording rank reads them.
        reduce = world > 1 and rank != "all"
        if path is not None and rank == "all":
            from bertlab.record import rank_path

            path = rank_path(path, self.rank)
        self._init_core(
            budget_mb=budget_mb,
            unk_token_id=unk_token_id,
            verbose=verbose,
            dashboard=dashboard,
            class_names=class_names,
            path=path,
            flush_every_s=flush_every_s,
            record=active,
        )
        self.active = active
        self._instrument: Instrument | None = None
        self._epoch_steps = 0
        self._closed = False
        if not active and not reduce:
            return
        facts = model_facts(model, optimizer, loss_fn)
        facts.unk_token_id, facts.pad_token_id = _token_ids(tokenizer, unk_token_id)
        facts.vocabulary_kind = vocabulary_kind(tokenizer)
        self._facts = facts
        if world > 1:
            self.run.meta["distributed"] = {
                "rank": self.rank,
                "world_size": world,
                "combined_over_ranks": reduce,
            }
        unoptimized = unoptimized_parameters(model, optimizer)
        if unoptimized:
            self.run.meta["params_outside_optimizer"] = unoptimized
        if active:
            self.run.begin(facts)
            self._training(True)
            self._evaluate(("preflight",))
        self._instrument = Instrument(
            model, optimizer, loss_fn, facts, self._fault, self._after_step, self._train_forward
        )
        self._instrument.reduce = reduce
        if reduce:  # every rank creates its Watch: a collective call, in the same order
            self._instrument.group = torch.distributed.new_group()
        self._instrument.install()
        scaler = scaler if scaler is not None else accelerate_scaler(optimizer)
        if scaler is not None:
            self._instrument.amp = ScalerTap(scaler, self._skipped_step, self._fault)
            self._instrument.amp.install()

    def _skipped_step(self) -> None:
        if self._instrument is not None:
            with torch.no_grad():
                self._instrument.skipped_step()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Watch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and self.active and not self._broken:
            self._on_error(exc)
        self.close()

    def _on_error(self, exc: BaseException) -> None:
        """The loop raised: record the step it was in, name the cause, and attach the setup
        errors that explain the exception as PEP 678 notes starting with ``bertlab:`` (the
        exception itself propagates unchanged)."""
        self.run.meta["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
        try:
            if self._instrument is not None:
                with torch.no_grad():
                    self._instrument.failed_step()
            self._collect()
            self._evaluate(ALL_PHASES, error=str(exc))
            for finding in self.findings:
                rule = self._diagnoser.by_code[finding.code]
                if finding.severity == "error" and rule.phase == "preflight":
                    exc.add_note(finding.note())
        except Exception as inner:  # noqa: BLE001 - never mask the user's error
            self._fault("diagnosing the error", inner)

    def detach(self) -> None:
        """Remove every hook now (the model, loss and optimizer are as they were)."""
        if self._instrument is not None:
            self._instrument.remove()
            if self._instrument.amp is not None:
                self._instrument.amp.remove()

    def close(self) -> None:
        """End the epoch in progress, run the rules a last time, remove the hooks."""
        if self._closed:
            return
        self._closed = True
        self._training(False)
        if not self.active or self._broken:
            self.detach()
            return
        try:
            if self._epoch_steps or self._validated():
                self.end_epoch()
            self._collect()
            self._evaluate(ALL_PHASES)
            self._announce_verdict()
        except Exception as exc:  # noqa: BLE001 - closing must never raise into the loop
            self._fault("closing", exc)
        finally:
            self.detach()
            self.run.end()
            self._flush_record()

    def end_epoch(self, logs: dict[str, Any] | None = None) -> None:
        """Close the epoch now (done automatically when training resumes after validation).

        ``logs`` (numbers such as a learning-rate schedule's value or a metric the loop
        computed) are stored in the epoch's record beside bertlab's own summaries.
        """
        if not self.active or self._broken:
            return
        try:
            self._end_epoch(logs or {})
        except Exception as exc:  # noqa: BLE001
            self._fault("ending an epoch", exc)

    # ------------------------------------------------------------------ hooks' callbacks
    def _validated(self) -> bool:
        """Whether validation batches ran since the epoch's last training step."""
        return self._instrument is not None and self._instrument.val_batches > 0

    def _train_forward(self) -> None:
        if not self.active:
            return
        self._show()
        if self._validated():
            self._end_epoch({})

    def _after_step(self) -> None:
        if not self.active:
            return
        self._epoch_steps += 1
        self._since_eval += 1
        inst = self._instrument
        due = self._since_eval >= self._eval_every
        full = inst is not None and inst.ring is not None and inst.ring.unread >= RING_ROWS // 2
        if due or full or time.perf_counter() - self._last_read >= READ_EVERY_S:
            self._collect()
        if due:
            self._evaluate_live()

    def _collect(self) -> None:
        self._last_read = time.perf_counter()
        inst = self._instrument
        if inst is None:
            return
        self.run.meta.update(inst.trace_facts)
        self.run.meta["model"] = self._facts.to_dict()  # the first batches refine the facts
        rows = inst.read_rows()
        if inst.ring is not None and inst.ring.note:
            self._say(inst.ring.note)
        if rows is None or inst.layout is None:
            return
        self.run.set_layout(inst.layout)
        self._add_rows(rows)

    def _end_epoch(self, logs: dict[str, Any]) -> None:
        inst = self._instrument
        self._collect()
        record: dict[str, Any] = {"epoch": self._epoch, "steps": self.run.steps}
        losses = self.run.column("loss")[-self._epoch_steps :] if self._epoch_steps else []
        if len(losses) and np.isfinite(losses).any():
            record["loss"] = float(np.nanmean(losses))
        if inst is not None and inst.layout is not None:
            acc = inst.read_val()
            val = summarize(inst.layout, acc) if acc is not None else {}
            if "val_loss_recorded" in val:
                val["val_loss"] = val["val_loss_recorded"]
            confusion = val.get("val_confusion")
            if confusion is not None and confusion.sum():
                val["val_accuracy"] = float(np.trace(confusion) / confusion.sum())
            if inst.val_batches:
                val["val_train_mode"] = inst.val_train_mode / inst.val_batches
            inst.val_batches = inst.val_train_mode = 0
            record.update(val)
        for key, value in logs.items():
            try:
                record[key] = float(value)
            except (TypeError, ValueError):
                continue
        self.run.add_epoch(record)
        self._evaluate(ALL_PHASES)
        self._epoch += 1
        self._batch = 0
        self._epoch_steps = 0
