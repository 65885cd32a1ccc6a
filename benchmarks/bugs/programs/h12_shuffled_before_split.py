"""Class-ordered data shuffled before validation_split (b18 repaired)

source: repaired b18
expect: healthy
framework: keras
symptom: learns (the fault of b18 removed)
The b18 setup with the rows permuted before fit, so validation_split draws every class.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

data = bbc()
xt, yt = data["train"]
order = np.random.default_rng(0).permutation(len(yt))
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
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(
    x_sorted,
    y_sorted,
    epochs=10,
    batch_size=32,
    validation_split=0.2,
    verbose=0,
    callbacks=bench.callbacks(),
)
val_classes = np.unique(y_sorted[int(len(y_sorted) * 0.8) :]).tolist()
bench.finish(
    ok=hist.history["val_accuracy"][-1] > 0.6,
    val_accuracy=hist.history["val_accuracy"][-1],
    train_accuracy=hist.history["accuracy"][-1],
    val_classes=str(val_classes),
)
