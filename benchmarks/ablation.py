"""Where does the Watch's per-step cost go? One arm per part of the row, switched off.

Run::

    python benchmarks/ablation.py                     # fast model, TensorFlow, 7 rounds
    python benchmarks/ablation.py --backend torch --rounds 5
    python benchmarks/ablation.py --model bert --rounds 5 --steps 30

A profile of the recorded row, not a second overhead benchmark: it reuses
:mod:`overhead`'s fast model, data, ``Arm`` and interleaved rounds, and adds arms whose Watch was
traced with one part of the row replaced by nothing (the part's channels then read NaN):

* ``no_out``: output statistics (range, histogram, confidence; ``quantities.output_stats``)
* ``no_cls``: predicted/true class counts and label facts (``class_counts``)
* ``no_inp``: input statistics (token ids, lengths, padding, [UNK]; ``input_stats_of``)
* ``no_grad``: gradient norms per layer and counts (``gradient_stats``)
* ``no_upd``: the update-to-weight ratio (the weights read before the update)

The part is patched out only while that arm's Watch traces its step (TensorFlow and JAX bake
the row into the compiled step then; on the torch backend, which runs eagerly, the patch stays
on for the arm's fits). ``plain`` and ``plain_b`` (an A/A control) give the resolution. The
figure is each arm's median step time over plain's: the saving of a part is ``watch`` minus
its arm. The results are quoted in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

if "--backend" in sys.argv:
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import overhead as ob  # noqa: E402

import bertlab  # noqa: E402
from bertlab.probes.keras import instrument as ins  # noqa: E402
from bertlab.probes.keras import quantities as q  # noqa: E402

PARTS = {
    "no_out": [(q, "output_stats", lambda *a, **k: {})],
    "no_cls": [(q, "class_counts", lambda *a, **k: ({}, None, None))],
    "no_inp": [(q, "input_stats_of", lambda *a, **k: {})],
    "no_grad": [(q, "gradient_stats", lambda *a, **k: {})],
    "no_upd": [(ins.Instrument, "_snapshot", lambda self, variables: None)],
}
if os.environ.get("KERAS_BACKEND") == "torch":  # the row comes from torch_fast (native torch)
    from bertlab.probes.keras import torch_fast
    from bertlab.probes.torch import quantities as tq

    PARTS["no_out"] = [(tq, "output_stats", lambda *a, **k: {})]
    PARTS["no_cls"] = [(tq, "class_counts", lambda *a, **k: ({}, None, None))]
    PARTS["no_inp"] = [(torch_fast, "_inputs", lambda *a, **k: {})]
    PARTS["no_grad"] = [(tq, "gradient_stats", lambda *a, **k: {})]


@contextlib.contextmanager
def without(arm: str) -> Iterator[None]:
    """Replace the functions of one part by ones that record nothing, for the block."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in PARTS.get(arm, [])]
    for owner, name, fn in PARTS.get(arm, []):
        setattr(owner, name, fn)
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--model", choices=("fast", "bert"), default="fast")
    args = parser.parse_args(argv)
    import keras

    eager = keras.backend.backend() == "torch"
    names = ["plain", "plain_b", "watch", *PARTS]
    x, y = ob.make_data(args.model, 32 * args.steps)
    arms = {}
    for name in names:
        extra = [] if name.startswith("plain") else [bertlab.Watch(verbose=False, dashboard=False)]
        arms[name] = ob.Arm(name, ob.BUILD[args.model], extra)
        with without(name):
            arms[name].fit(ob._take(x, 32 * 8), y[: 32 * 8], record=False)  # traced here
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            with without(name) if eager else contextlib.nullcontext():
                arms[name].fit(x, y)
    base = float(np.median(np.concatenate(arms["plain"].steps)))
    print(f"keras backend {keras.backend.backend()}, {args.model} model, {args.rounds} rounds")
    print(f"{'arm':8s} {'ms/step':>8s} {'ratio':>6s}")
    for name in names:
        median = float(np.median(np.concatenate(arms[name].steps)))
        print(f"{name:8s} {median * 1e3:8.3f} {median / base:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
