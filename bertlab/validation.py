"""Turn the per-epoch validation accumulators into the numbers a person reads.

The probe sums counts over validation batches (see ``layout.val_channels``); this module derives
the epoch's validation summary from those sums: loss, predicted vs true class counts, the
confusion matrix (single-label) or per-label precision/recall/F1 (multi-label).
"""

from __future__ import annotations

import numpy as np

from bertlab.layout import Layout


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def summarize(layout: Layout, acc: dict[str, np.ndarray]) -> dict[str, object]:
    """Validation summary of one epoch, keys prefixed ``val_``.

    Parameters
    ----------
    layout
        The run's layout (decides single- vs multi-label).
    acc
        Accumulators by name as read from the probe (``loss_sum``, ``samples``...).
    """
    samples = float(acc["samples"][0])
    if samples <= 0:
        return {}
    out: dict[str, object] = {
        "val_samples": int(samples),
        "val_loss_recorded": float(acc["loss_sum"][0]) / samples,
    }
    hashed = float(acc["hashed"][0]) if "hashed" in acc else 0.0
    if hashed > 0:  # rows of this validation that repeat a training row (train-val-overlap)
        out["val_overlap"] = int(round(float(acc["overlap"][0])))
        out["val_hashed"] = int(round(hashed))
    if "pred_count" not in acc:
        return out
    out["val_pred_count"] = acc["pred_count"].round().astype(np.int64)
    out["val_label_count"] = acc["label_count"].round().astype(np.int64)
    if layout.task == "multilabel":
        tp, fp, fn = acc["tp"], acc["fp"], acc["fn"]
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        out["val_precision"] = precision
        out["val_recall"] = recall
        out["val_f1"] = _ratio(2 * tp, 2 * tp + fp + fn)
    elif "confusion" in acc:
        c = layout.n_classes
        out["val_confusion"] = acc["confusion"].round().astype(np.int64).reshape(c, c)
    return out
