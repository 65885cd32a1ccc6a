"""Linear (logit) outputs with sparse_categorical_crossentropy left at from_logits=False

source: https://github.com/xiph/LPCNet/issues/97
expect: logits-as-probabilities
framework: keras
symptom: logits clipped to [eps, 1-eps] and logged by the loss instead of a log-softmax
The report: the model's output layer produces logits, yet it is compiled with
sparse_categorical_crossentropy without from_logits=True, so the loss clips the raw scores to
[epsilon, 1 - epsilon] and takes their log. Rewritten on BBC News (5 topics) with an
embedding + pooling model ending in Dense(5) with no activation, Adam.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, K = 5000, 64, 5
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr, y_tr = encode(data["train"][0], vocab, SEQ), data["train"][1]
x_va, y_va = encode(data["val"][0], vocab, SEQ), data["val"][1]
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(K),  # logits
    ]
)
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",  # the mistake
    metrics=["accuracy"],
)
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=6,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
loss = np.array(hist.history["loss"])
bench.finish(
    ok=(not np.isfinite(loss).all()) or hist.history["val_accuracy"][-1] < 0.6,
    val_accuracy=hist.history["val_accuracy"][-1],
    loss_last=float(loss[-1]),
    loss_nan=bool(not np.isfinite(loss).all()),
)
