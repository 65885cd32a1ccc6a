"""A numeric summary of the training data that the pre-flight rules read.

Built either from the arrays themselves (``bertlab.check(model, x, y)``, before any training)
or from what the probe recorded for the batches seen so far (during ``fit``), so the same rules
answer in both places. Framework-free: plain numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TOKEN_KEYS = ("token_ids", "input_ids", "input_word_ids", "tokens")
MASK_KEYS = ("padding_mask", "attention_mask", "input_mask", "mask")

# ---- Row hashes: the probes' in-step counterpart of ``row_keys`` (train-val-overlap) ----------
#: Slots of the table of training-row hashes a probe keeps beside its ring (int32, 4 MiB). A
#: validation row is counted as a training row when its slot holds its tag. A later training row
#: that lands in the same slot overwrites the tag, so with n distinct training rows at most a
#: share 1 - exp(-n / M) <= n / M of the true overlap is lost (< 10 % up to 100k training rows);
#: a false match needs 20 + 31 hash bits to agree (about 2**-51 per pair of rows).
OVERLAP_SLOTS = 2**20
OVERLAP_SLOT_BITS = 20
#: Positions with their own hash coefficient; position i of a longer row uses coefficient
#: i mod HASH_POSITIONS (4096 covers any BERT sequence and most feature vectors; 32 KiB of
#: constants in the step).
HASH_POSITIONS = 4096
#: Two rows of fixed random odd 32-bit coefficients (as int32), one per hash: h_k = sum_i
#: HASH_COEFFS[k, i] * fmix32(v_i) mod 2**32. Fixed seed: the same row hashes alike in every
#: process and framework.
HASH_COEFFS: np.ndarray = (
    (np.random.default_rng(20260214).integers(0, 2**32, (2, HASH_POSITIONS), np.uint64) | 1)
    .astype(np.uint32)
    .view(np.int32)
)
#: murmur3's 32-bit finalizer multipliers (fmix32), as int32: a bijection of 32-bit words whose
#: output bits all depend on all input bits, so that the bits of 1.0 (0x3F800000, 23 zero low
#: bits) or of small token ids reach every bit of the hash.
FMIX_MULTIPLIERS: tuple[int, int] = (-2048144789, -1028477387)  # 0x85EBCA6B, 0xC2B2AE35


@dataclass
class DataFacts:
    """What is known about labels and inputs. ``None`` = unknown.

    Attributes
    ----------
    n
        Number of samples summarised.
    label_shape
        Per-sample label shape (``()`` for (N,), ``(1,)`` for (N, 1), ``(K,)`` for one-hot).
    label_min, label_max, label_integer
        Range of label values and whether all are integers.
    onehot_share, multihot_share
        Share of rows that are exactly one-hot / multi-hot (dense labels only).
    label_counts
        Samples per class (sparse or one-hot labels), or positives per label (multi-hot).
    order_runs
        For sequence-ordered sparse labels: mean length of runs of equal consecutive labels
        (about 1 / (1 - sum p_c^2) for shuffled data; much longer when sorted by label).
    val_label_counts
        Same as ``label_counts`` for the validation data, where known.
    token_min, token_max, pad_share, full_share, unk_share
        Token-id range, padding share, share of rows with no padding, share of [UNK] tokens.
    has_mask
        Whether a padding/attention mask is fed with the token ids.
    nonfinite_inputs
        Number of NaN/inf values in float inputs.
    label_text
        A few distinct labels when the labels are text (class names, not numbers), else None.
    val_rows, val_overlap
        Number of validation rows, and how many of them are exactly a training row too (the
        same token ids, or the same input values without token ids), where both are known.
    """

    n: int = 0
    label_shape: tuple[int, ...] | None = None
    label_min: float | None = None
    label_max: float | None = None
    label_integer: bool | None = None
    onehot_share: float | None = None
    multihot_share: float | None = None
    label_counts: np.ndarray | None = None
    order_runs: float | None = None
    val_label_counts: np.ndarray | None = None
    token_min: int | None = None
    token_max: int | None = None
    pad_share: float | None = None
    full_share: float | None = None
    unk_share: float | None = None
    has_mask: bool | None = None
    nonfinite_inputs: int | None = None
    val_rows: int | None = None
    val_overlap: int | None = None
    label_text: list[str] | None = None


def _counts(y: np.ndarray, n_outputs: int | None) -> np.ndarray | None:
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        flat = y.reshape(-1)
        if not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)) or flat.min() < 0:
            return None
        size = max(int(flat.max()) + 1, n_outputs or 0)
        return np.bincount(flat.astype(np.int64), minlength=size)
    if y.ndim == 2:
        return (y > 0.5).sum(axis=0)
    return None


def _runs(y: np.ndarray) -> float | None:
    flat = y.reshape(len(y), -1)
    if flat.shape[1] != 1 or len(flat) < 2:
        return None
    changes = np.count_nonzero(flat[1:, 0] != flat[:-1, 0])
    return len(flat) / (changes + 1)


#: Distinct text labels kept as evidence.
TEXT_EXAMPLES = 5


def _text_labels(y: Any) -> list[str] | None:
    """A few distinct labels when ``y`` holds text (str/bytes: class names), else None."""
    if y is None:
        return None
    arr = np.asarray(y, dtype=object) if not hasattr(y, "dtype") else np.asarray(y)
    if arr.dtype.kind not in "OUS" or arr.size == 0:
        return None
    flat = arr.reshape(-1)
    if not all(isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in flat[:1000]):
        return None
    seen: list[str] = []
    for v in flat:
        text = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
        if text not in seen:
            seen.append(text)
            if len(seen) == TEXT_EXAMPLES:
                break
    return seen


def from_arrays(
    x: Any,
    y: Any,
    *,
    n_outputs: int | None = None,
    unk_id: int | None = None,
    val_y: Any = None,
    val_x: Any = None,
) -> DataFacts:
    """Summarise numpy-like inputs ``x`` (array or dict of arrays) and labels ``y`` (and how
    many validation inputs ``val_x`` repeat a training input)."""
    facts = DataFacts()
    text = _text_labels(y)
    if text is not None:  # class names: no number to summarise (and losses take none)
        facts.n, facts.label_text, y = len(np.asarray(y, dtype=object)), text, None
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        facts.n = len(y)
        facts.label_shape = tuple(int(d) for d in y.shape[1:])
        finite = y[np.isfinite(y)]
        if finite.size:
            facts.label_min, facts.label_max = float(finite.min()), float(finite.max())
        facts.label_integer = bool(np.all(y == np.round(y)))
        if y.ndim == 2 and y.shape[1] > 1:
            binary = np.all((y == 0) | (y == 1), axis=1)
            sums = y.sum(axis=1)
            facts.onehot_share = float(np.mean(binary & (sums == 1)))
            facts.multihot_share = float(np.mean(binary & (sums > 1)))
        facts.label_counts = _counts(y, n_outputs)
        facts.order_runs = _runs(y)
    if val_y is not None:
        facts.val_label_counts = _counts(np.asarray(val_y, dtype=np.float64), n_outputs)
    ids, mask = _text_inputs(x)
    if ids is not None:
        facts.token_min, facts.token_max = int(ids.min()), int(ids.max())
        real = mask.astype(bool) if mask is not None else ids != 0
        facts.has_mask = mask is not None
        facts.pad_share = float(1.0 - real.mean())
        facts.full_share = float(np.mean(real.all(axis=1)))
        if unk_id is not None:
            facts.unk_share = float(np.sum((ids == unk_id) & real) / max(1, real.sum()))
    floats = [a for a in _arrays(x) if np.issubdtype(a.dtype, np.floating)]
    facts.nonfinite_inputs = int(sum(np.count_nonzero(~np.isfinite(a)) for a in floats))
    if x is not None and val_x is not None:
        train, val = row_keys(x), row_keys(val_x)
        if train is not None and val is not None:
            seen = set(train)
            facts.val_rows = len(val)
            facts.val_overlap = sum(key in seen for key in val)
    return facts


def row_keys(x: Any) -> list[bytes] | None:
    """One exact key per example: the bytes of its token-id row (or of all its input values).

    Identical examples give identical keys; the padded row is the example as the model sees it.
    ``None`` when the rows cannot be aligned (inputs of different lengths).
    """
    ids, _ = _text_inputs(x)
    arrays = [ids] if ids is not None else _arrays(x)
    if not arrays or any(a.ndim == 0 or len(a) != len(arrays[0]) for a in arrays):
        return None
    flat = [np.ascontiguousarray(a).reshape(len(a), -1) for a in arrays]
    return [b"".join(a[i].tobytes() for a in flat) for i in range(len(flat[0]))]


def _arrays(x: Any) -> list[np.ndarray]:
    if isinstance(x, dict):
        return [np.asarray(v) for v in x.values() if v is not None]
    if isinstance(x, (list, tuple)):
        return [np.asarray(v) for v in x]
    return [np.asarray(x)] if x is not None else []


def _text_inputs(x: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if isinstance(x, dict):
        ids = next((np.asarray(x[k]) for k in TOKEN_KEYS if x.get(k) is not None), None)
        mask = next((np.asarray(x[k]) for k in MASK_KEYS if x.get(k) is not None), None)
        return ids, mask
    arr = np.asarray(x) if x is not None and not isinstance(x, (list, tuple)) else None
    if arr is not None and arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer):
        return arr, None
    return None, None


def from_steps(columns: dict[str, np.ndarray], meta: dict[str, Any]) -> DataFacts:
    """Summarise the batches recorded so far (the probe's per-step label and input facts)."""
    facts = DataFacts()
    size = columns.get("batch_size")
    if size is None or not len(size):
        return facts

    def agg(name: str, fn) -> float | None:
        col = columns.get(name)
        if col is None or not len(col) or np.all(np.isnan(col)):
            return None
        return float(fn(col[~np.isnan(col)]))

    facts.n = int(np.nansum(size))
    shape = meta.get("label_shape")
    facts.label_shape = tuple(int(d or 0) for d in shape[1:]) if shape else None
    facts.label_min = agg("label_min", np.min)
    facts.label_max = agg("label_max", np.max)
    nonint = agg("label_nonint", np.sum)
    facts.label_integer = None if nonint is None else nonint == 0
    facts.onehot_share = agg("label_onehot_share", np.mean)
    facts.multihot_share = agg("label_multihot_share", np.mean)
    counts = columns.get("label_count")
    if counts is not None and len(counts):
        facts.label_counts = np.nansum(counts.reshape(len(size), -1), axis=0)
    tok_min, tok_max = agg("tok_min", np.min), agg("tok_max", np.max)
    facts.token_min = None if tok_min is None else int(tok_min)
    facts.token_max = None if tok_max is None else int(tok_max)
    facts.pad_share = agg("pad_share", np.mean)
    facts.full_share = agg("full_share", np.mean)
    facts.unk_share = agg("unk_share", np.mean)
    inputs = meta.get("inputs") or {}
    if inputs.get("token_key"):
        facts.has_mask = inputs.get("mask_key") is not None
    nonfinite = agg("input_nonfinite", np.sum)
    facts.nonfinite_inputs = None if nonfinite is None else int(nonfinite)
    return facts
