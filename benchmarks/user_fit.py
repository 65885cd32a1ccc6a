"""What a user's ``fit`` pays for a Watch when nothing else watches the batches.

Run::

    python benchmarks/user_fit.py --backend jax --model fast
    python benchmarks/user_fit.py --backend torch --model bert --rounds 9

``overhead.py`` times every step with the same small callback in every arm. That callback is
not ``async_safe``, and on Keras's JAX and torch backends any such callback turns off Keras 3's
asynchronous dispatch of batch callbacks (``keras/src/callbacks/callback_list.py``: with only
``async_safe`` or default batch hooks among the callbacks given to ``fit``, ``on_*_batch_end``
run on a thread pool and the next step is dispatched before the logs are read). So
``overhead.py`` measures the Watch's own work against a plain ``fit`` that is already
synchronous, which is what it must do to time single steps, but not what a user with
``callbacks=[]`` (``verbose`` 0 or 1: the progress bar is added after the choice) starts from.

Here no arm has a timer: each ``fit`` of ``--steps`` steps is timed whole, in interleaved rounds
(order rotated every round), after a settling phase in which the Watch chooses its stride
(``bertlab.cadence``). Arms: ``plain`` (``callbacks=[]``), ``plain-b`` (the same again: the A/A
control), ``noop`` (one callback whose ``on_train_batch_end`` does nothing: what any per-batch
callback costs here), ``watch`` (``bertlab.Watch(verbose=False)``). Ratios are medians of the
per-fit time per step over plain's, with a bootstrap 95 % interval (fits resampled).
On TensorFlow Keras never dispatches batch callbacks asynchronously (``IS_THREAD_SAFE`` is
False), so there ``noop`` should read 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default="jax")
    parser.add_argument("--model", choices=("fast", "bert"), default="fast")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, help="steps per fit (fast 2000, bert 30)")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # before Keras is imported
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import keras
    import overhead
    from intervals import ratio_interval

    import bertlab

    class Noop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # noqa: D102 - the point is that it exists
            pass

    steps = args.steps or (2000 if args.model == "fast" else 30)
    build = overhead.build_fast if args.model == "fast" else overhead.build_bert
    x, y = overhead.make_data(args.model, 32 * steps)
    arms: dict[str, Any] = {
        "plain": lambda: [],
        "plain-b": lambda: [],
        "noop": lambda: [Noop()],
        "watch": lambda: [bertlab.Watch(verbose=False)],
    }
    made = {}
    for name, callbacks in arms.items():
        model, cbs = build(), callbacks()
        start = time.perf_counter()
        while True:  # warm-up; the Watch settles on its stride (at most 300 s)
            model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=cbs)
            settled = name != "watch" or "every" in cbs[0].run.meta
            if settled or time.perf_counter() - start > 300:
                break
        made[name] = (model, cbs)
    names = list(arms)
    per_step: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            model, cbs = made[name]
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=cbs)
            per_step[name].append((time.perf_counter() - t0) / steps)
    rng = np.random.default_rng(0)
    base = np.array(per_step["plain"])
    print(f"user_fit: {args.model} model, {args.backend}, {args.rounds} rounds x {steps} steps")
    for name in names:
        ratio, low, high = ratio_interval(np.array(per_step[name]), base, rng)
        extra = f"  (every={made[name][1][0].every})" if name == "watch" else ""
        print(
            f"  {name:8s} {np.median(per_step[name]) * 1e3:8.3f} ms/step  {ratio:.3f}x "
            f"[{low:.3f}, {high:.3f}]{extra}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
