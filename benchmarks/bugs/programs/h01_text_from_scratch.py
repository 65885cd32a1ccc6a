"""Text classification from scratch: TextVectorization + Embedding + pooling (healthy)

source: keras-io text_classification_from_scratch
expect: healthy
framework: keras
symptom: learns: validation accuracy well above chance (5 topics)
The keras-io recipe on BBC News leads: a TextVectorization layer adapted on the training
texts, an Embedding, a 1-D convolution, global max pooling and a softmax over the topics,
trained with Adam and sparse categorical cross-entropy on integer labels.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc  # noqa: E402

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
vectorize = keras.layers.TextVectorization(max_tokens=5000, output_sequence_length=64)
vectorize.adapt(xt)
xt_ids, xv_ids = np.asarray(vectorize(xt)), np.asarray(vectorize(xv))
model = keras.Sequential(
    [
        keras.Input((64,), dtype="int32"),
        keras.layers.Embedding(5000, 32),
        keras.layers.Conv1D(32, 5, activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(5, activation="softmax"),
    ]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(
    xt_ids,
    yt,
    validation_data=(xv_ids, yv),
    epochs=4,
    batch_size=32,
    verbose=0,
    callbacks=bench.callbacks(),
)
acc = hist.history["val_accuracy"][-1]
bench.finish(ok=acc > 0.6, val_accuracy=acc)
