"""Classifier trained on 15 examples per class: training accuracy 100 %, validation far behind

source: https://github.com/davidsandberg/facenet/issues/956
expect: overfitting
framework: keras
symptom: training accuracy 100 % on ~15 examples per class; the model does not generalise
The report: a softmax classifier trained on the reporter's own data, about 15 examples per
class; training accuracy climbed to 100 % and dropout/flips did not help; the answer: the
dataset is far too small for the network, it overfits. Rewritten on BBC News with 15 training
articles per topic (75 in all, headline + first paragraph) and a wide embedding + pooling +
dense model trained for many epochs, Adam; validation on the usual 426 articles.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, K, PER_CLASS = 5000, 64, 5, 15
data = bbc()
texts, labels = data["train"]
rows = np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(K)])
small = [texts[i] for i in rows]
vocab = build_vocab(small, VOCAB)
x_tr, y_tr = encode(small, vocab, SEQ), labels[rows]
x_va, y_va = encode(data["val"][0], vocab, SEQ), data["val"][1]
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 128),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(K, activation="softmax"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=60,
    batch_size=16,
    shuffle=True,
    callbacks=bench.callbacks(),
    verbose=0,
)
h = hist.history
best = int(np.argmin(h["val_loss"]))
bench.finish(
    ok=h["accuracy"][-1] == 1.0 and h["val_accuracy"][-1] < 0.8,
    train_accuracy=h["accuracy"][-1],
    val_accuracy=h["val_accuracy"][-1],
    train_loss=h["loss"][-1],
    val_loss=h["val_loss"][-1],
    best_val_loss=h["val_loss"][best],
    best_epoch=best,
)
