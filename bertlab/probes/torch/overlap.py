"""Row hashes of a forward's inputs, in torch: which validation rows were trained on.

The PyTorch counterpart of :mod:`bertlab.probes.keras.overlap` (the same bits, defined once in
:func:`bertlab.reference.row_hashes`). Every training forward writes its rows' tags into a table
on the model's device (:class:`SeenRows`); every validation forward counts its rows whose tag
the table holds, summed per epoch in the validation sums (``overlap`` of ``hashed``). All of it
is asynchronous device work: no host sync, no random op, nothing the training reads.

What is hashed: the token ids when the forward has them, else its tensor inputs side by side
(positional ones, then keyword ones by name, ``labels`` left out). With several processes
(DDP), each rank compares its shard of the validation data with its own shard of the training
data: the count is then about 1 / world size of the true overlap.
"""

from __future__ import annotations

import torch

from bertlab.datafacts import (
    FMIX_MULTIPLIERS,
    HASH_COEFFS,
    HASH_POSITIONS,
    OVERLAP_SLOT_BITS,
    OVERLAP_SLOTS,
)
from bertlab.probes.torch.quantities import find_text_inputs

_COEFFS: dict[torch.device, torch.Tensor] = {}


def hash_parts(args: tuple, kwargs: dict) -> list[torch.Tensor] | None:
    """The tensors whose rows are hashed (see the module docstring), or None."""
    ids, _ = find_text_inputs(args, kwargs)
    if ids is not None and ids.dim() == 2:
        return [ids]
    batch = next((a for a in args if isinstance(a, dict)), None)
    named = {**(batch or {}), **kwargs}
    parts = [a for a in args if torch.is_tensor(a)]
    parts += [named[k] for k in sorted(named) if k != "labels" and torch.is_tensor(named[k])]
    if not parts or any(t.dim() == 0 or t.is_complex() or len(t) != len(parts[0]) for t in parts):
        return None
    return parts


def _words(t: torch.Tensor) -> torch.Tensor:
    """(B, F) int32 words: float32 bits of floats, int32 values (mod 2**32) of integers."""
    t = t.detach()
    if t.is_floating_point():
        t = t.to(torch.float32).contiguous().view(torch.int32)
    else:
        t = t.to(torch.int64).to(torch.int32)
    return t.reshape(len(t), -1)


def _lsr(v: torch.Tensor, bits: int) -> torch.Tensor:
    return (v >> bits) & ((1 << (32 - bits)) - 1)


def _fmix32(v: torch.Tensor) -> torch.Tensor:
    c1, c2 = FMIX_MULTIPLIERS
    v = v ^ _lsr(v, 16)
    v = v * c1
    v = v ^ _lsr(v, 13)
    v = v * c2
    return v ^ _lsr(v, 16)


def slot_and_tag(parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Table slot (top OVERLAP_SLOT_BITS bits of h1) and tag (h2 | 1) of every row."""
    words = [_words(t) for t in parts]
    v = words[0] if len(words) == 1 else torch.cat([w.to(words[0].device) for w in words], 1)
    m = _fmix32(v)
    coeffs = _COEFFS.get(v.device)
    if coeffs is None:
        coeffs = _COEFFS[v.device] = torch.as_tensor(HASH_COEFFS, device=v.device)
    width = v.shape[1]
    if width > HASH_POSITIONS:
        c = coeffs[:, torch.arange(width, device=v.device) % HASH_POSITIONS]
    else:
        c = coeffs[:, :width]
    # int32 products wrap; torch sums them in int64, and the cast back is the sum mod 2**32.
    h1 = (m * c[0]).sum(1).to(torch.int32)
    h2 = (m * c[1]).sum(1).to(torch.int32)
    return _lsr(h1, 32 - OVERLAP_SLOT_BITS), h2 | 1


class SeenRows:
    """The table of training-row tags (``OVERLAP_SLOTS`` int32 slots) on one device."""

    def __init__(self, device: torch.device) -> None:
        with torch.inference_mode(False):
            self.seen = torch.zeros(OVERLAP_SLOTS, dtype=torch.int32, device=device)

    def mark(self, rows: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Remember a training batch's rows (a later row in the same slot overwrites)."""
        slot, tag = rows
        self.seen.index_put_((slot.to(self.seen.device, torch.int64),), tag.to(self.seen.device))

    def matches(self, rows: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """How many of a validation batch's rows the table holds (float32 scalar)."""
        slot, tag = rows
        found = self.seen[slot.to(self.seen.device, torch.int64)] == tag.to(self.seen.device)
        return found.sum().to(torch.float32)
