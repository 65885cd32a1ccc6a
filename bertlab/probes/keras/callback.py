"""``bertlab.Watch``: the Keras callback that records what happens inside every training batch."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from bertlab.cadence import Cadence, parse_every
from bertlab.probes.core import (
    ALL_PHASES,
    EVAL_BUDGET,
    EVAL_BUDGET_THINNED,
    READ_EVERY_S,
    WatchCore,
)
from bertlab.probes.tokens import special_ids, vocabulary_kind
from bertlab.run import DEFAULT_BUDGET_BYTES
from bertlab.validation import summarize


def _guarded(where: str) -> Callable:
    """Run a callback method so that a fault in bertlab never reaches ``fit``.

    The first fault is reported once as a ``BertlabWarning``; the Watch then detaches (the model
    is restored) and training goes on unobserved.
    """

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self: Watch, *args: Any, **kwargs: Any) -> Any:
            if self._broken or (self._foreign and where != "starting to watch"):
                return None
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the whole point
                self._fault(where, exc)
                return None

        return guarded

    return wrap


def _read_facts(model: Any) -> Any:
    """ModelFacts of a compiled Keras 3 or Keras 2 (tf_keras) model."""
    from bertlab.probes.keras.legacy import is_legacy_model

    if is_legacy_model(model):
        from bertlab.probes.keras.legacy_facts import model_facts
    else:
        from bertlab.probes.keras.facts import model_facts
    return model_facts(model)


def unk_id(value: Any) -> int | None:
    """An [UNK] id given as an int or as a tokenizer (see ``bertlab.probes.tokens``)."""
    if value is None or isinstance(value, (int, np.integer)):
        return None if value is None else int(value)
    return special_ids(value)[0]


def apply_tokenizer(facts: Any, tokenizer: Any, unk_token_id: Any) -> None:
    """Set ``facts.unk_token_id``/``pad_token_id`` from what the user passed (which wins over
    what the model carries): ``tokenizer=`` any tokenizer, preprocessor or lookup layer,
    ``unk_token_id=`` an int (or, as before, a tokenizer)."""
    unk, pad = special_ids(tokenizer)
    if unk_token_id is not None:
        unk = unk_id(unk_token_id)
        if pad is None and not isinstance(unk_token_id, (int, np.integer)):
            pad = special_ids(unk_token_id)[1]
    if unk is not None:
        facts.unk_token_id = unk
        kind = vocabulary_kind(tokenizer) or vocabulary_kind(unk_token_id)
        if kind is not None:
            facts.vocabulary_kind = kind
    if pad is not None:
        facts.pad_token_id = pad


class Watch(keras.callbacks.Callback, WatchCore):
    """Record training batches from inside Keras's own training step.

    Pass it to ``fit``; it needs no arguments (Keras hands it the model)::

        watch = bertlab.Watch()
        model.fit(x, y, validation_data=(xv, yv), epochs=3, callbacks=[watch])
        watch.history      # DataFrame, one row per recorded training batch
        watch.epochs       # DataFrame, one row per epoch (train + validation summaries)
        watch.save("run.bertlab")

    For every recorded batch (every one; on a model whose step takes milliseconds, every k-th
    after the first 30 s: see ``every``) it records the raw batch loss (not Keras's running
    mean), the learning rate,
    global and per-layer gradient norms, zero/missing/non-finite gradients, a summary of the
    model outputs (range, "already probabilities?", confidence, histogram), predicted vs true
    class counts, label facts and cheap input facts (token-id range, padding). Per epoch it adds
    the validation confusion matrix (or per-label precision/recall/F1 for multi-label).

    The numbers are computed inside the compiled train step on the tensors that step already
    has: no extra forward/backward pass, nothing added to ``logs`` (the progress bar and
    ``History`` are unchanged), no random op (same seed => bit-identical weights). After ``fit``
    the model is exactly as before. A fault inside bertlab is reported once as a
    ``BertlabWarning`` and training goes on unobserved.

    The same object works in a Keras 3 ``fit`` and in a Keras 2 one (the ``tf_keras`` package,
    or tf.keras 2, e.g. around transformers' TensorFlow models): which Keras trains is read from
    the model when ``fit`` starts (:mod:`bertlab.probes.keras.legacy` for Keras 2).

    Findings (named pathologies with evidence and fix) are in ``watch.findings``, most
    fundamental cause first; in a plain script each new one is printed as one line, and
    ``watch.report()`` gives the full text.

    Parameters
    ----------
    model
        Optional: the compiled model this Watch is for (``bertlab.Watch(model)``). Its
        pre-flight findings are in ``watch.findings`` at once, before any ``fit``, and a ``fit``
        of another model with this Watch is not observed (one message says so). Without it,
        ``fit`` hands the Watch its model.
    budget_mb
        Memory bound of the per-step history. Old steps are downsampled (bucket mean/min/max)
        so that a run of any length stays within it.
    tokenizer
        What produced the token ids, when the model does not carry it: a Hugging Face or
        KerasHub tokenizer, a KerasHub preprocessor, or the TextVectorization / StringLookup
        applied before the model. Its [UNK] id gives the [UNK] share of the inputs and its pad
        id tells padding from text (found automatically for KerasHub models that carry their
        preprocessor and for lookup layers inside the model).
    unk_token_id
        Id of the tokenizer's unknown token, when no tokenizer is at hand.
    verbose
        Print each new finding as one line (default: in plain scripts, not in notebooks).
    dashboard
        Show the live dashboard when ``fit`` starts (default: inside a Jupyter kernel). The
        widget is ``watch.dashboard``; displaying ``watch`` in a cell shows it too.
    class_names
        Names of the classes (labels), shown in the dashboard and reports instead of 0..K-1.
    path, flush_every_s
        Append the run to this file while it trains (at most every ``flush_every_s`` seconds,
        at every epoch end and at the end of ``fit``): a killed process leaves a record that
        ``bertlab.load`` opens and ``bertlab.follow`` watches from another process.
    every
        Which training steps get a row: ``"auto"`` (default) records the first 200 steps and
        30 s of training (whichever ends later), then measures what a row costs and records
        every k-th step if a row would cost more than 1 % of the training time (small models
        whose step takes a few milliseconds); ``1`` records every step; an int k records steps
        0, k, 2k... A recorded row is one step measured whole (its ``step`` column says
        which); validation summaries see every batch, the train/validation overlap table every
        training row, and a non-finite loss brings every step back. See
        :mod:`bertlab.cadence`. Under a ``tf.distribute`` strategy and on Keras 2 every step is
        recorded.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        budget_mb: float = DEFAULT_BUDGET_BYTES / 2**20,
        tokenizer: Any = None,
        unk_token_id: int | None = None,
        verbose: bool | None = None,
        dashboard: bool | None = None,
        class_names: list[str] | None = None,
        path: Any = None,
        flush_every_s: float = 2.0,
        every: int | str = "auto",
    ) -> None:
        super().__init__()
        parse_every(every)  # a wrong value is a clear error now, not a fault during fit
        self._every = every
        self._cadence: Cadence | None = None
        self._tokenizer = tokenizer
        self._init_core(
            budget_mb=budget_mb,
            unk_token_id=unk_token_id,
            verbose=verbose,
            dashboard=dashboard,
            class_names=class_names,
            path=path,
            flush_every_s=flush_every_s,
        )
        self._calls = 0
        self._spe = 1
        self._instrument: Any = None
        self._val: dict[str, np.ndarray] | None = None
        self._bound = model
        self._foreign = False
        #: ``fit`` calls that reached ``on_train_begin`` (Keras converts the data before).
        self.fits_begun = 0
        if model is not None and getattr(model, "optimizer", None) is not None:
            self._facts = _read_facts(model)  # compiled: its pre-flight findings now
            apply_tokenizer(self._facts, tokenizer, unk_token_id)
            self.run.meta["model"] = self._facts.to_dict()
            self._evaluate(("preflight",))

    # Keras 2's CallbackList (tf_keras/src/callbacks.py) asks every callback which batch hooks it
    # implements and whether it takes tensors as logs; Keras 3 callbacks have no such methods.
    # Watch reads every training batch (Python floats in logs), no test or predict batch.
    _supports_tf_logs = False
    _chief_worker_only = None
    _foreign = False  # this fit runs another model than the one the Watch was made for

    def _implements_train_batch_hooks(self) -> bool:
        return True

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    def detach(self) -> None:
        """Stop observing and restore the model now (done automatically at the end of ``fit``)."""
        if self._instrument is not None:
            self._instrument.restore()

    # ------------------------------------------------------------------ Keras hooks
    @_guarded("starting to watch")
    def on_train_begin(self, logs=None) -> None:
        from bertlab.probes.keras.legacy import is_legacy_model

        self.fits_begun += 1
        model = self.model
        self._foreign = self._bound is not None and model is not self._bound
        if self._foreign:
            self._say(
                f"this Watch was made for {type(self._bound).__name__} "
                f"(bertlab.Watch(model)) but fit runs {type(model).__name__}: this fit is not "
                "observed; pass a Watch made for that model, or bertlab.Watch()"
            )
            return
        legacy = is_legacy_model(model)
        if legacy:
            from bertlab.probes.keras.legacy import LegacyInstrument as Instrument
        else:
            from bertlab.probes.keras.instrument import Instrument
        stale = getattr(model, "__dict__", {}).get("_bertlab_instrument")
        if stale is not None and stale is not self._instrument:
            stale.restore()  # an earlier fit that raised left its Watch attached
        facts = _read_facts(model)
        apply_tokenizer(facts, self._tokenizer, self.unk_token_id)
        self._facts = facts
        self._spe = facts.steps_per_execution
        self._eval_clock = time.perf_counter()
        self._show()
        self.run.begin(facts)
        # Passes over the data are the clock of the rules that wait for a slow learner to leave
        # the label prior (rules/_dynamics.prior_hold); None for a dataset of unknown length.
        self.run.meta["steps_per_epoch"] = (getattr(self, "params", None) or {}).get("steps")
        self._training(True)
        self._evaluate(("preflight", "live"))
        self._t0 = time.perf_counter()
        if self._instrument is None or self._instrument.model is not model:
            self._instrument = Instrument(model, facts, self._fault)
            self._cadence = self._new_cadence(model, legacy)
        else:
            self._instrument.facts = facts
        self._instrument.on_error = self._on_step_error
        self._instrument.row_now = self._cadence.record_next
        self._instrument.install()
        object.__setattr__(model, "_bertlab_instrument", self._instrument)

    def _new_cadence(self, model: Any, legacy: bool) -> Cadence:
        """Which steps get a row (:mod:`bertlab.cadence`): every one on Keras 2 and under a
        tf.distribute strategy (whose cross-replica row is not split in two variants)."""
        strategy = getattr(model, "_distribute_strategy", None) is not None
        if (legacy or strategy) and self._every != 1:
            if self._every != "auto":
                self._say(
                    f"every={self._every} is not supported "
                    + ("on Keras 2" if legacy else "under a tf.distribute strategy")
                    + ": every step is recorded"
                )
            return Cadence(1)
        return Cadence(self._every)

    @property
    def every(self) -> int:
        """The stride in force: a row every ``every`` training steps (:mod:`bertlab.cadence`)."""
        return self._cadence.every if self._cadence is not None else 1

    def _steps_done(self) -> int:
        """Training steps this Watch's instrument has run (one host read of its counter)."""
        inst = self._instrument
        return inst.steps_done() if inst is not None else 0

    @_guarded("starting an epoch")
    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = int(epoch)
        self._batch = self._steps_done()  # the global step this epoch starts at
        self._val = None
        if self._cadence is not None:
            self._cadence.gap()

    @_guarded("reading a training batch")
    def on_train_batch_end(self, batch, logs=None) -> None:
        # Keras has already turned logs into Python floats for batch-level callbacks, so a
        # running-mean loss that is not finite flags a NaN batch at no cost: look at once then.
        # Otherwise rows wait in the in-graph ring and are read when the rules are due, when
        # the ring is half full, or every READ_EVERY_S, which keeps the per-batch cost of Watch
        # to a few microseconds. Only calls that recorded rows count towards these: with a
        # stride (bertlab.cadence), reading or judging again before a new row is waste.
        # (Every line here runs at every step: on a 0.35 ms JAX step 10 us is 3 %.)
        now = time.perf_counter()
        spe = self._spe if self._spe > 1 else 1
        inst = self._instrument
        recorded = inst is not None and inst.last_recorded
        if recorded:
            self._calls += 1
            self._since_eval += spe
        loss = logs.get("loss") if logs else None
        urgent = isinstance(loss, float) and not math.isfinite(loss)
        cadence = self._cadence
        if cadence is not None and inst is not None:
            if cadence.call_done(spe, recorded, now):  # the stride was just chosen
                self.run.meta["every"] = cadence.every
                self.run.note(cadence.decided)
                if cadence.every > 1:
                    self._eval_budget = EVAL_BUDGET_THINNED
            if urgent:  # every step again, for good
                cadence.full()
                self._eval_budget = EVAL_BUDGET
                if "every" in self.run.meta:
                    self.run.meta["every"] = 1
            inst.row_now = cadence.record_next
        full = recorded and self._calls * spe * 2 >= inst.capacity
        due = self._since_eval >= self._eval_every
        if urgent or due or full or (self._calls and now - self._last_read >= READ_EVERY_S):
            self._collect()
            if urgent or due:
                self._evaluate_live()
            if cadence is not None:
                cadence.resume(time.perf_counter())  # our own work is not the step's

    def _collect(self) -> None:
        self._calls = 0
        self._last_read = time.perf_counter()
        inst = self._instrument
        if inst is None:
            return
        rows = inst.read_rows()
        for text in inst.notes:
            self._say(text)
        # Trace facts first: when fit fails on its first step there is no row, but the rules
        # explaining the failure still need the traced label/output shapes.
        self.run.meta.update(inst.trace_facts)
        if rows is None:
            return
        if inst.layout is not None and not self.run.set_layout(inst.layout):
            self._say(
                "this Watch was reused on a model with a different output or layers; "
                "use a new Watch per model"
            )
            self.detach()
            return
        if self.run.layout is not None and self.run.layout.task == "regression":
            self._say(
                "the loss and output look like a regression: class histograms are not recorded"
            )
        self._add_rows(rows, rows[:, 0].copy())  # column 0: the step, from the ring

    @_guarded("starting validation")
    def on_test_begin(self, logs=None) -> None:
        inst = self._instrument
        if self._cadence is not None:
            self._cadence.gap()
        if inst is not None and inst.installed:
            inst.adopt_test_function()
            inst.reset_val()

    @_guarded("reading validation")
    def on_test_end(self, logs=None) -> None:
        inst = self._instrument
        if inst is not None and inst.installed and inst.layout is not None:
            acc = inst.read_val()
            self._val = summarize(inst.layout, acc) if acc is not None else None

    @_guarded("ending an epoch")
    def on_epoch_end(self, epoch, logs=None) -> None:
        self._collect()  # every row of this epoch is read before the next one starts
        done = self._steps_done()
        record: dict[str, Any] = {"epoch": int(epoch), "steps": done}
        per_epoch = (getattr(self, "params", None) or {}).get("steps")
        if per_epoch and done - self._batch >= per_epoch and self._instrument is not None:
            self._instrument.end_first_pass()  # a whole pass over the data is in the table
        for key, value in (logs or {}).items():
            try:
                record[key] = float(value)
            except (TypeError, ValueError):
                continue
        record.update(self._val or {})
        self._val = None
        self.run.add_epoch(record)
        self._evaluate(ALL_PHASES)

    @_guarded("ending training")
    def on_train_end(self, logs=None) -> None:
        self._collect()
        self._evaluate(ALL_PHASES)
        self._finish()

    def _finish(self) -> None:
        self._training(False)
        self._announce_verdict()
        self.detach()
        model = self.model
        if getattr(model, "__dict__", {}).get("_bertlab_instrument") is self._instrument:
            model.__dict__.pop("_bertlab_instrument", None)
        self.run.end()
        self._flush_record()

    def _on_step_error(self, exc: BaseException) -> None:
        """The compiled step raised: keep what was recorded, name the cause, restore the model.

        Setup errors that explain the exception are attached to it as PEP 678 notes starting
        with ``bertlab:``; the exception then propagates unchanged otherwise.
        """
        try:
            self._collect()
            message = str(exc)
            self._evaluate(ALL_PHASES, error=message)
            for finding in self.findings:
                rule = self._diagnoser.by_code[finding.code]
                if finding.severity == "error" and rule.phase == "preflight":
                    exc.add_note(finding.note())
        finally:
            self.run.meta["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
            self._finish()
