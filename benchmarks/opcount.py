"""How many ops does the Watch add to a training step? (On a GPU each is a kernel launch.)

Run::

    python benchmarks/opcount.py                    # fast model, TensorFlow
    python benchmarks/opcount.py --backend torch    # Keras on torch
    python benchmarks/opcount.py --model bert       # the tiny KerasHub BERT

TensorFlow: the nodes of the traced step function (``one_step_on_data``) that run a kernel, i.e.
every node but ``Const``, ``Identity``, ``NoOp`` and ``Placeholder``, before Grappler's rewrites
(which may fuse a few more). Torch backend: the aten ops dispatched per step (counted with a
``TorchDispatchMode`` over a short ``fit``, divided by its steps); views and metadata ops are
counted too, so this is an upper bound on launches. JAX is left out: the step is one XLA program
whose fusion decides the launches. Quoted in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

if "--backend" in sys.argv:
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import overhead as ob  # noqa: E402

import bertlab  # noqa: E402

STEPS = 8
NO_KERNEL = {"Const", "Identity", "NoOp", "Placeholder"}


def _tf_functions(fn, seen=None, depth=0) -> list:
    """The ``tf.function`` objects reachable from a Keras train function's closures."""
    from tensorflow.python.eager.polymorphic_function import polymorphic_function as pf

    seen = set() if seen is None else seen
    if id(fn) in seen or depth > 6:
        return []
    seen.add(id(fn))
    found = [fn] if isinstance(fn, pf.Function) else []
    for cell in getattr(fn, "__closure__", None) or []:
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value):
            found += _tf_functions(value, seen, depth + 1)
    return found


def tf_ops(model_kind: str, watched: bool) -> collections.Counter:
    """Kernel nodes of the traced one-step function, by op type."""
    x, y = ob.make_data(model_kind, 32 * 4)
    watch = bertlab.Watch(verbose=False, dashboard=False) if watched else None
    arm = ob.Arm("a", ob.BUILD[model_kind], [watch] if watch else [])
    arm.fit(x, y, record=False)
    train = watch._instrument._cache["train"][1] if watch else arm.model.train_function
    best: collections.Counter = collections.Counter()
    for fn in _tf_functions(train):
        for concrete in fn._list_all_concrete_functions():
            ops = concrete.graph.get_operations()
            count = collections.Counter(op.type for op in ops if op.type not in NO_KERNEL)
            if "one_step_on_data" in fn._name and sum(count.values()) > sum(best.values()):
                best = count
    return best


def torch_ops(model_kind: str, watched: bool) -> collections.Counter:
    """aten ops dispatched per training step, by op name (mean over STEPS steps)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func.overloadpacket.__name__)] += 1
            return func(*args, **(kwargs or {}))

    x, y = ob.make_data(model_kind, 32 * (STEPS + 4))
    watch = bertlab.Watch(verbose=False, dashboard=False) if watched else None
    arm = ob.Arm("a", ob.BUILD[model_kind], [watch] if watch else [])
    arm.fit(x[: 32 * 4], y[: 32 * 4], record=False)
    with Count() as mode:
        arm.model.fit(
            x[: 32 * STEPS],
            y[: 32 * STEPS],
            batch_size=32,
            verbose=0,
            callbacks=arm.callbacks,
            shuffle=False,
        )
    return collections.Counter({k: v / STEPS for k, v in mode.ops.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("tensorflow", "torch"))
    parser.add_argument("--model", choices=tuple(ob.BUILD), default="fast")
    args = parser.parse_args(argv)
    import keras

    count = torch_ops if keras.backend.backend() == "torch" else tf_ops
    plain, watched = count(args.model, False), count(args.model, True)
    added = {k: watched[k] - plain.get(k, 0) for k in watched if watched[k] != plain.get(k, 0)}
    print(f"keras backend {keras.backend.backend()}, model {args.model}")
    print(f"ops per step: plain {sum(plain.values()):.0f}, with Watch {sum(watched.values()):.0f}")
    top = sorted(added.items(), key=lambda kv: -kv[1])[:40]
    print("most added:", ", ".join(f"{k} {v:g}" for k, v in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
