"""Binary classifier with one sigmoid unit and binary cross-entropy (healthy)

source: keras-io text_classification_from_scratch
expect: healthy
framework: keras
symptom: learns: validation accuracy well above the majority share
The keras-io binary recipe (IMDB sentiment there): Embedding, pooling, a hidden Dense layer
and Dense(1, sigmoid) with binary_crossentropy on 0/1 labels. Here the binary question is
"is this BBC article about sport?".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
vocab = build_vocab(xt, 5000)
bt, bv = (yt == 3).astype("float32"), (yv == 3).astype("float32")
model = keras.Sequential(
    [
        keras.Input((48,), dtype="int32"),
        keras.layers.Embedding(5000, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
hist = model.fit(
    encode(xt, vocab, 48),
    bt,
    validation_data=(encode(xv, vocab, 48), bv),
    epochs=12,
    batch_size=32,
    verbose=0,
    callbacks=bench.callbacks(),
)
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc > 0.85, val_accuracy=acc, majority_share=float(1 - bv.mean()))
