"""unshuffled-batches: batches hold far fewer classes than random batches would (data sorted by
label and fed in order)."""

from __future__ import annotations

import numpy as np

from bertlab.rules._stats import entropy, pct
from bertlab.rules.base import Context, Evidence, Rule

#: Batches needed before judging: the ordering shows across many batches, not a few.
MIN_BATCHES = 20
#: Mean per-batch label entropy at most this share of what random batches of the same size
#: drawn from the same labels would have. Shuffled data sits near 1 (batches are random draws;
#: an epoch's partition into batches is even a little more even than that); data sorted by
#: label sits near 0 (one class per batch except at the class boundaries).
MAX_RATIO = 0.5
#: ...and the gap must be this many standard errors of a random-batch mean (so small batches of
#: skewed labels, whose entropy is naturally low and noisy, cannot trigger it by chance). The
#: normal approximation is conservative here (the mean's lower tail is lighter than normal); in
#: 3,000 simulated shuffled runs (2-45 classes, batches of 2-64, 20-1024 batches) none fired.
MIN_Z = 4.0
#: Labels seen so far must be mixed (nats; 0.1 nats is e.g. a 98/2 binary split).
MIN_ENTROPY = 0.1
#: Random batches simulated per batch size for the expected entropy (fixed seed: deterministic).
SIMULATIONS = 400


def _row_entropy(counts: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of a (rows, classes) count matrix."""
    counts = np.asarray(counts, dtype=float)
    p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(axis=1)


def _random_batch_entropy(p: np.ndarray, size: int) -> tuple[float, float]:
    """Mean and variance of the label entropy of a random batch of ``size`` rows drawn from p."""
    rng = np.random.default_rng(size)
    draws = rng.multinomial(size, p, size=SIMULATIONS)
    ent = _row_entropy(draws)
    return float(ent.mean()), float(ent.var())


def check(ctx: Context) -> Evidence | None:
    layout = ctx.layout
    if layout is None or layout.task not in ("multiclass", "binary"):
        return None
    n = ctx.n_steps
    counts = np.nan_to_num(ctx.col("label_count").reshape(n, -1))
    sizes = counts.sum(axis=1).round().astype(int)
    keep = sizes >= 2
    counts, sizes = counts[keep], sizes[keep]
    if len(sizes) < MIN_BATCHES:
        return None
    total = counts.sum(axis=0)
    if entropy(total) < MIN_ENTROPY:
        return None
    p = total / total.sum()
    stats = {s: _random_batch_entropy(p, int(s)) for s in np.unique(sizes)}
    expected = float(np.mean([stats[s][0] for s in sizes]))
    se = float(np.sqrt(np.sum([stats[s][1] for s in sizes])) / len(sizes))
    observed = float(np.mean(_row_entropy(counts)))
    if expected <= 0 or observed > MAX_RATIO * expected:
        return None
    if se > 0 and (expected - observed) / se < MIN_Z:
        return None
    single = float(np.mean((counts > 0).sum(axis=1) == 1))
    steps = ctx.step_range(0)
    return Evidence(
        f"steps {steps[0]}–{steps[1]} ({len(sizes)} batches): mean label entropy per batch "
        f"{observed:.2f} nats vs {expected:.2f} for random batches of the same size "
        f"(all labels seen: {entropy(total):.2f}); {pct(single)} of batches hold a single class",
        steps=steps,
        extra={"ratio": observed / expected, "single_class_batches": single},
    )


RULE = Rule(
    check=check,
    code="unshuffled-batches",
    severity="warning",
    phase="live",
    panel="data",
    rank=24,
    title="Batches are not shuffled: each batch holds one or few classes",
    explanation=(
        "The data reaches the model in label order, so each batch teaches one class: the model "
        "learns to predict the class of the current stretch, then unlearns it in the next one. "
        "The loss looks good within a stretch and the model ends up biased to the last classes "
        "it saw. This happens with data sorted by label (a CSV grouped by class, folders read "
        "one after another) and fit(shuffle=False) or a tf.data pipeline without .shuffle()."
    ),
    fix=(
        "Shuffle the training data every epoch: `model.fit(x, y, shuffle=True, ...)` (the "
        "default for arrays), or for tf.data shuffle before batching with a buffer as large as "
        "the data set: `ds.shuffle(len(x), reshuffle_each_iteration=True).batch(32)`. Shuffle "
        "once before splitting too: `idx = np.random.permutation(len(x)); x, y = x[idx], y[idx]`."
    ),
    fixes={
        "torch": (
            "Shuffle the training data every epoch: `DataLoader(train_set, batch_size=32, "
            "shuffle=True)` (the Hugging Face Trainer shuffles a map-style train_dataset "
            "itself; shuffle an IterableDataset yourself, e.g. `ds.shuffle(seed=0, "
            "buffer_size=10_000)`); a loop that slices tensors should draw `perm = "
            "torch.randperm(len(y))` every epoch. Shuffle once before splitting too: `idx = "
            "torch.randperm(len(y)); x, y = x[idx], y[idx]`."
        ),
    },
)
