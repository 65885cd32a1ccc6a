"""Missing values (NaN) left in the training features

source: https://github.com/circleAhn/TESLA-tf/issues/1
expect: nan-input
framework: keras
symptom: every training loss is NaN
Reported: training a TensorFlow model on a self-built sensor time-series dataset; all losses
were NaN. The maintainers: the dataset had missing (NaN) values that their preprocessing
removes. Here: windows of 24 steps x 6 sensor channels, 3 classes, a Conv1D classifier, with
about 2% of readings missing as NaN.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
n = 1200
y = rng.integers(0, 3, n)
t = np.linspace(0, 4 * np.pi, 24)
x = np.sin(t[None, :, None] * (1 + y[:, None, None]) / 2) + rng.normal(scale=0.5, size=(n, 24, 6))
x[rng.random(x.shape) < 0.02] = np.nan  # the mistake: missing readings kept as NaN
model = keras.Sequential(
    [
        keras.Input((24, 6)),
        keras.layers.Conv1D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(
    x.astype("float32"),
    y,
    epochs=2,
    batch_size=32,
    validation_split=0.2,
    verbose=0,
    callbacks=bench.callbacks(),
)
losses = hist.history["loss"]
bench.finish(ok=bool(np.isnan(losses).all()), loss_nan=bool(np.isnan(losses).all()))
