"""Embedding input_dim equal to the vocabulary size while ids run 1..vocab

source: https://github.com/tensorflow/tensorflow/issues/38619
expect: token-id-out-of-range
framework: keras
symptom: InvalidArgumentError: indices[..] = 85525 is not in [0, 85525)
Reported: a Keras text classifier whose Embedding had input_dim = vocabulary size (85525)
while the tokenizer's word index runs from 1 to that size; the largest id is out of range
(the fix: input_dim = vocab + 1). Here: BBC News leads with a 1-based word index over all
training words, and Embedding(input_dim=len(word_index)).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import keras  # noqa: E402

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
vocab = build_vocab(xt, 10**6)  # every training word, ids 2..len+1 (0 pad, 1 unknown)
size = len(vocab) + 1  # the mistake: the largest id is len(vocab)+1, input_dim must exceed it
model = keras.Sequential(
    [
        keras.Input((48,), dtype="int32"),
        keras.layers.Embedding(size, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(5, activation="softmax"),
    ]
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
with bench.expect_error():
    model.fit(
        encode(xt, vocab, 48),
        yt,
        epochs=2,
        batch_size=32,
        verbose=0,
        validation_data=(encode(xv, vocab, 48), yv),
        callbacks=bench.callbacks(),
    )
bench.finish(ok=bench.error is not None, error=(bench.error or {}).get("type", "none"))
