"""Rules read from the update ratio: low-learning-rate (and its silence while training moves)."""

from __future__ import annotations

import keras
import numpy as np
import torch
from conftest import embedding_classifier, token_data
from torch_training import model_and_optimizer, tensors, train_loop
from training import codes, fit_watched, sparse_ce


def _keras_run(optimizer):
    x, y, _ = token_data(n=640, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer=optimizer, loss=sparse_ce())
    return fit_watched(model, x, y, epochs=1, batch_size=16)


def test_learning_rate_typed_far_too_small_keras():
    watch = _keras_run(keras.optimizers.Adam(1e-8))  # meant 1e-3
    assert "low-learning-rate" in codes(watch, ("warning",))
    f = next(f for f in watch.findings if f.code == "low-learning-rate")
    assert f.extra["largest_ratio"] < 1e-5
    assert "learning rate 1e-08" in f.evidence


def test_schedule_decayed_to_nothing_keras():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.01)
    watch = _keras_run(keras.optimizers.Adam(schedule))  # decay_steps meant in thousands
    f = next(f for f in watch.findings if f.code == "low-learning-rate")
    assert "decayed from" in f.evidence


def test_healthy_learning_rate_is_silent_keras():
    watch = _keras_run(keras.optimizers.Adam(1e-3))
    ratios = watch.history.filter(like="update_ratio").to_numpy(float)
    assert np.nanmax(ratios) > 1e-4
    assert "low-learning-rate" not in codes(watch)


def test_learning_rate_typed_far_too_small_torch():
    model, optimizer = model_and_optimizer(lr=1e-9)
    watch = train_loop(
        model, optimizer, torch.nn.CrossEntropyLoss(), tensors(n=640), epochs=1, batch_size=16
    )
    assert "low-learning-rate" in {f.code for f in watch.findings if f.severity == "warning"}
    f = next(f for f in watch.findings if f.code == "low-learning-rate")
    assert "torch.optim.AdamW" in f.fix
