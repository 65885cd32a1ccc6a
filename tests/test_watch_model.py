"""``bertlab.Watch(model)``, the form bertlab was first described with: the model's pre-flight
findings at once, the dashboard before training, and a clear message when a fit runs another
model with this Watch."""

from __future__ import annotations

import warnings

import keras
from conftest import embedding_classifier, token_data
from training import sparse_ce

import bertlab
from bertlab.guard import BertlabWarning


def _softmax_model():
    model = embedding_classifier(k=4, activation="softmax")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=sparse_ce(from_logits=True))
    return model


def test_findings_before_fit_and_a_normal_fit_after():
    model = _softmax_model()
    watch = bertlab.Watch(model, verbose=False, dashboard=False)
    assert "double-softmax" in {f.code for f in watch.findings}  # before any fit
    assert watch.run.steps == 0 and watch.dashboard.status == "waiting"
    x, y, _ = token_data(n=128, k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, epochs=1, batch_size=32, callbacks=[watch], verbose=0)
    assert watch.run.steps == 4 and "double-softmax" in {f.code for f in watch.findings}


def test_a_fit_on_another_model_is_named_once_and_not_recorded():
    watch = bertlab.Watch(_softmax_model(), verbose=False, dashboard=False)
    other = embedding_classifier(k=4)
    other.compile(optimizer="adam", loss=sparse_ce())
    x, y, _ = token_data(n=128, k=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            other.fit(x, y, epochs=1, batch_size=32, callbacks=[watch], verbose=0)
    mine = [w for w in caught if issubclass(w.category, BertlabWarning)]
    assert len(mine) == 1 and "made for Sequential" in str(mine[0].message)
    assert watch.run.steps == 0 and not watch.epochs.shape[0]
    assert "_bertlab_instrument" not in other.__dict__


def test_an_uncompiled_model_waits_for_fit():
    model = embedding_classifier(k=4, activation="softmax")
    watch = bertlab.Watch(model, verbose=False, dashboard=False)
    assert watch.findings == []  # nothing known before compile
    model.compile(optimizer="adam", loss=sparse_ce(from_logits=True))
    x, y, _ = token_data(n=64, k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, epochs=1, batch_size=32, callbacks=[watch], verbose=0)
    assert watch.run.steps == 2 and "double-softmax" in {f.code for f in watch.findings}
