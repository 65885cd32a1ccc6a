"""Tiny BERT fine-tune that passes the attention mask (b09 repaired)

source: repaired b09
expect: healthy
framework: torch
symptom: learns (the fault of b09 removed)
The b09 setup with attention_mask = (input_ids != pad).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
vocab = build_vocab(xt, 3000)
SEQ = 48
xt_ids, xv_ids = torch.tensor(encode(xt, vocab, SEQ)), torch.tensor(encode(xv, vocab, SEQ))
yt_t, yv_t = torch.tensor(yt), torch.tensor(yv)
config = BertConfig(
    vocab_size=3000,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=128,
    num_labels=5,
)
model = BertForSequenceClassification(config)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
with bench.torch_watch(model, opt):
    for _epoch in range(3):
        model.train()
        for i in range(0, len(yt), 32):
            opt.zero_grad()
            out = model(
                input_ids=xt_ids[i : i + 32],
                attention_mask=(xt_ids[i : i + 32] != 0).long(),
                labels=yt_t[i : i + 32],
            )
            out.loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=xv_ids, attention_mask=(xv_ids != 0).long()).logits
model.eval()
with torch.no_grad():  # the same texts with 48 more [PAD]: the logits should not move
    longer = torch.cat([xv_ids, torch.zeros_like(xv_ids)], 1)
    shift = (
        (model(input_ids=longer, attention_mask=(longer != 0).long()).logits - logits)
        .abs()
        .max()
        .item()
    )
acc = (logits.argmax(1) == yv_t).float().mean().item()
bench.finish(ok=shift < 1e-3 and acc > 0.5, logit_shift_with_padding=shift, val_accuracy=acc)
