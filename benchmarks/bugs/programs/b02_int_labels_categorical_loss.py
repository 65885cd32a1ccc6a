"""Integer class ids passed to categorical_crossentropy

source: https://github.com/keras-team/keras/issues/3109
expect: label-format-mismatch
framework: keras
symptom: error checking the target: expected shape (None, 10) but got (n, 1)
Reported: a small Dense network over 2 numeric features, a 10-way softmax, compiled with
categorical_crossentropy while y_train held plain integer labels such as [2, 3, 7].
The categorical loss wants one-hot rows; the answer was to_categorical or the sparse loss.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
n, classes = 1500, 10
y = rng.integers(0, classes, n)
angle = 2 * np.pi * y / classes
x = np.stack([np.cos(angle), np.sin(angle)], 1) * 3 + rng.normal(scale=0.3, size=(n, 2))
model = keras.Sequential(
    [
        keras.Input((2,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(classes, activation="softmax"),
    ]
)
model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
y_col = y.reshape(-1, 1)  # the mistake: integer ids, shape (n, 1), for a categorical loss
with bench.expect_error():
    hist = model.fit(
        x.astype("float32"),
        y_col,
        epochs=4,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        callbacks=bench.callbacks(),
    )
if bench.error is None:
    pred = model.predict(x.astype("float32"), verbose=0).argmax(1)
    acc = float((pred == y).mean())
    bench.finish(ok=acc < 0.3, accuracy=acc, loss_last=hist.history["loss"][-1])
else:
    bench.finish(ok=True, error=bench.error["type"])
