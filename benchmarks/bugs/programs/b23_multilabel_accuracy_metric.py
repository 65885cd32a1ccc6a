"""Multi-label model compiled with metrics=["accuracy"] (an argmax accuracy on multi-hot labels)

source: https://github.com/suraj-deshmukh/Keras-Multi-Label-Image-Classification/issues/1
expect: metric-mismatch
framework: keras
symptom: the reported "accuracy" is argmax-based, not the per-label accuracy the task needs
The report: a Keras multi-label classifier (sigmoid outputs, binary_crossentropy, multi-hot
targets) compiled with metrics=["accuracy"]; the issue points out that Keras turns that string
into a categorical accuracy (argmax of the labels vs argmax of the outputs), which means
nothing when several labels are on. Rewritten on BBC News with 8 tags per article (its topic
plus three keyword tags) and an embedding + pooling model, Adam.
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
        keras.layers.Dense(y_tr.shape[1], activation="sigmoid"),
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=8,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
pred = model.predict(x_va, verbose=0) > 0.5
reported = hist.history["val_accuracy"][-1]
per_label = float((pred == (y_va > 0.5)).mean())
exact = float((pred == (y_va > 0.5)).all(axis=1).mean())
bench.finish(
    ok=abs(reported - per_label) > 0.1,
    reported_val_accuracy=reported,
    per_label_accuracy=per_label,
    exact_match=exact,
    multi_label_rows=float((y_va.sum(1) > 1).mean()),
)
