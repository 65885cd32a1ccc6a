"""token-id-out-of-range: token ids at or above the embedding's vocabulary size, or negative."""

from __future__ import annotations

import re

from bertlab.rules.base import Context, Evidence, Rule

#: TensorFlow's message when a gather (``Embedding`` is ``ops.take``) gets an index outside the
#: table on CPU, e.g. ``indices[3,5] = 30522 is not in [0, 30522)``; the failing node follows as
#: ``{{node model/token_embedding/GatherV2}}``.
_TF_ERROR = re.compile(r"indices\[[\d,\s]*\]\s*=\s*(-?\d+)\s+is not in \[0,\s*(\d+)\)")
_NODE = re.compile(r"\{\{node ([^}]+)\}\}")


def _from_error(ctx: Context) -> Evidence | None:
    """Name the embedding behind TensorFlow's out-of-range gather error, if it is one."""
    match = _TF_ERROR.search(ctx.error or "")
    if match is None:
        return None
    value, size = int(match.group(1)), int(match.group(2))
    node = _NODE.search(ctx.error or "")
    node_name = node.group(1) if node else ""
    layers = [path for path, dim in ctx.facts.embeddings if dim == size]
    if not layers and "embedding" not in node_name.lower():
        return None  # a gather elsewhere (a user op), not an embedding lookup
    where = f"embedding `{layers[0]}`" if layers else f"node `{node_name}`"
    text = (
        f"fit failed on token id {value}: the {where} has {size} rows, so valid ids are "
        f"0..{size - 1}" + _hint(value, size)
    )
    return Evidence(text)


def _hint(value: int, size: int) -> str:
    if value < 0:
        return "; negative ids usually come from a padding/ignore value such as -1 or -100"
    return (
        f"; the tokenizer's vocabulary has at least {value + 1} entries, the model's {size}: "
        "they do not belong together"
    )


def check(ctx: Context) -> Evidence | None:
    if ctx.error:
        found = _from_error(ctx)
        if found is not None:
            return found
    data = ctx.data
    if data is None or data.token_max is None or data.token_min is None:
        return None
    if not ctx.facts.embeddings:
        return None  # no Embedding layer: the integer inputs may not be token ids at all
    if ctx.facts.lookup_layers:
        return None  # Hashing/IntegerLookup... remap ids first: inputs are not table rows
    if data.token_min < 0:
        return Evidence(
            f"token ids go down to {data.token_min}: an embedding has no row for a negative id"
            + _hint(data.token_min, 0)
        )
    # The token table is the largest embedding (segment/position tables are far smaller): an id
    # past it is past every table of the model.
    path, size = max(ctx.facts.embeddings, key=lambda e: e[1])
    if data.token_max < size:
        return None
    return Evidence(
        f"token ids reach {data.token_max} but the embedding `{path}` has {size} rows "
        f"(valid ids 0..{size - 1})" + _hint(data.token_max, size)
    )


RULE = Rule(
    check=check,
    code="token-id-out-of-range",
    severity="error",
    phase="preflight",
    panel="data",
    rank=12,
    sticky=True,
    title="Token ids outside the model's vocabulary",
    explanation=(
        "An embedding layer is a table with one row per token id; an id at or above its size "
        "(or below 0) has no row. On CPU TensorFlow stops with 'indices[...] = N is not in "
        "[0, N)'; on GPU the lookup silently returns zeros, so the model trains on garbage "
        "without any error. The usual cause is a tokenizer that does not belong to the model: a "
        "vocabulary file from another checkpoint (e.g. a cased or multilingual vocabulary with "
        "an English uncased model), or ids produced by a different tokenizer."
    ),
    fix=(
        "Tokenize with the tokenizer that belongs to the checkpoint, e.g. "
        "`keras_hub.models.BertTextClassifier.from_preset(preset, num_classes=K)` (which brings "
        "its own preprocessor), or check `tokenizer.vocabulary_size()` equals the embedding's "
        "`input_dim`. For a model built from scratch, size the table to the tokenizer: "
        "`keras.layers.Embedding(input_dim=tokenizer.vocabulary_size(), ...)`."
    ),
    fixes={
        "torch": (
            "Tokenize with the tokenizer that belongs to the checkpoint: "
            "`AutoTokenizer.from_pretrained(name)` with the same name as "
            "`AutoModelForSequenceClassification.from_pretrained(name, num_labels=K)`, and "
            "check `len(tokenizer) <= model.get_input_embeddings().num_embeddings`; after "
            "`tokenizer.add_tokens(...)` call `model.resize_token_embeddings(len(tokenizer))`. "
            "For a model built from scratch, size the table to the tokenizer: "
            "`nn.Embedding(len(tokenizer), dim, padding_idx=tokenizer.pad_token_id)`."
        ),
    },
    explanations={
        "torch": (
            "An embedding layer is a table with one row per token id; an id at or above its "
            "size (or below 0) has no row. On CPU PyTorch stops with 'IndexError: index out of "
            "range in self'; on CUDA a device-side assert fires, often reported at a later, "
            "unrelated op. The usual cause is a tokenizer that does not belong to the model: a "
            "vocabulary from another checkpoint (e.g. a cased or multilingual vocabulary with "
            "an English uncased model), tokens added without resizing the embeddings, or ids "
            "produced by a different tokenizer."
        ),
    },
)
