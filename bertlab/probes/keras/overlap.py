"""Row hashes of a batch's inputs, in ``keras.ops``: which validation rows were trained on.

Every training step writes the hashes of its rows into a fixed table beside the ring
(:mod:`rings`: ``mark``); every validation step counts its rows whose hashes the table holds
(``matches``), summed per epoch in the validation accumulators (``overlap``, ``hashed``). The
hash is defined once in numpy (:func:`bertlab.reference.row_hashes`, constants in
:mod:`bertlab.datafacts`) and this module computes the same bits on every backend: int32
products and sums wrap modulo 2**32 alike on TensorFlow, JAX and torch, shifts are made logical
with a mask. No random op, no host sync, nothing the training reads.

What is hashed: the token ids when the batch has them (the example as the model sees it, the
same choice as the pre-flight's ``datafacts.row_keys``), else every input tensor side by side
(float values by their float32 bits). Inputs holding strings (a model that tokenizes inside) are
not hashed: two texts could only be told apart by what is left out.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from bertlab.datafacts import FMIX_MULTIPLIERS, HASH_COEFFS, HASH_POSITIONS, OVERLAP_SLOT_BITS
from bertlab.probes.keras import quantities as q

I32 = "int32"


def hash_parts(x: Any) -> list | None:
    """The tensors whose rows are hashed (see the module docstring), or None."""
    ids = q.find_text_inputs(x)[0] if x is not None else None
    if q.is_tensor(ids) and q.rank(ids) == 2:
        return [ids]
    leaves = [t for t in keras.tree.flatten(x) if t is not None]
    if not leaves or not all(q.is_tensor(t) and q.rank(t) >= 1 for t in leaves):
        return None
    kinds = [keras.backend.standardize_dtype(t.dtype) for t in leaves]
    if any(k == "string" or k.startswith("complex") for k in kinds):
        return None
    return leaves


def _words(t: Any) -> Any:
    """(B, F) int32 words of one tensor: float32 bits of floats, int32 values of integers."""
    if keras.backend.is_float_dtype(keras.backend.standardize_dtype(t.dtype)):
        t = ops.view(ops.cast(t, "float32"), I32)
    else:
        t = ops.cast(t, I32)
    return ops.reshape(t, (ops.shape(t)[0], -1))


def _lsr(v: Any, bits: int) -> Any:
    """Logical right shift of int32 words (an arithmetic shift, its sign copies masked off)."""
    return ops.bitwise_and(ops.right_shift(v, bits), (1 << (32 - bits)) - 1)


def _fmix32(v: Any) -> Any:
    c1, c2 = (ops.convert_to_tensor(np.int32(c)) for c in FMIX_MULTIPLIERS)
    v = ops.bitwise_xor(v, _lsr(v, 16))
    v = ops.multiply(v, c1)
    v = ops.bitwise_xor(v, _lsr(v, 13))
    v = ops.multiply(v, c2)
    return ops.bitwise_xor(v, _lsr(v, 16))


def _coefficients(width: Any) -> tuple:
    """The hash coefficients of positions 0..width-1 (constants when the width is static)."""
    if isinstance(width, int) and width <= HASH_POSITIONS:
        return tuple(ops.convert_to_tensor(HASH_COEFFS[k, :width]) for k in range(2))
    positions = ops.mod(ops.arange(width, dtype=I32), HASH_POSITIONS)
    return tuple(ops.take(ops.convert_to_tensor(HASH_COEFFS[k]), positions) for k in range(2))


def row_hashes(parts: list) -> tuple:
    """The two int32 hashes of every row (:func:`bertlab.reference.row_hashes`)."""
    words = [_words(t) for t in parts]
    v = words[0] if len(words) == 1 else ops.concatenate(words, axis=1)
    m = _fmix32(v)
    width = v.shape[1] if v.shape[1] is not None else ops.shape(v)[1]
    c1, c2 = _coefficients(width)
    # torch sums int32 in int64: the cast back keeps the sum modulo 2**32, as elsewhere.
    h1 = ops.cast(ops.sum(ops.multiply(m, c1[None, :]), axis=1), I32)
    h2 = ops.cast(ops.sum(ops.multiply(m, c2[None, :]), axis=1), I32)
    return h1, h2


def slot_and_tag(x: Any) -> tuple | None:
    """Table slot (top OVERLAP_SLOT_BITS bits of h1) and tag (h2 | 1) of every row of the
    batch ``x``, or None when its inputs are not hashed."""
    parts = hash_parts(x)
    if parts is None:
        return None
    h1, h2 = row_hashes(parts)
    return _lsr(h1, 32 - OVERLAP_SLOT_BITS), ops.bitwise_or(h2, 1)
