"""Training texts grouped by label and never shuffled

source: https://github.com/facebookresearch/fastText/issues/74
expect: unshuffled-batches
framework: keras
symptom: low precision and recall unless the input lines are shuffled
Reported: a fastText classifier trained on a file whose lines were clustered by label (all
of label a, then all of b...); SGD sees one class at a time and the model ends up poor.
Here: BBC News leads sorted by topic, an Embedding + average-pooling classifier (the
fastText architecture; Adam instead of its SGD, to fit in 5 epochs), fit with shuffle=False.
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
    shuffle=False,
    verbose=0,
    validation_data=(encode(xv, vocab, 48), yv),
    callbacks=bench.callbacks(),
)
pred = model.predict(encode(xv, vocab, 48), verbose=0).argmax(1)
share = float(np.bincount(pred, minlength=5).max() / len(pred))
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc < 0.5, val_accuracy=acc, top_class_share=share)
