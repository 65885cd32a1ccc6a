"""Binary classifier with Dense(1, activation="softmax") and binary_crossentropy

source: https://github.com/AyanKumarBhunia/Deep-One-Shot-Logo-Retrieval/issues/7
expect: loss-activation-mismatch
framework: keras
symptom: no good results with the softmax; with a sigmoid, validation accuracy 98 %
The report: a binary (one output channel) model trained with binary cross-entropy whose final
activation was a softmax (as written in the paper); the authors answered that it must be a
sigmoid. A softmax over a single unit is 1.0 for every input, so nothing is learned.
Rewritten as a binary BBC News classifier (sport vs the rest), embedding + pooling model, Adam.
"""

import keras
from common import Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, SPORT = 5000, 64, 3
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr, y_tr = encode(data["train"][0], vocab, SEQ), (data["train"][1] == SPORT).astype("float32")
x_va, y_va = encode(data["val"][0], vocab, SEQ), (data["val"][1] == SPORT).astype("float32")
model = keras.Sequential(
    [
        keras.Input((SEQ,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="softmax"),  # the mistake: softmax over one unit
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
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
bench.finish(
    ok=float(prob.min()) > 0.999,
    val_accuracy=hist.history["val_accuracy"][-1],
    positive_share=float(y_va.mean()),
    output_min=float(prob.min()),
    train_loss=hist.history["loss"][-1],
)
