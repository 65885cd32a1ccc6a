"""Hand-written cross-entropy -sum(y * log(softmax)): log(0) turns the loss into NaN

source: https://github.com/jxyyjm/tensorflow_test/issues/3
expect: nan-loss
framework: keras
symptom: after some iterations the training loss becomes NaN
The report: a TensorFlow MNIST classifier with a softmax output y and the loss
-reduce_sum(y_ * log(y)); once a softmax output underflows to exactly 0, log(0) = -inf and
0 * -inf = NaN, and the loss is NaN from then on (fix: log(y + 1e-8) or a clipped y).
Rewritten as a Keras softmax regression on BBC News word counts (5 topics, one-hot labels)
with that loss as a custom loss function (summed over the batch, as in the report), plain
gradient descent.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, words
from keras import ops

bench = Bench(__file__)
VOCAB, K = 5000, 5
data = bbc(lead_only=False)
vocab = build_vocab(data["train"][0], VOCAB)


def counts(texts: list[str]) -> np.ndarray:
    """Word counts per article: dense features of the size of MNIST's pixels."""
    out = np.zeros((len(texts), VOCAB), dtype="float32")
    for row, text in enumerate(texts):
        for w in words(text):
            if w in vocab:
                out[row, vocab[w]] += 1
    return out


x_tr, y_tr = counts(data["train"][0]), np.eye(K)[data["train"][1]]
x_va, y_va = counts(data["val"][0]), np.eye(K)[data["val"][1]]


def cross_entropy(y_true, y_pred):  # the mistake: log of a softmax that can reach 0
    return -ops.sum(y_true * ops.log(y_pred))


model = keras.Sequential(
    [  # softmax regression, as in the report
        keras.Input((VOCAB,)),
        keras.layers.Dense(K, activation="softmax"),
    ]
)
model.compile(optimizer=keras.optimizers.SGD(0.01), loss=cross_entropy, metrics=["accuracy"])
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=10,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
loss = np.array(hist.history["loss"])
nan_epoch = int(np.argmax(~np.isfinite(loss))) if not np.isfinite(loss).all() else -1
bench.finish(
    ok=nan_epoch >= 0,
    loss_nan=nan_epoch >= 0,
    first_nan_epoch=nan_epoch,
    val_accuracy=hist.history["val_accuracy"][-1],
)
