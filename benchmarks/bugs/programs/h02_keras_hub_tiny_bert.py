"""Tiny keras_hub BertBackbone fine-tuned on BBC topics (healthy)

source: keras-io text_classification_with_transformer
expect: healthy
framework: keras
symptom: learns: validation accuracy well above chance (5 topics)
A 1-layer keras_hub BertBackbone (hidden 32, 2 heads) with token ids, segment ids and a
padding mask, its pooled output into a softmax over the 5 topics; AdamW, sparse
categorical cross-entropy, integer labels, shuffled batches.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
xt, yt = xt[:800], yt[:800]  # a smaller training set: keras_hub compiles slowly on one core
vocab = build_vocab(xt, 3000)


def inputs(texts: list[str]) -> dict[str, np.ndarray]:
    ids = encode(texts, vocab, 48)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": ids != 0}


backbone = keras_hub.models.BertBackbone(
    vocabulary_size=3000,
    num_layers=1,
    num_heads=2,
    hidden_dim=32,
    intermediate_dim=64,
    max_sequence_length=48,
)
pooled = backbone(backbone.input)["pooled_output"]
model = keras.Model(backbone.input, keras.layers.Dense(5, activation="softmax")(pooled))
model.compile(keras.optimizers.AdamW(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(
    inputs(xt),
    yt,
    validation_data=(inputs(xv), yv),
    epochs=4,
    batch_size=32,
    verbose=0,
    callbacks=bench.callbacks(),
)
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc > 0.6, val_accuracy=acc)
