"""Record every training step from inside Keras's own train step, on every Keras backend.

How it works (TensorFlow and torch backends): Keras compiles ``model.train_step`` into
``model.train_function`` (``make_train_function`` binds the method at build time). While a
``Watch`` is attached, this module puts thin wrappers on the model's ``train_step``,
``test_step`` and ``compute_loss`` and on the optimizer's ``apply``, and builds a new train
function from them. At trace time (TensorFlow) or run time (torch) the wrappers stash the
tensors the step already computes (inputs, labels, outputs, loss, gradients, learning rate); at
the end of the step one row of summaries (:mod:`quantities`) is written into a small ring of rows
on the device (:mod:`rings`), so the numbers come from the very step that trained the model, one
row per batch even when ``steps_per_execution > 1`` runs many steps per call. On JAX the train
step is a pure function of the state; :mod:`jax_step` stashes the same tensors at the points the
JAX trainer exposes and threads the ring through the jitted step. Validation batches add into
per-epoch accumulators instead. Nothing is returned through ``logs``, so the progress bar and
``History`` never see it; no random op is added, so training is bit-identical with and without it.

``restore()`` puts every attribute back exactly as it was (the original train/test functions
included); instrumented functions are cached so that a second ``fit`` does not retrace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.probes.keras import precision
from bertlab.probes.keras import quantities as q
from bertlab.probes.keras.rings import Ring
from bertlab.probes.keras.rows import RowRecorder, ring_capacity

__all__ = ["Instrument", "ring_capacity"]

_LOSS_ARGS = ("x", "y", "y_pred", "sample_weight")


def _value(variable: Any) -> Any:
    """A variable's stored value (a Keras 3 variable's own storage, never an autocast copy)."""
    raw = getattr(variable, "_value", None)
    return variable if raw is None else raw


class Instrument(RowRecorder):
    """In-graph recording for one model on behalf of one Watch.

    The optimizer method that receives the gradients is ``OPTIMIZER_METHOD`` (Keras 3:
    ``apply``); a subclass for another Keras (``legacy.LegacyInstrument``, Keras 2's
    ``apply_gradients``) overrides it, ``_optimizer_call`` and ``_var_names``.

    Parameters
    ----------
    model
        A compiled Keras model (any Keras 3 backend; Keras 2 in the subclass).
    facts
        Its static facts (loss, activation...), used to choose the row layout.
    on_fault
        Called with ``(where, exception)`` when bertlab's own code fails; the failing part is
        skipped and training goes on.
    """

    OPTIMIZER_METHOD = "apply"
    #: The backend whose ring is used; None: the running Keras's (Keras 2 sets "tensorflow").
    BACKEND: str | None = None

    def __init__(
        self, model: Any, facts: ModelFacts, on_fault: Callable[[str, BaseException], None]
    ):
        self.model = model
        self.facts = facts
        self.on_fault = on_fault
        self.layout: Layout | None = None
        self.trace_facts: dict[str, Any] = {}
        self.notes: list[str] = []
        self.on_error: Callable[[BaseException], None] | None = None
        self._pendings: dict[int, dict[str, Any]] = {}  # per replica (tf.distribute)
        self.ring: Ring | None = None
        self.backend = self.BACKEND or keras.backend.backend()
        self._read = 0
        self._lost_reported = False
        self._saved: dict[str, Any] = {}
        self._cache: dict[str, tuple[Any, Any]] = {}
        self.installed = False
        self.reduced_seen = False  # the optimizer's all-reduced gradients were used
        #: Host side of the cadence (:mod:`bertlab.cadence`): whether the next training call
        #: runs the step that records rows, and whether the last one did.
        self.row_now = True
        self.last_recorded = True
        #: True while the variant of the step that records no row runs (and is traced).
        self._bare_trace = False

    # ---------------------------------------------------------------- install / restore
    def install(self) -> None:
        """Wrap the model's step methods and the optimizer, and swap in instrumented functions."""
        if self.backend == "jax":
            from bertlab.probes.keras import jax_step

            jax_step.install(self)
            return
        model, opt = self.model, self.model.optimizer
        self._saved = {
            "train_step": model.__dict__.get("train_step"),
            "test_step": model.__dict__.get("test_step"),
            "compute_loss": model.__dict__.get("compute_loss"),
            "optimizer": opt.__dict__.get(self.OPTIMIZER_METHOD) if opt is not None else None,
            "train_function": model.train_function,
            "test_function": model.test_function,
        }
        self._orig = {
            "train_step": model.train_step,
            "test_step": model.test_step,
            "compute_loss": model.compute_loss,
            "optimizer": getattr(opt, self.OPTIMIZER_METHOD) if opt is not None else None,
        }
        object.__setattr__(model, "train_step", self._train_step)
        object.__setattr__(model, "test_step", self._test_step)
        object.__setattr__(model, "compute_loss", self._compute_loss)
        if opt is not None:
            object.__setattr__(opt, self.OPTIMIZER_METHOD, self._optimizer_call)
        if self._replicas is not None:
            self._replicas.hook_optimizer_reduce(self, opt)
        self.installed = True
        model.train_function = self._instrumented("train", self._saved["train_function"])
        model.test_function = self._instrumented("test", self._saved["test_function"])

    def _instrumented(self, kind: str, original: Any) -> Any:
        """The cached instrumented function for this original, or ``None`` (Keras builds one).

        For "train" a new function is built now, wrapped so that an exception raised by the
        step reaches ``on_error`` (which may annotate it and restore the model) before it
        propagates. For "test", Keras builds it lazily in ``evaluate``; ``adopt_test_function``
        caches that one.
        """
        cached = self._cache.get(kind)
        if cached is not None and cached[0] is original:
            return cached[1]
        if kind == "test":
            return None
        compiled = {True: self._compiled_step()}

        def train_function(iterator: Any) -> Any:
            row = self.row_now
            fn = compiled.get(row)
            if fn is None:  # first unrecorded call: build that variant (traced on this call)
                fn = compiled[row] = self._bare(self._compiled_step())
                self.model.train_function = train_function
            self.last_recorded = row
            try:
                return fn(iterator)
            except BaseException as exc:  # noqa: BLE001 - re-raised unchanged
                self.step_failed(exc)
                raise

        self._cache[kind] = (original, train_function)
        return train_function

    def _compiled_step(self) -> Any:
        """A new train function compiled by Keras from the (wrapped) train step."""
        self.model.make_train_function(force=True)
        return self.model.train_function

    def _bare(self, compiled: Any) -> Any:
        """``compiled`` run (and traced) as the variant that records no row: the step is
        counted and its input rows remembered, nothing else (see :mod:`bertlab.cadence`)."""

        def bare(*args: Any) -> Any:
            self._bare_trace = True
            try:
                return compiled(*args)
            finally:
                self._bare_trace = False

        return bare

    def step_failed(self, exc: BaseException) -> None:
        """A training step raised ``exc``: let ``on_error`` annotate it (not the end of data)."""
        if isinstance(exc, StopIteration) or type(exc).__name__ == "OutOfRangeError":
            return  # the end of a dataset: Keras's normal way to end an epoch
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception as inner:  # noqa: BLE001 - never mask the user's error
                self.on_fault("on_error", inner)

    def adopt_test_function(self) -> None:
        """Cache the test function Keras just built with our hooks (call in on_test_begin)."""
        current = self.model.test_function
        if self.installed and current is not None and current is not self._saved["test_function"]:
            self._cache["test"] = (self._saved["test_function"], current)

    def restore(self) -> None:
        """Put the model and optimizer back exactly as they were before ``install``."""
        if not self.installed:
            return
        self.installed = False
        model, opt = self.model, self.model.optimizer
        for key, name, owner in (
            ("train_step", "train_step", model),
            ("test_step", "test_step", model),
            ("compute_loss", "compute_loss", model),
            ("optimizer", self.OPTIMIZER_METHOD, opt),
            ("update_metrics", "_update_metrics_variables", model),
            ("stateless_apply", "stateless_apply", opt),
        ):
            if key not in self._saved:
                continue
            if owner is None:
                continue
            if self._saved[key] is None:
                owner.__dict__.pop(name, None)
            else:
                object.__setattr__(owner, name, self._saved[key])
        if self._replicas is not None:
            self._replicas.unhook_optimizer_reduce(self)
        model.train_function = self._saved["train_function"]
        model.test_function = self._saved["test_function"]

    # ---------------------------------------------------------------- trace-time hooks
    @property
    def _pending(self) -> dict[str, Any] | None:
        """The tensors stashed by the step now being traced (one per replica: under
        ``MirroredStrategy`` every replica traces its step in a thread of its own)."""
        return self._pendings.get(self._replica_key())

    @_pending.setter
    def _pending(self, value: dict[str, Any] | None) -> None:
        key = self._replica_key()
        if value is None:
            self._pendings.pop(key, None)
        else:
            self._pendings[key] = value

    def _train_step(self, data: Any) -> Any:
        return self._step("train", data)

    def _test_step(self, data: Any) -> Any:
        return self._step("test", data)

    def _step(self, mode: str, data: Any) -> Any:
        self._pending = {
            "mode": mode,
            "data": data,
            "graph": self._graph(),
            "bare": self._bare_trace,
        }
        try:
            out = self._orig[f"{mode}_step"](data)
            pending = self._pending
        finally:
            self._pending = None
        self.record(mode, pending)
        return out

    def record(self, mode: str, pending: dict[str, Any]) -> None:
        """Turn a step's stashed tensors into its row (train) or validation sums (test); a
        fault is reported, never raised into the step (every backend's step calls this)."""
        try:
            with self._no_grad():
                if mode == "train" and pending.get("bare"):
                    self._record_bare(pending)
                elif mode == "train":
                    self._record_train(pending)
                else:
                    self._record_val(pending)
        except Exception as exc:  # noqa: BLE001 - a fault in bertlab must not stop training
            self.on_fault(f"recording the {mode} step", exc)

    def _no_grad(self) -> Any:
        """On torch (eager) the summaries must not extend the autograd graph of the outputs
        they read: that costs a node per op and keeps the graph alive until the next step."""
        if self.backend == "torch":
            import torch

            return torch.no_grad()
        return contextlib.nullcontext()

    def _compute_loss(self, *args: Any, **kwargs: Any) -> Any:
        loss = self._orig["compute_loss"](*args, **kwargs)
        pending = self._pending
        if pending is not None and "loss" not in pending:
            bound = dict(zip(_LOSS_ARGS, args, strict=False))
            bound.update({k: v for k, v in kwargs.items() if k in _LOSS_ARGS})
            pending.update(bound, loss=loss)
        return loss

    def _optimizer_call(self, grads: Any, trainable_variables: Any = None) -> Any:
        """Keras 3's ``optimizer.apply(grads, trainable_variables)``: stash the gradients."""
        opt = self.model.optimizer
        variables = trainable_variables or getattr(opt, "_trainable_variables", None)
        self._stash_gradients(grads, variables, lambda: opt.learning_rate)
        self._stash_loss_scale(opt)
        before = self._snapshot(variables)
        result = self._orig["optimizer"](grads, trainable_variables)
        self._stash_update(variables, before)
        return result

    def _snapshot(self, variables: Any) -> list | None:
        """The trained weights' values before the train step's update (once per step)."""
        pending = self._pending
        if pending is None or pending["mode"] != "train" or "update" in pending or not variables:
            return None
        if pending.get("bare"):
            return None
        pending["update"] = None
        try:
            return [q.update_sample(_value(v)) for v in variables]
        except Exception as exc:  # noqa: BLE001
            self.on_fault("reading the weights before the update", exc)
            return None

    def _stash_update(self, variables: Any, before: list | None) -> None:
        """Squared norms of the update and of the weights, read after the optimizer ran.

        In the traced step, TensorFlow orders reads and writes of a variable as written, so
        ``before`` precedes the update and these reads follow it.
        """
        if before is None or self._pending is None:
            return
        try:
            after = [q.update_sample(_value(v))[0] for v in variables]
            self._pending["update"] = (before, after)  # summed with the row (rows.py)
        except Exception as exc:  # noqa: BLE001
            self.on_fault("measuring the update", exc)

    def _stash_loss_scale(self, opt: Any, read: Callable | None = None) -> None:
        """Keep the loss scale the gradients carry (mixed precision), read before ``apply``
        (on JAX through ``read``, which maps the optimizer's purged variables to this step's)."""
        pending = self._pending
        if pending is not None and "grads" in pending and "loss_scale" not in pending:
            try:
                get = lambda: precision.loss_scale(opt)  # noqa: E731
                pending["loss_scale"] = read(get) if read is not None else get()
            except Exception as exc:  # noqa: BLE001
                self.on_fault("reading the loss scale", exc)

    def _stash_gradients(self, grads: Any, variables: Any, learning_rate: Callable) -> None:
        """Keep the train step's gradients, variable names and learning rate for its row."""
        pending = self._pending
        if pending is not None and pending["mode"] == "train" and "grads" not in pending:
            try:
                pending["grads"] = list(grads)
                pending["vars"] = self._var_names(variables) if variables else None
                pending["lr"] = ops.cast(learning_rate(), "float32")
            except Exception as exc:  # noqa: BLE001
                self.on_fault("reading gradients", exc)

    def _var_names(self, variables: Any) -> list[str]:
        """Paths of the trained variables (``a/b/kernel``), whose prefix is the layer group."""
        return [v.path for v in variables]

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
