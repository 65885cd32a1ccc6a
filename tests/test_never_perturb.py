"""Watch never breaks or perturbs training, and leaves the model exactly as it found it."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from conftest import embedding_classifier, token_data

import bertlab
from bertlab.probes.keras import quantities


def _compiled(k=4, dropout=0.3, **compile_kwargs):
    model = embedding_classifier(k=k, dropout=dropout)
    compile_kwargs.setdefault("optimizer", keras.optimizers.Adam(0.01))
    compile_kwargs.setdefault("loss", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    compile_kwargs.setdefault("metrics", ["accuracy"])
    model.compile(**compile_kwargs)
    return model


def _train(callbacks, **compile_kwargs):
    x, y, _ = token_data(n=256, k=4)
    model = _compiled(**compile_kwargs)
    keras.utils.set_random_seed(123)  # dropout and shuffling draw from this seed
    hist = model.fit(
        x, y, batch_size=32, epochs=2, validation_split=0.25, callbacks=callbacks, verbose=0
    )
    return model, hist


@pytest.mark.parametrize("spe", [1, 3])
def test_same_seed_gives_bit_identical_weights(spe):
    plain, plain_hist = _train([], steps_per_execution=spe)
    watched, watched_hist = _train([bertlab.Watch()], steps_per_execution=spe)
    for a, b in zip(plain.get_weights(), watched.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Nothing of Watch reaches History (nor, therefore, the progress bar).
    assert watched_hist.history == plain_hist.history


def test_model_is_restored_and_saves_as_usual(tmp_path):
    x, y, _ = token_data(n=128, k=4)
    model = _compiled()
    fit_args = dict(batch_size=32, epochs=1, validation_split=0.25, verbose=0)
    model.fit(x, y, **fit_args)  # Keras caches its own functions and bookkeeping
    original_train, original_test = model.train_function, model.test_function
    before = dict(model.__dict__)
    opt_before = dict(model.optimizer.__dict__)
    watch = bertlab.Watch()
    model.fit(x, y, callbacks=[watch], **fit_args)
    assert model.train_function is original_train
    assert model.test_function is original_test
    assert set(model.__dict__) == set(before)
    assert set(model.optimizer.__dict__) == set(opt_before)
    for name in ("train_step", "test_step", "compute_loss"):
        assert name not in model.__dict__
    assert "apply" not in model.optimizer.__dict__
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0))


def test_second_fit_reuses_the_instrumented_function_and_continues_steps():
    x, y, _ = token_data(n=128, k=4)
    model = _compiled()
    watch = bertlab.Watch()
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[watch], verbose=0)
    instrumented = watch._instrument._cache["train"][1]
    model.fit(x, y, batch_size=32, epochs=2, initial_epoch=1, callbacks=[watch], verbose=0)
    assert watch._instrument._cache["train"][1] is instrumented
    h = watch.history
    assert list(h.step) == list(range(8))
    assert list(h.epoch) == [0] * 4 + [1] * 4


def test_fault_inside_bertlab_is_reported_once_and_training_goes_on(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(quantities, "output_stats", broken)
    plain, _ = _train([])
    watch = bertlab.Watch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watched, _ = _train([watch])
    ours = [w for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    assert len(ours) == 1 and "boom" in str(ours[0].message)
    for a, b in zip(plain.get_weights(), watched.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert "train_step" not in watched.__dict__
    assert any("boom" in note for note in watch.run.meta["notes"])


def test_fault_in_a_callback_hook_detaches_and_restores(monkeypatch):
    watch = bertlab.Watch()
    monkeypatch.setattr(watch.run, "add_steps", lambda rows: 1 / 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, hist = _train([watch])
    assert sum(issubclass(w.category, bertlab.BertlabWarning) for w in caught) == 1
    assert len(hist.history["loss"]) == 2
    assert "train_step" not in model.__dict__ and "apply" not in model.optimizer.__dict__


def test_error_raised_by_fit_propagates_and_model_is_restored():
    x, y, _ = token_data(n=128, k=4)
    y = y.copy()
    y[100] = 9  # outside [0, 4): the loss op raises at step 3
    model = _compiled(dropout=0.0)
    watch = bertlab.Watch()
    with pytest.raises(Exception, match="9|label|range"):
        model.fit(x, y, batch_size=32, epochs=1, shuffle=False, callbacks=[watch], verbose=0)
    assert "train_step" not in model.__dict__
    assert "apply" not in model.optimizer.__dict__
    # The steps before the failing batch are kept; the failing step wrote no row.
    assert list(watch.history.step) == [0, 1, 2]
    assert "error" in watch.run.meta
    # The model trains normally afterwards, without the Watch.
    y[100] = 1
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
