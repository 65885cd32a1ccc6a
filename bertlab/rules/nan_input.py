"""nan-input: NaN or inf values in the float inputs of the model."""

from __future__ import annotations

import numpy as np

from bertlab.rules.base import Context, Evidence, Rule


def _first_step(ctx: Context) -> tuple[int, int, int] | None:
    """(first step, number of batches, batches seen) with non-finite inputs in the window."""
    col = ctx.col("input_nonfinite")
    if not len(col):
        return None
    bad = np.flatnonzero(np.nan_to_num(col) > 0)
    if not len(bad):
        return None
    return int(ctx.col("step")[bad[0]]), len(bad), len(col)


def check(ctx: Context) -> Evidence | None:
    data = ctx.data
    if data is None or not data.nonfinite_inputs:
        return None
    count = f"{data.nonfinite_inputs} NaN/inf values"
    where = _first_step(ctx)
    if where is None:
        text, steps = f"{count} in the float inputs", None
    else:
        first, n_bad, n_seen = where
        text = (
            f"{n_bad} of {n_seen} batches had NaN/inf in their float inputs ({count}, first at "
            f"step {first})"
        )
        steps = (first, int(ctx.col("step")[-1]))
    return Evidence(text + "; each such batch gets a NaN loss and NaN gradients", steps=steps)


RULE = Rule(
    check=check,
    code="nan-input",
    severity="error",
    phase="preflight",
    panel="data",
    rank=21,
    sticky=True,
    title="The inputs contain NaN/inf values",
    explanation=(
        "A single NaN in an input row flows through every layer: that row's output and loss "
        "become NaN, the batch's gradients become NaN, and one optimizer update turns the "
        "weights NaN, after which nothing learns. Float inputs next to the token ids (numeric "
        "features, precomputed embeddings, soft masks) usually get NaN from missing values in "
        "a table, a division by zero during normalisation, or a failed feature extraction."
    ),
    fix=(
        "Find and repair the rows before training: "
        "`bad = ~np.isfinite(features).all(axis=1)`; drop them (`features[~bad]`) or fill the "
        "gaps, e.g. `np.nan_to_num(features, nan=0.0)` or `df.fillna(df.median())`; when "
        "normalising, guard divisions: `(x - mean) / (std + 1e-8)`."
    ),
    fixes={
        "torch": (
            "Find and repair the rows before training: `bad = "
            "~torch.isfinite(features).all(dim=1)`; drop them (`features[~bad]`) or fill the "
            "gaps, e.g. `torch.nan_to_num(features, nan=0.0)` or `df.fillna(df.median())`; "
            "when normalising, guard divisions: `(x - mean) / (std + 1e-8)`."
        ),
    },
)
