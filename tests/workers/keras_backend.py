"""One Keras training per case on the backend named by ``KERAS_BACKEND`` (run by
tests/test_keras_backends.py, one process per backend: Keras fixes its backend at import).

Every backend gets the same model (weights set from numpy), the same unshuffled batch stream and
plain SGD, so what the Watch recorded must agree across backends and with bertlab's numpy
reference. Writes ``<out>`` (JSON): per case, the recorded rows, the epoch records' validation
sums, the live findings' codes and whether weights/History equal an unwatched twin's. Mode
``dp`` (JAX, two CPU devices through ``XLA_FLAGS``) trains on one and on two devices instead.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings

import keras
import numpy as np

import bertlab

B, SEQ, VOCAB, K, N = 16, 12, 60, 3, 96


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids with padding (id 0) at the row tails, and labels learnable from token 1."""
    rng = np.random.default_rng(seed)
    x = rng.integers(5, VOCAB, size=(N, SEQ)).astype("int32")
    lengths = rng.integers(4, SEQ + 1, size=N)
    x[np.arange(SEQ)[None, :] >= lengths[:, None]] = 0
    y = (x[:, 0] % K).astype("int32")
    return x, y


def weights(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(0, 0.5, (VOCAB, 8)).astype("float32"),
        rng.normal(0, 0.5, (8, K)).astype("float32"),
        np.zeros(K, "float32"),
    ]


def model(activation: str | None = None, lr: float = 0.5) -> keras.Model:
    m = keras.Sequential(
        [
            keras.Input((SEQ,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 8, name="emb"),
            keras.layers.GlobalAveragePooling1D(name="pool"),
            keras.layers.Dense(K, activation=activation, name="head"),
        ],
        name="m",
    )
    m.set_weights(weights())
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None)
    m.compile(optimizer=keras.optimizers.SGD(lr), loss=loss, metrics=["accuracy"])
    return m


def fit(m: keras.Model, watch: bool, epochs: int = 2, copied: int = 0, every=1) -> tuple:
    x, y = data()
    xv, yv = data(seed=7)
    x[:copied], y[:copied] = xv[:copied], yv[:copied]  # validation rows also trained on
    cbs = [bertlab.Watch(verbose=False, every=every)] if watch else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = m.fit(
            x,
            y,
            batch_size=B,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            validation_data=(xv, yv),
            callbacks=cbs,
        )
    return (cbs[0] if cbs else None), h.history


def case(activation: str | None, lr: float, save: str | None = None) -> dict:
    watch, history = fit(model(activation, lr), True)
    twin = model(activation, lr)
    _, plain_history = fit(twin, False)
    m = watch.model
    pairs = zip(m.get_weights(), twin.get_weights(), strict=True)
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in pairs)
    if save:
        watch.run.save(save)
    hist = watch.run.history
    return {
        "columns": list(hist.columns),
        "rows": np.nan_to_num(hist.to_numpy(dtype=float), nan=-999.0).tolist(),
        "epochs": [
            {k: np.asarray(v).tolist() for k, v in e.items() if k.startswith("val_")}
            for e in watch.run.epoch_records
        ],
        "codes": sorted(f.code for f in watch.findings if f.severity in ("warning", "error")),
        "same_weights": bool(same),
        "same_history": np.array_equal(
            json.dumps(history),
            json.dumps(plain_history),  # NaN-tolerant: same text
        ),
        "notes": watch.run.meta.get("notes", []),
    }


def overlap_case() -> dict:
    """Validation rows copied into the training data (train-val-overlap, counted in-step), and
    the in-step row hashes of fixed arrays, to compare with bertlab's numpy reference."""
    from bertlab.probes.keras import overlap

    watch, _ = fit(model(), True, copied=OVERLAP_COPIED)
    strided, _ = fit(model(), True, copied=OVERLAP_COPIED, every=STRIDE)
    hashes = {}
    for name, a in hash_arrays().items():
        h = overlap.row_hashes([keras.ops.convert_to_tensor(a)])
        hashes[name] = [np.asarray(keras.ops.convert_to_numpy(t)).tolist() for t in h]
    return {
        "epochs": [
            {k: e[k] for k in ("val_overlap", "val_hashed") if k in e}
            for e in watch.run.epoch_records
        ],
        "codes": sorted(f.code for f in watch.findings if f.severity in ("warning", "error")),
        "hashes": hashes,
        # the same training with a row every STRIDE steps (bertlab.cadence)
        "rows": watch.run.history.to_numpy(dtype=float).tolist(),
        "strided": {
            "columns": list(strided.run.history.columns),
            "rows": strided.run.history.to_numpy(dtype=float).tolist(),
            "epochs": [
                {k: e[k] for k in ("val_overlap", "val_hashed", "steps") if k in e}
                for e in strided.run.epoch_records
            ],
        },
    }


OVERLAP_COPIED = 20
STRIDE = 4


def hash_arrays() -> dict[str, np.ndarray]:
    """Token ids, float features (their bits), and rows longer than the coefficient table."""
    rng = np.random.default_rng(3)
    return {
        "ids": rng.integers(0, 30000, (5, 40)).astype("int32"),
        "floats": rng.normal(size=(5, 3, 4)).astype("float32"),
        "long": rng.integers(-9, 9, (5, 5000)).astype("int64"),
    }


def data_parallel() -> dict:
    """JAX on two CPU devices (``keras.distribution.DataParallel``) against one device: the
    recorded rows and validation sums must be those of the global batch, i.e. the same."""
    import jax

    runs = {}
    for devices in (1, 2):
        if devices == 2:
            dp = keras.distribution.DataParallel(devices=jax.devices()[:2])
            keras.distribution.set_distribution(dp)
        watch, _ = fit(model(), True)
        runs[devices] = {
            "columns": list(watch.run.history.columns),
            "rows": watch.run.history.to_numpy(dtype=float).tolist(),
            "epochs": [
                {k: np.asarray(v).tolist() for k, v in e.items() if k.startswith("val_")}
                for e in watch.run.epoch_records
            ],
            "notes": watch.run.meta.get("notes", []),
        }
    # on two devices with a stride too: after the first epoch the unrecorded steps run Keras's
    # own step, sharded like Keras shards it, and are counted on the host (JaxRing)
    strided, _ = fit(model(), True, every=STRIDE)
    runs["strided"] = {
        "rows": strided.run.history.to_numpy(dtype=float).tolist(),
        "steps": [e["steps"] for e in strided.run.epoch_records],
    }
    return {"devices": len(jax.devices()), "runs": runs}


def main(out: str, mode: str = "cases") -> None:
    watchdog = threading.Timer(150, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    keras.utils.set_random_seed(0)
    if mode == "dp":
        with open(out, "w") as fh:
            json.dump(data_parallel(), fh)
        return
    result = {
        "backend": keras.backend.backend(),
        "healthy": case(None, 0.5, save=out + ".bertlab"),
        "mismatch": case("sigmoid", 0.5),  # pre-flight: a sigmoid head under a K-class loss
        "diverging": case(None, 2000.0),  # live: a learning rate far too high
        "overlap": overlap_case(),  # 20 validation rows trained on
    }
    with open(out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(*sys.argv[1:])
