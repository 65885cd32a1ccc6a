"""Hugging Face Trainer fine-tuning BERT at learning_rate=0.01: same output for every input

source: https://github.com/huggingface/transformers/issues/735
expect: high-learning-rate
framework: torch
symptom: identical logits for every input; lr 0.01 -> 5e-5 fixed it
The report (and its comments): a BertForSequenceClassification fine-tuned with the Trainer /
run_glue produced identical outputs for every input; lowering the learning rate from 0.01 to
5e-5 fixed it. Rewritten with a small BertForSequenceClassification (2 layers, hidden 64,
randomly initialised: no weights offline) and the Trainer on BBC News (5 topics), ids from a
word vocabulary, AdamW at 0.01.
"""

import numpy as np
import torch
from common import PAD, Bench, bbc, build_vocab, encode
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

bench = Bench(__file__)
VOCAB, SEQ, K = 5000, 64, 5
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)


class Rows(torch.utils.data.Dataset):
    def __init__(self, texts: list[str], labels: np.ndarray) -> None:
        self.ids = torch.tensor(encode(texts, vocab, SEQ))
        self.labels = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": self.labels[i]}


train, val = Rows(*data["train"]), Rows(*data["val"])
config = BertConfig(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=SEQ,
    num_labels=K,
)
model = BertForSequenceClassification(config)
args = TrainingArguments(
    output_dir="/tmp/bugs_b29",
    learning_rate=0.01,  # the mistake
    num_train_epochs=3,
    per_device_train_batch_size=32,
    per_device_eval_batch_size=64,
    eval_strategy="epoch",
    save_strategy="no",
    report_to=[],
    logging_steps=20,
    seed=0,
    use_cpu=True,
    disable_tqdm=True,
)
trainer = Trainer(
    model=model, args=args, train_dataset=train, eval_dataset=val, callbacks=bench.hf_callbacks()
)
trainer.train()
logits = trainer.predict(val).predictions
pred = logits.argmax(1)
share = float(np.bincount(pred, minlength=K).max() / len(pred))
bench.finish(
    ok=share > 0.8,
    val_accuracy=float((pred == val.labels.numpy()).mean()),
    top_class_share=share,
    logit_spread=float(logits.std(axis=0).mean()),
)
