"""Test accuracy computed with the BatchNorm/dropout model left in train mode

source: https://github.com/sinhasam/vaal/issues/2
expect: validation-train-mode
framework: torch
symptom: the test function never puts the task model (vgg16_bn: batch norm, dropout) in eval mode
The report: an active-learning codebase scores its task model (vgg16_bn: batch norm and
dropout) on the test set without task_model.eval(); the authors agreed and added the call.
In train mode the test batches use their own batch statistics, update the running ones, and
dropout stays on. Rewritten on BBC News (5 topics): embedding bag + Linear/BatchNorm1d/ReLU/
Dropout blocks, Adam, validation in batches of 64 under torch.no_grad() only.
"""

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
    nn.Linear(64, 128),
    nn.BatchNorm1d(128),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(128, 128),
    nn.BatchNorm1d(128),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(128, K),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def test() -> tuple[float, float]:
    correct, total = 0.0, 0.0
    with torch.no_grad():  # the mistake: no model.eval()
        for i in torch.arange(len(x_va)).split(64):
            out = model(x_va[i])
            total += float(loss_fn(out, y_va[i])) * len(i)
            correct += float((out.argmax(1) == y_va[i]).sum())
    return total / len(x_va), correct / len(x_va)


with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        model.train()
        for i in torch.randperm(len(x_tr)).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_tr[i]), y_tr[i]).backward()
            opt.step()
        reported_loss, reported_acc = test()
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
