"""Record every training step from inside Keras's own compiled train step.

How it works (TensorFlow backend): Keras compiles ``model.train_step`` into
``model.train_function`` (``make_train_function`` binds the method at build time). While a
``Watch`` is attached, this module puts thin wrappers on the model's ``train_step``,
``test_step`` and ``compute_loss`` and on the optimizer's ``apply``, and builds a new train
function from them. At trace time the wrappers stash the tensors the step already computes
(inputs, labels, outputs, loss, gradients, learning rate); at the end of the step one row of
summaries (:mod:`quantities`) is written into a small ring of ``tf.Variable`` rows, so the
numbers come from the very step that trained the model, one row per batch even when
``steps_per_execution > 1`` runs many steps per call. Validation batches add into per-epoch
accumulators instead. Nothing is returned through ``logs``, so the progress bar and ``History``
never see it; no random op is added, so training is bit-identical with and without it.

``restore()`` puts every attribute back exactly as it was (the original train/test functions
included); instrumented functions are cached so that a second ``fit`` does not retrace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from bertlab.facts import ModelFacts
from bertlab.layout import Layout, val_channels
from bertlab.probes.keras import precision, replicas
from bertlab.probes.keras import quantities as q

_LOSS_ARGS = ("x", "y", "y_pred", "sample_weight")
#: Rows the in-graph ring holds. The callback reads it lazily (every ~0.1 s, or when half full),
#: so per batch the Python side costs almost nothing; writing a row costs the same for any size.
RING_ROWS = 512


def ring_capacity(steps_per_execution: int) -> int:
    """Ring size: RING_ROWS, and always room for four executions of steps_per_execution."""
    return max(RING_ROWS, 4 * max(1, steps_per_execution))


def _first(structure: Any) -> Any:
    flat = [t for t in tf.nest.flatten(structure) if t is not None]
    return flat[0] if flat else None


def _replicas() -> float:
    """Replicas in sync: Keras scales each replica's loss by its inverse."""
    ctx = replicas.replica_context()
    return float(ctx.num_replicas_in_sync) if ctx is not None else 1.0


def _group(path: str) -> str:
    """Gradient group of a variable: its owning layer's path (``a/b/kernel`` -> ``a/b``)."""
    return path.rsplit("/", 1)[0] if "/" in path else path


class Instrument:
    """In-graph recording for one model on behalf of one Watch.

    The optimizer method that receives the gradients is ``OPTIMIZER_METHOD`` (Keras 3:
    ``apply``); a subclass for another Keras (``legacy.LegacyInstrument``, Keras 2's
    ``apply_gradients``) overrides it, ``_optimizer_call`` and ``_var_names``.

    Parameters
    ----------
    model
        A compiled Keras model (TensorFlow backend).
    facts
        Its static facts (loss, activation...), used to choose the row layout.
    on_fault
        Called with ``(where, exception)`` when bertlab's own code fails; the failing part is
        skipped and training goes on.
    """

    OPTIMIZER_METHOD = "apply"

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
        self._buffer: tf.Variable | None = None
        self._counter: tf.Variable | None = None
        self._val: tf.Variable | None = None
        self._read = 0
        self._lost_reported = False
        self._saved: dict[str, Any] = {}
        self._cache: dict[str, tuple[Any, Any]] = {}
        self.installed = False
        self.reduced_seen = False  # the optimizer's all-reduced gradients were used

    # ---------------------------------------------------------------- install / restore
    def install(self) -> None:
        """Wrap the model's step methods and the optimizer, and swap in instrumented functions."""
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
        replicas.hook_optimizer_reduce(self, opt)
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
        self.model.make_train_function(force=True)
        compiled = self.model.train_function

        def train_function(iterator: Any) -> Any:
            try:
                return compiled(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                raise  # the end of a dataset: Keras's normal way to end an epoch
            except BaseException as exc:  # noqa: BLE001 - re-raised unchanged
                if self.on_error is not None:
                    try:
                        self.on_error(exc)
                    except Exception as inner:  # noqa: BLE001 - never mask the user's error
                        self.on_fault("on_error", inner)
                raise

        self._cache[kind] = (original, train_function)
        return train_function

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
        ):
            if owner is None:
                continue
            if self._saved[key] is None:
                owner.__dict__.pop(name, None)
            else:
                object.__setattr__(owner, name, self._saved[key])
        replicas.unhook_optimizer_reduce(self)
        model.train_function = self._saved["train_function"]
        model.test_function = self._saved["test_function"]

    # ---------------------------------------------------------------- trace-time hooks
    @property
    def _pending(self) -> dict[str, Any] | None:
        """The tensors stashed by the step now being traced (one per replica: under
        ``MirroredStrategy`` every replica traces its step in a thread of its own)."""
        return self._pendings.get(replicas.replica_key())

    @_pending.setter
    def _pending(self, value: dict[str, Any] | None) -> None:
        key = replicas.replica_key()
        if value is None:
            self._pendings.pop(key, None)
        else:
            self._pendings[key] = value

    def _train_step(self, data: Any) -> Any:
        return self._step("train", data)

    def _test_step(self, data: Any) -> Any:
        return self._step("test", data)

    def _step(self, mode: str, data: Any) -> Any:
        self._pending = {"mode": mode, "data": data, "graph": tf.compat.v1.get_default_graph()}
        try:
            out = self._orig[f"{mode}_step"](data)
            pending = self._pending
        finally:
            self._pending = None
        try:
            if mode == "train":
                self._record_train(pending)
            else:
                self._record_val(pending)
        except Exception as exc:  # noqa: BLE001 - a fault in bertlab must not stop training
            self.on_fault(f"recording the {mode} step", exc)
        return out

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
        return self._orig["optimizer"](grads, trainable_variables)

    def _stash_loss_scale(self, opt: Any) -> None:
        """Keep the loss scale the gradients carry (mixed precision), read before ``apply``."""
        pending = self._pending
        if pending is not None and "grads" in pending and "loss_scale" not in pending:
            try:
                pending["loss_scale"] = precision.loss_scale(opt)
            except Exception as exc:  # noqa: BLE001
                self.on_fault("reading the loss scale", exc)

    def _stash_gradients(self, grads: Any, variables: Any, learning_rate: Callable) -> None:
        """Keep the train step's gradients, variable names and learning rate for its row."""
        pending = self._pending
        if pending is not None and pending["mode"] == "train" and "grads" not in pending:
            try:
                pending["grads"] = list(grads)
                pending["vars"] = self._var_names(variables) if variables else None
                pending["lr"] = tf.cast(learning_rate(), tf.float32)
            except Exception as exc:  # noqa: BLE001
                self.on_fault("reading gradients", exc)

    def _var_names(self, variables: Any) -> list[str]:
        """Paths of the trained variables (``a/b/kernel``), whose prefix is the layer group."""
        return [v.path for v in variables]

    # ---------------------------------------------------------------- in-graph recording
    def _ensure_layout(
        self, y_pred: Any, var_paths: list[str] | None, x: Any = None, extras: tuple = ()
    ) -> Layout:
        if self.layout is not None:
            return self.layout
        ids = q.find_text_inputs(x)[0] if x is not None else None
        seq_len = None
        if ids is not None and ids.shape.rank == 2 and ids.shape[1] is not None:
            seq_len = int(ids.shape[1])  # padded length known at trace time: len_hist
        k = 1
        if y_pred is not None and y_pred.shape.rank and y_pred.shape.rank > 1:
            k = int(y_pred.shape[-1]) if y_pred.shape[-1] is not None else 1
        groups = tuple(dict.fromkeys(_group(p) for p in var_paths or []))
        f = self.facts
        self.layout = Layout.for_model(
            loss=f.loss,
            from_logits=f.from_logits,
            output_activation=f.output_activation,
            n_outputs=k,
            layers=groups,
            seq_len=seq_len,
            extras=extras,
        )
        width = self.layout.width()
        cap = ring_capacity(f.steps_per_execution)
        dist = replicas.variable_kwargs()  # one local copy per replica under a strategy
        with tf.init_scope():
            self._buffer = tf.Variable(
                tf.zeros([cap, width]), trainable=False, name="bertlab_rows", **dist
            )
            self._counter = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="bertlab_count", **dist
            )
            vwidth = sum(w for _, w in val_channels(self.layout))
            self._val = tf.Variable(tf.zeros([vwidth]), trainable=False, name="bertlab_val", **dist)
        return self.layout

    def _record_train(self, p: dict[str, Any]) -> None:
        y_pred, y, x = _first(p.get("y_pred")), _first(p.get("y")), p.get("x")
        if "loss" not in p:
            self._note("the train step never called compute_loss: outputs and labels not recorded")
        if "grads" not in p:
            self._note("the train step never called optimizer.apply: gradients not recorded")
        scaled = p.get("loss_scale") is not None
        layout = self._ensure_layout(y_pred, p.get("vars"), x, ("loss_scale",) if scaled else ())
        ctx = replicas.replica_context()
        vals: dict[str, tf.Tensor] = {}
        if "loss" in p:
            loss = tf.cast(tf.reduce_sum(p["loss"]), tf.float32)
            vals["loss"] = loss
            vals["loss_nonfinite"] = tf.cast(tf.logical_not(tf.math.is_finite(loss)), tf.float32)
        first_x = _first(x)
        if first_x is not None:
            vals["batch_size"] = tf.cast(tf.shape(first_x)[0], tf.float32)
        if p.get("grads") is not None:
            index = {name: i for i, name in enumerate(layout.layers)}
            paths = p["vars"] or []
            groups = [index.get(_group(path), 0) for path in paths]
            if len(groups) == len(p["grads"]):
                n_groups = max(1, len(layout.layers))
                xla = bool(self.facts.jit_compile)
                grads = replicas.global_gradients(p, ctx) if ctx else p["grads"]
                stats = q.gradient_stats(grads, groups, n_groups, xla)
                vals.update(precision.unscale(stats, p["loss_scale"]) if scaled else stats)
            vals["lr"] = p["lr"]
        if y_pred is not None:
            vals.update(q.output_stats(y_pred, layout))
            if y is not None and layout.task != "regression":
                counts, _, _ = q.class_counts(y, y_pred, layout)
                vals.update(counts)
        if x is not None:
            stats, desc = q.input_stats(x, self.facts.unk_token_id, layout.len_edges)
            vals.update(stats)
            self.trace_facts["inputs"] = desc
        self._trace_output_facts(y_pred, y, weighted=p.get("sample_weight") is not None)
        if ctx is not None:
            vals = replicas.combine_row(vals, ctx)  # the global batch, on every replica
        row = q.assemble(vals, layout.channels())
        row = tf.concat([[tf.cast(self._counter, tf.float32)], row[1:]], axis=0)
        idx = self._counter % self._buffer.shape[0]
        # scatter_update: the one row-write that distributed (per-replica) variables implement
        written = self._buffer.scatter_update(tf.IndexedSlices(row[None, :], idx[None]))
        # The count only moves once the row is really written: if the step fails half-way
        # (e.g. a label out of range), no stale slot is read as a step.
        with tf.control_dependencies([written]):
            self._counter.assign_add(1)

    def _trace_output_facts(self, y_pred: Any, y: Any, weighted: bool) -> None:
        """Static facts only visible at trace time (output op, label shape, sample weights)."""
        if y_pred is not None:
            op = getattr(y_pred, "op", None)
            self.trace_facts["output_op"] = getattr(op, "type", None)
            self.trace_facts["output_shape"] = y_pred.shape.as_list()
        self.trace_facts["sample_weight"] = weighted
        if y is not None:
            self.trace_facts["label_shape"] = y.shape.as_list()
            self.trace_facts["label_dtype"] = y.dtype.name

    def _record_val(self, p: dict[str, Any]) -> None:
        layout = self.layout
        y_pred, y, x = _first(p.get("y_pred")), _first(p.get("y")), _first(p.get("x"))
        if layout is None or y_pred is None or "loss" not in p:
            return
        n = tf.cast(tf.shape(x)[0], tf.float32) if x is not None else tf.constant(1.0)
        vals = {
            "loss_sum": tf.cast(tf.reduce_sum(p["loss"]), tf.float32) * n * _replicas(),
            "batches": tf.constant(1.0),
            "samples": n,
        }
        if y is not None and layout.task != "regression":
            counts, pred, true = q.class_counts(y, y_pred, layout)
            vals["pred_count"], vals["label_count"] = counts["pred_count"], counts["label_count"]
            if layout.task == "multilabel":
                vals["tp"] = tf.reduce_sum(true * pred, axis=0)
                vals["fp"] = tf.reduce_sum((1.0 - true) * pred, axis=0)
                vals["fn"] = tf.reduce_sum(true * (1.0 - pred), axis=0)
            else:
                vals["confusion"] = tf.matmul(true, pred, transpose_a=True)
        row = q.assemble(vals, val_channels(layout))
        ctx = replicas.replica_context()
        if ctx is not None:
            row = replicas.sum_row(row, ctx)
        self._val.assign_add(tf.where(tf.math.is_nan(row), tf.zeros_like(row), row))

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # ---------------------------------------------------------------- Python-side reads
    @property
    def capacity(self) -> int:
        """Rows the ring holds (0 before the first trace)."""
        return 0 if self._buffer is None else int(self._buffer.shape[0])

    def read_rows(self) -> np.ndarray | None:
        """Rows written since the last read, oldest first, as float64 (n, D); None if none."""
        if self._counter is None:
            return None
        count = int(self._counter.numpy())
        new = count - self._read
        if new <= 0:
            return None
        cap = self._buffer.shape[0]
        if new > cap:
            if not self._lost_reported:
                self._lost_reported = True
                self._note(f"{new - cap} steps ran between two callback calls and were not read")
            self._read = count - cap
            new = cap
        idx = [(self._read + i) % cap for i in range(new)]
        self._read = count
        return self._buffer.numpy()[idx].astype(np.float64)

    def reset_val(self) -> None:
        """Zero the validation accumulators (start of an evaluation)."""
        if self._val is not None:
            self._val.assign(tf.zeros_like(self._val))

    def read_val(self) -> dict[str, np.ndarray] | None:
        """The validation accumulators by channel name, or None before the first train trace."""
        if self._val is None or self.layout is None:
            return None
        flat = self._val.numpy().astype(np.float64)
        out, start = {}, 0
        for name, width in val_channels(self.layout):
            out[name] = flat[start : start + width]
            start += width
        return out
