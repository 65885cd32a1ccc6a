"""BERT classifier built with fewer labels than the data holds

source: https://github.com/ThilinaRajapakse/simpletransformers/issues/748
expect: label-out-of-range
framework: torch
symptom: IndexError: Target 13 is out of bounds (the output has fewer units than classes)
Reported: fine-tuning a BERT sequence classifier on 430k texts in 23 balanced classes; the
model's output layer had fewer labels than the dataset's classes, and the loss raised
"Target 13 is out of bounds" on CPU (a device-side assert on CUDA). Here: a 1-layer
BertForSequenceClassification (hidden 32) with num_labels=12 over 23 synthetic classes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

rng = np.random.default_rng(0)
n, classes, seq, vocab = 460, 23, 24, 500
y = rng.integers(0, classes, n)
ids = rng.integers(5, vocab, (n, seq))
ids[:, 1] = 100 + y  # a class-specific token
ids[:, 0] = 2
lengths = rng.integers(14, seq + 1, n)  # texts of varied length, [SEP] then padding
ids[np.arange(seq)[None, :] >= lengths[:, None]] = 0
ids[np.arange(n), lengths - 1] = 3
mask = torch.tensor((ids != 0).astype("int64"))
config = BertConfig(
    vocab_size=vocab,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=12,
)
model = BertForSequenceClassification(config)  # the mistake: 12 labels, 23 classes in the data
opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
x, t = torch.tensor(ids), torch.tensor(y)
with bench.expect_error():
    with bench.torch_watch(model, opt):
        model.train()
        for i in range(0, n, 16):
            opt.zero_grad()
            out = model(
                input_ids=x[i : i + 16], attention_mask=mask[i : i + 16], labels=t[i : i + 16]
            )
            out.loss.backward()
            opt.step()
bench.finish(ok=bench.error is not None, error=(bench.error or {}).get("type", "none"))
