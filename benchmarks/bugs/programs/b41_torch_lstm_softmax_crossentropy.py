"""LSTM classifier ending in nn.Softmax, trained with nn.CrossEntropyLoss

source: https://github.com/doronharitan/human_activity_recognition_LRCN/issues/4
expect: double-softmax
framework: torch
symptom: softmax + CrossEntropyLoss; removing the softmax made it converge faster
The report: an LRCN (CNN features + LSTM) activity classifier whose output went through a
Softmax before nn.CrossEntropyLoss; the maintainer confirmed that removing the softmax layer
helped the model converge faster. Rewritten on BBC News (5 topics) with an embedding + LSTM(32)
classifier whose last module is nn.Softmax(dim=1), Adam.
"""

import numpy as np
import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, K, EPOCHS, BATCH = 5000, 48, 5, 4, 32
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr = torch.tensor(encode(data["train"][0], vocab, SEQ))
y_tr = torch.tensor(data["train"][1])
x_va = torch.tensor(encode(data["val"][0], vocab, SEQ))
y_va = torch.tensor(data["val"][1])


class LRCN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32, padding_idx=0)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.fc = nn.Linear(32, K)
        self.softmax = nn.Softmax(dim=1)  # the mistake

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(ids))
        return self.softmax(self.fc(out.mean(1)))


model = LRCN()
loss_fn = nn.CrossEntropyLoss()
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
            val_acc = float((model(x_va).argmax(1) == y_va).float().mean())
floor = float(np.log(1 + (K - 1) / np.e))  # lowest loss a softmax over probabilities allows
last = float(np.mean(losses[-20:]))
bench.finish(ok=last > floor, train_loss=last, loss_floor=floor, val_accuracy=val_acc)
