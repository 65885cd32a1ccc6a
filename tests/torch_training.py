"""Small real PyTorch trainings for the torch probe's tests (the counterpart of training.py).

Same data as the Keras tests (``conftest.token_data``: one class-marker token per row), a tiny
embedding classifier, and a plain training loop written as users write it, with a
``bertlab.torch.Watch`` attached. One intra-op thread: on 2 cores, contention otherwise slows
steps 5-10x.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from conftest import SEQ, VOCAB, token_data
from torch import nn

import bertlab.torch

torch.set_num_threads(1)


class MeanPool(nn.Module):
    """Embedding, masked mean over tokens, dropout, linear head (+ optional activation)."""

    def __init__(self, k: int = 4, activation: nn.Module | None = None, dropout: float = 0.1):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(16, k)
        self.activation = activation

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(torch.float32)[..., None]
        h = (self.emb(ids) * m).sum(1) / m.sum(1).clamp_min(1.0)
        out = self.head(self.drop(h))
        return self.activation(out) if self.activation is not None else out


def tensors(n: int = 512, k: int = 4, seed: int = 0, learnable: bool = True):
    """``token_data`` as torch tensors: ids, attention mask, class ids."""
    x, y, mask = token_data(n=n, k=k, seed=seed, learnable=learnable)
    return torch.tensor(x, dtype=torch.int64), torch.tensor(mask.astype("int64")), torch.tensor(y)


def train_loop(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data=None,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    val_batches: int = 4,
    watch: bool = True,
    zero_grad: bool = True,
    train_mode: bool = True,
    eval_mode_for_validation: bool = True,
    target=lambda y: y,
):
    """The loop users write: train, then validate under ``no_grad``; returns the Watch (or None).

    The switches reproduce the classic PyTorch mistakes (no ``zero_grad``, training in eval mode,
    validating in train mode). The last ``val_batches`` batches are the validation data.
    """
    ids, mask, y = data if data is not None else tensors()
    n_val = val_batches * batch_size
    n_train = len(y) - n_val
    w = bertlab.torch.Watch(model, optimizer, loss_fn, verbose=False) if watch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            model.train(train_mode)
            for i in range(0, n_train, batch_size):
                if zero_grad:
                    optimizer.zero_grad()
                s = slice(i, i + batch_size)
                loss = loss_fn(model(ids[s], mask[s]), target(y[s]))
                loss.backward()
                optimizer.step()
            model.train(not eval_mode_for_validation)
            with torch.no_grad():
                for i in range(n_train, len(y), batch_size):
                    s = slice(i, i + batch_size)
                    loss_fn(model(ids[s], mask[s]), target(y[s]))
        if w is not None:
            w.close()
    return w


def model_and_optimizer(k: int = 4, seed: int = 0, lr: float = 1e-2, **kw):
    """A fresh seeded ``MeanPool`` and its Adam optimizer."""
    torch.manual_seed(seed)
    model = MeanPool(k=k, **kw)
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def live_codes(watch, severities=("error", "warning")) -> set[str]:
    """Codes of the live findings with these severities."""
    return {f.code for f in watch.findings if f.severity in severities}


def tiny_hf_bert(num_labels: int = 4, seed: int = 0, max_positions: int = 32):
    """A 1-layer Hugging Face ``BertForSequenceClassification`` (hidden 32) over the test
    vocabulary, randomly initialised from ``seed``."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config)


__all__ = [
    "MeanPool",
    "SEQ",
    "live_codes",
    "model_and_optimizer",
    "np",
    "tensors",
    "tiny_hf_bert",
    "train_loop",
]
