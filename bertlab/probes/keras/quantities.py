"""What is measured inside the training step, as TensorFlow ops on the step's own tensors.

These functions run while Keras traces its train/test step, on the very tensors that step
produces (outputs, labels, inputs, loss, gradients): no second forward or backward pass. Every
op here is chosen so that it cannot fail at run time whatever the data (no asserting ops, no
data-dependent gather out of range: out-of-range labels simply count as such) and so that it also
compiles under XLA (no ``tf.unique``/``bincount`` with dynamic shapes).

Each function returns a dict of channel name -> float32 tensor (scalar or vector) in the
vocabulary of :mod:`bertlab.layout`; :func:`assemble` packs them into one row.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bertlab.datafacts import MASK_KEYS, TOKEN_KEYS
from bertlab.layout import Layout

F32 = tf.float32
_EPS = 1e-7


def _f(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, F32)


def _count(mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(_f(mask))


def squared_norm(grad, xla: bool = False) -> tf.Tensor:
    """Squared L2 norm of one gradient, dense or ``tf.IndexedSlices``.

    An embedding's gradient arrives as IndexedSlices whose rows may repeat (a token seen twice in
    the batch). The dense gradient sums repeated rows, so its norm is *not* the norm of the
    values. Duplicates are summed first (``tf.unique``, O(lookups); under XLA, which has no
    ``Unique`` kernel, a sort + segment sum), in O(lookups x dim): the (vocab x dim) dense table
    is never built.
    """
    if isinstance(grad, tf.IndexedSlices):
        values = _f(grad.values)
        idx = tf.reshape(grad.indices, [-1])
        if not xla:
            unique, position = tf.unique(idx)
            summed = tf.math.unsorted_segment_sum(values, position, tf.shape(unique)[0])
            return tf.reduce_sum(tf.square(summed))
        n = tf.shape(idx)[0]
        order = tf.argsort(idx, stable=True)
        sorted_idx = tf.gather(idx, order)
        starts = tf.concat([tf.ones([1], tf.int32), _neq(sorted_idx[1:], sorted_idx[:-1])], 0)
        segments = tf.cumsum(starts[:n]) - 1
        summed = tf.math.unsorted_segment_sum(tf.gather(values, order), segments, n)
        return tf.reduce_sum(tf.square(summed))
    return tf.reduce_sum(tf.square(_f(grad)))


def _neq(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.not_equal(a, b), tf.int32)


def gradient_stats(
    grads, groups: list[int], n_groups: int, xla: bool = False
) -> dict[str, tf.Tensor]:
    """Global and per-group gradient norms and counts of zero/missing/non-finite gradients.

    ``groups[i]`` is the group (layer) index of the i-th variable. A gradient whose squared norm
    overflows float32 counts as non-finite: at that size the update is broken anyway.
    """
    present = [(g, groups[i]) for i, g in enumerate(grads) if g is not None]
    missing = float(len(grads) - len(present))
    if not present:
        nan = tf.constant(float("nan"), F32)
        return {"grad_norm": nan, "grad_missing": tf.constant(missing, F32)}
    sq = tf.stack([squared_norm(g, xla) for g, _ in present])
    group_ids = tf.constant([gi for _, gi in present], tf.int32)
    per_group = tf.math.unsorted_segment_sum(sq, group_ids, n_groups)
    return {
        "grad_norm": tf.sqrt(tf.reduce_sum(sq)),
        "grad_layer_norm": tf.sqrt(per_group),
        "grad_zero": _count(tf.equal(sq, 0.0)),
        "grad_missing": tf.constant(missing, F32),
        "grad_nonfinite": _count(tf.logical_not(tf.math.is_finite(sq))),
    }


def as_matrix(t: tf.Tensor) -> tf.Tensor:
    """View outputs or labels as (batch, columns): (B,) and (B, 1) both become (B, 1)."""
    t = _f(t)
    if t.shape.rank == 0:
        return tf.reshape(t, [1, 1])
    if t.shape.rank == 1:
        return t[:, None]
    if t.shape.rank > 2:
        return tf.reshape(t, [-1, t.shape[-1] if t.shape[-1] is not None else tf.shape(t)[-1]])
    return t


def probabilities(y_pred: tf.Tensor, prob_mode: str) -> tf.Tensor:
    """Outputs as the loss reads them: softmax/sigmoid of logits, or the outputs themselves."""
    if prob_mode == "softmax":
        return tf.nn.softmax(y_pred, axis=-1)
    if prob_mode == "sigmoid":
        return tf.sigmoid(y_pred)
    return tf.clip_by_value(y_pred, 0.0, 1.0)


def predictions(y_pred: tf.Tensor, layout: Layout) -> tf.Tensor:
    """Per-row predictions as a (B, C) 0/1 matrix in the class vocabulary of ``layout``."""
    k = layout.n_outputs
    threshold = 0.0 if layout.prob_mode == "sigmoid" else 0.5
    if layout.task == "multiclass":
        return tf.one_hot(tf.argmax(y_pred, axis=-1), k, dtype=F32)
    positive = _f(y_pred > threshold)
    if layout.task == "binary":
        positive = positive[:, :1]
        return tf.concat([1.0 - positive, positive], axis=1)
    return positive


def label_matrix(y: tf.Tensor, layout: Layout) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Labels as a (B, C) 0/1 matrix, plus label facts.

    Sparse integer labels (shape (B,) or (B, 1) with K > 1) are one-hot encoded; an integer
    outside [0, K) becomes an all-zero row and is counted in ``label_out_of_range``. Dense
    labels (last axis K) are read as given (argmax for single-label tasks).
    """
    k = layout.n_outputs
    y = as_matrix(y)
    facts = {
        "label_min": tf.reduce_min(y),
        "label_max": tf.reduce_max(y),
        "label_nonint": _count(tf.not_equal(y, tf.round(y))),
    }
    sparse = y.shape[-1] == 1 and k > 1
    if not sparse:
        binary01 = tf.reduce_all(tf.logical_or(tf.equal(y, 0.0), tf.equal(y, 1.0)), axis=1)
        row_sum = tf.reduce_sum(y, axis=1)
        facts["label_onehot_share"] = tf.reduce_mean(_f(binary01 & tf.equal(row_sum, 1.0)))
        facts["label_multihot_share"] = tf.reduce_mean(_f(binary01 & (row_sum > 1.0)))
    if layout.task == "multiclass":
        if sparse:
            ids = tf.cast(tf.round(y[:, 0]), tf.int32)
            in_range = (ids >= 0) & (ids < k)
            facts["label_out_of_range"] = _count(tf.logical_not(in_range))
            return tf.one_hot(ids, k, dtype=F32), facts
        return tf.one_hot(tf.argmax(y, axis=-1), k, dtype=F32), facts
    positive = _f(y > 0.5)
    if layout.task == "binary":
        positive = positive[:, :1]
        return tf.concat([1.0 - positive, positive], axis=1), facts
    return positive, facts


def histogram(values: tf.Tensor, edges: tuple[float, ...]) -> tf.Tensor:
    """Counts of ``values`` in equal-width bins between ``edges[0]`` and ``edges[-1]``.

    Values outside fall into the first/last bin. Written with a segment sum rather than
    ``tf.histogram_fixed_width``, which has no XLA kernel (``jit_compile=True`` would fail).
    """
    nbins = len(edges) - 1
    lo, hi = edges[0], edges[-1]
    flat = tf.reshape(values, [-1])
    idx = tf.cast(tf.floor((flat - lo) * (nbins / (hi - lo))), tf.int32)
    idx = tf.clip_by_value(idx, 0, nbins - 1)
    return tf.math.unsorted_segment_sum(tf.ones_like(flat), idx, nbins)


def output_stats(y_pred: tf.Tensor, layout: Layout) -> dict[str, tf.Tensor]:
    """Range, probability-likeness, confidence and histogram of the model outputs."""
    y_pred = as_matrix(y_pred)
    finite = tf.math.is_finite(y_pred)
    safe = tf.where(finite, y_pred, tf.zeros_like(y_pred))
    hist = histogram(safe, layout.hist_edges)
    stats = {
        "out_min": tf.reduce_min(y_pred),
        "out_max": tf.reduce_max(y_pred),
        "out_nonfinite": _count(tf.logical_not(finite)),
        "out_rowsum_dev": tf.reduce_mean(tf.abs(tf.reduce_sum(y_pred, axis=1) - 1.0)),
        "out_unit_share": tf.reduce_mean(_f((y_pred >= 0.0) & (y_pred <= 1.0))),
        "out_mean": tf.reduce_mean(y_pred, axis=0),
        "out_hist": hist,
    }
    if layout.task == "regression":
        return stats
    p = probabilities(safe, layout.prob_mode)
    if layout.task == "multiclass":
        stats["prob_max"] = tf.reduce_mean(tf.reduce_max(p, axis=1))
        stats["prob_entropy"] = tf.reduce_mean(
            -tf.reduce_sum(p * tf.math.log(tf.maximum(p, _EPS)), axis=1)
        )
    else:
        q = 1.0 - p
        stats["prob_max"] = tf.reduce_mean(tf.maximum(p, q))
        stats["prob_entropy"] = tf.reduce_mean(
            -(p * tf.math.log(tf.maximum(p, _EPS)) + q * tf.math.log(tf.maximum(q, _EPS)))
        )
    return stats


def class_counts(y, y_pred, layout: Layout) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """Predicted/true class counts of a batch, label facts, and the (B, C) matrices."""
    pred = predictions(as_matrix(y_pred), layout)
    true, facts = label_matrix(y, layout)
    facts["pred_count"] = tf.reduce_sum(pred, axis=0)
    facts["label_count"] = tf.reduce_sum(true, axis=0)
    return facts, pred, true


def find_text_inputs(x) -> tuple[tf.Tensor | None, tf.Tensor | None, dict]:
    """Find the token-id and padding-mask tensors of a batch by name (KerasHub or HF style).

    A lone rank-2 integer tensor counts as token ids. Returns (ids, mask, description).
    """
    ids = mask = None
    desc: dict = {"token_key": None, "mask_key": None}
    if isinstance(x, dict):
        for key in TOKEN_KEYS:
            if key in x and x[key] is not None:
                ids, desc["token_key"] = x[key], key
                break
        for key in MASK_KEYS:
            if key in x and x[key] is not None:
                mask, desc["mask_key"] = x[key], key
                break
    elif isinstance(x, tf.Tensor) and x.dtype.is_integer and x.shape.rank == 2:
        ids, desc["token_key"] = x, "<input>"
    return ids, mask, desc


def length_histogram(lengths: tf.Tensor, edges: tuple[float, ...]) -> tf.Tensor:
    """Rows per bin of real-token counts, for the equal bins ``edges`` on [0, L].

    A bucket index and a one-hot sum (B x bins): XLA-compatible, a handful of ops. Lengths of
    exactly L (no padding) fall into the last bin.
    """
    nbins = len(edges) - 1
    scale = nbins / (edges[-1] - edges[0])
    idx = tf.cast(tf.floor((lengths - edges[0]) * scale), tf.int32)
    idx = tf.clip_by_value(idx, 0, nbins - 1)
    return tf.reduce_sum(tf.one_hot(idx, nbins, dtype=F32), axis=0)


def input_stats(
    x, unk_id: int | None = None, len_edges: tuple[float, ...] = (), pad_id: int | None = None
) -> tuple[dict[str, tf.Tensor], dict]:
    """Token-id range, padding share, non-padding lengths, [UNK] share, non-finite inputs.

    With ``len_edges`` (the layout's, for the statically known sequence length) it also
    returns ``len_hist``, the rows per token-length bin; with a mask, ``mask_pad_share`` (the
    share of pad-id positions, ``pad_id`` or 0, that the mask says to attend to).
    """
    stats: dict[str, tf.Tensor] = {}
    nonfinite = [
        _count(tf.logical_not(tf.math.is_finite(t)))
        for t in tf.nest.flatten(x)
        if isinstance(t, tf.Tensor) and t.dtype.is_floating
    ]
    if nonfinite:
        stats["input_nonfinite"] = tf.add_n(nonfinite)
    ids, mask, desc = find_text_inputs(x)
    if ids is None or ids.shape.rank != 2:
        return stats, desc
    stats["tok_min"] = _f(tf.reduce_min(ids))
    stats["tok_max"] = _f(tf.reduce_max(ids))
    # Without a mask, id 0 is taken as padding: it is the pad id of BERT-family vocabularies.
    real = _f(mask) if mask is not None and mask.shape.rank == 2 else _f(tf.not_equal(ids, 0))
    lengths = tf.reduce_sum(real, axis=1)
    seq_len = _f(tf.shape(ids)[1])
    stats["pad_share"] = 1.0 - tf.reduce_mean(real)
    stats["len_mean"] = tf.reduce_mean(lengths)
    stats["len_max"] = tf.reduce_max(lengths)
    stats["full_share"] = tf.reduce_mean(_f(tf.equal(lengths, seq_len)))
    if len(len_edges) > 1:
        stats["len_hist"] = length_histogram(lengths, len_edges)
    if unk_id is not None:
        unk = _f(tf.equal(ids, tf.cast(unk_id, ids.dtype))) * real
        stats["unk_share"] = tf.reduce_sum(unk) / tf.maximum(tf.reduce_sum(real), 1.0)
    if mask is not None and mask.shape.rank == 2:
        pad = _f(tf.equal(ids, tf.cast(0 if pad_id is None else pad_id, ids.dtype)))
        n_pad = tf.reduce_sum(pad)
        attended = tf.reduce_sum(pad * _f(tf.not_equal(mask, tf.zeros_like(mask))))
        nan = tf.constant(float("nan"), F32)
        stats["mask_pad_share"] = tf.where(n_pad > 0, attended / tf.maximum(n_pad, 1.0), nan)
    return stats, desc


def update_sums(before: list, after: list) -> tuple[tf.Tensor, tf.Tensor]:
    """Per variable ``||after - before||^2`` and ``||before||^2`` (the snapshot around an update).

    The real difference of the weights, in float32 (subtracting two nearby float32 numbers is
    exact), so ratios of 1e-7 survive; ``lr * grad`` would miss Adam's scaling and clipping.
    """
    delta = tf.stack(
        [tf.reduce_sum(tf.square(_f(a) - _f(b))) for a, b in zip(after, before, strict=True)]
    )
    norm = tf.stack([tf.reduce_sum(tf.square(_f(b))) for b in before])
    return delta, norm


def update_ratio(
    delta: tf.Tensor, norm: tf.Tensor, groups: list[int], n_groups: int
) -> dict[str, tf.Tensor]:
    """``update_ratio`` per group from :func:`update_sums` (NaN for an all-zero group)."""
    ids = tf.constant(groups, tf.int32)
    d = tf.math.unsorted_segment_sum(delta, ids, n_groups)
    w = tf.math.unsorted_segment_sum(norm, ids, n_groups)
    ratio = tf.sqrt(d) / tf.sqrt(tf.where(w > 0, w, tf.ones_like(w)))
    return {"update_ratio": tf.where(w > 0, ratio, tf.fill(tf.shape(w), float("nan")))}


def assemble(values: dict[str, tf.Tensor], channels: list[tuple[str, int]]) -> tf.Tensor:
    """Pack named values into one float32 row in channel order; absent channels are NaN.

    Scalars are packed with one ``stack`` per run of scalar channels: the whole row costs a
    handful of ops, which matters for models whose step takes a few milliseconds.
    """
    parts: list[tf.Tensor] = []
    scalars: list[tf.Tensor] = []
    for name, width in channels:
        v = values.get(name)
        # Only a statically known, matching size is packed: a reshape that could fail at run
        # time must never enter the training step.
        ok = v is not None and v.shape.num_elements() == width
        if width == 1:
            if not ok:
                scalars.append(tf.constant(float("nan"), F32))
            else:
                v = _f(v)
                scalars.append(v if v.shape.rank == 0 else tf.reshape(v, []))
            continue
        if scalars:
            parts.append(tf.stack(scalars))
            scalars = []
        if ok:
            parts.append(tf.reshape(_f(v), [width]))
        else:
            parts.append(tf.constant(np.full(width, np.nan, np.float32)))
    if scalars:
        parts.append(tf.stack(scalars))
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]
