"""update_ratio and mask_pad_share, measured in the step, equal the numpy reference.

The reference (``bertlab.reference``) is computed from the weights before and after one real
optimizer step (Keras ``fit`` on one batch; a PyTorch loop of one step) and from the batch's
token ids and mask.
"""

from __future__ import annotations

import keras
import numpy as np
import torch
from conftest import SEQ, token_data
from torch_training import model_and_optimizer, tensors

import bertlab
import bertlab.torch
from bertlab import reference

B = 32


def _masked_model(k: int = 4) -> keras.Model:
    keras.utils.set_random_seed(0)
    ids = keras.Input((SEQ,), dtype="int32", name="input_ids")
    mask = keras.Input((SEQ,), dtype="int32", name="attention_mask")
    h = keras.layers.Embedding(300, 16)(ids)
    h = keras.layers.GlobalAveragePooling1D()(h, mask=keras.ops.cast(mask, "bool"))
    return keras.Model({"input_ids": ids, "attention_mask": mask}, keras.layers.Dense(k)(h))


def _columns(history, prefix: str) -> np.ndarray:
    return history[[c for c in history.columns if c.startswith(prefix)]].to_numpy(float)


def test_keras_update_ratio_and_mask_pad_share_match_reference():
    x, y, mask = token_data(n=B, k=4)
    mask = mask.astype("int32")
    mask[:4, -1] = 1  # four rows whose mask attends a pad position (id 0)
    model = _masked_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.SparseCategoricalCrossentropy(True)
    )
    before = [w.copy() for w in model.get_weights()]
    watch = bertlab.Watch(verbose=False)
    model.fit(
        {"input_ids": x, "attention_mask": mask},
        y,
        batch_size=B,
        epochs=1,
        shuffle=False,
        callbacks=[watch],
        verbose=0,
    )
    after = model.get_weights()
    groups = [0, 1, 1]  # embedding; dense kernel and bias
    expected = reference.update_ratios(before, after, groups, 2, sample=True)
    got = _columns(watch.history, "update_ratio")[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert 1e-6 < expected.min() and expected.max() < 1e-1  # Adam(1e-4): a real, small step
    share = watch.history["mask_pad_share"].iloc[0]
    assert np.isclose(share, reference.mask_pad_share(x, mask), rtol=1e-6)
    assert 0 < share < 1


def test_keras_update_ratio_resolves_tiny_steps():
    """At lr 1e-9 the ratio is ~1e-9: the real difference, not rounded to 0 or swamped."""
    x, y, _ = token_data(n=B, k=4)
    model = _masked_model()
    model.compile(
        optimizer=keras.optimizers.SGD(1e-9), loss=keras.losses.SparseCategoricalCrossentropy(True)
    )
    before = [w.copy() for w in model.get_weights()]
    watch = bertlab.Watch(verbose=False)
    data = {"input_ids": x, "attention_mask": np.ones_like(x)}
    model.fit(data, y, batch_size=B, epochs=1, shuffle=False, callbacks=[watch], verbose=0)
    expected = reference.update_ratios(before, model.get_weights(), [0, 1, 1], 2, sample=True)
    got = _columns(watch.history, "update_ratio")[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    assert np.all(got < 1e-7)
    assert watch.history["mask_pad_share"].iloc[0] == 1.0  # every pad position attended


def test_torch_update_ratio_and_mask_pad_share_match_reference():
    model, optimizer = model_and_optimizer(lr=1e-3)
    ids, mask, y = tensors(n=B)
    mask[:4, -1] = 1
    loss_fn = torch.nn.CrossEntropyLoss()
    before = [p.detach().clone().numpy() for p in model.parameters()]
    watch = bertlab.torch.Watch(model, optimizer, loss_fn, verbose=False)
    model.train()
    loss_fn(model(ids, mask), y).backward()
    optimizer.step()
    after = [p.detach().numpy() for p in model.parameters()]
    watch.close()
    expected = reference.update_ratios(before, after, [0, 1, 1], 2)  # emb; head weight, bias
    np.testing.assert_allclose(_columns(watch.history, "update_ratio")[0], expected, rtol=1e-4)
    share = watch.history["mask_pad_share"].iloc[0]
    assert np.isclose(share, reference.mask_pad_share(ids.numpy(), mask.numpy()), rtol=1e-6)
    assert 0 < share < 1
