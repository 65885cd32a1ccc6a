"""A real two-process training (run by tests/test_torch_distributed.py under torchrun, gloo).

Each rank trains on its own shard of every global batch, with DistributedDataParallel directly
(``ddp``) or through Hugging Face Accelerate (``accelerate``), and a ``bertlab.torch.Watch`` on
every rank. Rank 0 writes what the Watch recorded and what really happened (the all-reduced
gradient norm and the global batch's class counts) to ``<out>/result.json``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers

from torch_training import model_and_optimizer, tensors  # noqa: E402

import bertlab.torch  # noqa: E402
from bertlab.probes.torch import ring  # noqa: E402

B, STEPS = 16, 6


#: A worker that has not finished by then exits on its own: a stuck rank must never outlive the
#: test (torchrun starts its workers in sessions of their own, out of the test's reach).
WATCHDOG_S = 80


def main(mode: str, out: str) -> None:
    watchdog = threading.Timer(WATCHDOG_S, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    torch.set_num_threads(1)
    model, opt = model_and_optimizer(dropout=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    if mode == "accelerate":  # (mode "all": DDP, every rank writing its own record)
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
        wrapped, opt = accelerator.prepare(model, opt)
        backward = accelerator.backward
    else:
        dist.init_process_group("gloo")
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
        backward = torch.Tensor.backward
    rank, world = dist.get_rank(), dist.get_world_size()
    ids, mask, y = tensors(n=B * world * STEPS)
    per_rank = {"rank": "all", "path": Path(out) / "exp.bertlab"} if mode == "all" else {}
    watch = bertlab.torch.Watch(wrapped, opt, loss_fn, verbose=False, dashboard=False, **per_rank)
    norms, counts = [], []
    steps = STEPS - 2 if mode == "uneven" and rank == 1 else STEPS
    if mode == "uneven":  # rank 1 runs out of data first; DDP's Join shadows its collectives
        ring.REDUCE_TIMEOUT_S = 3.0
        join = wrapped.join()
        join.__enter__()
    for step in range(steps):
        start = step * world * B
        shard = slice(start + rank * B, start + (rank + 1) * B)
        opt.zero_grad()
        backward(loss_fn(wrapped(ids[shard], mask[shard]), y[shard]))
        norms.append(float(torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))))
        counts.append(np.bincount(y[start : start + world * B].numpy(), minlength=4).tolist())
        opt.step()
    if mode == "uneven":
        join.__exit__(None, None, None)
    watch.close()
    if rank == 0:
        h = watch.history
        result = {
            "rows": len(h),
            "grad_norm": h["grad_norm"].tolist(),
            "true_grad_norm": norms,
            "label_count": h[[f"label_count[{c}]" for c in range(4)]].values.tolist(),
            "true_label_count": counts,
            "batch_size": h["batch_size"].tolist(),
            "distributed": watch.run.meta.get("distributed"),
            "notes": watch.run.meta["notes"],
        }
        (Path(out) / "result.json").write_text(json.dumps(result))
    elif mode != "all":
        assert watch.run.steps == 0  # only rank 0 records
    dist.barrier()
    # Leave without tearing the process groups down: under Accelerate, a gloo worker thread
    # freeing the barrier's work needs the GIL while the main thread, freeing DDP's reducer,
    # joins that thread (seen twice in ~40 runs, both in torch's own teardown, after the
    # result was written). What is tested here is the record, not torch's shutdown.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
