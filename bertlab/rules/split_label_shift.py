"""split-label-shift: the validation labels are distributed unlike the training labels."""

from __future__ import annotations

import numpy as np

from bertlab.rules.base import Context, Evidence, Rule

#: Total variation distance (half the L1 distance of the two label distributions; for one
#: multi-label label, the difference of its positive rates) at least this large: a quarter of
#: the validation rows would have to change class to look like the training data.
MIN_DISTANCE = 0.25
#: ...and at least this many times the mean distance a *random* split of the same validation
#: size gives (sum over classes of E|p_hat - p| = sqrt(2 p (1 - p) / (pi n))); four times the
#: mean is beyond what sampling noise produces (about 3 standard deviations and more).
NOISE_FACTOR = 4.0
#: Distances this large (or a class holding SHARE_MISSING of one side and absent from the other)
#: are what a split of sorted data produces: a warning; smaller shifts are info (a deliberately
#: balanced validation set also differs from natural training data).
SEVERE_DISTANCE = 0.5
SHARE_MISSING = 0.1
#: The split is named as the cause of the training set's class imbalance only when it took a
#: class's rows: validation holds at least this many times as many rows of a class that is a
#: minority in training (below 1/K of it) as one pass over the training data does (benchmark
#: b19: labels in order, validation_split took 341 rows of class 1 and left 63 per epoch to
#: training, whose 95/5 imbalance is the split's doing). A deliberately balanced validation set
#: of a naturally imbalanced dataset holds fewer rare rows than training: no link.
STARVED = 1.0
#: Validation rows needed to say anything.
MIN_VAL = 20


def _latest_val(ctx: Context) -> tuple[dict, np.ndarray] | None:
    for record in reversed(ctx.epochs):
        counts = record.get("val_label_count")
        if counts is not None and np.sum(counts) > 0:
            return record, np.asarray(counts, dtype=float)
    return None


def _noise(p: np.ndarray, n: float) -> float:
    """Mean distance between p and its estimate from n random rows (see NOISE_FACTOR)."""
    return float(np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * max(n, 1.0)))))


def _fmt(p: np.ndarray) -> str:
    top = np.argsort(-p)[:4]
    return ", ".join(f"{int(c)}: {p[c]:.0%}" for c in sorted(top) if p[c] > 0) or "none"


def _starved(ctx: Context, p_t: np.ndarray, val: np.ndarray) -> list[int]:
    """Training-minority classes whose rows the split moved into validation (see STARVED)."""
    per_epoch = ctx.meta.get("steps_per_epoch")
    sizes = ctx.col("batch_size")
    sizes = sizes[np.isfinite(sizes)]
    if not per_epoch or not len(sizes):
        return []
    rows = float(per_epoch) * float(np.median(sizes))  # training rows in one pass
    minority = p_t < 1.0 / len(p_t)
    return [int(c) for c in np.flatnonzero(minority & (val > 0) & (val >= STARVED * p_t * rows))]


def check(ctx: Context) -> Evidence | None:
    layout, data = ctx.layout, ctx.data
    if layout is None or data is None or data.label_counts is None or layout.n_classes == 0:
        return None
    latest = _latest_val(ctx)
    if latest is None:
        return None
    record, val = latest
    train = np.nan_to_num(np.asarray(data.label_counts, dtype=float))
    if train.sum() <= 0 or len(train) != len(val):
        return None
    epoch = int(record.get("epoch", len(ctx.epochs) - 1)) + 1
    if layout.task == "multilabel":
        n_val = float(record.get("val_samples") or 0)
        if n_val < MIN_VAL or data.n <= 0:
            return None
        r_t, r_v = train / data.n, val / n_val
        diff = np.abs(r_v - r_t)
        noise = np.sqrt(2 * r_t * (1 - r_t) / (np.pi * n_val))
        bad = np.flatnonzero((diff >= MIN_DISTANCE) & (diff >= NOISE_FACTOR * noise))
        if not len(bad):
            return None
        j = int(bad[np.argmax(diff[bad])])
        text = (
            f"epoch {epoch}: label {j} is positive in {r_v[j]:.0%} of validation rows vs "
            f"{r_t[j]:.0%} of training rows ({len(bad)} labels differ by ≥ {MIN_DISTANCE:.0%})"
        )
        severe = diff[j] >= SEVERE_DISTANCE
        return Evidence(text, severity="warning" if severe else "info", extra={"not_a_cause": True})
    n_val = float(val.sum())
    if n_val < MIN_VAL:
        return None
    p_t, p_v = train / train.sum(), val / n_val
    distance = 0.5 * float(np.abs(p_v - p_t).sum())
    noise = _noise(p_t, n_val)
    if distance < MIN_DISTANCE or distance < NOISE_FACTOR * noise:
        return None
    only_val = np.flatnonzero((p_t == 0) & (p_v >= SHARE_MISSING))
    only_train = np.flatnonzero((p_v == 0) & (p_t >= SHARE_MISSING))
    text = (
        f"epoch {epoch}: validation labels {{{_fmt(p_v)}}} vs training {{{_fmt(p_t)}}}; "
        f"distance {distance:.2f} (random splits of {int(n_val)} rows give about {noise:.2f})"
    )
    if len(only_val):
        text += f"; classes {only_val.tolist()} are in validation only (never trained on)"
    if len(only_train):
        text += f"; classes {only_train.tolist()} are never validated"
    severe = distance >= SEVERE_DISTANCE or len(only_val) or len(only_train)
    starved = _starved(ctx, p_t, val) if severe else []
    if starved:
        text += (
            f"; validation holds more rows of class {', '.join(map(str, starved))} than a pass "
            "over the training data: the training set's imbalance is the split's doing"
        )
    # Only a split that took a class's rows is the cause of the training imbalance (the link
    # to class-imbalance); any other shift is a finding of its own, never a cause.
    extra = {"distance": distance, "not_a_cause": not starved, "starved": starved}
    return Evidence(text, severity="warning" if severe else "info", extra=extra)


RULE = Rule(
    check=check,
    code="split-label-shift",
    severity="warning",
    phase="epoch",
    panel="data",
    rank=26,
    title="Validation labels are distributed unlike training labels",
    explanation=(
        "The validation set should look like the training data. Keras's validation_split takes "
        "the LAST fraction of the arrays before any shuffling, so on data sorted by label the "
        "validation set holds only the last classes, which the model never trains on: "
        "validation loss rises and accuracy stays near 0 whatever the model learns. A shifted "
        "split makes val_loss/val_accuracy meaningless for early stopping and model selection."
    ),
    fix=(
        "Shuffle before splitting, or split with stratification:\n"
        "  from sklearn.model_selection import train_test_split\n"
        "  x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=0.2, stratify=y)\n"
        "  model.fit(x_tr, y_tr, validation_data=(x_val, y_val), ...)\n"
        "or `idx = np.random.permutation(len(y)); x, y = x[idx], y[idx]` before "
        "`fit(..., validation_split=0.2)`."
    ),
    fixes={
        "torch": (
            "Shuffle before splitting, or split with stratification:\n"
            "  from sklearn.model_selection import train_test_split\n"
            "  train_idx, val_idx = train_test_split(np.arange(len(y)), test_size=0.2, "
            "stratify=y)\n"
            "  train_set, val_set = Subset(dataset, train_idx), Subset(dataset, val_idx)\n"
            "or with datasets: `ds.train_test_split(test_size=0.2, "
            "stratify_by_column='label')` (a ClassLabel column). torch.utils.data.random_split "
            "shuffles but does not stratify."
        ),
    },
    explanations={
        "torch": (
            "The validation set should look like the training data. Taking the last fraction "
            "of the data as validation set without shuffling first (dataset[:n_train] / "
            "dataset[n_train:]) gives, on data sorted by label, a validation set of only the "
            "last classes, which the model never trains on: validation loss rises and accuracy "
            "stays near 0 whatever the model learns. A shifted split makes validation loss and "
            "accuracy meaningless for early stopping and model selection."
        ),
    },
)
