"""missing-attention-mask: padded token ids reach a transformer encoder without a padding mask,
or with a mask that does not mask (1 on the positions that hold the pad id)."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Share of padding positions (id 0 when no mask is fed) above which attending to them matters:
#: below 1 % the padding barely moves the attention averages.
MIN_PAD_SHARE = 0.01
#: A mask that does not mask: it says "attend" on at least this share of the positions holding
#: the pad id (``mask_pad_share``), median of the recent batches that have such positions. A
#: tokenizer's own mask reads 0; an all-ones mask reads 1. Below 1 leaves room for a pad id that
#: is also a real token (GPT-2 pads with its end-of-text token, which ends every text).
MASK_PAD_SHARE = 0.9
#: Batches with pad-id positions needed before judging the mask, out of the last WINDOW.
MIN_BATCHES, WINDOW = 4, 20


def _mask_ignores_padding(ctx: Context, mask_key: str | None) -> Evidence | None:
    """A mask is fed, but it attends to the pad-id positions (``mask_pad_share``, recorded
    only when a mask reaches the model: NaN otherwise)."""
    share = ctx.col("mask_pad_share")[-WINDOW:]
    share = share[np.isfinite(share)]
    if len(share) < MIN_BATCHES or float(np.median(share)) < MASK_PAD_SHARE:
        return None
    pad = ctx.facts.pad_token_id
    source = f"id {pad}, the tokenizer's pad token" if pad is not None else "id 0"
    steps = ctx.col("step")
    return Evidence(
        f"{f'`{mask_key}`' if mask_key else 'an attention mask'} is fed, but it says attend "
        f"on {pct(float(np.median(share)))} of the positions holding the padding id ({source}) "
        f"in the last {len(share)} batches that have padding: the mask does not mask, every "
        "token attends to the padding",
        steps=(int(steps[-min(WINDOW, len(steps))]), int(steps[-1])) if len(steps) else None,
        title="The attention mask does not mask the padding",
        extra={"mask_pad_share": float(np.median(share))},
    )


def check(ctx: Context) -> Evidence | None:
    facts, data = ctx.facts, ctx.data
    inputs = ctx.meta.get("inputs") or {}
    token_key = inputs.get("token_key")
    mask_key = inputs.get("mask_key")
    ignored = _mask_ignores_padding(ctx, None if mask_key is None else str(mask_key))
    if ignored is not None or mask_key is not None:
        return ignored
    if not facts.encoders or data is None or data.pad_share is None:
        return None
    if not token_key:
        # PyTorch traces no input names: ids whose padding is counted from the pad id while
        # ``mask_pad_share`` (recorded whenever a mask reaches the model) never was.
        seen = ctx.col("mask_pad_share")
        if facts.framework != "torch" or seen.size == 0 or np.isfinite(seen).any():
            return None
        token_key = "<input>"
    # An Embedding(mask_zero=True) hands its mask to the encoder implicitly (Keras masking);
    # the facts carry those layers when the adapter records them.
    if getattr(facts, "masked_embeddings", None):
        return None
    if data.pad_share < MIN_PAD_SHARE:
        return None
    where = "a bare token-id tensor" if token_key == "<input>" else f"`{token_key}`"
    return Evidence(
        f"{where} is fed to {', '.join(facts.encoders[:2])} with {pct(data.pad_share)} padding "
        "positions (id 0) and no padding/attention mask input: every token attends to the "
        "padding"
    )


RULE = Rule(
    check=check,
    code="missing-attention-mask",
    severity="warning",
    phase="preflight",
    panel="data",
    rank=15,
    sticky=True,
    title="Padded token ids without an attention mask",
    explanation=(
        "Self-attention mixes every position with every other one. Without a mask the [PAD] "
        "positions take part like real words: a short text padded to 128 tokens is mostly "
        "padding, so its representation depends on how much padding it got rather than on "
        "its words, and predictions change with the batch's padding length. KerasHub backbones "
        "refuse to run without `padding_mask`; custom models built from TransformerEncoder "
        "layers, or HF-style `input_ids` fed without `attention_mask`, train silently."
    ),
    fix=(
        "Feed the mask with the ids and pass it to every encoder layer:\n"
        "  ids = keras.Input((L,), dtype='int32', name='token_ids')\n"
        "  mask = keras.Input((L,), dtype='int32', name='padding_mask')\n"
        "  h = keras_hub.layers.TransformerEncoder(256, 4)(h, padding_mask=mask)\n"
        "  model.fit({'token_ids': x, 'padding_mask': (x != 0).astype('int32')}, y)\n"
        "or let Keras carry it: `keras_hub.layers.TokenAndPositionEmbedding(..., "
        "mask_zero=True)` (or `keras.layers.Embedding(..., mask_zero=True)`)."
    ),
    fixes={
        "torch": (
            "Pass the tokenizer's attention mask with the ids:\n"
            "  enc = tokenizer(texts, padding=True, truncation=True, return_tensors='pt')\n"
            "  out = model(input_ids=enc['input_ids'], attention_mask=enc['attention_mask'])  "
            "# or model(**enc)\n"
            "For a custom encoder, hand it the padding mask, e.g. "
            "`nn.TransformerEncoder(...)(h, src_key_padding_mask=(ids == pad_id))`, and "
            "average only real tokens when pooling."
        ),
    },
)
