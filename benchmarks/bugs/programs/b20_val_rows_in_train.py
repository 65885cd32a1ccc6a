"""Validation utterances also listed in the training split

source: https://github.com/WeidiXie/VGG-Speaker-Recognition/issues/38
expect: train-val-overlap
framework: keras
symptom: validation accuracy far above what held-out data gives (validation rows were trained on)
Reported: the training split file of VGG-Speaker-Recognition contained the audios of the
validation split (213k of 1.2M training rows were validation rows); validation no longer
measured generalisation. Here: speaker classification from 64-dim utterance embeddings
(60 speakers, noisy), the validation rows copied into the training set.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
speakers, dim = 60, 64
centers = rng.normal(size=(speakers, dim))


def utterances(n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, speakers, n)
    return (centers[y] + rng.normal(scale=2.2, size=(n, dim))).astype("float32"), y


x_train, y_train = utterances(1500)
x_val, y_val = utterances(300)
x_test, y_test = utterances(300)  # truly held out
x_fit = np.concatenate([x_train, x_val])  # the mistake: the training list holds the val rows
y_fit = np.concatenate([y_train, y_val])
model = keras.Sequential(
    [
        keras.Input((dim,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(speakers, activation="softmax"),
    ]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(
    x_fit,
    y_fit,
    epochs=25,
    batch_size=32,
    validation_data=(x_val, y_val),
    verbose=0,
    callbacks=bench.callbacks(),
)
test = model.evaluate(x_test, y_test, verbose=0)[1]
val = hist.history["val_accuracy"][-1]
bench.finish(ok=val - test > 0.2, val_accuracy=val, held_out_accuracy=test)
