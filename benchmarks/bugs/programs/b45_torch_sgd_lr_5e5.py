"""Plain SGD at learning rate 5e-5: the loss does not go down

source: https://github.com/OpenLMLab/LOMO/issues/50
expect: low-learning-rate
framework: torch
symptom: at learning rate 5e-5 the loss does not decrease; answer: too small, try 1e-2 or 1e-3
The report: full-parameter training with LOMO (a fused plain-SGD update, no adaptive
scaling) at learning rate 5e-5, a value borrowed from Adam fine-tuning; the loss did not
fall, and the maintainers answered that the learning rate was too small for it (1e-2..1e-3).
Rewritten on BBC News (5 topics) as a PyTorch classifier (embedding bag + dense layers)
trained from scratch with torch.optim.SGD at 5e-5.
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
    nn.Linear(64, 64),
    nn.ReLU(),
    nn.Linear(64, K),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=5e-5)  # the mistake
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
first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
bench.finish(
    ok=first - last < 0.01, first_steps_loss=first, last_steps_loss=last, val_accuracy=val_acc
)
