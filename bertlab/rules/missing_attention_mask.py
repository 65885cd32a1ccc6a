"""missing-attention-mask: padded token ids reach a transformer encoder without a padding mask."""

from __future__ import annotations

from bertlab.rules._stats import pct
from bertlab.rules.base import Context, Evidence, Rule

#: Share of padding positions (id 0 when no mask is fed) above which attending to them matters:
#: below 1 % the padding barely moves the attention averages.
MIN_PAD_SHARE = 0.01


def check(ctx: Context) -> Evidence | None:
    facts, data = ctx.facts, ctx.data
    if not facts.encoders or data is None or data.pad_share is None:
        return None
    inputs = ctx.meta.get("inputs") or {}
    token_key = inputs.get("token_key")
    if not token_key or inputs.get("mask_key") is not None:
        return None
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
