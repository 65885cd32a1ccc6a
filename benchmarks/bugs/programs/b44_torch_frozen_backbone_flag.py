"""Backbone frozen by a FREEZE flag (requires_grad=False): only the new head trains

source: https://github.com/ihciah/deep-fashion-retrieval/issues/1
expect: frozen-layers
framework: torch
symptom: all conv layers frozen; "after changing the freezing flag, accuracy improves quickly"
The report: a PyTorch retrieval/classification model whose backbone parameters were set to
requires_grad=False by a FREEZE flag, so only the freshly initialised fully connected layers
trained; turning the flag off made the accuracy rise quickly. Rewritten on BBC News (5
topics): a convolutional text encoder (embedding + Conv1d, randomly initialised here) frozen
the same way under a trainable linear head, SGD with momentum.
"""

import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, K, EPOCHS, BATCH, FREEZE = 5000, 64, 5, 5, 32, True
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)
x_tr = torch.tensor(encode(data["train"][0], vocab, SEQ))
y_tr = torch.tensor(data["train"][1])
x_va = torch.tensor(encode(data["val"][0], vocab, SEQ))
y_va = torch.tensor(data["val"][1])


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 64, padding_idx=0)
        self.conv = nn.Conv1d(64, 64, kernel_size=3, padding=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(self.embed(ids).transpose(1, 2)))
        return h.max(dim=2).values


backbone, head = Encoder(), nn.Linear(64, K)
if FREEZE:  # the mistake: the whole backbone stays frozen during training
    for p in backbone.parameters():
        p.requires_grad = False
model = nn.Sequential(backbone, head)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.01, momentum=0.9)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())
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
bench.finish(
    ok=trainable / total < 0.01,
    trainable_share=trainable / total,
    val_accuracy=val_acc,
    val_loss=val_loss,
)
