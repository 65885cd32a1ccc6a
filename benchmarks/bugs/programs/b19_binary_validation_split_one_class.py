"""Binary labels in order: validation_split gets a single class

source: https://github.com/keras-team/keras/issues/796
expect: split-label-shift
framework: keras
symptom: the validation set holds only one class, validation accuracy is 0 or 1
Reported: fit(validation_split=...) on data ordered by label gave a validation set made of
one class only, so validation accuracy was either 0 or 1; the answer was a stratified split
passed as validation_data. Here: BBC News leads as "sport or not", negatives first, an
Embedding + pooling classifier with a sigmoid output, validation_split=0.2.
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
yt = (yt == 3).astype("int64")  # sport or not
order = np.argsort(yt, kind="stable")  # the data as loaded: negatives, then positives
vocab = build_vocab(xt, 5000)
x_sorted, y_sorted = encode(xt, vocab, 48)[order], yt[order]
model = keras.Sequential(
    [
        keras.Input((48,), dtype="int32"),
        keras.layers.Embedding(5000, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
hist = model.fit(
    x_sorted,
    y_sorted,
    epochs=4,
    batch_size=32,
    validation_split=0.2,
    verbose=0,
    callbacks=bench.callbacks(),
)
val_classes = np.unique(y_sorted[int(len(y_sorted) * 0.8) :]).tolist()
bench.finish(
    ok=len(val_classes) == 1,
    val_accuracy=hist.history["val_accuracy"][-1],
    train_accuracy=hist.history["accuracy"][-1],
    val_classes=str(val_classes),
)
