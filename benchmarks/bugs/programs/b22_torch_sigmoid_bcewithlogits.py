"""Sigmoid output fed to nn.BCEWithLogitsLoss (sigmoid applied twice)

source: https://github.com/yudi-mars/daisyRec/pull/15
expect: double-sigmoid
framework: torch
symptom: "otherwise loss does not converge": a sigmoid before BCEWithLogitsLoss
The report: a PyTorch model that ends in torch.sigmoid and is trained with
nn.BCEWithLogitsLoss, which applies its own sigmoid; the fix removed the model's sigmoid
("otherwise loss does not converge"). The loss then only sees sigmoid(p) in (0.5, 0.73): it
cannot fall below log(1 + e^-1) for positives and log 2 for negatives. Rewritten as a binary
task on BBC News (sport vs the rest) with an embedding-bag model and Adam.
"""

import numpy as np
import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, EPOCHS, BATCH, SPORT = 5000, 64, 6, 32, 3
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr = torch.tensor(encode(data["train"][0], vocab, SEQ))
y_tr = torch.tensor(data["train"][1] == SPORT, dtype=torch.float32)
x_va = torch.tensor(encode(data["val"][0], vocab, SEQ))
y_va = torch.tensor(data["val"][1] == SPORT, dtype=torch.float32)


class Scorer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0)
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(self.embed(ids)))
        return torch.sigmoid(self.out(h)).squeeze(1)  # the mistake: already a probability


model = Scorer()
loss_fn = nn.BCEWithLogitsLoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
losses: list[float] = []
with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        model.train()
        for i in torch.randperm(len(x_tr)).split(BATCH):
            opt.zero_grad()
            loss = loss_fn(model(x_tr[i]), y_tr[i])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(x_va), y_va)
            val_acc = float(((model(x_va) > 0.5).float() == y_va).float().mean())
pos = float(y_tr.mean())
floor = pos * float(np.log1p(np.exp(-1.0))) + (1 - pos) * float(np.log(2.0))
last = float(np.mean(losses[-20:]))
bench.finish(ok=last > floor, train_loss=last, loss_floor=floor, val_accuracy=val_acc)
