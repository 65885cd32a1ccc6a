"""saturated-logits from the start: unnormalised features feeding the output read as logits
(token ids used as numbers: values in the hundreds), named within its 20-step window although
the batch loss is noisy (a confidently right batch scores ~0, a wrong one hundreds)."""

from __future__ import annotations

import warnings

import keras
import numpy as np
from training import codes, sparse_ce, token_data

import bertlab
from bertlab.rules import saturated_logits
from bertlab.rules.base import Context


def _first_steps(watch, n: int) -> Context:
    """The rules' context as it was after the first ``n`` recorded steps of the run."""
    run = watch.run
    rows = run.store.since(0).rows[:n]
    columns = {}
    for name, width in run.store.channels:
        block = rows[:, run.store.slice(name)]
        columns[name] = block[:, 0] if width == 1 else block
    return Context(facts=watch._facts, layout=run.layout, columns=columns, meta=run.meta)


def test_unnormalised_features_saturate_the_logits_from_the_start():
    x, y, _ = token_data(n=640, k=2, seed=1)
    features = x.astype("float32")  # raw ids 0..300 as features: the mistake
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((features.shape[1],)), keras.layers.Dense(32, "relu"), keras.layers.Dense(2)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=sparse_ce())
    seen: dict[str, int] = {}
    watch = bertlab.Watch(verbose=False)

    def spy(batch, logs):
        for code in codes(watch, ("warning", "error")):
            seen.setdefault(code, watch.run.steps)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            features,
            y,
            epochs=1,
            batch_size=16,
            verbose=0,
            callbacks=[watch, keras.callbacks.LambdaCallback(on_train_batch_end=spy)],
        )
    loss = watch.history.loss.to_numpy()
    assert loss.std() > 0.25 * loss.mean()  # noisy: right batches near 0, wrong ones far above
    assert "saturated-logits" in seen
    # Named from its first window: the rule fires on the first 20 + 8 recorded steps alone. (When
    # the live run names it also depends on the rules' cadence, which adapts to the machine's
    # speed: that is not asserted here.)
    assert saturated_logits.RULE.check(_first_steps(watch, 20 + 8)) is not None
    record = next(d for d in watch.run.findings if d["code"] == "saturated-logits")
    assert record["severity"] == "warning" and "logits up to" in record["evidence"]
    assert np.isfinite(loss).all()
