"""train-val-overlap: validation examples that also occur in the training data."""

from __future__ import annotations

import math

from bertlab.rules.base import Context, Evidence, Rule

#: Each validation row that is also a training row can be answered from memory, inflating
#: validation accuracy by up to its share. Below 1 % the inflation is within the noise of a
#: validation set of a few thousand rows; real corpora exceed it (BBC News ships 98 exact
#: duplicates in 2,225 articles, 4.4 %, so a random split leaks about that share).
MIN_SHARE = 0.01
#: ... and above the noise of the validation accuracy itself: an accuracy measured on n rows
#: varies by up to 0.5 / sqrt(n) (one standard error at 50 %); an overlap share below two of
#: those (1 / sqrt(n): 5.4 % of 341 rows, 1 % of 10,000) can shift it by less than its own
#: noise. This separates the coincidences of a deduplicated corpus (the BBC leads of the bug
#: benchmark's healthy programs: 0.9-1.8 % of 341-426 validation rows) from duplicates shipped
#: and split (BBC News as published: about 7 % of a random 20 % split) and from validation rows
#: trained on (benchmark b20: 100 %).
NOISE_Z = 2.0


def min_share(rows: int) -> float:
    """The smallest overlap share of ``rows`` validation rows that is reported."""
    return max(MIN_SHARE, NOISE_Z * 0.5 / math.sqrt(max(rows, 1)))


def overlap(ctx: Context) -> tuple[int, int, str] | None:
    """(validation rows that repeat a training row, validation rows compared, how counted).

    From the arrays themselves when ``bertlab.check`` had them, else from the latest epoch's
    validation as the probe counted it in-step (row hashes of the inputs against a table of the
    training rows seen so far, ``val_overlap`` of ``val_hashed``: see
    ``datafacts.OVERLAP_SLOTS`` for what collisions can lose).
    """
    data = ctx.data
    if data is not None and data.val_rows and data.val_overlap is not None:
        return int(data.val_overlap), int(data.val_rows), "exact copies of training rows"
    for record in reversed(ctx.epochs):
        if record.get("val_hashed"):
            found, rows = int(record.get("val_overlap", 0)), int(record["val_hashed"])
            return found, rows, "copies of rows trained on (input hashes, counted in-step)"
    return None


def check(ctx: Context) -> Evidence | None:
    counted = overlap(ctx)
    if counted is None:
        return None
    found, rows, how = counted
    share = found / rows
    if share < min_share(rows):
        return None
    return Evidence(
        f"{found} of {rows} validation rows ({share:.1%}) are {how}: validation accuracy is "
        "inflated by up to that share",
        extra={"overlap": found, "val_rows": rows, "share": share},
    )


RULE = Rule(
    check=check,
    code="train-val-overlap",
    severity="warning",
    phase="preflight",
    panel="data",
    rank=22,
    # Texts whose words are mostly unknown to the vocabulary become the same row of [UNK] ids:
    # distinct examples that the model (and the row hashes) cannot tell apart (benchmark b11).
    causes=("high-unk-rate",),
    sticky=True,
    title="Validation examples also occur in the training data",
    explanation=(
        "Some validation examples are identical to training examples. The model can answer "
        "them from memory, so validation loss and accuracy look better than they will on new "
        "text, and early stopping or model selection on them rewards memorising. It happens "
        "when a corpus contains duplicates (news datasets often do) and is split after, not "
        "before, removing them, or when validation data is cut from data already used for "
        "training."
    ),
    fix=(
        "Drop duplicates before splitting, then split:\n"
        "  df = df.drop_duplicates(subset='text')\n"
        "  train_df, val_df = sklearn.model_selection.train_test_split(\n"
        "      df, test_size=0.2, stratify=df.label, random_state=0)\n"
        "Or remove from validation every text that occurs in training:\n"
        "  val_df = val_df[~val_df.text.isin(set(train_df.text))]"
    ),
    fixes={
        "torch": (
            "Drop duplicates before splitting, then split:\n"
            "  df = df.drop_duplicates(subset='text')\n"
            "  train_df, val_df = sklearn.model_selection.train_test_split(\n"
            "      df, test_size=0.2, stratify=df.label, random_state=0)\n"
            "Hugging Face datasets: dedupe with pandas first (Dataset.from_pandas(df)), or "
            "filter validation: val = val.filter(lambda r: r['text'] not in train_texts)"
        ),
    },
)
