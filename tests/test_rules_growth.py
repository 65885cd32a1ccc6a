"""exploding-loss without NaN: a training loss that grows epoch after epoch while staying finite
(a learning-rate schedule typed with decay_rate > 1), too slow for the batch window."""

from __future__ import annotations

import keras
from training import embedding_classifier, fit_watched, sparse_ce, token_data


def test_learning_rate_schedule_that_grows_makes_the_loss_grow_every_epoch():
    x, y, _ = token_data(n=512, k=4, learnable=False)
    model = embedding_classifier(k=4)
    # the bug: decay_rate=1.5 multiplies the learning rate by 1.5 every epoch (16 steps)
    growing = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=16, decay_rate=1.5)
    model.compile(optimizer=keras.optimizers.Adam(growing), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=16, batch_size=32)
    assert watch.history.loss.notna().all() and (watch.history.loss < 1e4).all()  # finite
    found = {f.code: f for f in watch.findings}["exploding-loss"]
    assert found.severity == "error"
    assert "the mean training loss rose every epoch" in found.evidence
    assert "finite but unbounded" in found.evidence
