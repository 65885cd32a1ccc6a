"""high-unk-rate: a large share of the tokens are the tokenizer's unknown token ([UNK])."""

from __future__ import annotations

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: A WordPiece/BPE vocabulary that matches the text leaves well under 0.1 % [UNK]: it falls back
#: to sub-words and single characters, so only characters missing from the vocabulary (emoji,
#: rare scripts) become [UNK]. Ten times that is worth knowing (info)...
INFO_SHARE = 0.01
#: ...and one token in twenty means whole words are invisible to the model: the tokenizer does
#: not fit the text (case, accents, language) - a warning. (Word-level vocabularies such as
#: TextVectorization(max_tokens=20000) leave 2-5 % out-of-vocabulary words; this stays above.)
WARN_SHARE = 0.05
#: A word-level vocabulary (TextVectorization, StringLookup) leaves whole words out by design:
#: by Zipf's law the 5,000 most frequent words cover roughly 85-90 % of running English text, so
#: 10-15 % out-of-vocabulary is ordinary (benchmark h13: 10.2 % with 5,000 words of BBC News). A
#: quarter of the words lost is a mismatch (another normalisation, case or language: b11 loses
#: over half).
WORD_INFO_SHARE = 0.05
WORD_WARN_SHARE = 0.25
#: Only an id was given (the kind of vocabulary is unknown): warn above what a word-level one
#: leaves normally. Cased text through an uncased WordPiece vocabulary loses 18.9 % (MiniLM, BBC
#: leads; tests/test_tokenization.py).
UNKNOWN_WARN_SHARE = 0.15
TITLE = "Many tokens are [UNK]"


def check(ctx: Context) -> Evidence | None:
    data = ctx.data
    kind = ctx.facts.vocabulary_kind
    subword = kind == "subword"
    info = INFO_SHARE if subword else WORD_INFO_SHARE
    warn = {"subword": WARN_SHARE, "word": WORD_WARN_SHARE}.get(kind or "", UNKNOWN_WARN_SHARE)
    if data is None or data.unk_share is None or data.unk_share < info:
        return None
    share = data.unk_share
    unk = ctx.facts.unk_token_id
    text = f"{share:.1%} of the real (non-padding) tokens are [UNK] (id {unk})"
    if not subword:
        text += " (a word-level vocabulary loses 10-15 % of running words normally)"
    if share >= warn:
        return Evidence(
            text + f": about one token in {max(1, round(1 / share))} carries no information",
            severity="warning",
            title=f"{pct(share)} of tokens are [UNK]: the tokenizer does not fit the text",
        )
    return Evidence(text, severity="info", title=TITLE)


RULE = Rule(
    check=check,
    code="high-unk-rate",
    severity="info",
    phase="preflight",
    panel="data",
    rank=23,
    title=TITLE,
    explanation=(
        "The tokenizer maps every piece it cannot find in its vocabulary to [UNK], and the model "
        "sees the same vector for all of them: those words are simply lost. Sub-word "
        "vocabularies almost never need [UNK] on text they fit, so a high share means a "
        "mismatch: cased text with an uncased vocabulary and lowercasing turned off (every "
        "capitalised word becomes [UNK]), accents that the vocabulary strips, another language "
        "or script, or the vocabulary file of a different model."
    ),
    fix=(
        "Use the tokenizer that belongs to the checkpoint with its own settings, e.g. "
        "`keras_hub.models.BertTokenizer.from_preset(preset)` (uncased presets lowercase and "
        "strip accents for you), or pass `lowercase=True, strip_accents=True` to "
        "`keras_hub.tokenizers.WordPieceTokenizer` for an uncased vocabulary; pick a "
        "multilingual checkpoint for non-English text. List the texts that lose words: "
        "`unk = tokenizer.token_to_id(tokenizer.oov_token)`, then "
        "`[t for t in texts if unk in np.asarray(tokenizer(t))]`."
    ),
    fixes={
        "torch": (
            "Use the tokenizer that belongs to the checkpoint with its own settings: "
            "`AutoTokenizer.from_pretrained(name)` with the model's name (uncased checkpoints "
            "lowercase and strip accents for you); pick a multilingual checkpoint for "
            "non-English text. List the texts that lose words: `[t for t in texts if "
            "tokenizer.unk_token_id in tokenizer(t)['input_ids']]`."
        ),
    },
)
