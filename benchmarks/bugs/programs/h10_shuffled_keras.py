"""Topic-sorted texts shuffled by fit (b12 repaired)

source: repaired b12
expect: healthy
framework: keras
symptom: learns (the fault of b12 removed)
The b12 setup (Adam, 5 epochs) with fit(shuffle=True).
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
order = np.argsort(yt, kind="stable")  # the file as reported: grouped by label
vocab = build_vocab(xt, 5000)
x_sorted, y_sorted = encode(xt, vocab, 48)[order], yt[order]
model = keras.Sequential(
    [
        keras.Input((48,), dtype="int32"),
        keras.layers.Embedding(5000, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(5, activation="softmax"),
    ]
)
model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(
    x_sorted,
    y_sorted,
    epochs=5,
    batch_size=32,
    shuffle=True,
    verbose=0,
    validation_data=(encode(xv, vocab, 48), yv),
    callbacks=bench.callbacks(),
)
pred = model.predict(encode(xv, vocab, 48), verbose=0).argmax(1)
share = float(np.bincount(pred, minlength=5).max() / len(pred))
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc > 0.6, val_accuracy=acc, top_class_share=share)
