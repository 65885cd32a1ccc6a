"""Network replaced after the optimizer was made: training runs with the old network's optimizer

source: https://github.com/pytorch/pytorch/issues/54765
expect: params-not-in-optimizer
framework: torch
symptom: runs without error, but the optimizer holds only the first network's parameters
The report: net1 = Net(); optimizer = optim.Adam(net1.parameters(), lr=3e-2); later
net1 = Net2() (another structure) and training goes on with the same optimizer; it runs with no
error, and the answer is that the optimizer knows nothing of the new net's parameters.
Rewritten on BBC News (5 topics) with two small embedding-bag classifiers, Adam at 3e-2.
"""

import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, K, EPOCHS, BATCH = 5000, 64, 5, 4, 32
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr = torch.tensor(encode(data["train"][0], vocab, SEQ))
y_tr = torch.tensor(data["train"][1])
x_va = torch.tensor(encode(data["val"][0], vocab, SEQ))
y_va = torch.tensor(data["val"][1])


def net(width: int) -> nn.Module:
    return nn.Sequential(
        nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0),
        nn.Linear(64, width),
        nn.ReLU(),
        nn.Linear(width, K),
    )


net1 = net(32)  # 1st network
optimizer = torch.optim.Adam(net1.parameters(), lr=3e-2)
net1 = net(64)  # another network; the optimizer is not re-created (the mistake)
before = [p.detach().clone() for p in net1.parameters()]
loss_fn = nn.CrossEntropyLoss()
with bench.torch_watch(net1, optimizer, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        net1.train()
        for i in torch.randperm(len(x_tr)).split(BATCH):
            optimizer.zero_grad()
            loss_fn(net1(x_tr[i]), y_tr[i]).backward()
            optimizer.step()
        net1.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net1(x_va), y_va))
            val_acc = float((net1(x_va).argmax(1) == y_va).float().mean())
pairs = zip(net1.parameters(), before, strict=True)
moved = max(float((p.detach() - b).abs().max()) for p, b in pairs)
bench.finish(ok=moved == 0.0, weight_change=moved, val_accuracy=val_acc, val_loss=val_loss)
