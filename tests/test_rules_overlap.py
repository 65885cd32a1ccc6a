"""train-val-overlap: bertlab.check finds validation rows that are exact training rows."""

from __future__ import annotations

import keras
import numpy as np
from conftest import embedding_classifier, token_data

import bertlab
from bertlab import datafacts


def _model():
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    return model


def test_duplicates_split_into_validation_are_reported():
    x, y, _ = token_data(n=400, k=4)
    xv, yv, _ = token_data(n=100, k=4, seed=7)
    xv[:20], yv[:20] = x[50:70], y[50:70]  # 20 % of validation copied from training
    findings = bertlab.check(_model(), x, y, validation_data=(xv, yv))
    f = next(f for f in findings if f.code == "train-val-overlap")
    assert f.severity == "warning"
    assert "20 of 100 validation rows (20.0%)" in f.evidence
    assert "drop_duplicates" in f.fix


def test_disjoint_validation_is_silent_and_dicts_are_keyed_by_token_ids():
    x, y, mask = token_data(n=400, k=4)
    xv, yv, maskv = token_data(n=100, k=4, seed=7)
    findings = bertlab.check(_model(), x, y, validation_data=(xv, yv))
    assert "train-val-overlap" not in {f.code for f in findings}
    train = {"token_ids": x, "padding_mask": mask}
    val = {
        "token_ids": np.concatenate([xv, x[:3]]),
        "padding_mask": np.concatenate([maskv, mask[:3]]),
    }
    facts = datafacts.from_arrays(train, y, val_x=val)
    assert (facts.val_rows, facts.val_overlap) == (103, 3)
