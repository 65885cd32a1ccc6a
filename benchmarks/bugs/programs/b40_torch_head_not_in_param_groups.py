"""Optimizer built from parameter groups that leave out the classifier head

source: https://github.com/zjunlp/HVPNeT/issues/5
expect: params-not-in-optimizer
framework: torch
symptom: the crf and fc parameters are never added to the optimizer, so never trained
The report: the training script builds the optimizer from hand-made parameter groups (encoder
groups appended to a list) but the group holding the final fc and CRF layers is created and
never appended; the maintainers confirmed those layers were not trained. Rewritten on BBC News
(5 topics): an encoder (embedding bag + dense) with its own group and an fc head whose group
is built but not passed to AdamW.
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


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(VOCAB, 64, mode="mean", padding_idx=0)
        self.encoder = nn.Linear(64, 64)
        self.fc = nn.Linear(64, K)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.encoder(self.embed(ids))))


model = Tagger()
parameters = [
    {"params": list(model.embed.parameters()), "lr": 1e-3},
    {"params": list(model.encoder.parameters()), "lr": 1e-3},
]
head = {"params": list(model.fc.parameters()), "lr": 1e-2}  # built ... and never appended
opt = torch.optim.AdamW(parameters)
before = model.fc.weight.detach().clone()
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
moved = float((model.fc.weight.detach() - before).abs().max())
bench.finish(ok=moved == 0.0, fc_weight_change=moved, val_accuracy=val_acc, val_loss=val_loss)
