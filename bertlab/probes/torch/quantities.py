"""What is measured inside a PyTorch training step, as torch ops on the step's own tensors.

The same channels as the Keras probe (definitions: :mod:`bertlab.layout`; numpy reference:
:mod:`bertlab.reference`), computed from the tensors the user's loop already produced (model
outputs, labels, inputs, loss, accumulated gradients) under ``torch.no_grad`` on detached
values. Every op runs on the tensors' own device and none needs the host: no ``.item()``, no
``bincount``/``one_hot`` (both read the data to size or check their output on a GPU), so a step
never waits for the device. Each function returns ``{channel: tensor}``; a value the host
already knows (a batch size, a count of missing gradients) stays a Python float, so that no
host-to-device copy enters the step either.
"""

from __future__ import annotations

from typing import Any

import torch

from bertlab.datafacts import MASK_KEYS, TOKEN_KEYS
from bertlab.layout import COMBINE, Layout

_EPS = 1e-7
_NAN = float("nan")


def _f(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32)


def gradient_stats(
    grads: list[torch.Tensor | None], group_ids: torch.Tensor, n_groups: int
) -> dict[str, torch.Tensor]:
    """Global and per-group gradient norms and counts of zero/missing/non-finite gradients.

    ``group_ids`` (on the gradients' device) gives the group of each *present* gradient, in
    order. One fused ``_foreach_norm`` over all gradients: a handful of kernels for any model.
    """
    present = [g for g in grads if g is not None]
    missing = float(len(grads) - len(present))
    if not present:
        return {"grad_missing": missing}
    dense = [g.coalesce().values() if g.is_sparse else g for g in present]
    norms = torch.stack(torch._foreach_norm([g.detach() for g in dense])).to(torch.float32)
    sq = norms * norms
    per_group = torch.zeros(n_groups, device=sq.device).index_add_(0, group_ids, sq)
    return {
        "grad_norm": sq.sum().sqrt(),
        "grad_layer_norm": per_group.sqrt(),
        "grad_zero": (sq == 0).sum().to(torch.float32),
        "grad_missing": missing,
        "grad_nonfinite": (~torch.isfinite(sq)).sum().to(torch.float32),
    }


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """Outputs or labels as (batch, columns): (B,) and (B, 1) both become (B, 1)."""
    t = _f(t)
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t[:, None]
    return t.reshape(-1, t.shape[-1])


def _one_hot(ids: torch.Tensor, k: int) -> torch.Tensor:
    """One-hot rows; ids outside [0, k) give an all-zero row (no range check on the host)."""
    ok = (ids >= 0) & (ids < k)
    out = torch.zeros(ids.shape[0], k, device=ids.device)
    out.scatter_(1, torch.where(ok, ids, 0)[:, None], 1.0)
    return out * ok[:, None].to(torch.float32)


def predictions(y_pred: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Per-row predictions as a (B, C) 0/1 matrix in the class vocabulary of ``layout``."""
    if layout.task == "multiclass":
        return _one_hot(y_pred.argmax(dim=-1), layout.n_outputs)
    threshold = 0.0 if layout.prob_mode == "sigmoid" else 0.5
    positive = (y_pred > threshold).to(torch.float32)
    if layout.task == "binary":
        positive = positive[:, :1]
        return torch.cat([1.0 - positive, positive], dim=1)
    return positive


def label_matrix(y: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Labels as a (B, C) 0/1 matrix, plus the label facts (see ``reference.labels``)."""
    k = layout.n_outputs
    y = as_matrix(y)
    facts = {
        "label_min": y.min(),
        "label_max": y.max(),
        "label_nonint": (y != y.round()).sum().to(torch.float32),
    }
    sparse = y.shape[-1] == 1 and k > 1
    if not sparse:
        binary = ((y == 0) | (y == 1)).all(dim=1)
        rows = y.sum(dim=1)
        facts["label_onehot_share"] = (binary & (rows == 1)).to(torch.float32).mean()
        facts["label_multihot_share"] = (binary & (rows > 1)).to(torch.float32).mean()
    if layout.task == "multiclass":
        if sparse:
            ids = y[:, 0].round().to(torch.int64)
            facts["label_out_of_range"] = ((ids < 0) | (ids >= k)).sum().to(torch.float32)
            return _one_hot(ids, k), facts
        return _one_hot(y.argmax(dim=-1), k), facts
    positive = (y > 0.5).to(torch.float32)
    if layout.task == "binary":
        positive = positive[:, :1]
        return torch.cat([1.0 - positive, positive], dim=1), facts
    return positive, facts


def histogram(values: torch.Tensor, edges: tuple[float, ...]) -> torch.Tensor:
    """Counts in equal bins on [edges[0], edges[-1]]; values outside fall into the end bins."""
    nbins = len(edges) - 1
    flat = values.reshape(-1)
    idx = ((flat - edges[0]) * (nbins / (edges[-1] - edges[0]))).floor()
    idx = idx.clamp(0, nbins - 1).to(torch.int64)
    return torch.zeros(nbins, device=flat.device).index_add_(0, idx, torch.ones_like(flat))


def output_stats(y_pred: torch.Tensor, layout: Layout) -> dict[str, torch.Tensor]:
    """Range, probability-likeness, confidence and histogram of the model outputs."""
    y = as_matrix(y_pred)
    finite = torch.isfinite(y)
    safe = torch.where(finite, y, torch.zeros_like(y))
    stats = {
        "out_min": y.min(),
        "out_max": y.max(),
        "out_nonfinite": (~finite).sum().to(torch.float32),
        "out_rowsum_dev": (y.sum(dim=1) - 1.0).abs().mean(),
        "out_unit_share": ((y >= 0) & (y <= 1)).to(torch.float32).mean(),
        "out_mean": y.mean(dim=0),
        "out_hist": histogram(safe, layout.hist_edges),
        "batch_size": float(y.shape[0]),
    }
    if layout.task == "regression":
        return stats
    if layout.prob_mode == "softmax":
        p = torch.softmax(safe, dim=-1)
    elif layout.prob_mode == "sigmoid":
        p = torch.sigmoid(safe)
    else:
        p = safe.clamp(0.0, 1.0)
    if layout.task == "multiclass":
        stats["prob_max"] = p.max(dim=1).values.mean()
        stats["prob_entropy"] = (-(p * p.clamp_min(_EPS).log()).sum(dim=1)).mean()
    else:
        q = 1.0 - p
        stats["prob_max"] = torch.maximum(p, q).mean()
        entropy = -(p * p.clamp_min(_EPS).log() + q * q.clamp_min(_EPS).log())
        stats["prob_entropy"] = entropy.mean()
    return stats


def class_counts(
    y: torch.Tensor, y_pred: torch.Tensor, layout: Layout
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Predicted/true class counts of a batch, label facts, and the (B, C) matrices."""
    pred = predictions(as_matrix(y_pred), layout)
    true, facts = label_matrix(y, layout)
    facts["pred_count"] = pred.sum(dim=0)
    facts["label_count"] = true.sum(dim=0)
    return facts, pred, true


def val_stats(y_pred: torch.Tensor, y: Any, loss: Any, layout: Layout) -> dict:
    """What one validation batch adds to the epoch's sums (``layout.val_channels``)."""
    n = float(y_pred.shape[0])
    vals: dict = {"batches": 1.0, "samples": n, "loss_sum": float("nan")}  # no loss: unknown
    if torch.is_tensor(loss):
        vals["loss_sum"] = loss.detach().float().mean() * n
    if torch.is_tensor(y) and layout.task != "regression":
        counts, pred, true = class_counts(y.detach(), y_pred.detach(), layout)
        vals["pred_count"], vals["label_count"] = counts["pred_count"], counts["label_count"]
        if layout.task == "multilabel":
            vals["tp"] = (true * pred).sum(0)
            vals["fp"] = ((1 - true) * pred).sum(0)
            vals["fn"] = (true * (1 - pred)).sum(0)
        else:
            vals["confusion"] = (true.T @ pred).reshape(-1)
    return vals


def logits_and_loss(output: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The logits and (Hugging Face) loss of a forward's output, whatever its container."""
    if torch.is_tensor(output):
        return output, None
    if isinstance(output, dict) or hasattr(output, "keys"):
        logits = output.get("logits")
        if logits is None:
            logits = next((v for v in output.values() if torch.is_tensor(v) and v.dim()), None)
        return logits, output.get("loss")
    if isinstance(output, (tuple, list)):
        tensors = [t for t in output if torch.is_tensor(t)]
        return (tensors[0], None) if tensors else (None, None)
    return None, None


def find_text_inputs(args: tuple, kwargs: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Token ids and attention mask of a forward call, by keyword (HF / KerasHub names) or as
    the first one or two positional integer matrices of the same shape (``model(ids, mask)``)."""
    ids = next((kwargs[k] for k in TOKEN_KEYS if torch.is_tensor(kwargs.get(k))), None)
    mask = next((kwargs[k] for k in MASK_KEYS if torch.is_tensor(kwargs.get(k))), None)
    batch = next((a for a in args if isinstance(a, dict)), None)
    if ids is None and batch is not None:
        return find_text_inputs((), batch)
    ints = [a for a in args if torch.is_tensor(a) and a.dim() == 2 and not a.is_floating_point()]
    if ids is None and ints:
        ids = ints[0]
    if mask is None and len(ints) > 1 and ints[1].shape == ints[0].shape:
        mask = ints[1]
    return ids, mask


def input_stats(
    ids: torch.Tensor,
    mask: torch.Tensor | None,
    unk_id: int | None,
    len_edges: tuple,
    pad_id: int | None = None,
) -> dict[str, torch.Tensor]:
    """Token-id range, padding share, non-padding lengths (and their histogram), [UNK] share,
    and with a mask the share of pad-id positions (``pad_id`` or 0) it says to attend to."""
    ids = ids.detach()
    real = _f(mask) if mask is not None and mask.shape == ids.shape else _f(ids != 0)
    lengths = real.sum(dim=1)
    stats = {
        "tok_min": _f(ids.min()),
        "tok_max": _f(ids.max()),
        "pad_share": 1.0 - real.mean(),
        "len_mean": lengths.mean(),
        "len_max": lengths.max(),
        "full_share": (lengths == ids.shape[1]).to(torch.float32).mean(),
    }
    if len(len_edges) > 1:
        stats["len_hist"] = histogram(lengths, len_edges)
    if unk_id is not None:
        unk = (ids == unk_id).to(torch.float32) * real
        stats["unk_share"] = unk.sum() / real.sum().clamp_min(1.0)
    if mask is not None and mask.shape == ids.shape:
        pad = ids == (0 if pad_id is None else pad_id)
        n_pad = pad.sum().to(torch.float32)
        attended = (pad & (mask.detach() != 0)).sum().to(torch.float32)
        share = attended / n_pad.clamp_min(1.0)
        stats["mask_pad_share"] = torch.where(n_pad > 0, share, torch.full_like(share, _NAN))
    return stats


def weight_norms(snapshot: list[torch.Tensor]) -> torch.Tensor:
    """Squared L2 norm of each weight tensor (one fused ``_foreach_norm``), float32."""
    norms = torch.stack(torch._foreach_norm(snapshot)).to(torch.float32)
    return norms * norms


def update_ratio(
    snapshot: list[torch.Tensor],
    params: list[torch.Tensor],
    before_sq: torch.Tensor,
    group_ids: torch.Tensor,
    n_groups: int,
) -> dict[str, torch.Tensor]:
    """``update_ratio`` per group: ``||after - before|| / ||before||`` of an optimizer step.

    ``snapshot`` holds the weights before the step and is overwritten with ``before - after``
    (in place: no second copy of the model); the subtraction of two nearby floats is exact, so
    ratios of 1e-7 survive. A group whose weights are all zero gets NaN.
    """
    torch._foreach_sub_(snapshot, [p.detach() for p in params])
    return group_ratio(weight_norms(snapshot), before_sq, group_ids, n_groups)


def group_ratio(
    delta_sq: torch.Tensor, before_sq: torch.Tensor, group_ids: torch.Tensor, n_groups: int
) -> dict[str, torch.Tensor]:
    """``update_ratio`` per group from per-weight squared norms of the update and of the
    weights before it (summed per group first); NaN for a group whose weights are all zero."""
    d = torch.zeros(n_groups, device=delta_sq.device).index_add_(0, group_ids, delta_sq)
    w = torch.zeros(n_groups, device=delta_sq.device).index_add_(0, group_ids, before_sq)
    ratio = d.sqrt() / w.clamp_min(1e-30).sqrt()
    return {"update_ratio": torch.where(w > 0, ratio, torch.full_like(ratio, _NAN))}


def _merge(values: list, kind: str, weights: list[float] | None):
    """One channel over micro-batches: Python floats stay floats, tensors stay on the device."""
    if kind == "sum":
        return sum(values[1:], values[0])
    if kind in ("min", "max"):
        if not torch.is_tensor(values[0]):
            return min(values) if kind == "min" else max(values)
        stacked = torch.stack(values)
        return stacked.amin(dim=0) if kind == "min" else stacked.amax(dim=0)
    if kind == "mean" and weights is not None and len(weights) == len(values):
        total = sum(weights)
        return sum(
            (v * (w / total) for v, w in zip(values[1:], weights[1:], strict=True)),
            values[0] * (weights[0] / total),
        )
    return values[-1]


def combine(parts: list[dict]) -> dict:
    """Merge the summaries of several micro-batches into one step's (``layout.COMBINE``)."""
    if len(parts) == 1:
        return parts[0]
    sizes = [p.get("batch_size") for p in parts]
    weights = [float(s) for s in sizes] if all(s is not None for s in sizes) else None
    out: dict = {}
    for name in set().union(*parts):
        values = [p[name] for p in parts if name in p]
        kind = COMBINE.get(name, "last")
        out[name] = _merge(values, kind, weights if len(values) == len(parts) else None)
    return out


def assemble(values: dict, channels: list[tuple[str, int]], nan: torch.Tensor) -> torch.Tensor:
    """Pack the tensor values into one float32 row in channel order; every other channel
    (absent, or a host-side float the caller writes itself) is NaN, taken from ``nan`` (a row
    of NaN on the device, made once). Runs of scalar channels are packed with one ``stack``,
    and nothing is cast or reshaped that already fits: every op is a dispatch per step (on a
    GPU a launch)."""
    parts: list[torch.Tensor] = []
    scalars: list[torch.Tensor] = []
    nan0: torch.Tensor | None = None
    start = 0
    for name, width in channels:
        v = values.get(name)
        ok = torch.is_tensor(v) and v.numel() == width
        if ok and v.dtype != torch.float32:
            v = v.to(torch.float32)
        if width == 1:
            if ok:
                scalars.append(v if v.dim() == 0 else v.reshape(()))
            else:
                nan0 = nan[0] if nan0 is None else nan0
                scalars.append(nan0)
        else:
            if scalars:
                parts.append(torch.stack(scalars))
                scalars = []
            fits = ok and v.shape == (width,)
            parts.append(v if fits else v.reshape(width) if ok else nan[start : start + width])
        start += width
    if scalars:
        parts.append(torch.stack(scalars))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def host_values(values: dict) -> dict[str, float]:
    """The channels of ``values`` that the host already holds as plain numbers."""
    return {name: float(v) for name, v in values.items() if isinstance(v, (int, float))}
