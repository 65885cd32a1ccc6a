"""The Hugging Face Trainer with ``bertlab.hf.Watch()``: one row per optimizer step of the
Trainer's own loop, gradient norms before the Trainer clips them, one epoch record per
evaluation with bertlab's validation summary beside the Trainer's metrics, and training that is
exactly the same with and without the callback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_training import tensors, tiny_hf_bert
from transformers import (
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import bertlab.hf


class Batches(torch.utils.data.Dataset):
    def __init__(self, ids, mask, y):
        self.ids, self.mask, self.y = ids, mask, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.y[i]}


class Logged(TrainerCallback):
    """The Trainer's own logs (its grad_norm is measured before clipping)."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append((state.global_step, dict(logs or {})))


def _args(tmp_path, epochs=2, accumulation=1, **extra):
    return TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=5e-4,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        gradient_accumulation_steps=accumulation,
        max_grad_norm=0.1,
        **extra,
    )


def _train(tmp_path, callbacks, accumulation=1, epochs=2):
    ids, mask, y = tensors(n=256)
    train, evaluation = (
        Batches(ids[:192], mask[:192], y[:192]),
        Batches(ids[192:], mask[192:], y[192:]),
    )
    model = tiny_hf_bert()
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, epochs, accumulation),
        train_dataset=train,
        eval_dataset=evaluation,
        callbacks=list(callbacks),
    )
    trainer.train()
    return trainer, model


def test_trainer_steps_epochs_and_norms_before_clipping(tmp_path):
    watch, logged = bertlab.hf.Watch(verbose=False, dashboard=False), Logged()
    trainer, _ = _train(tmp_path, [watch, logged])
    h = watch.history
    assert len(h) == trainer.state.global_step == 24
    trainer_norms = {step: log["grad_norm"] for step, log in logged.logs if "grad_norm" in log}
    recorded = {step + 1: norm for step, norm in zip(h["step"], h["grad_norm"], strict=True)}
    for step, norm in trainer_norms.items():
        assert np.isclose(recorded[step], norm, rtol=1e-4), step
    assert (h["grad_norm"] > 0.1).mean() > 0.5  # the Trainer clipped to 0.1 after we read
    epochs = watch.epochs
    assert len(epochs) == 2 and (epochs["val_samples"] == 64).all()
    np.testing.assert_allclose(epochs["val_loss_recorded"], epochs["val_loss"], rtol=1e-5)
    assert epochs["val_confusion"].iloc[-1].sum() == 64
    assert watch.run.meta["trainer"]["max_grad_norm"] == 0.1
    assert not any(f.severity in ("warning", "error") for f in watch.findings)


def test_gradient_accumulation_in_the_trainer(tmp_path):
    watch = bertlab.hf.Watch(verbose=False, dashboard=False)
    trainer, _ = _train(tmp_path, [watch], accumulation=2, epochs=1)
    h = watch.history
    assert len(h) == trainer.state.global_step == 6
    assert (h["micro_batches"] == 2).all() and (h["batch_size"] == 32).all()


def test_same_weights_with_and_without_the_callback(tmp_path):
    _, plain = _train(tmp_path / "a", [], epochs=1)
    _, watched = _train(
        tmp_path / "b", [bertlab.hf.Watch(verbose=False, dashboard=False)], epochs=1
    )
    for a, b in zip(plain.parameters(), watched.parameters(), strict=True):
        assert torch.equal(a, b)


def _weighted_cross_entropy(outputs, labels, num_items_in_batch=None):
    weight = torch.tensor([1.0, 2.0, 1.0, 2.0])
    return torch.nn.functional.cross_entropy(outputs.logits, labels, weight=weight)


@pytest.mark.parametrize(
    "setting", [{"compute_loss_func": _weighted_cross_entropy}, {"label_smoothing_factor": 0.1}]
)
def test_labels_the_trainer_keeps_from_the_model_are_still_seen(tmp_path, setting):
    """With compute_loss_func or label smoothing the Trainer pops the labels before calling the
    model: the callback still records them and the loss the Trainer computed."""
    watch = bertlab.hf.Watch(verbose=False, dashboard=False)
    ids, mask, y = tensors(n=128)
    model = tiny_hf_bert()
    args = _args(
        tmp_path, epochs=1, **{k: v for k, v in setting.items() if k != "compute_loss_func"}
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Batches(ids[:96], mask[:96], y[:96]),
        eval_dataset=Batches(ids[96:], mask[96:], y[96:]),
        callbacks=[watch],
        compute_loss_func=setting.get("compute_loss_func"),
    )
    trainer.train()
    h = watch.history
    assert h["loss"].notna().all() and h["label_count[0]"].notna().all()
    counts = h[[f"label_count[{c}]" for c in range(4)]].to_numpy().sum()
    assert counts == 96
    epoch = watch.epochs.iloc[-1]
    assert epoch["val_label_count"].sum() == 32 and np.isfinite(epoch["val_loss_recorded"])
    assert "compute_loss" not in trainer.__dict__  # the wrapper is gone after training
