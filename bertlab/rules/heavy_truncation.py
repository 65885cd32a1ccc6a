"""heavy-truncation: many rows fill the whole sequence, i.e. their text was cut at max length."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Share of rows with no padding at all. A max length chosen the usual way (around the 90th-95th
#: percentile of text lengths) leaves 5-10 % of rows full; half the rows full means the typical
#: text loses its end: a warning.
WARN_SHARE = 0.5
#: Twice the usual share: worth knowing (info).
INFO_SHARE = 0.2
TITLE = "Many texts are cut at the maximum sequence length"


def _truncated(ctx: Context) -> tuple[float, int | None] | None:
    """(share of rows that fill the longest sequence length seen, that length).

    A full row of a batch narrower than the longest one was padded to its batch's longest row
    (dynamic padding, length bucketing), not cut: only full rows of batches as wide as the widest
    count. With fixed-length padding this is simply the share of full rows.
    """
    full, longest, size = ctx.col("full_share"), ctx.col("len_max"), ctx.col("batch_size")
    ok = np.isfinite(full) & np.isfinite(longest) & np.isfinite(size) if len(full) else []
    if not np.any(ok):
        data = ctx.data
        share = data.full_share if data is not None else None
        return None if share is None else (share, None)
    full, longest, size = full[ok], longest[ok], size[ok]
    width = int(longest.max())
    at_width = (longest == width) & (full > 0)
    return float(np.sum(full * size * at_width) / max(np.sum(size), 1.0)), width


#: A mask that attends to at least this share of the pad-id positions (``mask_pad_share``) makes
#: rows look full whatever their text: lengths counted from it say nothing about truncation
#: (missing-attention-mask names that mask).
LYING_MASK = 0.5


def check(ctx: Context) -> Evidence | None:
    lying = ctx.col("mask_pad_share")
    lying = lying[np.isfinite(lying)] if len(lying) else lying
    if len(lying) and float(np.median(lying)) >= LYING_MASK:
        return None
    found = _truncated(ctx)
    if found is None or found[0] < INFO_SHARE:
        return None
    data = ctx.data
    share, length = found
    where = f"all {length} positions" if length else "the whole sequence"
    text = f"{pct(share)} of rows fill {where} (no padding): their text was probably cut"
    mean = ctx.col("len_mean")
    if len(mean) and np.isfinite(mean).any():
        text += f"; mean row length {float(np.nanmean(mean)):.0f} tokens"
    unsure = data is not None and data.has_mask is False and (data.token_min or 0) > 0
    if unsure:
        # No mask is fed and id 0 never occurs: padding is only *taken* to be id 0 here.
        return Evidence(
            text + " (no padding mask fed and id 0 never occurs: if your pad id is not 0, "
            "ignore this)",
            severity="info",
            title=TITLE,
        )
    if share >= WARN_SHARE:
        return Evidence(
            text,
            severity="warning",
            title=f"Most texts are truncated at {length or 'max'} tokens",
        )
    return Evidence(text, severity="info", title=TITLE)


RULE = Rule(
    check=check,
    code="heavy-truncation",
    severity="info",
    phase="preflight",
    panel="data",
    rank=27,
    title=TITLE,
    explanation=(
        "A row with no padding at all was almost always longer than the sequence length and "
        "was cut by the tokenizer; everything after the cut never reaches the model. When this "
        "is most rows, the model judges texts by their beginning only, which hurts whenever the "
        "label depends on later parts (reviews often conclude at the end). If you split long "
        "texts into chunks on purpose, rows are full by design and this can be ignored."
    ),
    fix=(
        "Raise the sequence length (BERT-family encoders accept up to 512 tokens), e.g. "
        "`keras_hub.models.BertTextClassifierPreprocessor.from_preset(preset, "
        "sequence_length=256)` or `tokenizer(texts, truncation=True, max_length=256)`; check "
        "the length distribution first: `np.percentile([len(tokenizer(t)) for t in texts], "
        "[50, 90, 95])`. For texts longer than the model allows, keep head and tail tokens or "
        "split into chunks and pool the predictions."
    ),
    fixes={
        "torch": (
            "Raise the sequence length (BERT-family encoders accept up to 512 tokens), e.g. "
            "`tokenizer(texts, truncation=True, max_length=256)`; check the length "
            "distribution first: `np.percentile([len(ids) for ids in "
            "tokenizer(texts)['input_ids']], [50, 90, 95])`. For texts longer than the model "
            "allows, keep head and tail tokens or split into chunks (`tokenizer(..., "
            "max_length=512, truncation=True, return_overflowing_tokens=True, stride=64)`) and "
            "pool the predictions."
        ),
    },
)
