"""Special tokens added to the tokenizer, embeddings not resized

source: https://github.com/mickeysjm/R-BERT/issues/5
expect: token-id-out-of-range
framework: torch
symptom: IndexError: index out of range in self (embedding lookup)
Reported: R-BERT relation classification adds entity-marker special tokens to the BERT
tokenizer; without model.resize_token_embeddings(len(tokenizer)) the new ids are past the
embedding matrix and the lookup fails (on CPU; GPU runs did not fail visibly). Here: a
1-layer BertForSequenceClassification whose inputs carry 4 marker ids = vocab_size..+3.
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
n, vocab, seq = 400, 600, 24
y = rng.integers(0, 4, n)
ids = rng.integers(5, vocab, (n, seq))
ids[:, 2] = 100 + y
ids[:, 0] = 2
lengths = rng.integers(14, seq + 1, n)  # texts of varied length, [SEP] then padding
ids[np.arange(seq)[None, :] >= lengths[:, None]] = 0
ids[np.arange(n), lengths - 1] = 3
mask = torch.tensor((ids != 0).astype("int64"))
markers = np.arange(vocab, vocab + 4)  # ids the tokenizer gave the added [E1] [/E1] [E2] [/E2]
ids[:, 4], ids[:, 6], ids[:, 9], ids[:, 11] = markers
config = BertConfig(
    vocab_size=vocab,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=4,
)
model = BertForSequenceClassification(config)  # the mistake: no resize_token_embeddings
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
