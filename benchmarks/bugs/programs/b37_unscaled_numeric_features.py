"""MLP on raw, unscaled numerical features: the sigmoid saturates and the loss stays near 7

source: https://github.com/keras-team/keras/issues/4171
expect: saturated-logits
framework: keras
symptom: binary cross-entropy stuck at ~7.17 (val 6.94) epoch after epoch
The report: a Keras MLP (Dense 1024 + PReLU, Dense 512 + PReLU, Dense 1 + sigmoid,
binary_crossentropy, Adam) on a table of numerical features fed as they were; the loss sat at
~7 from the first epoch on: the pre-sigmoid values are huge, the outputs are pinned at 0 or 1
and the clipped cross-entropy is about 16 per wrong row. Rewritten on BBC News articles
described by raw counts (characters, words, each letter, digits: values in the hundreds to
thousands), target sport vs the rest, the same layers and optimizer.
"""

import string

import keras
import numpy as np
from common import Bench, bbc

bench = Bench(__file__)
SPORT = 3
data = bbc(lead_only=False)


def features(texts: list[str]) -> np.ndarray:
    """Raw counts per article, not scaled (the mistake)."""
    rows = []
    for text in texts:
        low = text.lower()
        rows.append(
            [len(text), len(text.split()), sum(c.isdigit() for c in text)]
            + [low.count(c) for c in string.ascii_lowercase]
        )
    return np.array(rows, dtype="float32")


x_tr, y_tr = features(data["train"][0]), (data["train"][1] == SPORT).astype("float32")
x_va, y_va = features(data["val"][0]), (data["val"][1] == SPORT).astype("float32")
model = keras.Sequential(
    [
        keras.Input((x_tr.shape[1],)),
        keras.layers.Dense(1024),
        keras.layers.PReLU(),
        keras.layers.Dense(512),
        keras.layers.PReLU(),
        keras.layers.Dense(1),
        keras.layers.Activation("sigmoid"),
    ]
)
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=5,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
prob = model.predict(x_va, verbose=0)[:, 0]
pinned = float(((prob < 1e-4) | (prob > 1 - 1e-4)).mean())
bench.finish(
    ok=hist.history["val_loss"][-1] > 3.0,
    train_loss=hist.history["loss"][-1],
    val_loss=hist.history["val_loss"][-1],
    pinned_output_share=pinned,
    val_accuracy=hist.history["val_accuracy"][-1],
    max_feature=float(x_tr.max()),
)
