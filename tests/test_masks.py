"""Masks that do not mask: an attention/padding mask that is 1 on the positions holding the pad
id (``mask_pad_share``) names missing-attention-mask, Keras and PyTorch; the tokenizer's own mask
stays silent (the healthy suite's masked BERTs too)."""

from __future__ import annotations

import warnings

import keras
import numpy as np
from training import SEQ, VOCAB, fit_watched, sparse_ce, token_data


def _keras_encoder():
    import keras_hub

    keras.utils.set_random_seed(0)
    ids = keras.Input((SEQ,), dtype="int32", name="input_ids")
    mask = keras.Input((SEQ,), dtype="int32", name="attention_mask")
    h = keras_hub.layers.TokenAndPositionEmbedding(VOCAB, SEQ, 32)(ids)
    h = keras_hub.layers.TransformerEncoder(64, 2)(h, padding_mask=mask)
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model({"input_ids": ids, "attention_mask": mask}, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=sparse_ce())
    return model


def test_keras_mask_of_all_ones_does_not_mask():
    x, y, mask = token_data(n=128, k=4)
    ones = {"input_ids": x, "attention_mask": np.ones_like(x)}
    watch = fit_watched(_keras_encoder(), ones, y, epochs=1)
    found = {f.code: f for f in watch.findings}["missing-attention-mask"]
    assert found.title == "The attention mask does not mask the padding"
    assert "`attention_mask` is fed, but it says attend on 100 %" in found.evidence
    real = {"input_ids": x, "attention_mask": mask.astype("int32")}
    healthy = fit_watched(_keras_encoder(), real, y, epochs=1)
    assert "missing-attention-mask" not in {d["code"] for d in healthy.run.findings}


def _torch_run(mask_of):
    import torch
    from torch_training import tensors, tiny_hf_bert

    import bertlab.torch

    model = tiny_hf_bert(max_positions=SEQ)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, mask, y = tensors(n=128)
    watch = bertlab.torch.Watch(model, optimizer, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(0, 128, 16):
            s = slice(i, i + 16)
            optimizer.zero_grad()
            model(input_ids=ids[s], labels=y[s], **mask_of(ids[s], mask[s])).loss.backward()
            optimizer.step()
    watch.close()
    return watch


def test_torch_all_ones_mask_and_no_mask_are_named_the_tokenizers_mask_is_not():
    import torch

    ones = _torch_run(lambda ids, mask: {"attention_mask": torch.ones_like(ids)})
    found = {f.code: f for f in ones.findings}["missing-attention-mask"]
    assert "an attention mask is fed, but it says attend on 100 %" in found.evidence
    bare = _torch_run(lambda ids, mask: {})
    assert (
        "no padding/attention mask"
        in {f.code: f for f in bare.findings}["missing-attention-mask"].evidence
    )
    healthy = _torch_run(lambda ids, mask: {"attention_mask": mask})
    assert "missing-attention-mask" not in {d["code"] for d in healthy.run.findings}
