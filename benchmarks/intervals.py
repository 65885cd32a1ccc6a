"""The bootstrap interval of an overhead ratio, shared by overhead.py and overhead_torch.py."""

from __future__ import annotations

import numpy as np


def ratio_interval(arm: np.ndarray, base: np.ndarray, rng, n: int = 2000) -> tuple:
    """median(arm) / median(base) and its bootstrap 95 % interval (steps resampled per arm)."""
    ratio = float(np.median(arm) / np.median(base))
    a = np.median(rng.choice(arm, (n, arm.size)), axis=1)
    b = np.median(rng.choice(base, (n, base.size)), axis=1)
    low, high = np.percentile(a / b, [2.5, 97.5])
    return ratio, float(low), float(high)
