"""Missing readings replaced by 0 before training (b06 repaired)

source: repaired b06
expect: healthy
framework: keras
symptom: learns (the fault of b06 removed)
The b06 setup with the NaN readings replaced by 0, the usual imputation.
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
x[rng.random(x.shape) < 0.02] = np.nan
x = np.nan_to_num(x, nan=0.0)  # missing readings set to 0 (inputs are zero-mean)
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
    epochs=8,
    batch_size=32,
    validation_split=0.2,
    verbose=0,
    callbacks=bench.callbacks(),
)
losses = hist.history["loss"]
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc > 0.5 and not np.isnan(losses).any(), val_accuracy=acc)
