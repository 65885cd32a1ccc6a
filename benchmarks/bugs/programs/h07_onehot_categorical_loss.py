"""One-hot labels with categorical_crossentropy and softmax (b01 repaired)

source: repaired b01
expect: healthy
framework: keras
symptom: learns (the fault of b01 removed)
The b01 setup with the loss matching the one-hot labels and a softmax output.
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
y_onehot = keras.utils.to_categorical(y, classes)  # one-hot rows for the categorical loss
model = keras.Sequential(
    [
        keras.Input((79,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(classes, activation="softmax"),
    ]
)
model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
if True:
    hist = model.fit(
        x,
        y_onehot,
        epochs=6,
        batch_size=16,
        validation_split=0.2,
        verbose=0,
        callbacks=bench.callbacks(),
    )
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc > 0.5, val_accuracy=acc)
