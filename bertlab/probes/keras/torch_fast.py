"""Keras's torch backend runs the step eagerly: the row is computed with torch itself.

Through ``keras.ops`` every small op pays Keras's dispatch (dtype standardisation, tensor
conversion, a symbolic-tensor check) on top of torch's; a row is ~300 such ops, which made the
Watch cost 2.6x a 2.7 ms step on this backend. Here the same values come from the PyTorch probe's
implementations (:mod:`bertlab.probes.torch.quantities`: fused ``_foreach_norm``, no Keras
dispatch), which compute the same quantities: both are checked against :mod:`bertlab.reference`,
and tests/test_keras_backends.py checks this path column by column against TensorFlow's.
Constants (NaN fills, counts known in advance) are made once per device and value: on a GPU a
fresh host constant would be a host-to-device copy every step.
"""

from __future__ import annotations

from typing import Any

import torch

from bertlab.layout import UPDATE_SAMPLE, Layout
from bertlab.probes.keras import precision
from bertlab.probes.torch import quantities as tq

_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(value: float, shape: tuple, device: torch.device) -> torch.Tensor:
    key = (value if value == value else "nan", shape, str(device))
    out = _CONSTANTS.get(key)
    if out is None:
        out = _CONSTANTS[key] = torch.full(shape, float(value), device=device)
    return out


def _group_ids(groups: list[int], present: list[bool], device: torch.device) -> torch.Tensor:
    ids = [g for g, ok in zip(groups, present, strict=True) if ok]
    key = ("groups", tuple(ids), str(device))
    out = _CONSTANTS.get(key)
    if out is None:
        out = _CONSTANTS[key] = torch.tensor(ids, dtype=torch.int64, device=device)
    return out


def update_sample(value: Any) -> tuple[torch.Tensor, float]:
    """:func:`bertlab.probes.keras.quantities.update_sample` of an eager torch weight: every
    k-th slice along axis 0 (at most ``UPDATE_SAMPLE`` entries), float32, always a copy."""
    t = getattr(value, "value", value).detach()
    if t.dim() == 0:
        return t.reshape(1).to(torch.float32, copy=True), 1.0
    n, rows = t.numel(), t.shape[0]
    k = max(1, min(rows, -(-n // UPDATE_SAMPLE)))
    part = t[::k].reshape(-1).to(torch.float32, copy=True)
    return part, n / part.numel() if part.numel() else 1.0


def _update_ratio(update: tuple, groups: list[int], n_groups: int) -> dict[str, torch.Tensor]:
    """``update_ratio`` from the samples of :func:`quantities.update_sample` (before, after)."""
    before, after = update
    olds = [b.to(torch.float32) for b, _ in before]
    scales = torch.tensor([s for _, s in before], dtype=torch.float32, device=olds[0].device)
    delta = torch.stack(torch._foreach_norm(torch._foreach_sub(after, olds))) ** 2 * scales
    norm = torch.stack(torch._foreach_norm(olds)) ** 2 * scales
    return tq.group_ratio(
        delta, norm, _group_ids(groups, [True] * len(groups), delta.device), n_groups
    )


def _inputs(inputs: dict, unk: Any, len_edges: tuple, pad: Any) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    floats = inputs["floats"]
    if floats:
        stats["input_nonfinite"] = sum(
            (~torch.isfinite(t.detach())).sum().to(torch.float32) for t in floats
        )
    ids, mask = inputs["ids"], inputs["mask"]
    if ids is not None:
        stats.update(tq.input_stats(ids, mask, unk, len_edges, pad))
    return stats


def train_values(a: dict[str, Any], c: dict[str, Any]) -> Any:
    """:func:`bertlab.probes.keras.rows.train_values` for eager torch tensors."""
    layout: Layout = c["layout"]
    vals: dict[str, Any] = {}
    if a["loss"] is not None:
        loss = a["loss"].detach().to(torch.float32).sum()
        vals["loss"] = loss
        vals["loss_nonfinite"] = (~torch.isfinite(loss)).to(torch.float32)
    if a["batch"] is not None:
        vals["batch_size"] = float(a["batch"])
    grads = a["grads"]
    if grads is not None:
        present = [g is not None for g in grads]
        device = next(g.device for g in grads if g is not None) if any(present) else None
        ids = _group_ids(c["groups"], present, device) if device is not None else None
        stats = tq.gradient_stats(grads, ids, c["n_groups"])
        vals.update(precision.unscale(stats, a["loss_scale"]) if c["scaled"] else stats)
        if a["update"] is not None:
            vals.update(_update_ratio(a["update"], c["groups"], c["n_groups"]))
    if a["lr"] is not None:
        vals["lr"] = a["lr"]
    y_pred, y = a["y_pred"], a["y"]
    if y_pred is not None:
        y_pred = y_pred.detach().to(torch.float32)
        vals.update(tq.output_stats(y_pred, layout))
        if y is not None and layout.task != "regression":
            vals.update(tq.class_counts(y.detach(), y_pred, layout)[0])
    if a["inputs"] is not None:
        vals.update(_inputs(a["inputs"], c["unk"], layout.len_edges, c["pad"]))
    return assemble(vals, layout.channels()) if c["row"] else vals


def assemble(values: dict[str, Any], channels: list[tuple[str, int]]) -> torch.Tensor:
    """:func:`bertlab.probes.keras.quantities.assemble` for eager torch tensors: the PyTorch
    probe's packing (:func:`bertlab.probes.torch.quantities.assemble`), with Python numbers (a
    count known in advance) as cached device constants and a cached row of NaN for the rest."""
    device = next((v.device for v in values.values() if torch.is_tensor(v)), torch.device("cpu"))
    tensors = {
        name: v if torch.is_tensor(v) else _constant(float(v), (), device)
        for name, v in values.items()
        if v is not None
    }
    width = sum(w for _, w in channels)
    return tq.assemble(tensors, channels, _constant(float("nan"), (width,), device))
