"""Command line: ``bertlab demo`` (also ``python -m bertlab demo``) and ``bertlab show RUN``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _demo_data(n: int, k: int, seq: int, vocab: int, seed: int):
    """Synthetic 'documents': random tokens plus a few class-specific keywords, then padding.

    Stands in for real text until the BBC News demo lands; it needs no download and a small
    model learns it in a few epochs, so the recorded numbers show a real learning curve.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = rng.integers(10 + k * 5, vocab, size=(n, seq))
    lengths = rng.integers(seq // 3, seq + 1, size=n)
    for i in range(n):
        keywords = 10 + y[i] * 5 + rng.integers(0, 5, size=6)
        x[i, 1 + rng.choice(lengths[i] - 1, size=6, replace=False)] = keywords
    x[:, 0] = 2  # [CLS]-like start token
    mask = np.arange(seq)[None, :] < lengths[:, None]
    return np.where(mask, x, 0).astype("int32"), mask.astype("int32"), y


def demo(args: argparse.Namespace) -> int:
    """Train a tiny BERT with Watch in a plain script; print what was recorded; save the run."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    import keras
    import keras_hub
    import numpy as np

    # KerasHub turns arrays into a tf.data pipeline and then warns that shuffle is ignored.
    warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")

    import bertlab
    from bertlab.text import summary

    k, seq, vocab = 4, args.seq_len, 1000
    x, mask, y = _demo_data(args.samples, k, seq, vocab, seed=0)
    n_val = args.samples // 5
    inputs = {"token_ids": x, "padding_mask": mask, "segment_ids": np.zeros_like(x)}
    train = {key: v[n_val:] for key, v in inputs.items()}
    val = {key: v[:n_val] for key, v in inputs.items()}
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab,
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=seq,
    )
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=k, preprocessor=None)
    model.compile(optimizer=keras.optimizers.Adam(args.lr), metrics=["accuracy"])
    print(
        f"bertlab demo: fine-tuning a 2-layer BERT (hidden 64) on {len(y) - n_val} synthetic "
        f"documents, {k} classes, {args.epochs} epochs, batch 16, seq {seq}, lr {args.lr:g}"
    )
    watch = bertlab.Watch()
    start = time.perf_counter()
    model.fit(
        train,
        y[n_val:],
        validation_data=(val, y[:n_val]),
        epochs=args.epochs,
        batch_size=16,
        callbacks=[watch],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    print(f"\ntrained in {time.perf_counter() - start:.1f} s\n")
    print(summary(watch.run))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo.bertlab"
    watch.save(path)
    history = watch.history
    print(f"\nrecorded {len(history)} rows x {history.shape[1]} columns per batch; saved {path}")
    print(f"reopen it with: bertlab.load({str(path)!r}).history")
    return 0


def show(args: argparse.Namespace) -> int:
    """Print the summary of a saved run."""
    import bertlab
    from bertlab.text import summary

    print(summary(bertlab.load(args.run)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bertlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small model with Watch and print what it recorded")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--samples", type=int, default=800, help="number of synthetic documents")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", default="out", help="folder for the saved run")
    p.set_defaults(func=demo)
    p = sub.add_parser("show", help="print the summary of a saved run")
    p.add_argument("run")
    p.set_defaults(func=show)
    args = parser.parse_args(argv)
    return args.func(args)
