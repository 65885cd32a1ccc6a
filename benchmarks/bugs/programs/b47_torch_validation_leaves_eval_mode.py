"""Validation every N steps switches the model to eval mode and training resumes in it

source: https://github.com/fartashf/vsepp/issues/4
expect: eval-mode-training
framework: torch
symptom: after each mid-epoch validation the model stays in eval mode until the next epoch
The report: the training loop validates every val_step iterations; validate() calls the
model's eval switch (val_start) but training does not call train_start again until the next
epoch, so most steps after the first validation run with dropout and batch norm in inference
mode; re-running with the fix changed the results noticeably. Rewritten on BBC News (5 topics)
with an embedding-bag MLP with dropout, Adam, validation every 20 steps.
"""

import torch
from common import Bench, bbc, build_vocab, encode
from torch import nn

bench = Bench(__file__)
VOCAB, SEQ, K, EPOCHS, BATCH, VAL_STEP = 5000, 64, 5, 5, 32, 20
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
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
steps = eval_steps = 0


def validate() -> float:
    model.eval()  # "val_start"; nothing switches back
    with torch.no_grad():
        out = model(x_va)
        loss_fn(out, y_va)
        return float((out.argmax(1) == y_va).float().mean())


with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(EPOCHS):
        model.train()  # "train_start", once per epoch
        for i in torch.randperm(len(x_tr)).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_tr[i]), y_tr[i]).backward()
            opt.step()
            steps += 1
            eval_steps += not model.training
            if steps % VAL_STEP == 0:
                val_acc = validate()
bench.finish(
    ok=eval_steps / steps > 0.5, eval_mode_step_share=eval_steps / steps, val_accuracy=val_acc
)
