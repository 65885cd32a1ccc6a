"""PyTorch training step without optimizer.zero_grad() (gradients accumulate over steps)

source: https://github.com/fchollet/deep-learning-with-python-notebooks/issues/293
expect: grads-not-zeroed
framework: torch
symptom: "need to self.zero_grad(), or else the results are terrible" (gradients summed)
The report: the PyTorch-backend version of a custom train_step (chapter 7: a dense
classifier, RMSprop) computes the loss, calls backward and steps the optimizer but never
zeroes the gradients, so every step applies the sum of all past gradients. Rewritten as a
plain PyTorch loop on BBC News (5 topics): embedding-bag + dense layers, RMSprop.
"""

import numpy as np
import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, K, EPOCHS, BATCH = 5000, 64, 5, 5, 32
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr = torch.tensor(encode(data["train"][0], vocab, SEQ))
y_tr = torch.tensor(data["train"][1])
x_va = torch.tensor(encode(data["val"][0], vocab, SEQ))
y_va = torch.tensor(data["val"][1])

model = nn.Sequential(
    nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0),
    nn.Linear(64, 64),
    nn.ReLU(),
    nn.Linear(64, K),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
losses: list[float] = []
with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        model.train()
        for i in torch.randperm(len(x_tr)).split(BATCH):
            loss = loss_fn(model(x_tr[i]), y_tr[i])  # the mistake: no opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(x_va), y_va)
            val_pred = model(x_va).argmax(1)
val_acc = float((val_pred == y_va).float().mean())


def grad_norm() -> float:
    return float(torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())))


applied = grad_norm()  # what the last step applied: the sum of every batch's gradient so far
opt.zero_grad()
loss_fn(model(x_tr[:BATCH]), y_tr[:BATCH]).backward()
fresh = grad_norm()  # one batch's own gradient
bench.finish(
    ok=applied > 10 * fresh,
    applied_grad_norm=applied,
    batch_grad_norm=fresh,
    val_accuracy=val_acc,
    train_loss_last=float(np.mean(losses[-20:])),
)
