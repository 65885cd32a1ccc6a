"""Softmax layer in the model, then nn.CrossEntropyLoss (softmax applied twice)

source: https://github.com/sugi-chan/custom_bert_pipeline/issues/1
expect: double-softmax
framework: torch
symptom: softmax output fed to nn.CrossEntropyLoss (a second softmax); the model trains poorly
The report: a custom PyTorch BERT classification pipeline whose model returns
nn.Softmax(dim=1)(logits) and whose loop trains it with nn.CrossEntropyLoss, which already
contains a log-softmax. The loss then sees probabilities as logits: it cannot fall below
log(1 + (K-1)/e) and its gradients shrink. Rewritten on BBC News (5 topics) with a small
embedding-bag encoder in place of BERT, Adam.
"""

import numpy as np
import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, K, EPOCHS, BATCH = 5000, 64, 5, 6, 32
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr = torch.tensor(encode(data["train"][0], vocab, SEQ))
y_tr = torch.tensor(data["train"][1])
x_va = torch.tensor(encode(data["val"][0], vocab, SEQ))
y_va = torch.tensor(data["val"][1])


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0)
        self.hidden = nn.Linear(64, 64)
        self.out = nn.Linear(64, K)
        self.softmax = nn.Softmax(dim=1)  # the mistake: probabilities leave the model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.out(torch.relu(self.hidden(self.embed(ids)))))


model = Classifier()
loss_fn = nn.CrossEntropyLoss()  # ... and get a second (log-)softmax here
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
            val_acc = float((model(x_va).argmax(1) == y_va).float().mean())
floor = float(np.log(1 + (K - 1) / np.e))  # lowest loss a softmax over probabilities allows
last = float(np.mean(losses[-20:]))
bench.finish(ok=last > floor, train_loss=last, loss_floor=floor, val_accuracy=val_acc)
