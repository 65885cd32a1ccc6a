"""Multi-label LSTM on sparse targets converges to all zeros

source: https://github.com/keras-team/keras/issues/2578
expect: multilabel-collapse
framework: keras
symptom: accuracy stuck at 0.75 (the share of zeros): every label predicted 0
Reported: an LSTM with sigmoid outputs, binary cross-entropy and Adam, predicting the next
step's sparse multi-hot event vector from a series of such vectors; accuracy stayed at the
share of zeros, the model predicting all-zero vectors. Here: sequences of 10 sparse
24-event vectors, the next vector's events a noisy function of the last ones.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
n, steps, events = 1500, 10, 24
x = (rng.random((n, steps, events)) < 0.08).astype("float32")
perm = rng.permutation(events)
logit = 3.0 * x[:, -1, perm] + 2.0 * x[:, -2, :] - 2.5
y = (rng.random((n, events)) < 1 / (1 + np.exp(-logit))).astype("float32")
model = keras.Sequential(
    [
        keras.Input((steps, events)),
        keras.layers.LSTM(32),
        keras.layers.Dense(events, activation="sigmoid"),
    ]
)
model.compile("adam", "binary_crossentropy", metrics=["binary_accuracy"])
hist = model.fit(
    x, y, epochs=3, batch_size=64, validation_split=0.2, verbose=0, callbacks=bench.callbacks()
)
pred = model.predict(x[-300:], verbose=0) > 0.5
bench.finish(
    ok=float(pred.mean()) < 0.01,
    predicted_positive_share=float(pred.mean()),
    true_positive_share=float(y.mean()),
    val_binary_accuracy=hist.history["val_binary_accuracy"][-1],
)
