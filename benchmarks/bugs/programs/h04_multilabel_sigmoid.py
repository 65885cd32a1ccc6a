"""Multi-label classifier: sigmoid outputs with binary cross-entropy (healthy)

source: keras-io multi_label_classification
expect: healthy
framework: keras
symptom: learns: every label predicted, micro-F1 well above 0
The keras-io multi-label recipe (arXiv subject tags there): a multi-hot target, one sigmoid
per label and binary_crossentropy. Here 3 overlapping tags over BBC articles:
"economy" (business, politics), "leisure" (entertainment, sport), "technology-or-policy"
(tech, politics); an article carries one or two of them.
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
tags = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1]], "float32")
vocab = build_vocab(xt, 5000)
model = keras.Sequential(
    [
        keras.Input((48,), dtype="int32"),
        keras.layers.Embedding(5000, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(3, activation="sigmoid"),
    ]
)
model.compile("adam", "binary_crossentropy", metrics=["binary_accuracy"])
model.fit(
    encode(xt, vocab, 48),
    tags[yt],
    validation_data=(encode(xv, vocab, 48), tags[yv]),
    epochs=15,
    batch_size=32,
    verbose=0,
    callbacks=bench.callbacks(),
)
pred = model.predict(encode(xv, vocab, 48), verbose=0) > 0.5
true = tags[yv] > 0.5
f1 = 2 * (pred & true).sum() / (pred.sum() + true.sum())
bench.finish(ok=f1 > 0.6, micro_f1=float(f1), labels_predicted=int(pred.any(0).sum()))
