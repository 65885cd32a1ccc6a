"""Layers replaced after the optimizer was built: the new layers are never updated

source: https://github.com/microsoft/nni/issues/4521
expect: params-not-in-optimizer
framework: torch
symptom: the parameters are not updated when the (pruned, sped-up) model is fine-tuned
The report: NNI's speedup replaced the pruned model's layers with smaller new modules after
the optimizer had been created from the old model's parameters; fine-tuning then updated
nothing of the new layers (the maintainer: the optimizer's parameters are outdated, create a
new optimizer). Rewritten on BBC News (5 topics): an embedding-bag MLP whose hidden and output
layers are swapped for narrower ones after torch.optim.Adam(model.parameters()) is built.
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


class Net(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0)
        self.hidden = nn.Linear(64, width)
        self.out = nn.Linear(width, K)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(self.embed(ids))))


model = Net(width=128)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# "speedup" of the pruned model: narrower layers replace the old ones (the optimizer still
# holds the old modules' tensors)
model.hidden = nn.Linear(64, 32)
model.out = nn.Linear(32, K)
before = model.out.weight.detach().clone()
loss_fn = nn.CrossEntropyLoss()
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
            val_acc = float((model(x_va).argmax(1) == y_va).float().mean())
moved = float((model.out.weight.detach() - before).abs().max())
bench.finish(ok=moved == 0.0, out_weight_change=moved, val_accuracy=val_acc, val_loss=val_loss)
