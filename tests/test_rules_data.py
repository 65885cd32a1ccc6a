"""Real trainings where the data and setup rules must fire (token-id-out-of-range, nan-input,
class-imbalance, unshuffled-batches, split-label-shift, heavy-truncation, high-unk-rate,
missing-attention-mask, frozen-layers), each next to the near-identical healthy setup where it
must stay silent, plus pure-numpy checks of edges a training cannot easily reach."""

from __future__ import annotations

import re
import warnings

import keras
import keras_hub
import numpy as np
import pytest
from training import (
    SEQ,
    VOCAB,
    bert_inputs,
    codes,
    embedding_classifier,
    fit_watched,
    sparse_ce,
    tiny_bert,
    token_data,
)

import bertlab
from bertlab.datafacts import DataFacts
from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.rules import (
    class_imbalance,
    heavy_truncation,
    missing_attention_mask,
    split_label_shift,
    token_id_out_of_range,
    unshuffled_batches,
)
from bertlab.rules.base import Context


def _finding(watch, code):
    found = [f for f in watch.findings if f.code == code]
    assert found, f"{code} not live; live: {[f.code for f in watch.findings]}"
    return found[0]


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return float(match.group(1))


def _fit(model, x, y, watch, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, callbacks=[watch], verbose=0, **kwargs)
    return watch


# ---------------------------------------------------------------------- token-id-out-of-range
def test_tokenizer_larger_than_model_vocabulary_fails_with_a_note():
    """Forum: ids from a tokenizer whose vocabulary is larger than the model's embedding table.
    On CPU the lookup stops fit with 'indices[..] = N is not in [0, N)'; the exception must
    name the cause."""
    x, y, mask = token_data(n=128, k=4)
    big = np.random.default_rng(0).integers(VOCAB, VOCAB + 40, size=x.shape)
    rows = np.arange(len(x)) >= 64  # the first batches are fine, later ones are not
    x = np.where(rows[:, None] & mask & (np.arange(SEQ) > 0), big, x).astype("int32")
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = bertlab.Watch(verbose=False)
    with pytest.raises(Exception, match="is not in") as info:
        _fit(model, x, y, watch, batch_size=16, epochs=1, shuffle=False)
    notes = [n for n in getattr(info.value, "__notes__", []) if "[token-id-out-of-range]" in n]
    assert notes and notes[0].startswith("bertlab:")
    finding = _finding(watch, "token-id-out-of-range")
    assert finding.severity == "error"
    assert "embedding" in finding.evidence and f"0..{VOCAB - 1}" in finding.evidence
    assert _number(r"token id (\d+)", finding.evidence) >= VOCAB
    assert watch.run.steps == 4  # the four good batches were recorded before the failure


def test_token_ids_checked_against_the_largest_embedding():
    """What the GPU case relies on (there the lookup returns zeros instead of failing)."""
    facts = ModelFacts(embeddings=[("segment_embedding", 2), ("token_embedding", 30522)])
    over = Context(facts=facts, data=DataFacts(n=32, token_min=0, token_max=30600))
    ev = token_id_out_of_range.check(over)
    assert ev is not None and "token_embedding" in ev.text and "30600" in ev.text
    inside = Context(facts=facts, data=DataFacts(n=32, token_min=0, token_max=30521))
    assert token_id_out_of_range.check(inside) is None
    negative = Context(facts=facts, data=DataFacts(n=32, token_min=-100, token_max=500))
    assert "-100" in token_id_out_of_range.check(negative).text
    unknown = Context(facts=ModelFacts(), data=DataFacts(n=32, token_min=0, token_max=10**6))
    assert token_id_out_of_range.check(unknown) is None
    # A gather error elsewhere (not an embedding's size, not an embedding node) is not ours.
    other = Context(facts=facts, error="indices[0] = 7 is not in [0, 5)\n{{node model/gather}}")
    assert token_id_out_of_range.check(other) is None


# ---------------------------------------------------------------------- nan-input
def test_nan_in_float_features_is_named_as_the_cause_of_nan_loss():
    """Token ids plus numeric features; one feature value is missing (NaN)."""
    x, y, _ = token_data(n=256, k=4)
    feats = np.random.default_rng(0).normal(size=(256, 3)).astype("float32")
    feats[70, 1] = np.nan
    keras.utils.set_random_seed(0)
    ids = keras.Input((SEQ,), dtype="int32", name="token_ids")
    num = keras.Input((3,), name="features")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 8)(ids))
    out = keras.layers.Dense(4)(keras.layers.Concatenate()([h, num]))
    model = keras.Model({"token_ids": ids, "features": num}, out)
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = fit_watched(model, {"token_ids": x, "features": feats}, y, epochs=1)
    finding = _finding(watch, "nan-input")
    assert finding.severity == "error"
    assert _number(r"(\d+) of 8 batches had NaN", finding.evidence) == 1
    assert _finding(watch, "nan-loss").cause == "nan-input"


# ---------------------------------------------------------------------- class-imbalance
def _imbalanced(n=1024, positive=0.12, seed=3):
    """88/12 labels; only 30 % of the rare rows carry a (weak) marker token."""
    rng = np.random.default_rng(seed)
    x, _, _ = token_data(n=n, k=2, learnable=False, seed=seed)
    y = (rng.random(n) < positive).astype("int64")
    x[:, 0] = np.where((y == 1) & (rng.random(n) < 0.3), 1, rng.integers(5, VOCAB, n))
    return x, y


def test_imbalanced_labels_model_predicts_only_the_majority():
    """Forum: '88 % accuracy but the model never predicts the positive class'."""
    x, y = _imbalanced()
    model = embedding_classifier(k=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce(), metrics=["accuracy"])
    watch = fit_watched(model, x, y, epochs=3)
    finding = _finding(watch, "class-imbalance")
    assert finding.severity == "warning"
    share = _number(r"class 0 holds (\d+) %", finding.evidence)
    assert abs(share - 100 * np.mean(y == 0)) < 1.5
    predicted = _number(r"predicted the rare classes \(1\) (\d+) times", finding.evidence)
    occurring = _number(r"while they occur (\d+) times", finding.evidence)
    assert predicted < 0.5 * occurring
    # Keras's accuracy sits at the majority share: the symptom the rule explains.
    assert abs(watch.epochs.accuracy.iloc[-1] - np.mean(y == 0)) < 0.02


def test_imbalanced_labels_with_class_weight_are_only_info():
    x, y = _imbalanced()
    counts = np.bincount(y)
    model = embedding_classifier(k=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce())
    weights = {c: len(y) / (2 * counts[c]) for c in range(2)}
    watch = fit_watched(model, x, y, epochs=2, class_weight=weights)
    finding = _finding(watch, "class-imbalance")
    assert finding.severity == "info" and "weights reach the loss" in finding.evidence


def test_rare_multilabel_label_is_imbalance():
    layout = Layout("multilabel", 3)
    data = DataFacts(n=1000, label_counts=np.array([480.0, 30.0, 300.0]), multihot_share=0.2)
    ctx = Context(facts=ModelFacts(loss="binary_crossentropy"), layout=layout, data=data)
    ev = class_imbalance.check(ctx)
    assert ev is not None and ev.severity == "info" and "label 1 positive in 3 %" in ev.text
    data.label_counts = np.array([480.0, 300.0, 600.0])
    assert class_imbalance.check(ctx) is None


# ---------------------------------------------------------------------- unshuffled / split shift
def _sorted_by_class(n=512, k=4):
    x, y, _ = token_data(n=n, k=k)
    order = np.argsort(y, kind="stable")
    return x[order], y[order]


def test_sorted_data_with_shuffle_false_and_validation_split():
    """The classic: a data set grouped by class, fit(shuffle=False, validation_split=0.2)."""
    x, y = _sorted_by_class()
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce(), metrics=["accuracy"])
    watch = fit_watched(model, x, y, epochs=2, shuffle=False, validation_split=0.2)
    unshuffled = _finding(watch, "unshuffled-batches")
    assert unshuffled.severity == "warning"
    assert unshuffled.extra["single_class_batches"] > 0.5
    observed = _number(r"per batch ([\d.]+) nats", unshuffled.evidence)
    expected = _number(r"vs ([\d.]+) for random batches", unshuffled.evidence)
    assert observed < 0.5 * expected
    shift = _finding(watch, "split-label-shift")
    assert shift.severity == "warning"
    assert "validation labels {3: 100%}" in shift.evidence  # only the last class is validated
    assert "never validated" in shift.evidence
    assert _number(r"distance ([\d.]+)", shift.evidence) > 0.5


def test_sorted_data_shuffled_by_fit_small_batches_only_split_shift():
    """fit's default shuffle=True mixes the training batches (even batches of 4, whose entropy is
    naturally low), but validation_split was taken from the sorted end before shuffling."""
    x, y = _sorted_by_class(n=320)
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=1, batch_size=4, validation_split=0.2)
    assert "unshuffled-batches" not in {d["code"] for d in watch.run.findings}
    assert "split-label-shift" in codes(watch, ("warning",))


def test_shuffled_small_skewed_batches_never_look_unshuffled():
    """Random batches of 4 from 95/5 labels: low entropy by nature, never a finding."""
    rng = np.random.default_rng(0)
    layout = Layout("binary", 1)
    for _ in range(20):
        y = (rng.random(400) < 0.05).astype(int)
        batches = y.reshape(100, 4)
        counts = np.stack([4 - batches.sum(1), batches.sum(1)], axis=1).astype(float)
        cols = {"step": np.arange(100.0), "label_count": counts}
        assert unshuffled_batches.check(Context(ModelFacts(), layout, cols)) is None
    y.sort()
    batches = y.reshape(100, 4)
    counts = np.stack([4 - batches.sum(1), batches.sum(1)], axis=1).astype(float)
    cols = {"step": np.arange(100.0), "label_count": counts}
    assert unshuffled_batches.check(Context(ModelFacts(), layout, cols)) is not None


def test_random_splits_of_realistic_size_never_shift():
    """300 random 80/20 splits (50-400 validation rows, 2-10 classes, balanced or skewed)."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        k, n = int(rng.integers(2, 11)), int(rng.integers(250, 2001))
        p = rng.dirichlet(np.full(k, rng.choice([0.5, 5.0])))
        y = rng.choice(k, size=n, p=p)
        cut = int(0.8 * n)
        train, val = np.bincount(y[:cut], minlength=k), np.bincount(y[cut:], minlength=k)
        ctx = Context(
            ModelFacts(),
            Layout("multiclass", k),
            epochs=[{"epoch": 0, "val_label_count": val}],
            data=DataFacts(n=cut, label_counts=train.astype(float)),
        )
        assert split_label_shift.check(ctx) is None, (train, val)


# ---------------------------------------------------------------------- heavy-truncation
def test_most_rows_cut_at_max_length():
    x, y, mask = token_data(n=256, k=4)
    rng = np.random.default_rng(1)
    cut = rng.random(len(x)) < 0.7  # 70 % of the texts were longer than SEQ tokens
    x[cut] = np.where(mask[cut], x[cut], rng.integers(5, VOCAB, size=x[cut].shape))
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=1)
    finding = _finding(watch, "heavy-truncation")
    assert finding.severity == "warning"
    full = np.mean((x != 0).all(axis=1))
    assert abs(_number(r"(\d+) % of rows fill", finding.evidence) - 100 * full) < 1.5
    assert f"all {SEQ} positions" in finding.evidence


def test_full_rows_of_dynamically_padded_batches_are_not_truncation():
    """Length-bucketed batches padded to their own longest row: full rows, nothing cut."""
    n = 60
    longest = np.where(np.arange(n) < 55, 20.0, 64.0)  # 55 narrow batches, 5 at full width
    cols = {
        "step": np.arange(n, dtype=float),
        "full_share": np.full(n, 0.6),
        "len_max": longest,
        "batch_size": np.full(n, 32.0),
        "len_mean": longest - 2,
    }
    data = DataFacts(n=32 * n, full_share=0.6, has_mask=True, token_min=0)
    ctx = Context(ModelFacts(), Layout("multiclass", 2), cols, data=data)
    assert heavy_truncation.check(ctx) is None  # 5 of 60 batches at 64: 5 % of rows
    cols["len_max"] = np.full(n, 64.0)
    ev = heavy_truncation.check(ctx)
    assert ev is not None and ev.severity == "warning" and "60 %" in ev.text
    cols["full_share"] = np.full(n, 0.3)  # a moderate share is worth knowing, no more
    assert heavy_truncation.check(ctx).severity == "info"


# ---------------------------------------------------------------------- high-unk-rate
def test_unk_id_passed_to_watch():
    x, y, mask = token_data(n=256, k=4)
    rng = np.random.default_rng(4)
    unk = 4
    # only an id is known (no tokenizer): judged as a word-level vocabulary could be, where
    # 10-15 % out-of-vocabulary is ordinary; a third of the words lost is not
    hit = mask & (rng.random(x.shape) < 0.35) & (np.arange(SEQ) > 0)
    x = np.where(hit, unk, x).astype("int32")
    model = embedding_classifier(k=4)
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = _fit(model, x, y, bertlab.Watch(verbose=False, unk_token_id=unk), epochs=1)
    finding = _finding(watch, "high-unk-rate")
    assert finding.severity == "warning"
    share = np.sum(x == unk) / np.sum(mask)
    assert abs(_number(r"([\d.]+)% of the real", finding.evidence) - 100 * share) < 1.0


def test_cased_text_through_uncased_vocabulary_without_lowercasing():
    """A KerasHub BERT with its own preprocessor (the [UNK] id is found automatically) and a
    lowercase vocabulary, but lowercase=False: every capitalised word becomes [UNK]."""
    words = ["the", "movie", "film", "was", "very", "good", "bad", "great", "awful", "acting"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=False)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=12,
    )
    model = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=preprocessor)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 96)
    texts = np.array(
        [
            f"The {'Movie' if rng.random() < 0.5 else 'film'} was very {'Good' if c else 'Bad'}"
            for c in y
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(5e-5), loss=sparse_ce())
    watch = _fit(model, texts, y, bertlab.Watch(verbose=False), epochs=1, batch_size=16)
    assert watch.run.meta["model"]["unk_token_id"] == 1
    finding = _finding(watch, "high-unk-rate")
    assert finding.severity == "warning" and "(id 1)" in finding.evidence
    assert _number(r"([\d.]+)% of the real", finding.evidence) > 20


# ---------------------------------------------------------------------- missing-attention-mask
def _encoder_model(with_mask: bool):
    keras.utils.set_random_seed(0)
    ids = keras.Input((SEQ,), dtype="int32", name="input_ids")
    inputs = {"input_ids": ids}
    h = keras_hub.layers.TokenAndPositionEmbedding(VOCAB, SEQ, 32)(ids)
    if with_mask:
        inputs["attention_mask"] = keras.Input((SEQ,), dtype="int32", name="attention_mask")
        h = keras_hub.layers.TransformerEncoder(64, 2)(h, padding_mask=inputs["attention_mask"])
    else:
        h = keras_hub.layers.TransformerEncoder(64, 2)(h)
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=sparse_ce())
    return model


def test_hf_style_input_ids_without_attention_mask():
    """HF-style `input_ids` into a TransformerEncoder, `attention_mask` forgotten."""
    x, y, mask = token_data(n=64, k=4)
    watch = fit_watched(_encoder_model(False), {"input_ids": x}, y, epochs=1)
    finding = _finding(watch, "missing-attention-mask")
    assert finding.severity == "warning" and "`input_ids`" in finding.evidence
    pad = _number(r"with (\d+) % padding", finding.evidence)
    assert abs(pad - 100 * (1 - mask.mean())) < 1.5
    data = {"input_ids": x, "attention_mask": mask.astype("int32")}
    healthy = fit_watched(_encoder_model(True), data, y, epochs=1)
    assert "missing-attention-mask" not in {d["code"] for d in healthy.run.findings}


def test_implicit_keras_mask_silences_missing_mask():
    """An Embedding(mask_zero=True) hands its mask to the encoder implicitly; once the adapter
    records such layers (``facts.masked_embeddings``) the rule stays silent."""
    facts = ModelFacts(encoders=["TransformerEncoder"])
    meta = {"inputs": {"token_key": "<input>", "mask_key": None}}
    ctx = Context(facts, data=DataFacts(n=64, pad_share=0.4), meta=meta)
    assert "bare token-id tensor" in missing_attention_mask.check(ctx).text
    facts.masked_embeddings = ["token_and_position_embedding/token_embedding"]
    assert missing_attention_mask.check(ctx) is None


# ---------------------------------------------------------------------- frozen-layers
def test_frozen_encoder_explains_the_stall():
    """Forum: 'I froze BERT and the loss does not move': only the 132-parameter head trains on
    features of an encoder that never adapts (here a from-scratch one)."""
    x, y, mask = token_data(n=256, k=4)
    model = tiny_bert(k=4)
    model.backbone.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(2e-4), loss=sparse_ce())
    watch = fit_watched(model, bert_inputs(x, mask), y, epochs=4, batch_size=16)
    frozen = _finding(watch, "frozen-layers")
    assert frozen.severity == "warning"
    facts = watch.run.meta["model"]
    share = 100 * facts["params_trainable"] / facts["params_total"]
    assert abs(_number(r"only ([\d.]+)% of parameters", frozen.evidence) - share) < 0.06
    assert "chance-loss" in frozen.evidence
    assert _finding(watch, "chance-loss").cause == "frozen-layers"


def test_nothing_trainable_is_an_error():
    x, y, _ = token_data(n=64, k=4)
    model = embedding_classifier(k=4)
    model.trainable = False
    model.compile(optimizer="adam", loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=1)
    finding = _finding(watch, "frozen-layers")
    assert finding.severity == "error" and "0 of 4,868" in finding.evidence
