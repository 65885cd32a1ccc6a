"""What does the live dashboard cost? Overhead in a running kernel, bytes and time per update.

Run::

    python benchmarks/dashboard.py                 # all three parts, default sizes
    python benchmarks/dashboard.py --rounds 5 --steps 30 --json out.json

What is measured
----------------
1. **Overhead in a real Jupyter kernel.** A kernel is started with jupyter_client (ipykernel,
   so ``Watch`` sees a notebook kernel and displays its dashboard when ``fit`` starts). Inside
   it, ``benchmarks/overhead.py``'s interleaved-rounds harness trains the tiny KerasHub BERT of
   the core benchmark in three arms: ``plain``, ``watch`` (``Watch(dashboard=False)``) and
   ``dashboard`` (``Watch(dashboard=True)``: the widget is displayed and streams to the front
   end). Ratio = median step time / plain's. Target: dashboard <= 1.05x plain.
   This process plays the front end: it subscribes to the kernel's IOPub channel and receives
   every widget message, as JupyterLab would (it only does not draw).
2. **Bytes per update vs run length**, from the messages this process received in part 1 (the
   wire: JSON content + binary buffers) and, for long runs, from a synthetic run streamed into a
   recording comm: at 10^3 .. 10^6 recorded steps, the bytes of one update carrying the same
   number of new rows. Target: flat (an update carries only what is new).
3. **Python time per update** (``Dashboard.flush``: read the new rows, encode, send), in the
   kernel (part 1, through ZeroMQ) and at each run length of part 2. Target: <= 2 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------- part 1: in a kernel
KERNEL_CODE = """
import json, os, sys, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, {bench_dir!r}); sys.path.insert(0, {root!r})
warnings.filterwarnings("ignore")
import overhead, bertlab
dashes = []
def dashboard_arm():
    watch = bertlab.Watch(verbose=False, dashboard=True)
    dashes.append(watch)
    return [watch]
res = overhead.bench("bert", {rounds}, {steps}, with_tb=False,
                     extra_arms={{"dashboard": dashboard_arm}})
log = list(dashes[0].dashboard.update_log)
res["update_python_ms"] = [t * 1e3 for t, _ in log]
res["update_buffer_bytes"] = [b for _, b in log]
print("RESULT" + json.dumps(res))
"""


def _drain(kc, stop: threading.Event, out: queue.Queue) -> None:
    while not stop.is_set():
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        out.put((time.perf_counter(), msg))


def in_kernel(rounds: int, steps: int, timeout: float) -> dict[str, Any]:
    """Run part 1 inside a fresh ipykernel; return the harness result plus wire statistics."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    stop = threading.Event()
    received: queue.Queue = queue.Queue()
    thread = threading.Thread(target=_drain, args=(kc, stop, received), daemon=True)
    thread.start()
    try:
        code = KERNEL_CODE.format(
            bench_dir=str(ROOT / "benchmarks"), root=str(ROOT), rounds=rounds, steps=steps
        )
        msg_id = kc.execute(textwrap.dedent(code))
        while True:  # IOPub is read by the drain thread, the reply comes on the shell channel
            reply = kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        time.sleep(1.0)  # let the last IOPub messages arrive
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"benchmark failed in the kernel: {reply['content']}")
    finally:
        stop.set()
        thread.join()
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    result, updates = None, []
    while not received.empty():
        _, msg = received.get()
        content = msg["content"]
        if msg["msg_type"] == "stream" and "RESULT" in content.get("text", ""):
            text = content["text"]
            result = json.loads(text[text.index("RESULT") + 6 :].splitlines()[0])
        if msg["msg_type"] == "comm_msg":
            data = content.get("data", {})
            if data.get("method") == "custom" and data["content"].get("type") == "steps":
                wire = len(json.dumps(content)) + sum(len(b) for b in msg.get("buffers", []))
                rows = data["content"]["stop"] - data["content"]["start"]
                updates.append((data["content"]["stop"], rows, wire))
    if result is None:
        raise RuntimeError("the kernel printed no result")
    result["wire_updates"] = updates
    return result


# ---------------------------------------------------------------------- part 2+3: long runs
def long_run(lengths: list[int], rows_per_update: int, samples: int) -> list[dict[str, Any]]:
    """Stream a synthetic run (the tiny BERT's row layout) to a recording comm; at each run
    length, time ``samples`` updates of ``rows_per_update`` new rows and measure their bytes."""
    import comm
    from comm.base_comm import BaseComm

    from bertlab.layout import Layout
    from bertlab.run import Run
    from bertlab.views.dashboard import Dashboard

    class Counting(BaseComm):
        def __init__(self, **kwargs: Any) -> None:
            self.last = 0
            super().__init__(**kwargs)

        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
            self.last = len(json.dumps(data)) + sum(len(b) for b in buffers or [])

    comm.create_comm = lambda **kwargs: Counting(**kwargs)
    layers = ("embeddings", "layer_0", "layer_1", "pooler", "logits")
    run = Run()
    run.set_layout(Layout("multiclass", 4, layers))
    dash = Dashboard(run, throttle_s=float("inf"))  # flush() by hand below
    rng = np.random.default_rng(0)
    block = rng.random((100_000, run.store.width))
    out = []
    for target in lengths:
        while run.steps < target - samples * rows_per_update:
            n = min(100_000, target - samples * rows_per_update - run.steps)
            run.add_steps(block[:n])
        dash.flush()
        times, sizes = [], []
        for _ in range(samples):
            run.add_steps(block[:rows_per_update])
            start = time.perf_counter()
            dash.flush()
            times.append(time.perf_counter() - start)
            sizes.append(dash.comm.last)
        out.append(
            {
                "steps": run.steps,
                "rows_per_update": rows_per_update,
                "bytes_median": float(np.median(sizes)),
                "python_ms_median": float(np.median(times)) * 1e3,
                "python_ms_p95": float(np.percentile(times, 95)) * 1e3,
                "store_mb": run.store.nbytes / 2**20,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--skip-kernel", action="store_true", help="only parts 2 and 3")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results: dict[str, Any] = {}
    print("bertlab dashboard benchmark")
    if not args.skip_kernel:
        res = in_kernel(args.rounds, args.steps, args.timeout)
        results["kernel"] = res
        print(f"\n== 1. tiny BERT in a running kernel: {args.rounds} rounds x {args.steps} steps")
        for name, arm in res["arms"].items():
            spread = f"{arm['round_ratio_min']:.3f}-{arm['round_ratio_max']:.3f}"
            print(f"   {name:<10} {arm['median_ms']:8.2f} ms/step {arm['ratio']:6.3f}x  ({spread})")
        ratio = res["arms"]["dashboard"]["ratio"]
        print(f"   target: dashboard <= 1.05x plain -> {ratio:.3f}x")
        wire = res["wire_updates"]
        if wire:
            per_row = [w / max(1, r) for _, r, w in wire]
            half = len(wire) // 2
            print(
                f"   {len(wire)} updates received; bytes per update median "
                f"{np.median([w for *_, w in wire]):.0f}; bytes per new row: first half "
                f"{np.median(per_row[:half] or per_row):.0f}, second half "
                f"{np.median(per_row[half:]):.0f}"
            )
        py = res["update_python_ms"]
        print(
            f"   Python time per update in the kernel: median {np.median(py):.3f} ms, "
            f"max {np.max(py):.3f} ms (target <= 2 ms)"
        )
    lengths = [1_000, 10_000, 100_000, 1_000_000]
    rows = long_run(lengths, rows_per_update=8, samples=50)
    results["long_run"] = rows
    print("\n== 2./3. one update of 8 new rows, by run length (synthetic tiny-BERT layout)")
    print(f"   {'steps':>9} {'bytes':>8} {'python ms (median/p95)':>24} {'store MB':>9}")
    for r in rows:
        print(
            f"   {r['steps']:>9} {r['bytes_median']:>8.0f} "
            f"{r['python_ms_median']:>12.3f} / {r['python_ms_p95']:<9.3f} {r['store_mb']:>9.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
