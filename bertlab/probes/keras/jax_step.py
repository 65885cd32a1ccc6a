"""The Keras JAX backend: record every step although the train step is a pure function.

On JAX, Keras's ``train_step(state, data) -> (logs, state)`` is stateless and jitted: nothing
may be written from inside it, and a tensor that leaves ``jax.value_and_grad`` (where
``compute_loss`` runs) is a leaked tracer. So the step's tensors are taken where the JAX trainer
hands them over at the level of the step itself (keras/src/backend/jax/trainer.py):

- ``model._update_metrics_variables(metrics_variables, unscaled_loss, x, y, y_pred,
  sample_weight)``: the loss (unscaled), inputs, labels and outputs of the batch;
- ``optimizer.stateless_apply(optimizer_variables, grads, trainable_variables)``: the gradients,
  the weights before and after the update, and (read under a ``StatelessScope`` of the optimizer
  variables of this step) the learning rate.

The ring of rows (:class:`bertlab.probes.keras.rings.JaxRing`) is threaded through the step:
this module jits ``(state, carry, data) -> (logs, state, carry)`` around the model's own
``train_step``/``test_step`` and hands Keras back a ``train_function(state, data) -> (logs,
state)`` built with the trainer's own ``_make_function`` (so ``steps_per_execution`` behaves as
in Keras). Keras's state, ``logs`` and ``History`` are untouched; the model is restored exactly
after ``fit``. The first call traces the step once without the ring (``jax.eval_shape``, no
computation) to learn the row layout.

Three variants are jitted, each on its first use (:mod:`bertlab.cadence` picks per call): the
step that records a row, the step that records none but counts itself and, during the first
pass over the data, hashes its rows into the overlap table, and after that pass Keras's own
step with no ring at all, counted on the host (``JaxRing.host_steps``, added into the ring's
counter by the next call that takes the ring). On a 0.35 ms step that took an unrecorded step
from 1.098x to 1.05-1.08x of plain (the rest is the callback and this wrapper).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras

from bertlab.probes.keras import quantities as q

__all__ = ["install"]


def install(inst: Any) -> None:
    """Put the JAX hooks on ``inst.model`` and its optimizer (undone by ``inst.restore()``)."""
    model, opt = inst.model, inst.model.optimizer
    inst._saved = {
        "update_metrics": model.__dict__.get("_update_metrics_variables"),
        "stateless_apply": opt.__dict__.get("stateless_apply") if opt is not None else None,
        "train_function": model.train_function,
        "test_function": model.test_function,
    }
    update_metrics = model._update_metrics_variables
    apply = opt.stateless_apply if opt is not None else None

    def _update_metrics_variables(mv, unscaled_loss, x, y, y_pred, sample_weight):
        pending = inst._pending
        if pending is not None and "loss" not in pending:
            pending.update(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            pending["loss"] = unscaled_loss
        return update_metrics(mv, unscaled_loss, x, y, y_pred, sample_weight)

    def stateless_apply(optimizer_variables, grads, trainable_variables):
        def read(fn: Any) -> Any:
            mapping = list(zip(opt.variables, optimizer_variables, strict=False))
            with keras.StatelessScope(state_mapping=mapping):  # the variables are purged
                return fn()

        inst._stash_gradients(
            grads,
            model.trainable_variables,
            lambda: read(lambda: keras.ops.convert_to_tensor(opt.learning_rate)),
        )
        # A LossScaleOptimizer's gradients carry this step's dynamic scale (mixed_float16).
        inst._stash_loss_scale(opt, read)
        new_trainable, new_optimizer = apply(optimizer_variables, grads, trainable_variables)
        pending = inst._pending
        if (
            pending is not None
            and pending["mode"] == "train"
            and "update" not in pending
            and not pending.get("bare")
        ):
            try:  # the weights before and after the update are both at hand: no snapshot
                before = [q.update_sample(v) for v in trainable_variables]
                after = [q.update_sample(v)[0] for v in new_trainable]
                pending["update"] = (before, after)
            except Exception as exc:  # noqa: BLE001 - a fault in bertlab must not stop training
                inst.on_fault("measuring the update", exc)
        return new_trainable, new_optimizer

    object.__setattr__(model, "_update_metrics_variables", _update_metrics_variables)
    if opt is not None:
        object.__setattr__(opt, "stateless_apply", stateless_apply)
    inst.installed = True
    model.train_function = _function(inst, "train", inst._saved["train_function"])
    model.test_function = _function(inst, "test", inst._saved["test_function"])


def _function(inst: Any, mode: str, original: Any) -> Any:
    """Keras's ``train_function``/``test_function`` with the ring threaded through (cached)."""
    cached = inst._cache.get(mode)
    if cached is not None and cached[0] is original:
        return cached[1]
    model = inst.model
    compiled: dict[str, Any] = {}
    shardings = _out_shardings(model, mode)  # now: fit purges the variables' values later

    def with_ring(state: Any, carry: dict, data: Any, host_steps: Any) -> tuple:
        return _with_ring(state, carry, data, host_steps)

    def with_ring_bare(state: Any, carry: dict, data: Any, host_steps: Any) -> tuple:
        # a function of its own: jax.jit caches traces per function, and this one's trace
        # records no row (inst._bare_trace is set around its calls)
        return _with_ring(state, carry, data, host_steps)

    def _with_ring(state: Any, carry: dict, data: Any, host_steps: Any) -> tuple:
        ring = inst.ring
        if ring is not None and carry:
            ring.tracing = dict(carry, steps=carry["steps"] + host_steps)
        try:
            logs, state = _step(inst, mode, state, data)
            out = dict(ring.tracing) if ring is not None and ring.tracing is not None else carry
        finally:
            if ring is not None:
                ring.tracing = None
        return logs, state, out

    def plain(state: Any, data: Any) -> tuple:
        # the model's own step, nothing recorded (no step is pending: the hooks pass through)
        return getattr(model, f"{mode}_step")(state, data)

    def step_function(state: Any, data: Any) -> tuple:
        try:
            ring = inst.ring
            row = inst.row_now or ring is None or mode != "train"
            if not row and ring.counted_on_host:  # the common unrecorded step: see JaxRing
                fn = compiled.get("plain")
                if fn is None:
                    out = shardings and shardings[:2]  # (logs, state): no ring
                    fn = compiled["plain"] = _jit(model, plain, out, ring=False)
                inst.last_recorded = False
                ring.count_on_host()
                return fn(state, data)
            if ring is None and mode == "train":  # learn the layout: shapes only
                jax.eval_shape(lambda s, d: _step(inst, mode, s, d), state, data)
                ring = inst.ring
            fn = compiled.get(row)
            if fn is None:
                jitted = _jit(model, with_ring if row else with_ring_bare, shardings)
                fn = compiled[row] = jitted if row else inst._bare(jitted)
            carry, host_steps = (
                (ring.carry, ring.take_host_steps()) if ring is not None else ({}, 0)
            )
            if mode == "train":
                inst.last_recorded = row
            logs, state, carry = fn(state, carry, data, host_steps)
            if ring is not None:
                ring.carry = carry
            return logs, state
        except BaseException as exc:  # noqa: BLE001 - re-raised unchanged
            inst.step_failed(exc)
            raise

    function = model._make_function(step_function)
    inst._cache[mode] = (original, function)
    return function


def _step(inst: Any, mode: str, state: Any, data: Any) -> tuple:
    """The model's own step, with the tensors it computes recorded into the ring."""
    inst._pending = {"mode": mode, "data": data, "bare": inst._bare_trace}
    try:
        logs, state = getattr(inst.model, f"{mode}_step")(state, data)
        pending = inst._pending
    finally:
        inst._pending = None
    inst.record(mode, pending)
    return logs, state


def _out_shardings(model: Any, mode: str) -> Any:
    """The output shardings Keras gives its own jitted step under a distribution, or None."""
    if keras.distribution.distribution() is None:
        return None
    shardings = model._get_state_sharding_spec()
    if mode == "test":
        shardings = (shardings[0], shardings[1], shardings[3])
    return (None, shardings, None)


def _jit(model: Any, fn: Any, out_shardings: Any, ring: bool = True) -> Any:
    """``fn`` jitted as Keras would jit the step (state and ring donated), or eager.

    ``ring=False``: ``fn(state, data)``, Keras's own step (only the state is donated).
    """
    if model.run_eagerly or not model.jit_compile:
        return fn
    if not ring:
        return jax.jit(fn, donate_argnums=0, out_shardings=out_shardings)
    jitted = jax.jit(fn, donate_argnums=(0, 1), out_shardings=out_shardings)

    def call(state: Any, carry: dict, data: Any, host_steps: int) -> tuple:
        # Only host values need converting (the first call, a reset): jnp.asarray on a device
        # array is no copy but ~25 us of Python, a sixth of a small model's step.
        if not all(isinstance(v, jax.Array) for v in carry.values()):
            carry = {k: jnp.asarray(v) for k, v in carry.items()}
        return jitted(state, carry, data, host_steps)

    return call
