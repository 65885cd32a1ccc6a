"""Where a recorded row goes, per Keras backend: a small ring of rows that lives on the device.

The instrument (:mod:`instrument`) computes one row of summaries inside every training step and
hands it to ``ring.write``; validation batches add into ``ring.add_val``. How a value computed
inside the step reaches Python differs per backend, and this module is the one place that says
how:

- TensorFlow: ``tf.Variable`` rows written by ``scatter_nd_update`` inside the compiled step.
- torch: tensors on the model's device, written in place (``index_copy_``) in the eager step.
- JAX: the step is a pure function, so the ring is threaded through it: the instrument jits
  ``(state, ring, data) -> (logs, state, ring)`` and keeps the returned arrays (see
  ``JaxRing.carry``); Keras's own state and ``logs`` are untouched.

Every ring is read lazily by the callback (a few times a second): reading is the only host sync.
Row column 0 is the step number, written by the ring from its own counter.

Beside the rows, a ring keeps ``seen``, a table of ``OVERLAP_SLOTS`` int32 slots into which every
training step writes its rows' hash tags (``mark``) and from which every validation step counts
its rows already trained on (``matches``; see :mod:`overlap`). It is never read by the host.
Under a tf.distribute strategy there is no table (``seen`` is None: scatters into mirrored
variables are not implemented), and validation rows are not counted.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from bertlab.datafacts import OVERLAP_SLOTS


class Ring:
    """Interface and the torch implementation (eager, in place).

    Parameters
    ----------
    cap, width, vwidth
        Rows held, row width, width of the validation accumulator.
    """

    def __init__(self, cap: int, width: int, vwidth: int) -> None:
        self.cap, self.width = cap, width
        self.buffer = ops.zeros((cap, width), "float32")
        self.count = ops.zeros((), "int64")  # torch indexes with int64
        self.val = ops.zeros((vwidth,), "float32")
        self.seen: Any = ops.zeros((OVERLAP_SLOTS,), "int32")

    def write(self, row: Any) -> None:
        """Store one training row (its column 0 is replaced by the step number)."""
        idx = ops.mod(self.count, self.cap)
        row = ops.concatenate([ops.cast(ops.reshape(self.count, (1,)), "float32"), row[1:]])
        self.buffer.index_copy_(0, ops.reshape(idx, (1,)), ops.reshape(row, (1, -1)))
        self.count.add_(1)

    @property
    def has_table(self) -> bool:
        """Whether training rows are remembered (not under a tf.distribute strategy)."""
        return self.seen is not None

    def mark(self, slot: Any, tag: Any) -> None:
        """Remember a training batch's rows: ``seen[slot] = tag`` (a later row may overwrite)."""
        self.seen.index_put_((ops.cast(slot, "int64"),), tag)

    def matches(self, slot: Any, tag: Any) -> Any:
        """How many of a validation batch's rows the table holds (float32 scalar)."""
        return ops.sum(ops.cast(ops.equal(ops.take(self.seen, slot), tag), "float32"))

    def add_val(self, row: Any) -> None:
        """Add one validation batch's sums (NaN entries count as 0)."""
        self.val.add_(ops.where(ops.isnan(row), ops.zeros_like(row), row))

    def reset_val(self) -> None:
        self.val.zero_()

    def read_rows(self) -> tuple[int, np.ndarray]:
        """(rows written so far, the whole buffer) as host values: the only host sync."""
        return int(ops.convert_to_numpy(self.count)), _host(self.buffer)

    def read_val(self) -> np.ndarray:
        """The validation sums as host values."""
        return _host(self.val)


def _host(t: Any) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(t), np.float64)


class TFRing(Ring):
    """TensorFlow: variables written from inside the compiled step."""

    def __init__(self, cap: int, width: int, vwidth: int) -> None:
        import tensorflow as tf

        from bertlab.probes.keras import replicas

        self.cap, self.width = cap, width
        dist = replicas.variable_kwargs()  # mirrored, written once, under a strategy
        with tf.init_scope():
            self.buffer = tf.Variable(
                tf.zeros([cap, width]), trainable=False, name="bertlab_rows", **dist
            )
            self.count = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="bertlab_count", **dist
            )
            self.val = tf.Variable(tf.zeros([vwidth]), trainable=False, name="bertlab_val", **dist)
            self.seen = None
            if not dist:  # a strategy's mirrored variables implement no element scatter
                self.seen = tf.Variable(
                    tf.zeros([OVERLAP_SLOTS], tf.int32), trainable=False, name="bertlab_seen"
                )

    def write(self, row: Any) -> None:
        import tensorflow as tf

        row = tf.concat([[tf.cast(self.count, tf.float32)], row[1:]], axis=0)
        idx = self.count % self.cap
        # scatter_update: the one row-write that distributed (per-replica) variables implement
        written = self.buffer.scatter_update(tf.IndexedSlices(row[None, :], idx[None]))
        # The count only moves once the row is really written: if the step fails half-way
        # (e.g. a label out of range), no stale slot is read as a step.
        with tf.control_dependencies([written]):
            self.count.assign_add(1)

    def mark(self, slot: Any, tag: Any) -> None:
        self.seen.scatter_nd_update(slot[:, None], tag)

    def matches(self, slot: Any, tag: Any) -> Any:
        import tensorflow as tf

        return tf.reduce_sum(tf.cast(tf.equal(tf.gather(self.seen, slot), tag), tf.float32))

    def add_val(self, row: Any) -> None:
        import tensorflow as tf

        self.val.assign_add(tf.where(tf.math.is_nan(row), tf.zeros_like(row), row))

    def reset_val(self) -> None:
        self.val.assign(np.zeros(self.val.shape, np.float32))

    def read_rows(self) -> tuple[int, np.ndarray]:
        return int(self.count.numpy()), _host(self.buffer.numpy())

    def read_val(self) -> np.ndarray:
        return _host(self.val.numpy())


class JaxRing(Ring):
    """JAX: host-held arrays threaded through the jitted step as ``carry``.

    While a step is traced, ``tracing`` holds the traced carry that ``write``/``add_val``
    update functionally; the jitted function returns it and the instrument stores it back with
    ``carry = ...``.
    """

    def __init__(self, cap: int, width: int, vwidth: int) -> None:
        self.cap, self.width = cap, width
        self.carry: dict[str, Any] = {
            "buffer": np.zeros((cap, width), np.float32),
            "count": np.zeros((), np.int32),
            "val": np.zeros((vwidth,), np.float32),
            "seen": np.zeros((OVERLAP_SLOTS,), np.int32),
        }
        self.seen = True  # the table is ``carry["seen"]``
        self.tracing: dict[str, Any] | None = None

    def write(self, row: Any) -> None:
        t = self.tracing
        if t is None:  # the shape-only pass that finds the layout
            return
        count = t["count"]
        row = ops.concatenate([ops.cast(ops.reshape(count, (1,)), "float32"), row[1:]])
        t["buffer"] = t["buffer"].at[count % self.cap].set(row)
        t["count"] = count + 1

    def mark(self, slot: Any, tag: Any) -> None:
        t = self.tracing
        if t is not None:
            t["seen"] = t["seen"].at[slot].set(tag)

    def matches(self, slot: Any, tag: Any) -> Any:
        t = self.tracing
        if t is None:
            return None
        return ops.sum(ops.cast(ops.equal(t["seen"][slot], tag), "float32"))

    def add_val(self, row: Any) -> None:
        t = self.tracing
        if t is not None:
            t["val"] = t["val"] + ops.where(ops.isnan(row), ops.zeros_like(row), row)

    def reset_val(self) -> None:
        self.carry["val"] = np.zeros(np.shape(self.carry["val"]), np.float32)

    def read_rows(self) -> tuple[int, np.ndarray]:
        return int(np.asarray(self.carry["count"])), _host(self.carry["buffer"])

    def read_val(self) -> np.ndarray:
        return _host(self.carry["val"])


def make_ring(cap: int, width: int, vwidth: int, backend: str | None = None) -> Ring:
    """The ring for the running Keras backend (or ``backend``: "tensorflow", "jax", "torch")."""
    backend = backend or keras.backend.backend()
    if backend == "jax":
        return JaxRing(cap, width, vwidth)
    if backend == "torch":
        return Ring(cap, width, vwidth)
    return TFRing(cap, width, vwidth)
