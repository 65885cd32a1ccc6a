"""Hangul text tokenised without NFD: the vocabulary matches (b11 repaired)

source: repaired b11
expect: healthy
framework: torch
symptom: learns (the fault of b11 removed)
The b11 setup with the tokenizer keeping composed syllables (NFC).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import unicodedata  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402


def hangul(text: str) -> str:
    """Each latin word rendered as Hangul syllables (a stand-in for Korean text)."""
    return " ".join("".join(chr(0xAC00 + (ord(c) * 131) % 11172) for c in w) for w in text.split())


data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
xt, xv = [hangul(t.lower()) for t in xt], [hangul(t.lower()) for t in xv]
counts: dict[str, int] = {}
for t in xt:
    for w in t.split():
        counts[w] = counts.get(w, 0) + 1
vocab = {w: i + 2 for i, w in enumerate(sorted(counts, key=counts.get, reverse=True)[:5000])}


def tokenize(text: str, seq: int = 48) -> list[int]:
    text = unicodedata.normalize("NFC", text)
    ids = [vocab.get(w, 1) for w in text.split()][:seq]
    return ids + [0] * (seq - len(ids))


xt_ids = torch.tensor([tokenize(t) for t in xt])
xv_ids = torch.tensor([tokenize(t) for t in xv])
yt_t, yv_t = torch.tensor(yt), torch.tensor(yv)
model = nn.Sequential(nn.EmbeddingBag(5002, 32, mode="mean", padding_idx=0), nn.Linear(32, 5))
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
loss_fn = nn.CrossEntropyLoss()
with bench.torch_watch(model, opt, loss_fn=loss_fn, unk_token_id=1):
    for _epoch in range(4):
        model.train()
        for i in range(0, len(yt), 32):
            opt.zero_grad()
            loss = loss_fn(model(xt_ids[i : i + 32]), yt_t[i : i + 32])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv_ids)
            loss_fn(logits, yv_t)
acc = (logits.argmax(1) == yv_t).float().mean().item()
real = xt_ids[xt_ids != 0]
unk = (real == 1).float().mean().item()
bench.finish(ok=unk < 0.2 and acc > 0.6, unk_share=unk, val_accuracy=acc)
