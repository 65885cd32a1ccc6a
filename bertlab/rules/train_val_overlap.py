"""train-val-overlap: validation examples that also occur in the training data."""

from __future__ import annotations

from bertlab.rules.base import Context, Evidence, Rule

#: Each validation row that is also a training row can be answered from memory, inflating
#: validation accuracy by up to its share. Below 1 % the inflation is within the noise of a
#: validation set of a few thousand rows; real corpora exceed it (BBC News ships 98 exact
#: duplicates in 2,225 articles, 4.4 %, so a random split leaks about that share).
MIN_SHARE = 0.01


def check(ctx: Context) -> Evidence | None:
    data = ctx.data
    if data is None or not data.val_rows or data.val_overlap is None:
        return None
    share = data.val_overlap / data.val_rows
    if share < MIN_SHARE:
        return None
    return Evidence(
        f"{data.val_overlap} of {data.val_rows} validation rows ({share:.1%}) are exact copies "
        "of training rows: validation accuracy is inflated by up to that share",
        extra={"overlap": data.val_overlap, "val_rows": data.val_rows, "share": share},
    )


RULE = Rule(
    check=check,
    code="train-val-overlap",
    severity="warning",
    phase="preflight",
    panel="data",
    rank=22,
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
