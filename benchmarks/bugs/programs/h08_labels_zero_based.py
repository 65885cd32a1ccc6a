"""Zero-based class labels with CrossEntropyLoss (b04 repaired)

source: repaired b04
expect: healthy
framework: torch
symptom: learns (the fault of b04 removed)
The b04 setup with labels 0..9.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

rng = np.random.default_rng(0)
n = 800
y0 = rng.integers(0, 10, n)
protos = rng.normal(size=(10, 3, 16, 16)).astype("float32")
x = torch.tensor(protos[y0] + rng.normal(scale=1.0, size=(n, 3, 16, 16)).astype("float32"))
y = torch.tensor(y0)
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 64, 10)
)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
steps = 0
if True:
    with bench.torch_watch(model, opt, loss_fn=loss_fn):
        for _epoch in range(2):
            for i in range(0, n, 32):
                opt.zero_grad()
                loss = loss_fn(model(x[i : i + 32]), y[i : i + 32])
                loss.backward()
                opt.step()
                steps += 1
with torch.no_grad():
    acc = (model(x).argmax(1) == y).float().mean().item()
bench.finish(ok=acc > 0.5, train_accuracy=acc, steps=steps)
