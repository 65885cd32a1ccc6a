"""2 positive labels out of 64: every sigmoid stays low

source: https://github.com/keras-team/keras/issues/741
expect: multilabel-collapse
framework: keras
symptom: all sigmoid outputs produce a very low score; accuracy high only from the zeros
Reported (comment by jerrypaytm): multi-label classification with 2 positive labels out of
64, sigmoid outputs and binary cross-entropy; all 64 sigmoids settled on low scores because
62/64 of the targets are 0. Here: 200 bag-of-words features, 64 labels with 2 active per row.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
n, feats, labels = 2000, 200, 64
w = rng.normal(size=(feats, labels))
x = (rng.random((n, feats)) < 0.05).astype("float32")
scores = x @ w + rng.normal(scale=1.0, size=(n, labels))
y = np.zeros((n, labels), "float32")
y[np.arange(n)[:, None], np.argsort(-scores, 1)[:, :2]] = 1.0  # 2 of 64 labels per row
model = keras.Sequential(
    [
        keras.Input((feats,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(labels, activation="sigmoid"),
    ]
)
model.compile("adam", "binary_crossentropy", metrics=["binary_accuracy"])
hist = model.fit(
    x, y, epochs=3, batch_size=64, validation_split=0.2, verbose=0, callbacks=bench.callbacks()
)
pred = model.predict(x[-400:], verbose=0) > 0.5
bench.finish(
    ok=float(pred.mean()) < 0.005,
    predicted_positive_share=float(pred.mean()),
    val_binary_accuracy=hist.history["val_binary_accuracy"][-1],
)
