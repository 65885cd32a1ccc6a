"""Deep stack of tanh layers: model.predict() gives the same output for every input

source: https://github.com/keras-team/keras/issues/6447
expect: vanishing-gradients
framework: keras
symptom: model.predict() gives the same output for all inputs; tanh -> relu fixed it
The report thread: Keras classifiers predicting one constant output whatever the input; one
answer traced it to saturating tanh hidden layers (switching them to relu solved it) and
attributed it to vanishing gradients. Rewritten on BBC News (5 topics): embedding + pooling
followed by ten Dense(64, tanh) layers and a softmax, SGD.
"""

import keras
import numpy as np
from common import Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, K, DEPTH = 5000, 64, 5, 10
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr, y_tr = encode(data["train"][0], vocab, SEQ), data["train"][1]
x_va, y_va = encode(data["val"][0], vocab, SEQ), data["val"][1]
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 64),
        keras.layers.GlobalAveragePooling1D(),
    ]
    + [keras.layers.Dense(64, activation="tanh") for _ in range(DEPTH)]  # the mistake
    + [keras.layers.Dense(K, activation="softmax")]
)
model.compile(
    optimizer=keras.optimizers.SGD(0.01),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=5,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
prob = model.predict(x_va, verbose=0)
pred = prob.argmax(1)
bench.finish(
    ok=float(prob.std(axis=0).mean()) < 0.02,
    val_accuracy=hist.history["val_accuracy"][-1],
    top_class_share=float(np.bincount(pred, minlength=K).max() / len(pred)),
    output_spread=float(prob.std(axis=0).mean()),
)
