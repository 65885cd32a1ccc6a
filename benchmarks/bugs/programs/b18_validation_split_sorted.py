"""validation_split takes the last 20% of class-ordered data: one class only

source: https://github.com/keras-team/keras/issues/8346
expect: split-label-shift
framework: keras
symptom: validation accuracy near zero while training accuracy rises
Reported: a VGG-like Keras classifier over 5 classes whose data was ordered by class; fit's
validation_split=0.2 took the last 20% (all of class 5) and trained on the first four, so
validation accuracy stayed at zero (shuffle=True shuffles only after the split). Here: BBC
News leads ordered by topic, an Embedding + pooling classifier, validation_split=0.2.
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
order = np.argsort(yt, kind="stable")  # the data as loaded: class by class
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
    ok=hist.history["val_accuracy"][-1] < 0.2,
    val_accuracy=hist.history["val_accuracy"][-1],
    train_accuracy=hist.history["accuracy"][-1],
    val_classes=str(val_classes),
)
