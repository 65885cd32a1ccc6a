"""Validation computed without model.eval(): dropout stays on while measuring

source: https://github.com/udacity/deep-learning-v2-pytorch/issues/3
expect: validation-train-mode
framework: torch
symptom: the validation loss / accuracy printed each epoch is measured with dropout active
The report: a PyTorch MLP with dropout layers (the course's MNIST MLP with validation) whose
validation pass runs under torch.no_grad() but never calls model.eval() (nor model.train()
afterwards), so the reported validation numbers are those of a randomly thinned network.
Rewritten on BBC News (5 topics): embedding-bag + two hidden layers with dropout 0.2, SGD.
"""

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

model = nn.Sequential(
    nn.EmbeddingBag(VOCAB, 128, mode="mean", padding_idx=0),
    nn.Linear(128, 128),
    nn.ReLU(),
    nn.Dropout(0.2),
    nn.Linear(128, 128),
    nn.ReLU(),
    nn.Dropout(0.2),
    nn.Linear(128, K),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        for i in torch.randperm(len(x_tr)).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_tr[i]), y_tr[i]).backward()
            opt.step()
        with torch.no_grad():  # the mistake: no model.eval() before validating
            out = model(x_va)
            reported_loss = float(loss_fn(out, y_va))
            reported_acc = float((out.argmax(1) == y_va).float().mean())
model.eval()
with torch.no_grad():
    out = model(x_va)
    true_loss = float(loss_fn(out, y_va))
    true_acc = float((out.argmax(1) == y_va).float().mean())
bench.finish(
    ok=abs(reported_loss - true_loss) > 0.01,
    reported_val_loss=reported_loss,
    eval_mode_val_loss=true_loss,
    reported_val_accuracy=reported_acc,
    eval_mode_val_accuracy=true_acc,
)
