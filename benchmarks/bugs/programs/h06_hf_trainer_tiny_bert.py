"""Hugging Face Trainer fine-tuning a tiny BertForSequenceClassification (healthy)

source: hf-course chapter 3 (fine-tuning with the Trainer API)
expect: healthy
framework: torch
symptom: learns: evaluation accuracy well above chance (5 topics)
The course's Trainer recipe: a model with num_labels, a dataset of input_ids /
attention_mask / labels, TrainingArguments with per-epoch evaluation and compute_metrics.
Here the model is a 1-layer BERT (hidden 32) built from a config, on BBC News leads.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/..")
from common import Bench, bbc, build_vocab, encode  # noqa: E402, F401

bench = Bench(__file__)
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

data = bbc()
(xt, yt), (xv, yv) = data["train"], data["val"]
vocab = build_vocab(xt, 3000)


class Texts(torch.utils.data.Dataset):
    def __init__(self, texts: list[str], labels: np.ndarray) -> None:
        self.ids = torch.tensor(encode(texts, vocab, 48))
        self.labels = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": self.labels[i]}


config = BertConfig(
    vocab_size=3000,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    num_labels=5,
)
model = BertForSequenceClassification(config)


def accuracy(pred) -> dict[str, float]:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


with tempfile.TemporaryDirectory() as out:
    args = TrainingArguments(
        out,
        num_train_epochs=3,
        per_device_train_batch_size=32,
        learning_rate=2e-3,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        logging_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Texts(xt, yt),
        eval_dataset=Texts(xv, yv),
        compute_metrics=accuracy,
        callbacks=bench.hf_callbacks(),
    )
    trainer.train()
    acc = trainer.evaluate()["eval_accuracy"]
bench.finish(ok=acc > 0.6, val_accuracy=acc)
