"""The [UNK] and padding ids of whatever produced the token ids (duck-typed, no framework import).

``high-unk-rate`` and ``missing-attention-mask`` need two ids that only the tokenizer knows. The
user should not have to look them up: ``Watch(tokenizer=...)`` accepts any of

* a Hugging Face tokenizer (``unk_token_id``, ``pad_token_id``);
* a KerasHub tokenizer (``oov_token`` / ``pad_token`` via ``token_to_id``, or the ``*_token_id``
  attributes its special tokens set), or a KerasHub preprocessor (its ``.tokenizer``);
* a Keras ``TextVectorization`` or ``StringLookup`` (its vocabulary: ``TextVectorization`` puts
  the padding ``''`` at 0 and ``[UNK]`` at 1; ``StringLookup`` has ``[UNK]`` first unless a
  ``mask_token`` takes index 0).

Anything else gives ``None`` ("unknown"), never a guess.
"""

from __future__ import annotations

from typing import Any


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == value else None


def _lookup_ids(layer: Any) -> tuple[int | None, int | None]:
    """(unk, pad) of a Keras TextVectorization / StringLookup / IntegerLookup vocabulary."""
    try:
        vocab = list(layer.get_vocabulary())
    except Exception:  # noqa: BLE001 - not adapted yet: unknown
        return None, None
    oov = getattr(layer, "oov_token", None)
    if oov is None:  # TextVectorization keeps its StringLookup inside
        oov = getattr(getattr(layer, "_lookup_layer", None), "oov_token", "[UNK]")
    unk = vocab.index(oov) if oov in vocab else None
    mask = getattr(layer, "mask_token", None)
    if type(layer).__name__ == "TextVectorization":
        pad = 0 if vocab and vocab[0] == "" else None
    else:
        pad = vocab.index(mask) if mask is not None and mask in vocab else None
    return unk, pad


def _keras_hub_ids(tokenizer: Any) -> tuple[int | None, int | None]:
    """(unk, pad) of a KerasHub tokenizer (``oov_token``/``pad_token`` through its vocabulary)."""
    ids = []
    for attr, names in (("oov_token", ("[UNK]", "<unk>")), ("pad_token", ("[PAD]", "<pad>"))):
        found = None
        for token in (getattr(tokenizer, attr, None), *names):
            if found is not None or not isinstance(token, str):
                continue
            try:
                found = _int(tokenizer.token_to_id(token))
            except Exception:  # noqa: BLE001 - not in this vocabulary
                found = None
        ids.append(found)
    return ids[0], ids[1]


def vocabulary_kind(source: Any) -> str | None:
    """``"word"`` for a Keras lookup layer (whole words: out-of-vocabulary words are common),
    ``"subword"`` for a Hugging Face / KerasHub tokenizer or preprocessor (WordPiece, BPE,
    SentencePiece fall back to pieces), ``None`` when not known."""
    if source is None or isinstance(source, (int, float)):
        return None
    if hasattr(source, "get_vocabulary") and (
        hasattr(source, "num_oov_indices") or type(source).__name__ == "TextVectorization"
    ):
        return "word"
    if hasattr(source, "unk_token_id") or hasattr(source, "token_to_id"):
        return "subword"
    inner = getattr(source, "tokenizer", None)
    return vocabulary_kind(inner) if inner is not None and inner is not source else None


def special_ids(source: Any) -> tuple[int | None, int | None]:
    """The ``(unk_token_id, pad_token_id)`` of a tokenizer, preprocessor or lookup layer.

    ``None`` for an id the source does not define (a GPT-2 tokenizer has no pad token).
    """
    if source is None:
        return None, None
    if hasattr(source, "get_vocabulary") and (
        hasattr(source, "num_oov_indices") or type(source).__name__ == "TextVectorization"
    ):
        return _lookup_ids(source)
    # Hugging Face (and KerasHub special tokens) name the ids; KerasHub's [UNK] is its oov_token
    unk = _int(getattr(source, "unk_token_id", None))
    pad = _int(getattr(source, "pad_token_id", None))
    if hasattr(source, "token_to_id") and (unk is None or pad is None):
        hub_unk, hub_pad = _keras_hub_ids(source)
        unk = unk if unk is not None else hub_unk
        pad = pad if pad is not None else hub_pad
    if unk is not None or pad is not None:
        return unk, pad
    inner = getattr(source, "tokenizer", None)  # a KerasHub preprocessor
    if inner is not None and inner is not source:
        return special_ids(inner)
    return None, None
