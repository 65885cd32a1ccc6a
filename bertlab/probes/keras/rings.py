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
Row column 0 is the step number, written by the ring from its own step counter (``steps``), which
every training step moves on (``tick``), recorded or not (see :mod:`bertlab.cadence`; on JAX,
after the first pass, unrecorded steps are counted on the host instead); ``count`` counts the
rows written.

Beside the rows, a ring keeps ``seen``, a table of ``OVERLAP_SLOTS`` int32 slots into which every
training step writes its rows' hash tags (``mark``) and from which every validation step counts
its rows already trained on (``matches``; see :mod:`overlap`). It is never read by the host.
A step that records no row (:mod:`bertlab.cadence`) writes its rows' tags only during the first
pass over the training data (``mark_first_pass``; the callback ends it after the first whole
epoch): the table then holds every training row already.
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
        self.steps = ops.zeros((), "int64")
        self.val = ops.zeros((vwidth,), "float32")
        self.seen: Any = ops.zeros((OVERLAP_SLOTS,), "int32")
        self.first_pass = True

    def write(self, row: Any) -> None:
        """Store one training row (its column 0 is replaced by the step number)."""
        idx = ops.mod(self.count, self.cap)
        row = ops.concatenate([ops.cast(ops.reshape(self.steps, (1,)), "float32"), row[1:]])
        self.buffer.index_copy_(0, ops.reshape(idx, (1,)), ops.reshape(row, (1, -1)))
        self.count.add_(1)

    def tick(self) -> None:
        """One training step ran (after its row, if it wrote one)."""
        self.steps.add_(1)

    @property
    def has_table(self) -> bool:
        """Whether training rows are remembered (not under a tf.distribute strategy)."""
        return self.seen is not None

    def mark(self, slot: Any, tag: Any) -> None:
        """Remember a training batch's rows: ``seen[slot] = tag`` (a later row may overwrite)."""
        self.seen.index_put_((ops.cast(slot, "int64"),), tag)

    def mark_first_pass(self, hashes: Any) -> None:
        """``mark(*hashes())`` while the first pass over the training data lasts, else
        nothing (an unrecorded step: once every training row is in the table, hashing the
        batch again costs time and adds nothing; see :mod:`bertlab.cadence`)."""
        if self.first_pass:
            rows = hashes()
            if rows is not None:
                self.mark(*rows)

    def end_first_pass(self) -> None:
        """One whole pass over the training data has been hashed (host side, between steps)."""
        self.first_pass = False

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

    def read_steps(self) -> int:
        """Training steps counted so far (``tick``), as a host int."""
        return int(ops.convert_to_numpy(self.steps))


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
            self.steps = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="bertlab_steps", **dist
            )
            self.val = tf.Variable(tf.zeros([vwidth]), trainable=False, name="bertlab_val", **dist)
            self.seen = None
            if not dist:  # a strategy's mirrored variables implement no element scatter
                self.seen = tf.Variable(
                    tf.zeros([OVERLAP_SLOTS], tf.int32), trainable=False, name="bertlab_seen"
                )
                self.first_pass = tf.Variable(True, trainable=False, name="bertlab_first_pass")

    def write(self, row: Any) -> None:
        import tensorflow as tf

        row = tf.concat([[tf.cast(self.steps, tf.float32)], row[1:]], axis=0)
        idx = self.count % self.cap
        # scatter_update: the one row-write that distributed (per-replica) variables implement
        written = self.buffer.scatter_update(tf.IndexedSlices(row[None, :], idx[None]))
        # The count only moves once the row is really written: if the step fails half-way
        # (e.g. a label out of range), no stale slot is read as a step.
        with tf.control_dependencies([written]):
            self.count.assign_add(1)

    def tick(self) -> None:
        self.steps.assign_add(1)

    def mark(self, slot: Any, tag: Any) -> None:
        self.seen.scatter_nd_update(slot[:, None], tag)

    def mark_first_pass(self, hashes: Any) -> None:
        import tensorflow as tf

        def mark() -> Any:
            rows = hashes()
            if rows is not None:
                self.mark(*rows)
            return tf.constant(0)

        tf.cond(self.first_pass, mark, lambda: tf.constant(0))  # the hash only runs if marked

    def end_first_pass(self) -> None:
        self.first_pass.assign(False)

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

    def read_steps(self) -> int:
        return int(self.steps.numpy())


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
            "steps": np.zeros((), np.int32),
            "val": np.zeros((vwidth,), np.float32),
            "seen": np.zeros((OVERLAP_SLOTS,), np.int32),
            "first_pass": np.ones((), np.bool_),
        }
        self.seen = True  # the table is ``carry["seen"]``
        self.tracing: dict[str, Any] | None = None
        #: Once the first pass has ended, an unrecorded step has nothing to do in the graph but
        #: count: it runs Keras's own step without the carry (no table, no counters in and
        #: out of the jitted call: ~10 us of a 0.35 ms step) and is counted here, on the
        #: host; the next call that takes the carry adds these into ``carry["steps"]``.
        self.host_steps = 0
        self.counted_on_host = False

    def write(self, row: Any) -> None:
        t = self.tracing
        if t is None:  # the shape-only pass that finds the layout
            return
        count = t["count"]
        row = ops.concatenate([ops.cast(ops.reshape(t["steps"], (1,)), "float32"), row[1:]])
        t["buffer"] = t["buffer"].at[count % self.cap].set(row)
        t["count"] = count + 1

    def tick(self) -> None:
        t = self.tracing
        if t is not None:
            t["steps"] = t["steps"] + 1

    def mark(self, slot: Any, tag: Any) -> None:
        t = self.tracing
        if t is not None:
            t["seen"] = t["seen"].at[slot].set(tag)

    def mark_first_pass(self, hashes: Any) -> None:
        import jax

        t = self.tracing
        if t is None:
            return

        def mark(seen: Any) -> Any:
            t["seen"] = seen
            rows = hashes()
            if rows is not None:
                self.mark(*rows)
            return t["seen"]

        t["seen"] = jax.lax.cond(t["first_pass"], mark, lambda seen: seen, t["seen"])

    def end_first_pass(self) -> None:
        self.carry = {**self.carry, "first_pass": np.zeros((), np.bool_)}
        self.counted_on_host = True

    def count_on_host(self) -> None:
        """One step ran without the carry (see ``host_steps``)."""
        self.host_steps += 1

    def take_host_steps(self) -> int:
        """The steps counted on the host since the last call that took the carry, which the
        jitted step adds to ``carry["steps"]`` (an argument of the jitted call: an eager add
        on the carry would be one more dispatched op, ~7 us, per call)."""
        n, self.host_steps = self.host_steps, 0
        return n

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

    def read_steps(self) -> int:
        return int(np.asarray(self.carry["steps"])) + self.host_steps


def make_ring(cap: int, width: int, vwidth: int, backend: str | None = None) -> Ring:
    """The ring for the running Keras backend (or ``backend``: "tensorflow", "jax", "torch")."""
    backend = backend or keras.backend.backend()
    if backend == "jax":
        return JaxRing(cap, width, vwidth)
    if backend == "torch":
        return Ring(cap, width, vwidth)
    return TFRing(cap, width, vwidth)
