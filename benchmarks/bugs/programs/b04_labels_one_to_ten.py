"""Class labels 1..10 instead of 0..9 with CrossEntropyLoss

source: https://github.com/pytorch/pytorch/issues/15666
expect: label-out-of-range
framework: torch
symptom: the loss fails at the first batch holding label 10 (t >= 0 && t < n_classes)
Reported: a CIFAR-10 variant whose labels ran 1..10, a 10-way classifier trained with
nn.CrossEntropyLoss; the CUDA kernel asserted t < n_classes (IndexError on CPU). Here: small
3x16x16 synthetic images of 10 learnable classes, a small CNN, labels shifted by one.
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
y = torch.tensor(y0 + 1)  # the mistake: labels 1..10 for a 10-way output
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 64, 10)
)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
steps = 0
with bench.expect_error():
    with bench.torch_watch(model, opt, loss_fn=loss_fn):
        for _epoch in range(2):
            for i in range(0, n, 32):
                opt.zero_grad()
                loss = loss_fn(model(x[i : i + 32]), y[i : i + 32])
                loss.backward()
                opt.step()
                steps += 1
bench.finish(ok=bench.error is not None, error=(bench.error or {}).get("type", "none"), steps=steps)
