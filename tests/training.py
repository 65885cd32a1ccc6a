"""Small real trainings for the rule tests: healthy setups and broken ones.

Every function here builds and trains a real Keras model for a few seconds with a
``bertlab.Watch`` attached and returns the Watch, so a rule test reads like the forum post it
reproduces: "train this setup, expect that finding". No mocks.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from conftest import SEQ, VOCAB, embedding_classifier, token_data

import bertlab


def fit_watched(model, x, y, *, epochs=2, batch_size=32, callbacks=(), **fit_kwargs):
    """Fit with a fresh Watch (quiet) and return it."""
    watch = bertlab.Watch(verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's own UserWarnings are not under test here
        model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            callbacks=[watch, *callbacks],
            verbose=0,
            **fit_kwargs,
        )
    return watch


def codes(watch, severities=("error", "warning", "info")) -> set[str]:
    """Codes of the live findings with these severities."""
    return {f.code for f in watch.findings if f.severity in severities}


def recorded_alarms(watch) -> list[str]:
    """Every warning/error ever raised in the run, live or withdrawn."""
    return [
        f"{d['code']} ({d['status']}): {d['evidence']}"
        for d in watch.run.findings
        if d["severity"] in ("error", "warning")
    ]


def sparse_ce(from_logits=True, **kw):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, **kw)


def tiny_bert(k: int = 4, seed: int = 0, activation=None):
    """A 1-layer KerasHub BERT classifier (hidden 32) over the test vocabulary."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=SEQ,
    )
    return keras_hub.models.BertTextClassifier(
        backbone, num_classes=k, preprocessor=None, activation=activation
    )


def bert_inputs(x, mask):
    return {"token_ids": x, "padding_mask": mask.astype("int32"), "segment_ids": np.zeros_like(x)}


__all__ = [
    "SEQ",
    "VOCAB",
    "bert_inputs",
    "codes",
    "embedding_classifier",
    "fit_watched",
    "recorded_alarms",
    "sparse_ce",
    "tiny_bert",
    "token_data",
]
