"""Small Keras 2 models and token data for the legacy route's tests."""

from __future__ import annotations

import numpy as np

VOCAB = 300
SEQ = 16


def token_batches(n: int = 128, k: int = 4, seed: int = 0):
    """Token ids (padding 0 after a random length), an attention mask and class ids."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    ids = rng.integers(5, VOCAB, size=(n, SEQ)).astype("int32")
    ids[:, 0] = 1 + y  # a marker token per class, so the model learns
    lengths = rng.integers(4, SEQ + 1, size=n)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype("int32")
    return np.where(mask > 0, ids, 0).astype("int32"), mask, y.astype("int64")


def sequential(k: int = 4, seed: int = 1, activation: str | None = None):
    """Keras 2's smallest text classifier: Embedding, mean pooling, Dense(k)."""
    import tf_keras as k2

    k2.utils.set_random_seed(seed)
    return k2.Sequential(
        [
            k2.Input((SEQ,), dtype="int32"),
            k2.layers.Embedding(VOCAB, 16),
            k2.layers.GlobalAveragePooling1D(),
            k2.layers.Dense(k, activation=activation),
        ]
    )


def functional(k: int = 4, seed: int = 1, dropout: float = 0.2):
    """An HF-style functional Keras 2 model: input_ids + attention_mask, dropout (uses the RNG)."""
    import tensorflow as tf
    import tf_keras as k2

    k2.utils.set_random_seed(seed)
    ids = k2.Input((SEQ,), dtype="int32", name="input_ids")
    mask = k2.Input((SEQ,), dtype="int32", name="attention_mask")
    h = k2.layers.Embedding(VOCAB, 16)(ids)
    h = k2.layers.GlobalAveragePooling1D()(h, mask=tf.cast(mask, tf.bool))
    h = k2.layers.Dropout(dropout)(h)
    out = k2.layers.Dense(k)(h)
    return k2.Model({"input_ids": ids, "attention_mask": mask}, out)
