"""Multi-label classifier over hundreds of sparse labels predicts only zeros

source: https://github.com/appvision-ai/fast-bert/issues/52
expect: multilabel-collapse
framework: torch
symptom: with 500+ labels the model predicts 0 for every label of every row
The report: a BERT multi-label classifier (fast-bert: BCEWithLogitsLoss, one output per label,
threshold 0.5) over more than 500 sparse labels; after training every prediction was 0 (the
thread: the negatives outnumber the positives so much that "always off" wins; pos_weight was
suggested). Rewritten on BBC News with 300 word tags per article (a tag is on when the article
uses that word; most tags are rare), an embedding-bag encoder, BCEWithLogitsLoss, Adam.
"""

import numpy as np
import torch
from common import Bench, bbc, build_vocab, encode, words
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, TAGS, EPOCHS, BATCH = 5000, 64, 300, 6, 32
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
tag_words = [w for w, i in sorted(vocab.items(), key=lambda kv: kv[1])][200 : 200 + TAGS]


def tags(texts: list[str]) -> torch.Tensor:
    out = np.zeros((len(texts), TAGS), dtype="float32")
    for row, text in enumerate(texts):
        present = set(words(text))
        out[row] = [w in present for w in tag_words]
    return torch.tensor(out)


x_tr, y_tr = torch.tensor(encode(data["train"][0], vocab, SEQ)), tags(data["train"][0])
x_va, y_va = torch.tensor(encode(data["val"][0], vocab, SEQ)), tags(data["val"][0])
model = nn.Sequential(
    nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0),
    nn.Linear(64, 128),
    nn.ReLU(),
    nn.Linear(128, TAGS),
)
loss_fn = nn.BCEWithLogitsLoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        model.train()
        for i in torch.randperm(len(x_tr)).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_tr[i]), y_tr[i]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(x_va), y_va))
            on = model(x_va) > 0
on_share = float(on.float().mean())
recall = float((on & (y_va > 0)).sum() / y_va.sum())
bench.finish(
    ok=on_share < 0.001,
    predicted_on_share=on_share,
    true_on_share=float(y_va.mean()),
    label_recall=recall,
    val_loss=val_loss,
)
