"""Where the PyTorch probe keeps its rows until the Watch reads them: a ring on the device.

A step's row is assembled from device tensors (what the step measured) and host numbers (the
learning rate, the batch size...), written without waiting for the device, and copied to the
host only when the Watch reads (a few times a second): no per-step host sync on a GPU.

With several processes (DistributedDataParallel, Accelerate, torchrun), each process sees its
own shard of the global batch. :class:`Ring` with ``reduce=True`` then combines every row over
the ranks with two asynchronous collectives per step on the default process group (a SUM of
the row, a MAX of its extremes), issued right after the gradients' own all-reduce in the same
order on every rank, and waited for only when the row is read: class counts are summed, means
averaged, extremes taken over ranks. Gradient norms already are those of the all-reduced
gradients (see ``instrument``) and stay as they are. The collectives run in a process group of
bertlab's own, so that a rank that stops early can leave bertlab's share unanswered without
blocking the training's collectives; the recording rank then stops combining
(``REDUCE_TIMEOUT_S``) and says so.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import torch

from bertlab.layout import COMBINE, Layout, val_channels
from bertlab.probes.torch.quantities import assemble, host_values

#: Rows the ring holds. The Watch reads at least every READ_EVERY_S or when it is half full.
RING_ROWS = 512
#: How long a read waits for the other ranks' share of a row. Ranks step together (the
#: gradients' all-reduce synchronises them every step), so a share still missing after this
#: long means a rank stopped early (uneven data, DDP's Join): the rows are then this rank's own.
REDUCE_TIMEOUT_S = 30.0


def _indices(layout: Layout, kinds: tuple[str, ...]) -> list[int]:
    out, start = [], 0
    for name, width in layout.channels():
        if COMBINE.get(name, "mean") in kinds:
            out += range(start, start + width)
        start += width
    return out


class Ring:
    """Rows of one run on one device, plus their host-side values.

    Parameters
    ----------
    layout
        The run's row layout.
    device
        Where the step's tensors live.
    reduce, group
        Combine each row over the ranks of this process group (made by every rank at once).
    """

    def __init__(
        self, layout: Layout, device: torch.device, reduce: bool = False, group: object = None
    ) -> None:
        self.channels = layout.channels()
        width = layout.width()
        with torch.inference_mode(False):
            self.rows = torch.full((RING_ROWS, width), float("nan"), device=device)
            self.nan = torch.full((width,), float("nan"), device=device)
        self.host = np.full((RING_ROWS, width), np.nan)
        self.count = 0
        self.read_count = 0
        self.reduce = reduce
        self.group = group
        self.note: str | None = None  # why rows stopped being combined, for the Watch to say
        self._pending: list[tuple] = []
        if reduce:
            self.world = torch.distributed.get_world_size()
            self._sum = torch.tensor(_indices(layout, ("sum",)), device=device)
            self._min = torch.tensor(_indices(layout, ("min",)), device=device)
            self._max = torch.tensor(_indices(layout, ("max",)), device=device)

    @property
    def unread(self) -> int:
        """Rows written and not read yet."""
        return self.count - self.read_count

    def write(self, row: torch.Tensor, host: dict[str, float]) -> None:
        """Store one step: ``row`` on the device, ``host`` values by channel name."""
        slot = self.count % RING_ROWS
        self.rows[slot].copy_(row)
        self.host[slot] = np.nan
        start = 0
        for name, width in self.channels:
            if name in host and self.reduce:  # combined over ranks with the rest of the row
                self.rows[slot, start] = host[name]
            elif name in host:
                self.host[slot, start] = host[name]
            start += width
        if self.reduce:
            self._start_reduce(slot)
        self.count += 1

    def _start_reduce(self, slot: int) -> None:
        dist = torch.distributed
        total = self.rows[slot].clone()
        extremes = torch.cat([self.rows[slot][self._max], -self.rows[slot][self._min]])
        works = (
            dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.group, async_op=True),
            dist.all_reduce(extremes, op=dist.ReduceOp.MAX, group=self.group, async_op=True),
        )
        self._pending.append((slot, self.count, total, extremes, works))
        if len(self._pending) > RING_ROWS // 2:  # a rank that never reads: free old handles
            self._finish(self._pending.pop(0))

    def _finish(self, pending: tuple) -> None:
        slot, step, total, extremes, works = pending
        try:
            for work in works:
                work.wait(timeout=timedelta(seconds=REDUCE_TIMEOUT_S))
        except RuntimeError:  # a rank stopped early: keep this rank's own numbers
            self.reduce = False
            self._pending.clear()
            self.note = (
                f"another rank stopped stepping (uneven data?): from step {step} on, the rows "
                "hold this rank's shard of each batch only"
            )
            return
        row = total / self.world  # means (and per-step values equal on every rank)
        row[self._sum] = total[self._sum]
        n_max = len(self._max)
        row[self._max] = extremes[:n_max]
        row[self._min] = -extremes[n_max:]
        self.rows[slot].copy_(row)

    def read(self) -> np.ndarray | None:
        """Rows written since the last read, oldest first, as float64 (n, D); None if none."""
        while self._pending:
            self._finish(self._pending.pop(0))
        new = self.unread
        if new <= 0:
            return None
        lost = max(0, new - RING_ROWS)
        idx = [(self.read_count + lost + i) % RING_ROWS for i in range(new - lost)]
        self.read_count = self.count
        device = self.rows[idx].to("cpu").numpy().astype(np.float64)
        host = self.host[idx]
        return np.where(np.isnan(host), device, host)


class ValSums:
    """The epoch's validation sums (``layout.val_channels``) on the device, read at epoch end."""

    def __init__(self, layout: Layout, device: torch.device) -> None:
        self.channels = val_channels(layout)
        with torch.inference_mode(False):  # validation often runs under inference_mode
            self.sums = torch.zeros(sum(w for _, w in self.channels), device=device)
        self.zero = torch.zeros_like(self.sums)

    def add(self, vals: dict) -> None:
        """Add one batch's ``quantities.val_stats``."""
        row = assemble(vals, self.channels, self.zero)
        host = host_values(vals)
        start = 0
        for name, width in self.channels:
            if name in host:
                row[start] = host[name]
            start += width
        self.sums += row

    def read(self) -> dict[str, np.ndarray]:
        """The sums by channel name (one copy to the host), zeroed for the next epoch."""
        flat = self.sums.to("cpu").numpy().astype(np.float64)
        self.sums.zero_()
        out, start = {}, 0
        for name, width in self.channels:
            out[name] = flat[start : start + width]
            start += width
        return out
