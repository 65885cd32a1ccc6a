"""Training loop never calls model.train(): after the first evaluation it trains in eval mode

source: https://github.com/pytorch/tutorials/issues/1624
expect: eval-mode-training
framework: torch
symptom: after the first test(), every later epoch trains in eval mode (no model.train())
The report: the PyTorch quickstart loop runs train(...) then test(...) each epoch; test()
calls model.eval() but train() has no model.train(), so every epoch after the first trains
with dropout / batch norm in inference behaviour. Rewritten on BBC News (5 topics): an
embedding-bag MLP with dropout (the quickstart's MLP has none, which hides the effect), SGD as
in the tutorial.
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
    nn.Dropout(0.5),
    nn.Linear(128, 128),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(128, K),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
eval_steps = steps = 0


def train() -> None:
    global eval_steps, steps
    for i in torch.randperm(len(x_tr)).split(BATCH):  # the mistake: no model.train() here
        opt.zero_grad()
        loss_fn(model(x_tr[i]), y_tr[i]).backward()
        opt.step()
        steps += 1
        eval_steps += not model.training


def test() -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(x_va)
        return float(loss_fn(out, y_va)), float((out.argmax(1) == y_va).float().mean())


with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        train()
        val_loss, val_acc = test()
with torch.no_grad():
    train_loss = float(loss_fn(model(x_tr), y_tr))
bench.finish(
    ok=eval_steps / steps > 0.5,
    eval_mode_step_share=eval_steps / steps,
    train_loss=train_loss,
    val_loss=val_loss,
    val_accuracy=val_acc,
    loss_gap=val_loss - train_loss,
)
