"""BERT encoder frozen (trainable=False): only the classifier head trains, accuracy 0.15

source: https://github.com/CyberZHG/keras-bert/issues/108
expect: frozen-layers
framework: keras
symptom: BERT layers frozen: accuracy 0.15 after one epoch instead of 0.89
The report: a keras-bert text classifier; with every BERT layer trainable the accuracy after
one epoch was 0.89, with the BERT model frozen (only the head's 283,890 parameters trainable)
it was 0.15. Rewritten with a 1-layer KerasHub BertBackbone (hidden 32; randomly initialised,
no weights offline) set trainable=False under a Dense head, on BBC News (5 topics), Adam.
"""

import keras
import keras_hub
import numpy as np
from common import PAD, Bench, bbc, build_vocab, encode

bench = Bench(__file__)
VOCAB, SEQ, K = 5000, 64, 5
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)


def inputs(texts: list[str]) -> dict[str, np.ndarray]:
    ids = encode(texts, vocab, SEQ)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": ids != PAD}


x_tr, y_tr = inputs(data["train"][0]), data["train"][1]
x_va, y_va = inputs(data["val"][0]), data["val"][1]
backbone = keras_hub.models.BertBackbone(
    vocabulary_size=VOCAB,
    num_layers=1,
    num_heads=2,
    hidden_dim=32,
    intermediate_dim=64,
    max_sequence_length=SEQ,
)
backbone.trainable = False  # the mistake: the whole encoder is frozen
pooled = backbone(backbone.input)["pooled_output"]
out = keras.layers.Dense(K, activation="softmax")(pooled)
model = keras.Model(backbone.input, out)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
total = int(model.count_params())
hist = model.fit(
    x_tr,
    y_tr,
    validation_data=(x_va, y_va),
    epochs=3,
    batch_size=32,
    callbacks=bench.callbacks(),
    verbose=0,
)
bench.finish(
    ok=hist.history["val_accuracy"][-1] < 0.5,
    val_accuracy=hist.history["val_accuracy"][-1],
    trainable_params=trainable,
    total_params=total,
)
