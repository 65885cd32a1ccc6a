"""Shared helpers for tests that train real (small) Keras models."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

VOCAB = 300
SEQ = 16


def token_data(n: int = 256, k: int = 4, seed: int = 0, learnable: bool = True):
    """Token-id batches whose class is carried by one marker token per row (so models learn).

    Rows have a random number of real tokens followed by padding (id 0); a few rows fill the
    whole sequence (as if truncated).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = rng.integers(5, VOCAB, size=(n, SEQ)).astype("int32")
    lengths = rng.integers(4, SEQ + 1, size=n)
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    if learnable:
        x[:, 0] = 1 + y  # marker token per class
    x = np.where(mask, x, 0).astype("int32")
    return x, y.astype("int64"), mask


def embedding_classifier(
    k: int = 4, activation: str | None = None, seed: int = 1, dropout: float = 0.0
):
    """Embedding + mean pooling + Dense(k): the smallest text classifier."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [
        keras.Input((SEQ,), dtype="int32"),
        keras.layers.Embedding(VOCAB, 16),
        keras.layers.GlobalAveragePooling1D(),
    ]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(k, activation=activation))
    return keras.Sequential(layers)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Start each test with fresh Keras state, without importing Keras into tests that don't."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    yield


# --------------------------------------------------------------------------- CI: no silent skips
# Optional parts (the notebook kernel, the corpus and model packages, Chromium) skip where they
# are missing, which is convenient by hand but would let CI pass green with a missing install
# step. Under CI=true every skip fails the run.
_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _SKIPPED.append(f"{report.nodeid}: {report.longrepr}")


pytest_collectreport = pytest_runtest_logreport  # a module-level importorskip skips here


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and _SKIPPED:
        print("\nCI=true: skipped tests fail the run (a missing install step?):", file=sys.stderr)
        for line in _SKIPPED:
            print("  " + line, file=sys.stderr)
        session.exitstatus = 1
