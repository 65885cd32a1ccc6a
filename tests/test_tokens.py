"""The [UNK] and pad ids learnt from what produced the token ids, so that high-unk-rate fires
(and the pad id is known) without the user passing an id: Keras and PyTorch Watch."""

from __future__ import annotations

import os
import tempfile
import warnings

import keras
import keras_hub
import numpy as np
from training import sparse_ce

import bertlab
from bertlab.probes.tokens import special_ids

WORDS = ["the", "movie", "film", "was", "very", "good", "bad", "great", "awful", "plot"]


def _texts(n: int, seed: int = 0):
    """Reviews whose label is carried by good/great vs bad/awful; a third of the words are
    names the vocabulary never saw (out-of-vocabulary: [UNK])."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    texts = []
    for label in y:
        words = list(rng.choice(WORDS[:5], size=4))
        words.append(rng.choice(["good", "great"] if label else ["bad", "awful"]))
        words += [f"name{rng.integers(0, 10_000)}" for _ in range(3)]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, y.astype("int64")


def test_special_ids_of_every_kind_of_tokenizer():
    tv = keras.layers.TextVectorization(max_tokens=50, output_sequence_length=8)
    tv.adapt(["a b c", "b c d"])
    assert special_ids(tv) == (1, 0)  # '' pads at 0, [UNK] at 1
    lookup = keras.layers.StringLookup()
    lookup.adapt(["a", "b"])
    assert special_ids(lookup) == (0, None)  # no mask token: [UNK] first
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    hub = keras_hub.models.BertTokenizer(vocabulary=vocab)
    assert special_ids(hub) == (1, 0)
    assert special_ids(keras_hub.models.BertTextClassifierPreprocessor(hub, sequence_length=8)) == (
        1,
        0,
    )
    from transformers import BertTokenizerFast

    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a"]))
    assert special_ids(BertTokenizerFast(os.path.join(folder, "vocab.txt"))) == (3, 0)
    assert special_ids(7) == (None, None) and special_ids(None) == (None, None)


def test_text_vectorization_before_the_model_gives_the_unk_id():
    texts, y = _texts(320)
    vectorize = keras.layers.TextVectorization(max_tokens=200, output_sequence_length=10)
    vectorize.adapt(WORDS)  # the vocabulary was built on other text: the names are [UNK]
    x = vectorize(np.array(texts)).numpy().astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            keras.layers.Embedding(200, 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = bertlab.Watch(tokenizer=vectorize, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[watch])
    assert watch.run.meta["model"]["unk_token_id"] == 1
    assert watch.run.meta["model"]["pad_token_id"] == 0
    found = {f.code: f for f in watch.findings}
    assert found["high-unk-rate"].severity == "warning"
    assert "(id 1)" in found["high-unk-rate"].evidence
    assert "37.5%" in found["high-unk-rate"].evidence  # 3 of 8 real tokens per row


def test_torch_watch_takes_the_ids_from_a_hugging_face_tokenizer():
    import torch
    from torch import nn
    from torch_training import model_and_optimizer
    from transformers import BertTokenizerFast

    import bertlab.torch

    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]))
    tokenizer = BertTokenizerFast(os.path.join(folder, "vocab.txt"))
    texts, y = _texts(256, seed=1)
    enc = tokenizer(texts, padding="max_length", max_length=16, return_tensors="pt")
    ids, mask, labels = enc["input_ids"], enc["attention_mask"], torch.tensor(y)
    model, optimizer = model_and_optimizer(k=2)
    watch = bertlab.torch.Watch(model, optimizer, nn.CrossEntropyLoss(), tokenizer=tokenizer)
    watch.verbose = False
    for i in range(0, 256, 32):
        optimizer.zero_grad()
        s = slice(i, i + 32)
        nn.CrossEntropyLoss()(model(ids[s], mask[s]), labels[s]).backward()
        optimizer.step()
    watch.close()
    assert watch.run.meta["model"]["unk_token_id"] == 1
    assert watch.run.meta["model"]["pad_token_id"] == 0
    assert {f.code: f for f in watch.findings}["high-unk-rate"].severity == "warning"
