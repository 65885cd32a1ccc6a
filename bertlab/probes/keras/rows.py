"""What one recorded row holds: the Keras probe's step tensors turned into a row of the layout.

:class:`RowRecorder` is the half of :class:`bertlab.probes.keras.instrument.Instrument` that
decides what is measured from the tensors the step's wrappers stashed (a dict ``p``: ``x``,
``y``, ``y_pred``, ``loss``, ``grads``, ``vars``, ``lr``, ``update``, ``loss_scale``): the row
layout (fixed at the first trace), the training row (one per step, into the ring) and the
validation sums (into the accumulators). The instrument decides where the tensors come from
(the wrappers, per backend); :mod:`quantities` holds the measures themselves, in ``keras.ops``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from bertlab.layout import Layout, val_channels
from bertlab.probes.keras import overlap, precision
from bertlab.probes.keras import quantities as q
from bertlab.probes.keras.rings import Ring, make_ring

#: Optional channels (``Layout.extras``) this probe records.
EXTRAS = ("mask_pad_share", "update_ratio")
#: Rows the in-graph ring holds. The callback reads it lazily (every ~0.1 s, or when half full),
#: so per batch the Python side costs almost nothing; writing a row costs the same for any size.
RING_ROWS = 512


def ring_capacity(steps_per_execution: int) -> int:
    """Ring size: RING_ROWS, and always room for four executions of steps_per_execution."""
    return max(RING_ROWS, 4 * max(1, steps_per_execution))


def first(structure: Any) -> Any:
    """The first tensor of a structure (the output, label or input of a one-output model)."""
    flat = [t for t in keras.tree.flatten(structure) if t is not None]
    return flat[0] if flat else None


def group_of(path: str) -> str:
    """Gradient group of a variable: its owning layer's path (``a/b/kernel`` -> ``a/b``)."""
    return path.rsplit("/", 1)[0] if "/" in path else path


class RowRecorder:
    """Builds the layout, the training row and the validation sums from a step's tensors.

    Mixed into the instrument, whose ``facts``, ``backend``, ``trace_facts`` and ``_note`` it
    uses; it owns the ring and its reads, and the tf.distribute helpers the row needs.
    """

    layout: Layout | None
    ring: Ring | None

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
        groups = tuple(dict.fromkeys(group_of(p) for p in var_paths or []))
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
        y_pred, y, x = first(p.get("y_pred")), first(p.get("y")), p.get("x")
        if "loss" not in p:
            self._note("the train step never called compute_loss: outputs and labels not recorded")
        if "grads" not in p:
            self._note("the train step never called optimizer.apply: gradients not recorded")
        scaled = p.get("loss_scale") is not None
        extras = EXTRAS + (("loss_scale",) if scaled else ())
        layout = self._ensure_layout(y_pred, p.get("vars"), x, extras)
        ctx = self._replica_context()
        xla = bool(self.facts.jit_compile)
        first_x = first(x)
        a: dict[str, Any] = {
            "loss": p.get("loss"),
            "batch": ops.shape(first_x)[0] if first_x is not None else None,
            "lr": p.get("lr"),
            "loss_scale": p.get("loss_scale"),
            "y_pred": y_pred,
            "y": y,
            "grads": None,
            "update": None,
            "inputs": None,
        }
        config: dict[str, Any] = {"layout": layout, "scaled": scaled, "xla": xla, "row": not ctx}
        if p.get("grads") is not None:
            index = {name: i for i, name in enumerate(layout.layers)}
            groups = [index.get(group_of(path), 0) for path in p["vars"] or []]
            if len(groups) == len(p["grads"]):
                grads = self._replicas.global_gradients(p, ctx) if ctx else p["grads"]
                a["grads"] = grads
                a["update"] = p.get("update")
                config.update(groups=groups, n_groups=max(1, len(layout.layers)))
        if x is not None:
            a["inputs"], self.trace_facts["inputs"] = q.input_tensors(x)
        config["unk"] = self.facts.unk_token_id
        config["pad"] = getattr(self.facts, "pad_token_id", None)
        self._trace_output_facts(y_pred, y, weighted=p.get("sample_weight") is not None)
        out = train_values(a, config)
        if ctx is not None:  # the global batch, on every replica
            out = q.assemble(self._replicas.combine_row(out, ctx), layout.channels())
        self.ring.write(out)
        self._count_step(x, ctx)

    def _record_bare(self, p: dict[str, Any]) -> None:
        """A training step that records no row (:mod:`bertlab.cadence`): it is counted, and its
        input rows are remembered for the train/validation overlap."""
        if self.ring is None:  # no row yet to know the layout from: record this one
            self._record_train(p)
            return
        self._count_step(p.get("x"), self._replica_context(), bare=True)

    def _count_step(self, x: Any, ctx: Any, bare: bool = False) -> None:
        self.ring.tick()
        if bare:  # only while the first pass over the data is being hashed
            if x is not None and ctx is None and self.ring.has_table:
                self.ring.mark_first_pass(lambda: self._row_hashes(x, ctx))
            return
        rows = self._row_hashes(x, ctx)
        if rows is not None:
            self.ring.mark(*rows)

    def end_first_pass(self) -> None:
        """Every training row has been hashed once: unrecorded steps stop hashing theirs."""
        if self.ring is not None and self.ring.has_table:
            self.ring.end_first_pass()

    def _row_hashes(self, x: Any, ctx: Any) -> tuple | None:
        """Slots and tags of the batch's rows (:mod:`overlap`), or None: no table (a
        tf.distribute strategy), inputs not hashed, or a failure (noted; the row stays)."""
        if x is None or ctx is not None or self.ring is None or not self.ring.has_table:
            return None
        try:
            return overlap.slot_and_tag(x)
        except Exception as exc:  # noqa: BLE001 - the overlap count is optional
            self._note(f"validation rows are not compared with training rows ({exc!r:.200})")
            return None

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
        y_pred, y, x = first(p.get("y_pred")), first(p.get("y")), first(p.get("x"))
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
        ctx = self._replica_context()
        rows = self._row_hashes(p.get("x"), ctx)
        if rows is not None:
            found = self.ring.matches(*rows)
            if found is not None:
                vals["overlap"], vals["hashed"] = found, n
        row = q.assemble(vals, val_channels(layout))
        if ctx is not None:
            row = self._replicas.sum_row(row, ctx)
        self.ring.add_val(row)

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

    def steps_done(self) -> int:
        """Training steps counted by the ring so far, recorded or not (a host read)."""
        return 0 if self.ring is None else self.ring.read_steps()

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


def train_values(a: dict[str, Any], c: dict[str, Any]) -> Any:
    """The training row (or, with ``c["row"]`` false, its values by channel) from a step's
    tensors ``a`` (see ``RowRecorder._record_train``) and its static configuration ``c``."""
    if keras.backend.backend() == "torch":  # eager: native torch, no Keras dispatch per op
        from bertlab.probes.keras import torch_fast

        return torch_fast.train_values(a, c)
    layout: Layout = c["layout"]
    vals: dict[str, Any] = {}
    if a["loss"] is not None:
        loss = ops.cast(ops.sum(a["loss"]), "float32")
        vals["loss"] = loss
        vals["loss_nonfinite"] = ops.cast(ops.logical_not(ops.isfinite(loss)), "float32")
    if a["batch"] is not None:
        vals["batch_size"] = ops.cast(a["batch"], "float32")
    if a["grads"] is not None:
        groups, n_groups = c["groups"], c["n_groups"]
        stats = q.gradient_stats(a["grads"], groups, n_groups, c["xla"])
        vals.update(precision.unscale(stats, a["loss_scale"]) if c["scaled"] else stats)
        if a["update"] is not None:
            vals.update(q.update_ratio(*q.update_sums(*a["update"]), groups, n_groups))
    if a["lr"] is not None:
        vals["lr"] = a["lr"]
    y_pred, y = a["y_pred"], a["y"]
    if y_pred is not None:
        vals.update(q.output_stats(y_pred, layout))
        if y is not None and layout.task != "regression":
            vals.update(q.class_counts(y, y_pred, layout)[0])
    if a["inputs"] is not None:
        vals.update(q.input_stats_of(a["inputs"], c["unk"], layout.len_edges, c["pad"]))
    return q.assemble(vals, layout.channels()) if c["row"] else vals
