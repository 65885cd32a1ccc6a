"""Topic names (strings) passed to fit as labels

source: https://github.com/tensorflow/tensorflow/issues/28367
expect: label-format-mismatch
framework: keras
symptom: fit raises (strings cannot be cast to the loss's numeric targets)
Reported: tf.keras model.fit with a dataset whose labels were class names as strings; fit
failed with an UnimplementedError casting string to float, integer labels worked. Here: BBC
News leads, an Embedding + pooling classifier, labels given as the topic names.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
topics = np.asarray(data["topics"])
vocab = build_vocab(xt, 5000)
model = keras.Sequential(
    [
        keras.Input((48,), dtype="int32"),
        keras.layers.Embedding(5000, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(5, activation="softmax"),
    ]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
with bench.expect_error():
    model.fit(
        encode(xt, vocab, 48),
        topics[yt],
        epochs=2,
        batch_size=32,
        verbose=0,
        validation_data=(encode(xv, vocab, 48), topics[yv]),
        callbacks=bench.callbacks(),
    )
bench.finish(ok=bench.error is not None, error=(bench.error or {}).get("type", "none"))
