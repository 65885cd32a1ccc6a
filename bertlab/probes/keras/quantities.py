"""What is measured inside the training step, as Keras ops on the step's own tensors.

These functions run while Keras traces (TensorFlow, JAX) or runs (torch) its train/test step,
on the very tensors that step produces (outputs, labels, inputs, loss, gradients): no second
forward or backward pass. They are written in ``keras.ops`` so that one definition serves the
three backends; only the sparse gradient of an embedding (``tf.IndexedSlices``, TensorFlow's
alone) has a TensorFlow branch (:mod:`sparse_tf`). Every op here is chosen so that it cannot
fail at run time whatever the data (no asserting ops, no data-dependent gather out of range:
out-of-range labels simply count as such; a one-hot is a comparison with ``arange``, which
never raises on torch) and so that it also compiles under XLA (no ``unique``/``bincount`` with
dynamic shapes).

Each function returns a dict of channel name -> float32 tensor (scalar or vector) in the
vocabulary of :mod:`bertlab.layout`; :func:`assemble` packs them into one row. What each
channel means is defined once, in :mod:`bertlab.reference` (plain numpy), against which this
module is tested on every backend.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from bertlab.datafacts import MASK_KEYS, TOKEN_KEYS
from bertlab.layout import UPDATE_SAMPLE, Layout

F32 = "float32"
_EPS = 1e-7


def _f(x):
    return ops.cast(x, F32)


def _count(mask):
    return ops.sum(_f(mask))


def _dtype(t) -> str:
    return keras.backend.standardize_dtype(t.dtype)


def is_tensor(t) -> bool:
    """A tensor of the running backend (a traced one included)."""
    return t is not None and hasattr(t, "dtype") and hasattr(t, "shape") and ops.is_tensor(t)


def rank(t) -> int:
    """Number of axes of a tensor (its static rank)."""
    return len(t.shape)


def one_hot(ids, k: int):
    """(B,) integer ids as a (B, k) float 0/1 matrix; ids outside [0, k) give all-zero rows."""
    return _f(ops.equal(ops.expand_dims(ids, -1), ops.arange(k, dtype=_dtype(ids))[None, :]))


def half_squared_norm(grad, xla: bool = False):
    """Half the squared L2 norm of one gradient (dense, or TensorFlow's ``IndexedSlices``).

    Half, because that is what TensorFlow's fused ``L2Loss`` kernel computes: one kernel per
    weight instead of a square and a sum (a BERT has ~200 weights; on a GPU each op is a
    launch); :func:`gradient_stats` doubles the stacked values once. An embedding's gradient on
    TensorFlow arrives as IndexedSlices whose rows may repeat; see
    :func:`bertlab.probes.keras.sparse_tf.squared_norm` for how it is summed without building
    the dense table.
    """
    if type(grad).__name__ == "IndexedSlices":
        from bertlab.probes.keras import sparse_tf

        return 0.5 * sparse_tf.squared_norm(grad, xla)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.nn.l2_loss(_f(grad))
    return 0.5 * ops.sum(ops.square(_f(grad)))  # one fused XLA computation on JAX


def gradient_stats(grads, groups: list[int], n_groups: int, xla: bool = False) -> dict:
    """Global and per-group gradient norms and counts of zero/missing/non-finite gradients.

    ``groups[i]`` is the group (layer) index of the i-th variable. A gradient whose squared norm
    overflows float32 counts as non-finite: at that size the update is broken anyway.
    """
    present = [(g, groups[i]) for i, g in enumerate(grads) if g is not None]
    missing = float(len(grads) - len(present))
    if not present:
        return {"grad_norm": math.nan, "grad_missing": missing}
    sq = ops.stack([half_squared_norm(g, xla) for g, _ in present]) * 2.0
    group_ids = np.asarray([gi for _, gi in present], np.int32)
    per_group = ops.segment_sum(sq, group_ids, num_segments=n_groups)
    return {
        "grad_norm": ops.sqrt(ops.sum(sq)),
        "grad_layer_norm": ops.sqrt(per_group),
        "grad_zero": _count(ops.equal(sq, 0.0)),
        "grad_missing": missing,
        "grad_nonfinite": _count(ops.logical_not(ops.isfinite(sq))),
    }


def as_matrix(t):
    """View outputs or labels as (batch, columns): (B,) and (B, 1) both become (B, 1)."""
    t = _f(t)
    if rank(t) == 0:
        return ops.reshape(t, (1, 1))
    if rank(t) == 1:
        return ops.expand_dims(t, 1)
    if rank(t) > 2:
        return ops.reshape(t, (-1, t.shape[-1] if t.shape[-1] is not None else ops.shape(t)[-1]))
    return t


def probabilities(y_pred, prob_mode: str):
    """Outputs as the loss reads them: softmax/sigmoid of logits, or the outputs themselves."""
    if prob_mode == "softmax":
        return ops.softmax(y_pred, axis=-1)
    if prob_mode == "sigmoid":
        return ops.sigmoid(y_pred)
    return ops.clip(y_pred, 0.0, 1.0)


def predictions(y_pred, layout: Layout):
    """Per-row predictions as a (B, C) 0/1 matrix in the class vocabulary of ``layout``."""
    k = layout.n_outputs
    threshold = 0.0 if layout.prob_mode == "sigmoid" else 0.5
    if layout.task == "multiclass":
        return one_hot(ops.argmax(y_pred, axis=-1), k)
    positive = _f(ops.greater(y_pred, threshold))
    if layout.task == "binary":
        positive = positive[:, :1]
        return ops.concatenate([1.0 - positive, positive], axis=1)
    return positive


def label_matrix(y, layout: Layout) -> tuple:
    """Labels as a (B, C) 0/1 matrix, plus label facts.

    Sparse integer labels (shape (B,) or (B, 1) with K > 1) are one-hot encoded; an integer
    outside [0, K) becomes an all-zero row and is counted in ``label_out_of_range``. Dense
    labels (last axis K) are read as given (argmax for single-label tasks).
    """
    k = layout.n_outputs
    y = as_matrix(y)
    facts = {
        "label_min": ops.min(y),
        "label_max": ops.max(y),
        "label_nonint": _count(ops.not_equal(y, ops.round(y))),
    }
    sparse = y.shape[-1] == 1 and k > 1
    if not sparse:
        binary01 = ops.all(ops.logical_or(ops.equal(y, 0.0), ops.equal(y, 1.0)), axis=1)
        row_sum = ops.sum(y, axis=1)
        onehot = ops.logical_and(binary01, ops.equal(row_sum, 1.0))
        facts["label_onehot_share"] = ops.mean(_f(onehot))
        facts["label_multihot_share"] = ops.mean(_f(ops.logical_and(binary01, row_sum > 1.0)))
    if layout.task == "multiclass":
        if sparse:
            ids = ops.cast(ops.round(y[:, 0]), "int32")
            in_range = ops.logical_and(ids >= 0, ids < k)
            facts["label_out_of_range"] = _count(ops.logical_not(in_range))
            return one_hot(ids, k), facts
        return one_hot(ops.argmax(y, axis=-1), k), facts
    positive = _f(ops.greater(y, 0.5))
    if layout.task == "binary":
        positive = positive[:, :1]
        return ops.concatenate([1.0 - positive, positive], axis=1), facts
    return positive, facts


def histogram(values, edges: tuple[float, ...]):
    """Counts of ``values`` in equal-width bins between ``edges[0]`` and ``edges[-1]``.

    Values outside fall into the first/last bin. Written with a segment sum (no histogram op
    has an XLA kernel on every backend).
    """
    nbins = len(edges) - 1
    lo, hi = edges[0], edges[-1]
    flat = ops.reshape(values, (-1,))
    idx = ops.cast(ops.floor((flat - lo) * (nbins / (hi - lo))), "int32")
    idx = ops.clip(idx, 0, nbins - 1)
    return ops.segment_sum(ops.ones_like(flat), idx, num_segments=nbins)


def output_stats(y_pred, layout: Layout) -> dict:
    """Range, probability-likeness, confidence and histogram of the model outputs."""
    y_pred = as_matrix(y_pred)
    finite = ops.isfinite(y_pred)
    safe = ops.where(finite, y_pred, ops.zeros_like(y_pred))
    stats = {
        "out_min": ops.min(y_pred),
        "out_max": ops.max(y_pred),
        "out_nonfinite": _count(ops.logical_not(finite)),
        "out_rowsum_dev": ops.mean(ops.abs(ops.sum(y_pred, axis=1) - 1.0)),
        "out_unit_share": ops.mean(_f(ops.logical_and(y_pred >= 0.0, y_pred <= 1.0))),
        "out_mean": ops.mean(y_pred, axis=0),
        "out_hist": histogram(safe, layout.hist_edges),
    }
    if layout.task == "regression":
        return stats
    p = probabilities(safe, layout.prob_mode)
    if layout.task == "multiclass":
        stats["prob_max"] = ops.mean(ops.max(p, axis=1))
        stats["prob_entropy"] = ops.mean(-ops.sum(p * ops.log(ops.maximum(p, _EPS)), axis=1))
    else:
        q = 1.0 - p
        stats["prob_max"] = ops.mean(ops.maximum(p, q))
        stats["prob_entropy"] = ops.mean(
            -(p * ops.log(ops.maximum(p, _EPS)) + q * ops.log(ops.maximum(q, _EPS)))
        )
    return stats


def class_counts(y, y_pred, layout: Layout) -> tuple:
    """Predicted/true class counts of a batch, label facts, and the (B, C) matrices."""
    pred = predictions(as_matrix(y_pred), layout)
    true, facts = label_matrix(y, layout)
    facts["pred_count"] = ops.sum(pred, axis=0)
    facts["label_count"] = ops.sum(true, axis=0)
    return facts, pred, true


def _is_int_matrix(t) -> bool:
    return is_tensor(t) and "int" in _dtype(t) and rank(t) == 2


def find_text_inputs(x) -> tuple:
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
    elif _is_int_matrix(x):
        ids, desc["token_key"] = x, "<input>"
    return ids, mask, desc


def length_histogram(lengths, edges: tuple[float, ...]):
    """Rows per bin of real-token counts, for the equal bins ``edges`` on [0, L].

    A bucket index and a one-hot sum (B x bins): XLA-compatible, a handful of ops. Lengths of
    exactly L (no padding) fall into the last bin.
    """
    nbins = len(edges) - 1
    scale = nbins / (edges[-1] - edges[0])
    idx = ops.cast(ops.floor((lengths - edges[0]) * scale), "int32")
    idx = ops.clip(idx, 0, nbins - 1)
    return ops.sum(one_hot(idx, nbins), axis=0)


def input_tensors(x) -> tuple[dict, dict]:
    """The input tensors the summaries read: token ids, mask, float inputs; and a description.

    Strings and other inputs are left out (a model that tokenizes inside reads strings).
    """
    ids, mask, desc = find_text_inputs(x)
    if ids is None or not is_tensor(ids) or rank(ids) != 2:
        ids = mask = None
    if mask is not None and not (is_tensor(mask) and rank(mask) == 2):
        mask = None
    floats = [
        t for t in keras.tree.flatten(x) if is_tensor(t) and keras.backend.is_float_dtype(_dtype(t))
    ]
    return {"ids": ids, "mask": mask, "floats": floats}, desc


def input_stats(
    x, unk_id: int | None = None, len_edges: tuple[float, ...] = (), pad_id: int | None = None
) -> tuple:
    """:func:`input_stats_of` the batch ``x``, and the description of its text inputs."""
    tensors, desc = input_tensors(x)
    return input_stats_of(tensors, unk_id, len_edges, pad_id), desc


def input_stats_of(
    inputs: dict, unk_id: int | None = None, len_edges: tuple = (), pad_id: int | None = None
) -> dict:
    """Token-id range, padding share, non-padding lengths, [UNK] share, non-finite inputs.

    ``inputs`` as :func:`input_tensors` gives them. With ``len_edges`` (the layout's, for the
    statically known sequence length) it also returns ``len_hist``, the rows per token-length
    bin; with a mask, ``mask_pad_share`` (the share of pad-id positions, ``pad_id`` or 0, that
    the mask says to attend to).
    """
    stats: dict = {}
    nonfinite = [_count(ops.logical_not(ops.isfinite(t))) for t in inputs["floats"]]
    if nonfinite:
        stats["input_nonfinite"] = sum(nonfinite[1:], nonfinite[0])
    ids, mask = inputs["ids"], inputs["mask"]
    if ids is None:
        return stats
    stats["tok_min"] = _f(ops.min(ids))
    stats["tok_max"] = _f(ops.max(ids))
    # Without a mask, id 0 is taken as padding: it is the pad id of BERT-family vocabularies.
    has_mask = mask is not None
    real = _f(mask) if has_mask else _f(ops.not_equal(ids, 0))
    lengths = ops.sum(real, axis=1)
    seq_len = _f(ops.shape(ids)[1])
    stats["pad_share"] = 1.0 - ops.mean(real)
    stats["len_mean"] = ops.mean(lengths)
    stats["len_max"] = ops.max(lengths)
    stats["full_share"] = ops.mean(_f(ops.equal(lengths, seq_len)))
    if len(len_edges) > 1:
        stats["len_hist"] = length_histogram(lengths, len_edges)
    if unk_id is not None:
        unk = _f(ops.equal(ids, unk_id)) * real
        stats["unk_share"] = ops.sum(unk) / ops.maximum(ops.sum(real), 1.0)
    if has_mask:
        pad = _f(ops.equal(ids, 0 if pad_id is None else pad_id))
        n_pad = ops.sum(pad)
        attended = ops.sum(pad * _f(ops.not_equal(mask, 0)))
        share = attended / ops.maximum(n_pad, 1.0)
        stats["mask_pad_share"] = ops.where(n_pad > 0, share, math.nan)
    return stats


def update_sample(value) -> tuple:
    """The entries of one weight that ``update_ratio`` reads, and the factor to the whole.

    Every k-th slice along the first axis, k = ceil(n / UPDATE_SAMPLE) (k = 1, every entry,
    for a weight of at most UPDATE_SAMPLE entries), whose sums times n / read estimate the whole
    weight's (see :mod:`bertlab.layout`). Always a copy: the optimizer updates in place next. A
    plain TensorFlow variable is read with ``sparse_read``, a stateful read that automatic control
    dependencies order before the optimizer's write and that copies only those rows (a plain
    read still pending at the write would make TensorFlow copy the whole variable).
    """
    if keras.backend.backend() == "torch":  # eager: native torch, no Keras dispatch per op
        from bertlab.probes.keras.torch_fast import update_sample as sample_torch

        return sample_torch(value)
    shape = tuple(value.shape)
    n = int(np.prod(shape)) if shape else 1
    if not shape:
        return ops.reshape(_f(ops.copy(value)), (1,)), 1.0
    rows = shape[0]
    k = max(1, min(rows, -(-n // UPDATE_SAMPLE)))
    if type(value).__name__ == "ResourceVariable":  # not a tf.distribute (mirrored) variable
        part = value.sparse_read(np.arange(0, rows, k))
    else:
        part = ops.copy(value[::k])
    read = (-(-rows // k)) * (n // rows)
    return ops.reshape(_f(part), (-1,)), n / read


def update_sums(before: list, after: list) -> tuple:
    """Per variable ``||after - before||^2`` and ``||before||^2``, scaled to the whole weight.

    ``before`` holds :func:`update_sample` pairs taken before the update, ``after`` the same
    entries read after it. The real difference of the weights, in float32 (subtracting two
    nearby float32 numbers is exact), so ratios of 1e-7 survive; ``lr * grad`` would miss
    Adam's scaling and clipping.
    """
    if len(before) != len(after):
        raise ValueError(f"{len(before)} weights before the update, {len(after)} after")
    sizes = [_size(b) for b, _ in before]
    if any(n is None for n in sizes):  # a sample of unknown size: one sum per weight
        pairs = list(zip(before, after, strict=True))
        delta = ops.stack([ops.sum(ops.square(a - b)) * scale for (b, scale), a in pairs])
        norm = ops.stack([ops.sum(ops.square(b)) * scale for b, scale in before])
        return delta, norm
    # All samples side by side: a handful of ops for any number of weights (a BERT has ~200
    # weights: one subtraction, square and sum each would be ~1000 ops, on a GPU launches).
    ids = np.repeat(np.arange(len(before), dtype=np.int32), sizes)
    scales = ops.convert_to_tensor(np.asarray([scale for _, scale in before], np.float32))
    old = ops.concatenate([b for b, _ in before], axis=0)
    new = ops.concatenate(list(after), axis=0)
    n = len(before)
    delta = ops.segment_sum(ops.square(new - old), ids, num_segments=n) * scales
    norm = ops.segment_sum(ops.square(old), ids, num_segments=n) * scales
    return delta, norm


def update_ratio(delta, norm, groups: list[int], n_groups: int) -> dict:
    """``update_ratio`` per group from :func:`update_sums` (NaN for an all-zero group)."""
    ids = np.asarray(groups, np.int32)
    d = ops.segment_sum(delta, ids, num_segments=n_groups)
    w = ops.segment_sum(norm, ids, num_segments=n_groups)
    ratio = ops.sqrt(d) / ops.sqrt(ops.where(w > 0, w, ops.ones_like(w)))
    return {"update_ratio": ops.where(w > 0, ratio, math.nan)}


def _size(v) -> int | None:
    """Number of elements if statically known, else None."""
    shape = getattr(v, "shape", ())
    if any(d is None for d in shape):
        return None
    return int(np.prod(shape)) if len(shape) else 1


def assemble(values: dict, channels: list[tuple[str, int]]):
    """Pack named values into one float32 row in channel order; absent channels are NaN.

    Scalars are packed with one ``stack`` per run of scalar channels: the whole row costs a
    handful of ops, which matters for models whose step takes a few milliseconds. Python
    numbers (a count known when the step is traced) are packed as constants.
    """
    if keras.backend.backend() == "torch":  # eager: every keras op costs a dispatch
        from bertlab.probes.keras.torch_fast import assemble as assemble_torch

        return assemble_torch(values, channels)
    parts: list = []
    scalars: list = []
    for name, width in channels:
        v = values.get(name)
        if v is not None and not is_tensor(v):
            v = ops.convert_to_tensor(np.asarray(v, np.float32))
        # Only a statically known, matching size is packed: a reshape that could fail at run
        # time must never enter the training step.
        ok = v is not None and _size(v) == width
        if width == 1:
            scalars.append(_shaped(v, ()) if ok else _nan(()))
            continue
        if scalars:
            parts.append(ops.stack(scalars))
            scalars = []
        parts.append(_shaped(v, (width,)) if ok else _nan((width,)))
    if scalars:
        parts.append(ops.stack(scalars))
    return ops.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def _shaped(v, shape: tuple):
    """``v`` as float32 of ``shape``, adding a cast or reshape only where one is needed (in a
    traced step every op is a node the executor schedules, on a GPU a kernel launch)."""
    if _dtype(v) != F32:
        v = _f(v)
    return v if tuple(v.shape) == shape else ops.reshape(v, shape)


def _nan(shape: tuple):
    return ops.convert_to_tensor(np.full(shape, np.nan, np.float32))
