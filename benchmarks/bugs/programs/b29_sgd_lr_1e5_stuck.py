"""SGD with learning rate 0.00001: loss and accuracy stuck from epoch to epoch

source: https://chenzhang.org/notes/developer/loss-and-accuracy-get-stuck-in-keras/
expect: low-learning-rate
framework: keras
symptom: loss 1.9105 / accuracy 0.5378 unchanged every epoch; fixed by raising lr from 1e-5
The report: a Keras Dense/ReLU classifier with categorical_crossentropy whose loss and
accuracy printed the same value every epoch; the first fix listed is raising the learning rate
of SGD(momentum=0.9, nesterov=True) from 0.00001 to 0.1. Rewritten on BBC News (5 topics,
one-hot labels) with an embedding + pooling + Dense(relu) model and that optimizer at 1e-5.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, K = 5000, 64, 5
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr, y_tr = encode(data["train"][0], vocab, SEQ), np.eye(K)[data["train"][1]]
x_va, y_va = encode(data["val"][0], vocab, SEQ), np.eye(K)[data["val"][1]]
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(20, activation="relu"),
        keras.layers.Dense(K, activation="softmax"),
    ]
)
sgd = keras.optimizers.SGD(learning_rate=1e-5, momentum=0.9, nesterov=True)  # the mistake
model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=6,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
loss = hist.history["loss"]
bench.finish(
    ok=abs(loss[0] - loss[-1]) < 0.01,
    first_epoch_loss=loss[0],
    last_epoch_loss=loss[-1],
    val_accuracy=hist.history["val_accuracy"][-1],
)
