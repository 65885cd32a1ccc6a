"""Record the global batch when Keras trains under a ``tf.distribute`` strategy.

Under ``MirroredStrategy`` (and ``MultiWorkerMirroredStrategy``) Keras runs ``train_step`` once
per replica, each on its shard of the global batch, and traces each replica's step in a thread of
its own. What one replica sees is not what the step means:

- the loss ``compute_loss`` returns is that replica's mean loss scaled by 1/replicas (Keras
  scales the loss it differentiates so that the summed gradients are those of the global mean);
- the gradients handed to ``optimizer.apply`` are that replica's, before the all-reduce;
- class counts, batch size and histograms are that replica's shard.

This module turns a replica's row into the row of the global batch, inside the step, with the
replica context's own collectives (no host sync): per-replica values are all-reduced with the
combine rule of :data:`bertlab.layout.COMBINE` (sums, minima, maxima, batch-weighted means); the
gradient statistics are taken on the all-reduced gradients (the optimizer's own all-reduce when
its result is reachable from the step, else one all-reduce of our own). Every replica then holds
the same row, written once into mirrored ring variables (``ONLY_FIRST_REPLICA``).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from bertlab.layout import COMBINE

_SUM = tf.distribute.ReduceOp.SUM
#: The Keras 3 TensorFlow optimizer's method that all-reduces the replicas' gradients.
REDUCE_METHOD = "_all_reduce_sum_gradients"


def replica_context() -> tf.distribute.ReplicaContext | None:
    """The replica context of a step run on more than one replica, else None."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def replica_key() -> int:
    """Which replica is tracing now (0 outside a strategy): the key of its pending tensors."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return 0
    value = tf.get_static_value(ctx.replica_id_in_sync_group)
    return int(value) if value is not None else 0


def variable_kwargs() -> dict[str, Any]:
    """Creation arguments of the ring variables under a strategy (mirrored, written once).

    Every replica holds the same (all-reduced) row; ``ONLY_FIRST_REPLICA`` writes the first
    replica's onto every copy (``ON_READ`` variables would avoid that copy but implement no
    row write). Outside a strategy there are no arguments.
    """
    if not tf.distribute.has_strategy():
        return {}
    return {
        "synchronization": tf.VariableSynchronization.ON_WRITE,
        "aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA,
    }


def combine_row(vals: dict[str, tf.Tensor], ctx: tf.distribute.ReplicaContext) -> dict:
    """The global batch's values from one replica's: all-reduced channel by channel.

    ``loss`` is first unscaled (x replicas, as Keras's own loss tracker does), then averaged
    weighted by the replicas' batch sizes, like every "mean" channel. Channels that
    :data:`COMBINE` does not name (gradient statistics, already global; learning rate) are kept.
    """
    vals = dict(vals)
    if "loss" in vals:
        vals["loss"] = vals["loss"] * float(ctx.num_replicas_in_sync)
    n = vals.get("batch_size")
    sums: dict[str, tf.Tensor] = {}
    extremes: dict[str, tf.Tensor] = {}  # maxima, and minima negated
    for name, value in vals.items():
        how = COMBINE.get(name)
        if how == "sum":
            sums[name] = value
        elif how == "mean" and n is not None:
            sums[name] = value * n  # weighted by this replica's batch size
        elif how == "max":
            extremes[name] = value
        elif how == "min":
            extremes[name] = -value
    out = dict(vals)
    if sums:
        names = list(sums)
        out.update(zip(names, ctx.all_reduce(_SUM, [sums[k] for k in names]), strict=True))
    if extremes:
        # ReduceOp has no MIN/MAX: gather the replicas' scalars (one collective) and reduce here.
        names = list(extremes)
        packed = tf.stack([tf.reshape(tf.cast(extremes[k], tf.float32), []) for k in names])
        gathered = ctx.all_gather(packed[None, :], axis=0)
        top = tf.reduce_max(gathered, axis=0)
        for i, name in enumerate(names):
            out[name] = top[i] if COMBINE[name] == "max" else -top[i]
    if n is not None:
        total = tf.maximum(out["batch_size"], 1.0)
        for name, how in COMBINE.items():
            if how == "mean" and name in vals:
                out[name] = out[name] / total
    return out


def sum_row(row: tf.Tensor, ctx: tf.distribute.ReplicaContext) -> tf.Tensor:
    """A validation accumulator row summed over replicas."""
    return ctx.all_reduce(_SUM, row)


def global_gradients(pending: dict, ctx: tf.distribute.ReplicaContext) -> list:
    """The all-reduced gradients of this step, in the order of the stashed ones.

    The optimizer's own all-reduce is used when it ran in the step's graph (plain Keras 3
    optimizers); when it ran elsewhere (e.g. inside a ``LossScaleOptimizer``'s finite-gradient
    branch) or not at all, the stashed per-replica gradients are all-reduced here (one extra
    all-reduce of the gradients per step).
    """
    reduced = pending.get("reduced_grads")
    if reduced is not None and len(reduced) == len(pending["grads"]):
        return reduced
    grads = pending["grads"]
    present = [i for i, g in enumerate(grads) if g is not None]
    summed = ctx.all_reduce(_SUM, [grads[i] for i in present]) if present else []
    out: list = [None] * len(grads)
    for i, g in zip(present, summed, strict=True):
        out[i] = g
    return out


def hook_optimizer_reduce(instrument: Any, opt: Any) -> None:
    """Keep the optimizer's all-reduced gradients for the step's row (a no-op without replicas).

    Wraps ``opt._all_reduce_sum_gradients`` on the instance; :func:`unhook_optimizer_reduce`
    puts it back. The wrapper only reads its result: the step is unchanged.
    """
    original = getattr(opt, REDUCE_METHOD, None) if opt is not None else None
    instrument._saved["reduce"] = opt.__dict__.get(REDUCE_METHOD) if original else None
    if original is None:
        return

    def reduce(grads_and_vars: Any) -> Any:
        out = original(grads_and_vars)
        try:
            pending = instrument._pending
            if (
                pending is not None
                and "grads" in pending
                and replica_context() is not None
                and tf.compat.v1.get_default_graph() is pending.get("graph")
            ):
                reduced = [g for g, _ in out]
                if len(reduced) == len(pending["grads"]):
                    pending["reduced_grads"] = reduced
                    instrument.reduced_seen = True
        except Exception as exc:  # noqa: BLE001 - a fault in bertlab must not stop training
            instrument.on_fault("reading the all-reduced gradients", exc)
        return out

    object.__setattr__(opt, REDUCE_METHOD, reduce)
    instrument._saved["reduce_owner"] = opt


def unhook_optimizer_reduce(instrument: Any) -> None:
    """Undo :func:`hook_optimizer_reduce`."""
    opt = instrument._saved.pop("reduce_owner", None)
    if opt is None:
        return
    saved = instrument._saved.pop("reduce", None)
    if saved is None:
        opt.__dict__.pop(REDUCE_METHOD, None)
    else:
        object.__setattr__(opt, REDUCE_METHOD, saved)
