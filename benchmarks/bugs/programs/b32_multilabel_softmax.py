"""Multi-label targets trained with a softmax output and categorical_crossentropy

source: https://github.com/keras-team/keras/issues/741
expect: multilabel-softmax
framework: keras
symptom: "my loss is not convergence" (softmax cannot put several labels on)
The report: a Keras multi-label classifier trained as a "multi-label softmax" (softmax output,
categorical_crossentropy, multi-hot targets); the answer: don't use softmax, use sigmoid units
and binary_crossentropy. Rewritten on BBC News with 8 tags per article (topic + three keyword
tags, so many rows carry 2-4 tags) and an embedding + pooling model, Adam.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, encode, words

bench = Bench(__file__)
VOCAB, SEQ, K = 5000, 64, 5
KEYWORDS = ("year", "government", "new")
data = bbc()


def tags(texts: list[str], topics: np.ndarray) -> np.ndarray:
    out = np.zeros((len(texts), K + len(KEYWORDS)), dtype="float32")
    out[np.arange(len(texts)), topics] = 1
    for row, text in enumerate(texts):
        present = set(words(text))
        out[row, K:] = [w in present for w in KEYWORDS]
    return out


vocab = build_vocab(data["train"][0], VOCAB)
x_tr, y_tr = encode(data["train"][0], vocab, SEQ), tags(*data["train"])
x_va, y_va = encode(data["val"][0], vocab, SEQ), tags(*data["val"])
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(y_tr.shape[1], activation="softmax"),  # the mistake
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy")
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=8,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
prob = model.predict(x_va, verbose=0)
multi = y_va.sum(1) > 1
above = (prob > 0.5).sum(1)
recall = float(((prob > 0.5) & (y_va > 0.5)).sum() / y_va.sum())
bench.finish(
    ok=float((above[multi] > 1).mean()) == 0.0,
    train_loss=hist.history["loss"][-1],
    multi_tag_rows=float(multi.mean()),
    label_recall_at_05=recall,
    multi_rows_with_2plus_predicted=float((above[multi] > 1).mean()),
)
