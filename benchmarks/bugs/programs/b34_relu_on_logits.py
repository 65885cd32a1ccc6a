"""ReLU applied to the final logits (fc8 + relu) before the softmax cross-entropy

source: https://github.com/WeiTang114/MVCNN-TensorFlow/issues/14
expect: dead-gradients
framework: keras
symptom: every input classified as class 0 (random-guess accuracy); removing the relu fixed it
The report: an AlexNet-based multi-view CNN whose last fully connected layer (fc8, the logits)
was followed by a ReLU before softmax cross-entropy; training got stuck predicting class 0, and
removing that ReLU fixed it. Logits clamped at 0 give no gradient once they go negative.
Rewritten on BBC News (5 topics): embedding + pooling + dense layers whose output Dense has
activation="relu", loss SparseCategoricalCrossentropy(from_logits=True), Adam.
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
        keras.layers.Dense(K, activation="relu"),  # the mistake: "fc8" followed by a relu
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
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
logits = model.predict(x_va, verbose=0)
pred = logits.argmax(1)
bench.finish(
    ok=float((logits == 0).mean()) > 0.3,
    val_accuracy=hist.history["val_accuracy"][-1],
    top_class_share=float(np.bincount(pred, minlength=K).max() / len(pred)),
    zero_logit_share=float((logits == 0).mean()),
)
