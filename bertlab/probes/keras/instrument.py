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

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from bertlab.facts import ModelFacts
from bertlab.layout import Layout, val_channels
from bertlab.probes.keras import precision
from bertlab.probes.keras import quantities as q
from bertlab.probes.keras.rings import Ring, make_ring

_LOSS_ARGS = ("x", "y", "y_pred", "sample_weight")
#: Optional channels (``Layout.extras``) this probe records.
EXTRAS = ("mask_pad_share", "update_ratio")
#: Rows the in-graph ring holds. The callback reads it lazily (every ~0.1 s, or when half full),
#: so per batch the Python side costs almost nothing; writing a row costs the same for any size.
RING_ROWS = 512


def ring_capacity(steps_per_execution: int) -> int:
    """Ring size: RING_ROWS, and always room for four executions of steps_per_execution."""
    return max(RING_ROWS, 4 * max(1, steps_per_execution))


def _first(structure: Any) -> Any:
    flat = [t for t in keras.tree.flatten(structure) if t is not None]
    return flat[0] if flat else None


def _value(variable: Any) -> Any:
    """A variable's stored value (a Keras 3 variable's own storage, never an autocast copy)."""
    raw = getattr(variable, "_value", None)
    return variable if raw is None else raw


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
        self.model.make_train_function(force=True)
        compiled = self.model.train_function

        def train_function(iterator: Any) -> Any:
            try:
                return compiled(iterator)
            except BaseException as exc:  # noqa: BLE001 - re-raised unchanged
                self.step_failed(exc)
                raise

        self._cache[kind] = (original, train_function)
        return train_function

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

    # ---------------------------------------------------------------- tf.distribute
    @property
    def _replicas(self) -> Any:
        """:mod:`replicas` on TensorFlow (strategies are TensorFlow's), else None."""
        if self.backend != "tensorflow":
            return None
        from bertlab.probes.keras import replicas

        return replicas

    def _replica_key(self) -> int:
        return self._replicas.replica_key() if self._replicas is not None else 0

    def _replica_context(self) -> Any:
        return self._replicas.replica_context() if self._replicas is not None else None

    def _n_replicas(self) -> float:
        """Replicas in sync: Keras scales each replica's loss by its inverse."""
        ctx = self._replica_context()
        return float(ctx.num_replicas_in_sync) if ctx is not None else 1.0

    def _graph(self) -> Any:
        """The graph being traced (TensorFlow): the all-reduce hook matches its step by it."""
        if self._replicas is None:
            return None
        import tensorflow as tf

        return tf.compat.v1.get_default_graph()

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
        self._pending = {"mode": mode, "data": data, "graph": self._graph()}
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
        before = self._snapshot(variables)
        result = self._orig["optimizer"](grads, trainable_variables)
        self._stash_update(variables, before)
        return result

    def _snapshot(self, variables: Any) -> list | None:
        """The trained weights' values before the train step's update (once per step)."""
        pending = self._pending
        if pending is None or pending["mode"] != "train" or "update" in pending or not variables:
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
            self._pending["update"] = q.update_sums(before, after)
        except Exception as exc:  # noqa: BLE001
            self.on_fault("measuring the update", exc)

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
                pending["lr"] = ops.cast(learning_rate(), "float32")
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
        if ids is not None and q.rank(ids) == 2 and ids.shape[1] is not None:
            seq_len = int(ids.shape[1])  # padded length known at trace time: len_hist
        k = 1
        if y_pred is not None and q.rank(y_pred) > 1:
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
        vwidth = sum(w for _, w in val_channels(self.layout))
        self.ring = make_ring(cap, width, vwidth, self.backend)
        return self.layout

    def _record_train(self, p: dict[str, Any]) -> None:
        y_pred, y, x = _first(p.get("y_pred")), _first(p.get("y")), p.get("x")
        if "loss" not in p:
            self._note("the train step never called compute_loss: outputs and labels not recorded")
        if "grads" not in p:
            self._note("the train step never called optimizer.apply: gradients not recorded")
        scaled = p.get("loss_scale") is not None
        extras = EXTRAS + (("loss_scale",) if scaled else ())
        layout = self._ensure_layout(y_pred, p.get("vars"), x, extras)
        ctx = self._replica_context()
        vals: dict[str, Any] = {}
        if "loss" in p:
            loss = ops.cast(ops.sum(p["loss"]), "float32")
            vals["loss"] = loss
            vals["loss_nonfinite"] = ops.cast(ops.logical_not(ops.isfinite(loss)), "float32")
        first_x = _first(x)
        if first_x is not None:
            vals["batch_size"] = ops.cast(ops.shape(first_x)[0], "float32")
        if p.get("grads") is not None:
            index = {name: i for i, name in enumerate(layout.layers)}
            paths = p["vars"] or []
            groups = [index.get(_group(path), 0) for path in paths]
            if len(groups) == len(p["grads"]):
                n_groups = max(1, len(layout.layers))
                xla = bool(self.facts.jit_compile)
                grads = self._replicas.global_gradients(p, ctx) if ctx else p["grads"]
                stats = q.gradient_stats(grads, groups, n_groups, xla)
                vals.update(precision.unscale(stats, p["loss_scale"]) if scaled else stats)
                if p.get("update") is not None:
                    vals.update(q.update_ratio(*p["update"], groups, n_groups))
            vals["lr"] = p.get("lr")
        if y_pred is not None:
            vals.update(q.output_stats(y_pred, layout))
            if y is not None and layout.task != "regression":
                counts, _, _ = q.class_counts(y, y_pred, layout)
                vals.update(counts)
        if x is not None:
            pad_id = getattr(self.facts, "pad_token_id", None)
            stats, desc = q.input_stats(x, self.facts.unk_token_id, layout.len_edges, pad_id)
            vals.update(stats)
            self.trace_facts["inputs"] = desc
        self._trace_output_facts(y_pred, y, weighted=p.get("sample_weight") is not None)
        if ctx is not None:
            vals = self._replicas.combine_row(vals, ctx)  # the global batch, on every replica
        row = q.assemble(vals, layout.channels())
        self.ring.write(row)

    def _trace_output_facts(self, y_pred: Any, y: Any, weighted: bool) -> None:
        """Static facts only visible at trace time (output op, label shape, sample weights)."""
        if y_pred is not None:
            op = getattr(y_pred, "op", None)
            self.trace_facts["output_op"] = getattr(op, "type", None)
            self.trace_facts["output_shape"] = list(y_pred.shape)
        self.trace_facts["sample_weight"] = weighted
        if y is not None:
            self.trace_facts["label_shape"] = list(y.shape)
            self.trace_facts["label_dtype"] = keras.backend.standardize_dtype(y.dtype)

    def _record_val(self, p: dict[str, Any]) -> None:
        layout = self.layout
        y_pred, y, x = _first(p.get("y_pred")), _first(p.get("y")), _first(p.get("x"))
        if layout is None or y_pred is None or "loss" not in p:
            return
        n = ops.cast(ops.shape(x)[0], "float32") if x is not None else 1.0
        vals = {
            "loss_sum": ops.cast(ops.sum(p["loss"]), "float32") * n * self._n_replicas(),
            "batches": 1.0,
            "samples": n,
        }
        if y is not None and layout.task != "regression":
            counts, pred, true = q.class_counts(y, y_pred, layout)
            vals["pred_count"], vals["label_count"] = counts["pred_count"], counts["label_count"]
            if layout.task == "multilabel":
                vals["tp"] = ops.sum(true * pred, axis=0)
                vals["fp"] = ops.sum((1.0 - true) * pred, axis=0)
                vals["fn"] = ops.sum(true * (1.0 - pred), axis=0)
            else:
                vals["confusion"] = ops.matmul(ops.transpose(true), pred)
        row = q.assemble(vals, val_channels(layout))
        ctx = self._replica_context()
        if ctx is not None:
            row = self._replicas.sum_row(row, ctx)
        self.ring.add_val(row)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # ---------------------------------------------------------------- Python-side reads
    @property
    def capacity(self) -> int:
        """Rows the ring holds (0 before the first trace)."""
        return 0 if self.ring is None else self.ring.cap

    def read_rows(self) -> np.ndarray | None:
        """Rows written since the last read, oldest first, as float64 (n, D); None if none."""
        if self.ring is None:
            return None
        count, buffer = self.ring.read_rows()
        new = count - self._read
        if new <= 0:
            return None
        cap = self.ring.cap
        if new > cap:
            if not self._lost_reported:
                self._lost_reported = True
                self._note(f"{new - cap} steps ran between two callback calls and were not read")
            self._read = count - cap
            new = cap
        idx = [(self._read + i) % cap for i in range(new)]
        self._read = count
        return buffer[idx]

    def reset_val(self) -> None:
        """Zero the validation accumulators (start of an evaluation)."""
        if self.ring is not None:
            self.ring.reset_val()

    def read_val(self) -> dict[str, np.ndarray] | None:
        """The validation accumulators by channel name, or None before the first train trace."""
        if self.ring is None or self.layout is None:
            return None
        flat = self.ring.read_val()
        out, start = {}, 0
        for name, width in val_channels(self.layout):
            out[name] = flat[start : start + width]
            start += width
        return out
