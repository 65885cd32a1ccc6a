"""LSTM with activation="relu" over long sequences: the loss is NaN

source: https://github.com/keras-team/keras/issues/2194
expect: exploding-gradients
framework: keras
symptom: NaN loss (and accuracy) in every epoch with an LSTM using ReLU activations on long inputs
The report: a Keras sequence model whose LSTM layer used activation="relu" over inputs up to
1,019 time steps, trained with categorical_crossentropy and Adam; the loss was NaN for all
epochs. With an unbounded activation inside the recurrence the cell values and the gradients
grow with the number of steps until they overflow. Rewritten on BBC News (5 topics, full
articles, 300 tokens) with embedding + LSTM(64, activation="relu") + softmax, Adam.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, K = 5000, 300, 5
data = bbc(lead_only=False)
vocab = build_vocab(data["train"][0], VOCAB)
x_tr, y_tr = encode(data["train"][0], vocab, SEQ), np.eye(K)[data["train"][1]]
x_va, y_va = encode(data["val"][0], vocab, SEQ), np.eye(K)[data["val"][1]]
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 32),
        keras.layers.LSTM(64, activation="relu"),  # the mistake: unbounded recurrence
        keras.layers.Dropout(0.2),
        keras.layers.Dense(K, activation="softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=2,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
loss = np.array(hist.history["loss"])
bench.finish(
    ok=not np.isfinite(loss).all(),
    loss_nan=bool(not np.isfinite(loss).all()),
    epoch_losses=" ".join(f"{v:.3g}" for v in loss),
    val_accuracy=hist.history["val_accuracy"][-1],
)
