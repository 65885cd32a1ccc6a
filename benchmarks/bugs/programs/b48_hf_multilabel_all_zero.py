"""BERT multi-label classifier (BCEWithLogitsLoss over 13 skewed labels) outputs all zeros

source: https://github.com/huggingface/transformers/issues/247
expect: multilabel-collapse
framework: torch
symptom: the multi-label BERT outputs all ones or all zeros; labels used 17 to 564 times each
The report: BertForSequenceClassification adapted to multi-label classification
(BCEWithLogitsLoss, Adam) over 13 labels whose counts range from 17 to 564, 1-4 labels per
sample; the loss diverged and the predictions came out all zeros or all ones. Rewritten with
the Hugging Face Trainer and a small BertForSequenceClassification (problem_type
"multi_label_classification", 2 layers, hidden 64, randomly initialised) on BBC News with 13
keyword tags per article, AdamW at the Trainer's default 5e-5.
"""

import torch
from common import PAD, Bench, bbc, build_vocab, encode, words
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

bench = Bench(__file__)
VOCAB, SEQ = 5000, 64
TAGS = (
    "said",
    "year",
    "new",
    "government",
    "people",
    "world",
    "game",
    "film",
    "market",
    "music",
    "election",
    "phone",
    "oil",
)
data = bbc()
vocab = build_vocab(data["train"][0], VOCAB)


class Rows(torch.utils.data.Dataset):
    def __init__(self, texts: list[str]) -> None:
        self.ids = torch.tensor(encode(texts, vocab, SEQ))
        self.labels = torch.tensor([[float(t in set(words(text))) for t in TAGS] for text in texts])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": self.labels[i]}


train, val = Rows(data["train"][0]), Rows(data["val"][0])
config = BertConfig(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=SEQ,
    num_labels=len(TAGS),
    problem_type="multi_label_classification",
)
model = BertForSequenceClassification(config)
args = TrainingArguments(
    output_dir="/tmp/bugs_b48",
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
on = trainer.predict(val).predictions > 0
truth = val.labels.numpy() > 0.5
bench.finish(
    ok=float(on.mean()) < 0.01,
    predicted_on_share=float(on.mean()),
    true_on_share=float(truth.mean()),
    label_counts=" ".join(str(int(c)) for c in train.labels.sum(0)),
    label_recall=float((on & truth).sum() / truth.sum()),
)
