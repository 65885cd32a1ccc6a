"""BERT classifier that never passes the attention mask (padding attended)

source: https://github.com/BitVoyage/FastBERT/issues/14
expect: missing-attention-mask
framework: torch
symptom: predictions change with the amount of padding: the [PAD] positions are attended
Reported: the FastBERT classifier's forward did not pass the attention mask, so the model
attended to padding during training and gave different results for padded and unpadded
inputs (the reporter: a small accuracy effect). Here: a 1-layer BertForSequenceClassification
on BBC News leads padded to 48 tokens, called with input_ids only.
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
            out = model(input_ids=xt_ids[i : i + 32], labels=yt_t[i : i + 32])  # no attention_mask
            out.loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=xv_ids).logits
model.eval()
with torch.no_grad():  # the same texts with 48 more [PAD]: the logits should not move
    longer = torch.cat([xv_ids, torch.zeros_like(xv_ids)], 1)
    shift = (model(input_ids=longer).logits - logits).abs().max().item()
acc = (logits.argmax(1) == yv_t).float().mean().item()
bench.finish(ok=shift > 1e-3, logit_shift_with_padding=shift, val_accuracy=acc)
