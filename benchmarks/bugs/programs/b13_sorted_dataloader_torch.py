"""Dataset sorted by label, DataLoader without shuffle

source: https://github.com/zalandoresearch/fashion-mnist/pull/5
expect: unshuffled-batches
framework: torch
symptom: learning fails with mini-batches when the label-sorted data is not shuffled
Reported: Fashion-MNIST's files were sorted by label (all 0s, then all 1s...); the PR
shuffled them because users who forget to shuffle see mini-batch training fail. Here:
synthetic 784-feature images of 10 classes sorted by label, an MLP, a DataLoader with
shuffle=False.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

rng = np.random.default_rng(0)
n = 3000
protos = rng.normal(size=(10, 784)).astype("float32")
y = np.sort(rng.integers(0, 10, n))  # sorted by label, as the files were
x = protos[y] + rng.normal(scale=12.0, size=(n, 784)).astype("float32")
yv = rng.integers(0, 10, 500)
xv = torch.tensor(protos[yv] + rng.normal(scale=12.0, size=(500, 784)).astype("float32"))
loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=64, shuffle=False)
model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.CrossEntropyLoss()
with bench.torch_watch(model, opt, loss_fn=loss_fn):
    for _epoch in range(3):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            loss_fn(logits, torch.tensor(yv))
pred = logits.argmax(1).numpy()
acc = float((pred == yv).mean())
bench.finish(ok=acc < 0.5, val_accuracy=acc, top_class_share=float(np.bincount(pred).max() / 500))
