"""BERT classifier fine-tuned with learning rate 0.01: the same probabilities for every input

source: https://github.com/google-research/bert/issues/688
expect: high-learning-rate
framework: keras
symptom: every test example gets the same label probabilities (0.25 for label 0, 0.017 for label 1...)
The report: a BERT multi-class classifier (32 labels) trained for one epoch with learning rate
0.01; every test row received identical probabilities, and the suggested cause was the
learning rate (BERT is fine-tuned at 2e-5..5e-5). Rewritten with a 1-layer KerasHub
BertBackbone (hidden 32, randomly initialised: no weights offline) on BBC News (5 topics),
Adam at 0.01.
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
backbone = keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=1, num_heads=2,
                                         hidden_dim=32, intermediate_dim=64,
                                         max_sequence_length=SEQ)
pooled = backbone(backbone.input)["pooled_output"]
out = keras.layers.Dense(K, activation="softmax")(keras.layers.Dropout(0.1)(pooled))
model = keras.Model(backbone.input, out)
model.compile(optimizer=keras.optimizers.Adam(0.01),  # the mistake: 0.01 for a BERT encoder
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=3, batch_size=32,
                 callbacks=bench.callbacks(), verbose=0)
prob = model.predict(x_va, verbose=0)
pred = prob.argmax(1)
bench.finish(ok=float(np.bincount(pred, minlength=K).max() / len(pred)) > 0.8,
             val_accuracy=hist.history["val_accuracy"][-1],
             top_class_share=float(np.bincount(pred, minlength=K).max() / len(pred)),
             prob_spread=float(prob.std(axis=0).mean()))
