"""One-hot labels passed to sparse_categorical_crossentropy

source: https://github.com/keras-team/keras/issues/7303
expect: label-format-mismatch
framework: keras
symptom: fit fails: target shape does not match the output (one-hot rows given to a sparse loss)
Reported: an MLP over 79 numeric features (Dense 1024 relu, Dense 2048 relu, a sigmoid output
over 3570 classes), rmsprop, sparse_categorical_crossentropy, and labels one-hot encoded
to shape (n, 3570). The sparse loss expects one integer class id per row. Here: 79 features,
40 classes, smaller layers, the same loss and label format.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
classes, n = 40, 1200
centers = rng.normal(size=(classes, 79))
y = rng.integers(0, classes, n)
x = (centers[y] + rng.normal(scale=0.8, size=(n, 79))).astype("float32")
y_onehot = keras.utils.to_categorical(y, classes)  # the mistake: one-hot for a sparse loss
model = keras.Sequential(
    [
        keras.Input((79,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(classes, activation="sigmoid"),
    ]
)
model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
with bench.expect_error():
    model.fit(
        x,
        y_onehot,
        epochs=2,
        batch_size=16,
        validation_split=0.2,
        verbose=0,
        callbacks=bench.callbacks(),
    )
bench.finish(ok=bench.error is not None, error=(bench.error or {}).get("type", "none"))
