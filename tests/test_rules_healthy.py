"""Healthy trainings must produce no warning and no error, ever (a debugger that cries wolf is
worse than none). Every rule is checked against every run here: adding a rule adds it to these
tests automatically. Info findings are allowed (e.g. a from-scratch encoder at lr 1e-3)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from training import (
    bert_inputs,
    embedding_classifier,
    fit_watched,
    recorded_alarms,
    sparse_ce,
    tiny_bert,
    token_data,
)


def _logits_bert():
    """A small BERT trained with logits + from_logits=True at an in-range learning rate."""
    x, y, mask = token_data(n=384, k=4)
    model = tiny_bert(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=sparse_ce(), metrics=["accuracy"])
    return fit_watched(
        model, bert_inputs(x, mask), y, epochs=3, batch_size=16, validation_split=0.2
    )


def _softmax_from_probs():
    x, y, _ = token_data(n=384, k=4)
    model = embedding_classifier(k=4, activation="softmax")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=sparse_ce(from_logits=False),
        metrics=["sparse_categorical_accuracy"],
    )
    return fit_watched(model, x, y, epochs=4, validation_split=0.2)


def _multilabel_sigmoid():
    rng = np.random.default_rng(1)
    x, _, _ = token_data(n=384, k=2, learnable=False)
    y = (rng.random((384, 3)) < [0.5, 0.3, 0.6]).astype("float32")
    for j in range(3):  # label j is announced by marker token 1 + j
        x[:, j + 1] = np.where(y[:, j] > 0, 1 + j, x[:, j + 1])
    model = embedding_classifier(k=3)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.BinaryAccuracy(threshold=0.0),
            keras.metrics.AUC(multi_label=True, from_logits=True),
        ],
    )
    return fit_watched(model, x, y, epochs=4, validation_split=0.2)


def _binary():
    x, y, _ = token_data(n=384, k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return fit_watched(model, x, y.astype("float32"), epochs=4, validation_split=0.2)


def _imbalanced_with_class_weight():
    rng = np.random.default_rng(2)
    x, y, _ = token_data(n=512, k=3)
    keep = (y == 0) | (rng.random(len(y)) < 0.15)  # class 0 dominates (~80 %)
    x, y = x[keep], y[keep]
    counts = np.bincount(y, minlength=3)
    weights = {c: len(y) / (3 * counts[c]) for c in range(3)}
    model = embedding_classifier(k=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce(), metrics=["accuracy"])
    return fit_watched(model, x, y, epochs=5, class_weight=weights, validation_split=0.2)


def _label_smoothing():
    x, y, _ = token_data(n=384, k=4)
    model = embedding_classifier(k=4)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["categorical_accuracy"],
    )
    return fit_watched(model, x, keras.utils.to_categorical(y, 4), epochs=4, validation_split=0.2)


def _steps_per_execution():
    x, y, _ = token_data(n=384, k=4)
    model = embedding_classifier(k=4)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=sparse_ce(),
        metrics=["accuracy"],
        steps_per_execution=4,
    )
    return fit_watched(model, x, y, epochs=4, validation_split=0.2)


def _dict_inputs_with_mask():
    x, y, mask = token_data(n=384, k=4)
    ids = keras.Input((x.shape[1],), dtype="int32", name="token_ids")
    pad = keras.Input((x.shape[1],), dtype="int32", name="padding_mask")
    h = keras.layers.Embedding(300, 16)(ids)
    h = keras.layers.GlobalAveragePooling1D()(h, mask=keras.ops.cast(pad, "bool"))
    model = keras.Model({"token_ids": ids, "padding_mask": pad}, keras.layers.Dense(4)(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce(), metrics=["accuracy"])
    data = {"token_ids": x, "padding_mask": mask.astype("int32")}
    return fit_watched(model, data, y, epochs=4, validation_split=0.2)


def _keyword_documents(n: int, k: int, seq: int, vocab: int, seed: int):
    """Synthetic 'documents': random tokens plus a few class-specific keywords, then padding."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = rng.integers(10 + k * 5, vocab, size=(n, seq))
    lengths = rng.integers(seq // 3, seq + 1, size=n)
    for i in range(n):
        keywords = 10 + y[i] * 5 + rng.integers(0, 5, size=6)
        x[i, 1 + rng.choice(lengths[i] - 1, size=6, replace=False)] = keywords
    x[:, 0] = 2  # [CLS]-like start token
    mask = np.arange(seq)[None, :] < lengths[:, None]
    return np.where(mask, x, 0).astype("int32"), mask.astype("int32"), y


def _demo_like_bert():
    """The first demo's setup: a from-scratch 2-layer BERT whose head needs ~30 steps to break
    symmetry (it predicts one class, loss at chance, then learns): no alarm may fire."""
    import keras_hub

    x, mask, y = _keyword_documents(640, 4, 64, 1000, seed=0)
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=64,
    )
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=4, preprocessor=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    data = {"token_ids": x, "padding_mask": mask, "segment_ids": np.zeros_like(x)}
    return fit_watched(model, data, y, epochs=3, batch_size=16, validation_split=0.2)


def _torch_multiclass():
    """A plain PyTorch loop (zero_grad, train()/eval(), no_grad validation), CrossEntropyLoss."""
    from torch import nn
    from torch_training import model_and_optimizer, train_loop

    model, optimizer = model_and_optimizer(k=4, dropout=0.1)
    return train_loop(model, optimizer, nn.CrossEntropyLoss(), epochs=4)


def _torch_multilabel():
    """The PyTorch loop on 3 labels (marker tokens as in ``_multilabel_sigmoid``), BCE on logits."""
    import torch
    from torch import nn
    from torch_training import model_and_optimizer, train_loop

    rng = np.random.default_rng(1)
    x, _, mask = token_data(n=512, k=2, learnable=False)
    y = (rng.random((512, 3)) < [0.5, 0.3, 0.6]).astype("float32")
    for j in range(3):
        x[:, j + 1] = np.where(y[:, j] > 0, 1 + j, x[:, j + 1])
    data = (torch.tensor(x, dtype=torch.int64), torch.tensor(mask.astype("int64")), torch.tensor(y))
    model, optimizer = model_and_optimizer(k=3, dropout=0.1)
    return train_loop(model, optimizer, nn.BCEWithLogitsLoss(), data, epochs=6)


def _torch_hf_bert_accumulation():
    """A from-scratch Hugging Face BERT (dropout 0.1) called with ``labels=``, gradient
    accumulation over 2 micro-batches, zero_grad after each step, eval() + no_grad validation."""
    import warnings

    import torch
    from torch_training import tensors, tiny_hf_bert

    import bertlab.torch

    model = tiny_hf_bert(max_positions=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, mask, y = tensors(n=384)
    watch = bertlab.torch.Watch(model, optimizer, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            model.train()
            for i, start in enumerate(range(0, 256, 8)):
                s = slice(start, start + 8)
                (model(input_ids=ids[s], attention_mask=mask[s], labels=y[s]).loss / 2).backward()
                if i % 2 == 1:
                    optimizer.step()
                    optimizer.zero_grad()
            model.eval()
            with torch.no_grad():
                for start in range(256, 384, 32):
                    s = slice(start, start + 32)
                    model(input_ids=ids[s], attention_mask=mask[s], labels=y[s])
    watch.close()
    return watch


HEALTHY = {
    "demo-from-scratch-bert": _demo_like_bert,
    "bert-logits-from_logits": _logits_bert,
    "softmax-from_logits-false": _softmax_from_probs,
    "multilabel-sigmoid-bce": _multilabel_sigmoid,
    "binary": _binary,
    "imbalanced-class_weight": _imbalanced_with_class_weight,
    "label-smoothing": _label_smoothing,
    "steps_per_execution": _steps_per_execution,
    "dict-inputs-mask": _dict_inputs_with_mask,
    "torch-multiclass-ce": _torch_multiclass,
    "torch-multilabel-bce": _torch_multilabel,
    "torch-hf-bert-accumulation": _torch_hf_bert_accumulation,
}


@pytest.mark.parametrize("name", list(HEALTHY))
def test_healthy_run_raises_no_warning_or_error(name):
    watch = HEALTHY[name]()
    assert len(watch.history) > 0
    assert recorded_alarms(watch) == []
    assert not watch.run.meta["notes"], watch.run.meta["notes"]
