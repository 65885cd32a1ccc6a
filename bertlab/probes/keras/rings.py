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
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


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

    def write(self, row: Any) -> None:
        """Store one training row (its column 0 is replaced by the step number)."""
        idx = ops.mod(self.count, self.cap)
        row = ops.concatenate([ops.cast(ops.reshape(self.count, (1,)), "float32"), row[1:]])
        self.buffer.index_copy_(0, ops.reshape(idx, (1,)), ops.reshape(row, (1, -1)))
        self.count.add_(1)

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
        }
        self.tracing: dict[str, Any] | None = None

    def write(self, row: Any) -> None:
        t = self.tracing
        if t is None:  # the shape-only pass that finds the layout
            return
        count = t["count"]
        row = ops.concatenate([ops.cast(ops.reshape(count, (1,)), "float32"), row[1:]])
        t["buffer"] = t["buffer"].at[count % self.cap].set(row)
        t["count"] = count + 1

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
