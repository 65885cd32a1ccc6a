"""train-val-overlap measured in the training step (issue 14): the Watch finds validation rows
that were trained on, from the row hashes of the inputs, in ``model.fit(..., validation_data=)``
and in a PyTorch loop, without ``bertlab.check``.

The hash itself is checked against the numpy reference on the three Keras backends in
tests/test_keras_backends.py; here: its properties, and real trainings where copies of the
validation rows are in the training data (finding, with the count the reference gives) or not
(silent).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import embedding_classifier, token_data
from training import codes, fit_watched

from bertlab import reference
from bertlab.datafacts import HASH_POSITIONS, OVERLAP_SLOTS


def test_reference_hash_keys_the_example_and_ignores_trailing_padding():
    x, _, _ = token_data(n=300, k=4)
    h1, h2 = reference.row_hashes([x])
    distinct = len({bytes(r) for r in x})
    assert len(set(zip(h1.tolist(), h2.tolist(), strict=True))) == distinct
    padded = np.concatenate([x, np.zeros((len(x), 7), x.dtype)], axis=1)
    again = reference.row_hashes([padded])
    assert np.array_equal(again[0], h1) and np.array_equal(again[1], h2)
    floats = np.ones((4, 8), np.float32)  # identical bits below the exponent: still spread
    floats[np.arange(4), np.arange(4)] = 0.0
    slots, _ = reference.slot_and_tag(*reference.row_hashes([floats]))
    assert len(set(slots.tolist())) == 4 and slots.max() < OVERLAP_SLOTS
    wide = np.arange(2 * (HASH_POSITIONS + 3)).reshape(2, -1)
    assert len(set(reference.row_hashes([wide])[0].tolist())) == 2


def _features(n: int, seed: int, dim: int = 16, k: int = 4) -> tuple:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return (rng.normal(size=(n, dim)) + y[:, None]).astype("float32"), y


def _dense(dim: int = 16, k: int = 4) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((dim,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(k)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("copied, fires", [(30, True), (3, False), (0, False)])
def test_keras_fit_counts_validation_rows_trained_on(copied, fires):
    """Float features (the benchmark's b20): 30 of 150 validation rows are in the training
    data -> train-val-overlap with 30 of 150; 3 of 150 (2 %, less than the noise of an accuracy
    on 150 rows) are counted but not reported; a clean split -> 0 of 150 and silent."""
    x, y = _features(600, seed=0)
    xv, yv = _features(150, seed=1)
    x[:copied], y[:copied] = xv[:copied], yv[:copied]
    watch = fit_watched(_dense(), x, y, validation_data=(xv, yv))
    expected = reference.overlap([x], [xv])
    assert expected == copied
    last = watch.run.epoch_records[-1]
    assert (last["val_overlap"], last["val_hashed"]) == (expected, 150)
    finding = next((f for f in watch.findings if f.code == "train-val-overlap"), None)
    if fires:
        assert finding is not None and finding.severity == "warning"
        assert f"{copied} of 150 validation rows (20.0%)" in finding.evidence
    else:
        assert finding is None and not watch.run.meta.get("notes")


def test_keras_xla_steps_per_execution_and_dict_inputs_count_token_rows():
    """Token ids in a dict (with a padding mask), XLA, 3 steps per execution: the table is
    written inside the compiled loop and the count equals the reference's."""
    x, y, mask = token_data(n=384, k=4)
    xv, yv, maskv = token_data(n=96, k=4, seed=7)
    x[:12], mask[:12], y[:12] = xv[:12], maskv[:12], yv[:12]
    inp = keras.Input((x.shape[1],), dtype="int32", name="token_ids")
    pad = keras.Input((x.shape[1],), dtype="bool", name="padding_mask")
    core = embedding_classifier(k=4)
    model = keras.Model({"token_ids": inp, "padding_mask": pad}, core(inp))
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
        steps_per_execution=3,
    )
    train = {"token_ids": x, "padding_mask": mask}
    val = {"token_ids": xv, "padding_mask": maskv}
    watch = fit_watched(model, train, y, validation_data=(val, yv))
    expected = reference.overlap([x], [xv])
    assert expected >= 12
    last = watch.run.epoch_records[-1]
    assert (last["val_overlap"], last["val_hashed"]) == (expected, 96)
    assert "train-val-overlap" in codes(watch)


@pytest.mark.parametrize("copied", [40, 0])
def test_torch_probe_counts_validation_rows_trained_on(copied):
    """The PyTorch probe: training forwards fill the table, no_grad forwards are counted."""
    torch = pytest.importorskip("torch")
    from torch_training import live_codes, model_and_optimizer, tensors, train_loop

    ids, mask, y = tensors(n=512)
    n_val = 4 * 32  # train_loop validates on the last 4 batches of 32
    for t in (ids, mask, y):
        t[:copied] = t[-n_val:][:copied].clone()
    model, opt = model_and_optimizer()
    watch = train_loop(model, opt, torch.nn.CrossEntropyLoss(), (ids, mask, y))
    expected = reference.overlap([ids[:-n_val].numpy()], [ids[-n_val:].numpy()])
    assert expected == copied
    assert [(e["val_overlap"], e["val_hashed"]) for e in watch.run.epoch_records] == [
        (expected, n_val)
    ] * 2
    assert ("train-val-overlap" in live_codes(watch)) == bool(copied)
    assert "row_hash_error" not in watch.run.meta


def test_torch_probe_hash_equals_the_reference():
    torch = pytest.importorskip("torch")
    from bertlab.probes.torch import overlap

    rng = np.random.default_rng(3)
    for a in (
        rng.integers(0, 30000, (5, 40)),
        rng.normal(size=(5, 3, 4)).astype("float32"),
        rng.integers(-9, 9, (5, HASH_POSITIONS + 10)),
    ):
        ref = reference.slot_and_tag(*reference.row_hashes([a]))
        got = overlap.slot_and_tag([torch.as_tensor(a)])
        for g, r in zip(got, ref, strict=True):
            np.testing.assert_array_equal(g.numpy(), r)
