"""What one recorded step means, written once in plain numpy: the reference every probe matches.

The probes compute these numbers inside the training step with their framework's ops (TensorFlow
in ``probes/keras/quantities.py``, torch in ``probes/torch/quantities.py``), chosen to be fast and
never to fail. This module computes the same channels slowly and obviously from the step's
arrays, so each probe's test replays a step and compares channel by channel (Cockpit's
quantities vs instruments). The definitions themselves are in :mod:`bertlab.layout`'s docstring.
"""

from __future__ import annotations

import numpy as np

from bertlab.datafacts import (
    FMIX_MULTIPLIERS,
    HASH_COEFFS,
    HASH_POSITIONS,
    OVERLAP_SLOT_BITS,
    OVERLAP_SLOTS,
)
from bertlab.layout import UPDATE_SAMPLE, Layout


def _matrix(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a[:, None]
    return a.reshape(-1, a.shape[-1])


def probabilities(y_pred: np.ndarray, prob_mode: str) -> np.ndarray:
    """The outputs as the loss reads them (softmax/sigmoid of logits, or clipped as given)."""
    if prob_mode == "softmax":
        e = np.exp(y_pred - y_pred.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if prob_mode == "sigmoid":
        return 1.0 / (1.0 + np.exp(-y_pred))
    return np.clip(y_pred, 0.0, 1.0)


def predictions(y_pred: np.ndarray, layout: Layout) -> np.ndarray:
    """(B, C) 0/1 predictions: argmax for one label per row, a threshold otherwise."""
    y_pred = _matrix(y_pred)
    if layout.task == "multiclass":
        return np.eye(layout.n_outputs)[y_pred.argmax(axis=1)]
    positive = (y_pred > (0.0 if layout.prob_mode == "sigmoid" else 0.5)).astype(float)
    if layout.task == "binary":
        return np.concatenate([1 - positive[:, :1], positive[:, :1]], axis=1)
    return positive


def labels(y, layout: Layout) -> tuple[np.ndarray, dict[str, float]]:
    """(B, C) 0/1 labels and the label facts (sparse ids out of [0, K) give an all-zero row)."""
    k = layout.n_outputs
    y = _matrix(y)
    facts = {
        "label_min": y.min(),
        "label_max": y.max(),
        "label_nonint": float((y != np.round(y)).sum()),
    }
    sparse = y.shape[1] == 1 and k > 1
    if not sparse:
        binary = np.all((y == 0) | (y == 1), axis=1)
        facts["label_onehot_share"] = float(np.mean(binary & (y.sum(1) == 1)))
        facts["label_multihot_share"] = float(np.mean(binary & (y.sum(1) > 1)))
    if layout.task == "multiclass":
        if sparse:
            ids = np.round(y[:, 0]).astype(np.int64)
            ok = (ids >= 0) & (ids < k)
            facts["label_out_of_range"] = float((~ok).sum())
            return np.eye(k)[np.where(ok, ids, 0)] * ok[:, None], facts
        return np.eye(k)[y.argmax(axis=1)], facts
    positive = (y > 0.5).astype(float)
    if layout.task == "binary":
        return np.concatenate([1 - positive[:, :1], positive[:, :1]], axis=1), facts
    return positive, facts


def outputs(y_pred, layout: Layout) -> dict[str, object]:
    """Range, probability-likeness, confidence, per-output mean and histogram of the outputs."""
    y = _matrix(y_pred)
    finite = np.isfinite(y)
    safe = np.where(finite, y, 0.0)
    edges = np.asarray(layout.hist_edges)
    nbins = len(edges) - 1
    idx = np.clip(np.floor((safe - edges[0]) * nbins / (edges[-1] - edges[0])), 0, nbins - 1)
    out: dict[str, object] = {
        "out_min": y.min(),
        "out_max": y.max(),
        "out_nonfinite": float((~finite).sum()),
        "out_rowsum_dev": float(np.mean(np.abs(y.sum(axis=1) - 1.0))),
        "out_unit_share": float(np.mean((y >= 0) & (y <= 1))),
        "out_mean": y.mean(axis=0),
        "out_hist": np.bincount(idx.astype(int).ravel(), minlength=nbins).astype(float),
    }
    if layout.task == "regression":
        return out
    p = probabilities(safe, layout.prob_mode)
    log = lambda v: np.log(np.maximum(v, 1e-7))  # noqa: E731 - the probes' epsilon
    if layout.task == "multiclass":
        out["prob_max"] = float(p.max(axis=1).mean())
        out["prob_entropy"] = float((-(p * log(p)).sum(axis=1)).mean())
    else:
        q = 1.0 - p
        out["prob_max"] = float(np.maximum(p, q).mean())
        out["prob_entropy"] = float((-(p * log(p) + q * log(q))).mean())
    return out


def inputs(ids, mask=None, unk_id: int | None = None, len_edges=()) -> dict[str, object]:
    """Token-id range, padding, lengths (and their histogram), [UNK] share of real tokens."""
    ids = np.asarray(ids)
    real = np.asarray(mask, dtype=float) if mask is not None else (ids != 0).astype(float)
    lengths = real.sum(axis=1)
    out: dict[str, object] = {
        "tok_min": float(ids.min()),
        "tok_max": float(ids.max()),
        "pad_share": 1.0 - real.mean(),
        "len_mean": lengths.mean(),
        "len_max": lengths.max(),
        "full_share": float(np.mean(lengths == ids.shape[1])),
    }
    if len(len_edges) > 1:
        out["len_hist"] = np.histogram(lengths, bins=np.asarray(len_edges))[0].astype(float)
    if unk_id is not None:
        out["unk_share"] = float(((ids == unk_id) * real).sum() / max(real.sum(), 1.0))
    return out


def gradients(grads: list, groups: list[int], n_groups: int) -> dict[str, object]:
    """Global and per-group L2 norms; counts of all-zero, missing and non-finite gradients."""
    present = [
        (np.asarray(g, dtype=np.float64), groups[i]) for i, g in enumerate(grads) if g is not None
    ]
    sq = np.array([np.sum(g**2) for g, _ in present])
    per_group = np.zeros(n_groups)
    for (_, group), value in zip(present, sq, strict=True):
        per_group[group] += value
    return {
        "grad_norm": float(np.sqrt(sq.sum())),
        "grad_layer_norm": np.sqrt(per_group),
        "grad_zero": float((sq == 0).sum()),
        "grad_missing": float(len(grads) - len(present)),
        "grad_nonfinite": float((~np.isfinite(sq)).sum()),
    }


def update_ratios(
    before: list, after: list, groups: list[int], n_groups: int, sample: bool = False
) -> np.ndarray:
    """Per group ``||after - before|| / ||before||`` (NaN where the group's weights are all 0).

    ``sample``: as the Keras probe reads it, every k-th slice along the first axis of a weight
    larger than ``layout.UPDATE_SAMPLE``, sums scaled by n / read (``update_ratio``, layout.py).
    """
    delta, norm = np.zeros(n_groups), np.zeros(n_groups)
    for w0, w1, group in zip(before, after, groups, strict=True):
        w0, w1 = np.asarray(w0, dtype=np.float64), np.asarray(w1, dtype=np.float64)
        scale = 1.0
        if sample and w0.ndim and w0.size > UPDATE_SAMPLE:
            k = min(len(w0), -(-w0.size // UPDATE_SAMPLE))
            scale = w0.size / w0[::k].size
            w0, w1 = w0[::k], w1[::k]
        delta[group] += np.sum((w1 - w0) ** 2) * scale
        norm[group] += np.sum(w0**2) * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, np.sqrt(delta) / np.sqrt(norm), np.nan)


def mask_pad_share(ids, mask, pad_id: int | None = None) -> float:
    """Share of pad-id positions the mask says to attend to (NaN: no mask, or no pad id)."""
    if mask is None:
        return float("nan")
    pad = np.asarray(ids) == (0 if pad_id is None else pad_id)
    if not pad.any():
        return float("nan")
    return float((np.asarray(mask)[pad] != 0).mean())


def step(layout: Layout, *, loss=None, y_pred=None, y=None, ids=None, mask=None, unk_id=None):
    """Every channel of one step that depends on the batch (not the gradients), by name."""
    out: dict[str, object] = {}
    if loss is not None:
        out["loss"] = float(loss)
        out["loss_nonfinite"] = float(not np.isfinite(loss))
    if y_pred is not None:
        out.update(outputs(y_pred, layout))
        out["batch_size"] = float(_matrix(y_pred).shape[0])
        if y is not None and layout.task != "regression":
            true, facts = labels(y, layout)
            out.update(facts)
            out["pred_count"] = predictions(y_pred, layout).sum(axis=0)
            out["label_count"] = true.sum(axis=0)
    if ids is not None:
        out.update(inputs(ids, mask, unk_id, layout.len_edges))
    return out


# ---------------------------------------------------------------- row hashes (train-val-overlap)
def _fmix32(v: np.ndarray) -> np.ndarray:
    """murmur3's finalizer on uint32 words (logical shifts, products modulo 2**32)."""
    c1, c2 = (np.uint32(np.int32(c).view(np.uint32)) for c in FMIX_MULTIPLIERS)
    v = v ^ (v >> np.uint32(16))
    v = v * c1
    v = v ^ (v >> np.uint32(13))
    v = v * c2
    return v ^ (v >> np.uint32(16))


def hash_words(a) -> np.ndarray:
    """One array's rows as (n, F) uint32 words: float values as the bits of their float32,
    integers and booleans as their int32 value (modulo 2**32)."""
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.floating):
        words = a.astype(np.float32).view(np.uint32)
    else:
        words = a.astype(np.int64).astype(np.uint32)
    return words.reshape(len(a), -1)


def row_hashes(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """The two 32-bit hashes (int32) of every row of the arrays ``parts`` (side by side).

    ``h_k = sum_i HASH_COEFFS[k, i mod HASH_POSITIONS] * fmix32(v_i) mod 2**32`` over the row's
    words ``v`` (:func:`hash_words`). fmix32(0) = 0: trailing zeros (padding) do not change a
    hash, so a text padded to another length hashes alike.
    """
    words = np.concatenate([hash_words(a) for a in parts], axis=1)
    m = _fmix32(words).astype(np.uint64)
    positions = np.arange(words.shape[1]) % HASH_POSITIONS
    coeffs = HASH_COEFFS.view(np.uint32).astype(np.uint64)[:, positions]
    mask = np.uint64(0xFFFFFFFF)
    h1, h2 = ((m * c).sum(axis=1) & mask for c in coeffs)  # uint64 sums wrap modulo 2**64
    return h1.astype(np.uint32).view(np.int32), h2.astype(np.uint32).view(np.int32)


def slot_and_tag(h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a row's hashes go in the table (the top OVERLAP_SLOT_BITS bits of h1) and the
    tag stored there (h2 with its lowest bit set, so that an empty slot, 0, never matches)."""
    slot = h1.view(np.uint32) >> np.uint32(32 - OVERLAP_SLOT_BITS)
    return slot.astype(np.int32), h2 | np.int32(1)


def overlap(train_parts: list, val_parts: list) -> int:
    """Validation rows the probes count as training rows: the table filled by every training
    row in order, then read for every validation row (the in-step definition, collisions
    included)."""
    seen = np.zeros(OVERLAP_SLOTS, np.int32)
    slot, tag = slot_and_tag(*row_hashes(train_parts))
    seen[slot] = tag
    slot, tag = slot_and_tag(*row_hashes(val_parts))
    return int(np.sum(seen[slot] == tag))
