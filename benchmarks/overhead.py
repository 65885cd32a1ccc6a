"""How much slower is a training step with ``bertlab.Watch`` attached?

Run::

    python benchmarks/overhead.py                      # both models, default rounds/steps
    python benchmarks/overhead.py --model fast --rounds 21 --steps 300 --json out.json
    python benchmarks/overhead.py --model bert --control   # + an A/A arm: a 2nd plain model
    python benchmarks/overhead.py --model fast --control --path   # + Watch(path=...) arm
    python benchmarks/overhead.py --model fast --control --backend jax   # Keras on JAX / torch

What is measured
----------------
Two models, trained on synthetic random data (numpy, nothing downloaded), CPU only:

* ``bert``: a tiny KerasHub BERT (``BertBackbone``: 2 layers, 2 heads, hidden 128, intermediate
  512, vocabulary 2000, sequence 64) inside ``BertTextClassifier(num_classes=4,
  preprocessor=None)``, compiled with ``Adam(5e-5)`` and the task's default loss (sparse
  cross-entropy from logits) and metric (accuracy); batch 32.
* ``fast``: ``Input(64 int) -> Embedding(2000, 32) -> GlobalAveragePooling1D -> Dense(4)``,
  sparse cross-entropy from logits, ``Adam``, no metric; batch 32. Its step takes a few
  milliseconds, so any fixed per-batch cost (Python work in a callback) shows up here first.

Each model is trained in three *arms*: ``plain`` (``fit`` alone), ``watch`` (``fit`` +
``bertlab.Watch(verbose=False)``: rules still run, findings are just not printed; with random
labels, "loss at chance level" findings are expected) and ``tensorboard`` (``fit`` +
``keras.callbacks.TensorBoard(histogram_freq=1, update_freq="batch")``, the reference for "what
a per-batch logger usually costs"). The figure of merit is the **median step time of an arm
divided by that of plain**.

Why this way
------------
* **One model per arm, built from the same seed, warmed up before measuring.** Each arm's
  compiled train function is traced once, in a short warm-up ``fit``, and then reused; the
  Watch and TensorBoard callbacks are single instances reused across rounds (as a user
  would: ``Watch`` rebuilds the train function once per model and caches it). Tracing is a
  one-off cost and is excluded.
* **Interleaved rounds in one process.** Each round fits every arm for one epoch of ``S``
  steps, in an order that rotates every round. Drift (CPU frequency, caches, other processes
  on the machine) then hits all arms alike instead of biasing whichever arm ran last.
* **The same timing callback in every arm.** A tiny callback takes ``time.perf_counter()`` at
  every ``on_train_batch_end``; a step's time is the difference between consecutive stamps,
  so it includes the compiled step, the input pipeline and *every* callback's per-batch work
  (the Watch's read-back included). The timer costs the same in all arms, and its
  ``on_train_batch_end`` also keeps Keras from dispatching batch callbacks asynchronously in
  any arm. The first 2 steps of each ``fit`` are dropped (iterator start-up).
* **Medians.** Per arm, the median over all kept step times of all rounds (``ms/step``, and
  ``ratio`` = median of the arm / median of plain); a GC pause or a scheduler hiccup moves a
  mean, not a median. The spread of the per-round ratios (each round's median / plain's median
  in that round, min-max) shows how stable the ratio is from one round to the next. The mean
  step time and its ratio are printed too: a cost paid only every so often (the Watch
  evaluates its diagnosis rules at most every 0.25 s) is in the mean but not the median.

Per-``fit`` costs that are not per step (``on_train_begin`` installing the Watch, TensorBoard
writing weight histograms at ``on_epoch_end``) do not enter the step time. The median time of a
whole ``fit`` per arm (from the call to the last ``on_train_end``) is printed below each table for
completeness. It stops at ``on_train_end`` because on this TF/Keras the teardown after it
(releasing the ``tf.data`` iterator) sometimes stalls for up to ~5 s in any arm, which would
drown everything else; the full call-to-return times are in the JSON (``fit_wall_ms``).

``--control`` adds a fourth arm, ``plain-b``: a second plain model, built and run exactly like
``plain``. Its ratio should be 1; how far it is from 1 is the resolution of the measurement on
this machine at that moment (a 3 % target needs a control within ~1 %).

``--path`` adds a ``watch+path`` arm: ``Watch(path=...)``, which also appends the run to a file
while it trains (the crash-safe record, ``bertlab.record``: a background thread writes at most
every 2 s and at epoch end; each ``fit``'s end waits for a flush with fsync, which is per-fit work
outside the step time). The writer thread's writes and their mean cost are printed below the
table.

Targets: Watch <= 1.03x plain on ``bert``, <= 1.10x plain on ``fast``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # silence TensorFlow's C++ logs (before importing TF)


def _backend_arg(argv: list[str]) -> str | None:
    """``--backend NAME``: Keras reads its backend at import, so it is set before that."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


if _backend_arg(sys.argv):
    os.environ["KERAS_BACKEND"] = _backend_arg(sys.argv)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hold back what C++ writes to stderr (absl logs from before TF_CPP_MIN_LOG_LEVEL applies:
    "Could not find cuda drivers", "failed call to cuInit"); replay it if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.buffer.write(held.read())
            sys.stderr.flush()
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


with _quiet_stderr():
    import tensorflow as tf

    _DEVICES = tf.config.list_physical_devices()  # first device query logs about CUDA, too

import keras  # noqa: E402
from intervals import ratio_interval  # noqa: E402  (benchmarks/, the script's own folder)

import bertlab  # noqa: E402

BATCH = 32
SEQ = 64
VOCAB = 2000
CLASSES = 4
SEED = 1234
DROP = 2  # leading steps of each fit not counted
#: The Watch arm's ``every=`` (``--every``).
EVERY: int | str = "auto"

#: Per model: default rounds, default steps per fit, warm-up steps, Watch target ratio.
MODELS: dict[str, dict[str, Any]] = {
    "bert": {"rounds": 7, "steps": 30, "warmup": 4, "target": 1.03},
    "fast": {"rounds": 15, "steps": 200, "warmup": 8, "target": 1.10},
    # The demo's real model: pretrained all-MiniLM-L6-v2 on BBC News (64 tokens, batch 16).
    # Not in "both": ~2 s a step on 2 cores. Run it with --model minilm.
    "minilm": {"rounds": 3, "steps": 12, "warmup": 3, "target": 1.03, "batch": 16},
    # A BERT-base-sized random encoder (12 layers, hidden 768): for a GPU (benchmarks/gpu.sh).
    "bertbase": {"rounds": 5, "steps": 30, "warmup": 4, "target": 1.03},
}


#: Print order of the arms; ``plain-b`` (``--control``) is a second plain model: an A/A control.
ARM_ORDER = ("plain", "plain-b", "watch", "watch+path", "tensorboard")


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- models and data
def build_bert() -> keras.Model:
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=128,
        intermediate_dim=512,
        max_sequence_length=SEQ,
    )
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=CLASSES, preprocessor=None)
    model.compile(optimizer=keras.optimizers.Adam(5e-5))  # default loss: sparse CE from logits
    return model


def build_bertbase() -> keras.Model:
    """BERT-base's shape (12 layers, 12 heads, hidden 768, intermediate 3072, vocab 30522),
    randomly initialised: the cost of the Watch on the size of model people fine-tune."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30522,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        intermediate_dim=3072,
        max_sequence_length=max(SEQ, 128),
    )
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=CLASSES, preprocessor=None)
    model.compile(optimizer=keras.optimizers.Adam(5e-5))
    return model


def build_fast() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(SEQ,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 32),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def build_minilm() -> keras.Model:
    from bertlab.demo import minilm

    return minilm.classifier(5, "fixed", seed=SEED, metrics=())  # Adam 5e-5, logits


BUILD = {"bert": build_bert, "fast": build_fast, "minilm": build_minilm, "bertbase": build_bertbase}


def make_data(kind: str, n: int, seed: int = SEED) -> tuple[Any, np.ndarray]:
    """``n`` random rows: token ids with random-length padding (id 0), labels in [0, 4).

    ``minilm``: the first ``n`` BBC News training articles, tokenized as in the demo.
    """
    if kind == "minilm":
        from bertlab.demo import minilm

        data = minilm.bbc_arrays(SEQ)
        reps = -(-n // len(data.y_train))
        x = {k: np.concatenate([v] * reps)[:n] for k, v in data.x_train.items()}
        return x, np.concatenate([data.y_train] * reps)[:n]
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, SEQ + 1, size=n)
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(1, VOCAB, size=(n, SEQ)), 0).astype("int32")
    y = rng.integers(0, CLASSES, size=n).astype("int32")
    if kind == "fast":
        return ids, y
    x = {
        "token_ids": ids,
        "padding_mask": mask.astype("int32"),
        "segment_ids": np.zeros((n, SEQ), dtype="int32"),
    }
    return x, y


def _take(x: Any, n: int) -> Any:
    return {k: v[:n] for k, v in x.items()} if isinstance(x, dict) else x[:n]


# ---------------------------------------------------------------------- timing
class StepTimer(keras.callbacks.Callback):
    """``perf_counter`` at every batch end; present, identically, in every arm."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []
        self.begin = 0.0

    def on_train_begin(self, logs=None) -> None:
        self.stamps = []
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.stamps.append(time.perf_counter())

    def step_times(self) -> np.ndarray:
        """Seconds per step, steps ``DROP..`` of the last fit."""
        return np.diff(np.asarray(self.stamps))[DROP - 1 :]

    def first_step(self) -> float:
        """Seconds from ``on_train_begin`` to the end of the first batch (a retrace shows here)."""
        return self.stamps[0] - self.begin


class FitEnd(keras.callbacks.Callback):
    """Stamps the end of ``fit``'s own work; last in every arm's list, after all other hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.stamp = 0.0

    def on_train_end(self, logs=None) -> None:
        self.stamp = time.perf_counter()


class Arm:
    """One model instance and its callbacks, reused for every round."""

    def __init__(
        self, name: str, build: Callable[[], keras.Model], extra: list, batch: int = BATCH
    ) -> None:
        keras.utils.set_random_seed(SEED)  # same initial weights in every arm
        self.name = name
        self.batch = batch
        self.model = build()
        self.timer = StepTimer()
        self.end = FitEnd()
        self.callbacks = [self.timer, *extra, self.end]
        self.steps: list[np.ndarray] = []  # kept step times (s), one array per round
        self.fit_s: list[float] = []  # each measured fit: call -> last on_train_end
        self.wall_s: list[float] = []  # each measured fit: call -> return
        self.first_s: list[float] = []  # first step of each measured fit (not counted)

    def fit(self, x: Any, y: np.ndarray, record: bool = True) -> None:
        gc.collect()
        start = time.perf_counter()
        self.model.fit(
            x,
            y,
            batch_size=self.batch,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=self.callbacks,
        )
        if record:
            self.wall_s.append(time.perf_counter() - start)
            self.fit_s.append(self.end.stamp - start)
            self.steps.append(self.timer.step_times())
            self.first_s.append(self.timer.first_step())


def bench(
    kind: str,
    rounds: int,
    steps: int,
    with_tb: bool,
    control: bool = False,
    extra_arms: dict[str, Callable[[], list]] | None = None,
) -> dict[str, Any]:
    """Build, warm up and run every arm of one model in interleaved rounds; the summary.

    ``extra_arms`` maps more arm names to a factory of their callbacks (benchmarks/dashboard.py
    adds a Watch with the live dashboard this way).
    """
    cfg = MODELS[kind]
    build = BUILD[kind]
    batch = cfg.get("batch", BATCH)
    x, y = make_data(kind, steps * batch)
    warmup = min(cfg["warmup"], steps)
    tb_dir = tempfile.mkdtemp(prefix=f"bertlab-bench-{kind}-tb-")
    try:
        arms = [
            Arm("plain", build, [], batch),
            Arm("watch", build, [bertlab.Watch(verbose=False, every=EVERY)], batch),
        ]
        if control:
            arms.append(Arm("plain-b", build, [], batch))
        for name, callbacks in (extra_arms or {}).items():
            arms.append(Arm(name, build, callbacks(), batch))
        if with_tb:
            tb = keras.callbacks.TensorBoard(log_dir=tb_dir, histogram_freq=1, update_freq="batch")
            arms.append(Arm("tensorboard", build, [tb], batch))

        # Warm-up: trace every arm's train function (the Watch's instrumented one included).
        first: dict[str, float] = {}
        for arm in arms:
            t = time.perf_counter()
            arm.fit(_take(x, warmup * batch), _take(y, warmup * batch), record=False)
            first[arm.name] = time.perf_counter() - t

        # Settle: with every="auto" the Watch records its first steps whole and then measures
        # what a row costs (bertlab.cadence); the rounds measure what follows, the steady state.
        watch_cb, settle = arms[1].callbacks[1], 0
        chunk, t_settle = steps, time.perf_counter()
        while (
            watch_cb.run.meta.get("every") is None
            and EVERY == "auto"
            and time.perf_counter() - t_settle < 300
        ):
            arms[1].fit(_take(x, chunk * batch), _take(y, chunk * batch), record=False)
            settle += chunk

        for r in range(rounds):
            k = r % len(arms)
            for arm in arms[k:] + arms[:k]:
                arm.fit(x, y)
    finally:
        shutil.rmtree(tb_dir, ignore_errors=True)

    plain = arms[0]
    base = float(np.median(np.concatenate(plain.steps)))
    base_mean = float(np.mean(np.concatenate(plain.steps)))
    base_fit = statistics.median(plain.fit_s)
    out: dict[str, Any] = {"rounds": rounds, "steps": steps, "arms": {}}
    rng = np.random.default_rng(0)
    base_pool = np.concatenate(plain.steps)
    for arm in arms:
        pooled = np.concatenate(arm.steps)
        med = float(np.median(pooled))
        _, low, high = ratio_interval(pooled, base_pool, rng)
        per_round = [
            float(np.median(a) / np.median(p)) for a, p in zip(arm.steps, plain.steps, strict=True)
        ]
        out["arms"][arm.name] = {
            "median_ms": med * 1e3,
            "ratio": med / base,
            "ratio_ci95": [low, high],
            "mean_ms": float(np.mean(pooled)) * 1e3,
            "mean_ratio": float(np.mean(pooled)) / base_mean,
            "round_ratios": per_round,
            "round_ratio_min": min(per_round),
            "round_ratio_max": max(per_round),
            "kept_steps": int(pooled.size),
            "fit_median_ms": statistics.median(arm.fit_s) * 1e3,
            "fit_ratio": statistics.median(arm.fit_s) / base_fit,
            "warmup_fit_s": first[arm.name],
            "fit_ms": [t * 1e3 for t in arm.fit_s],
            "fit_wall_ms": [t * 1e3 for t in arm.wall_s],
            "first_step_ms": [t * 1e3 for t in arm.first_s],
            "round_median_ms": [float(np.median(t)) * 1e3 for t in arm.steps],
        }
    order = [*ARM_ORDER, *(extra_arms or {})]
    out["arms"] = {name: out["arms"][name] for name in order if name in out["arms"]}
    watch = out["arms"]["watch"]
    out["target"] = cfg["target"]
    out["target_met"] = watch["ratio_ci95"][1] <= cfg["target"]
    # A Watch that detached itself (internal fault) would look cheap: check it saw every step
    # (counted in the step, recorded as a row or not: bertlab.cadence).
    watch_cb = arms[1].callbacks[1]
    out["watch_counted_steps"] = watch_cb._steps_done()
    out["watch_rows"] = watch_cb.run.steps
    out["watch_every"] = watch_cb.every
    out["watch_expected_steps"] = warmup + settle + rounds * steps
    out["watch_settle_steps"] = settle
    out["watch_notes"] = list(watch_cb.run.meta.get("notes", []))
    out["watch_findings"] = [f.code for f in watch_cb.findings]
    return out


# ---------------------------------------------------------------------- report
def machine() -> dict[str, Any]:
    import keras_hub

    info = {
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "bertlab": bertlab.__version__,
        "bertlab_source": _source(),
        "tensorboard": None,
        "gpus": sum(d.device_type == "GPU" for d in _DEVICES),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if _has_tensorboard():
        import tensorboard

        info["tensorboard"] = tensorboard.__version__
    return info


def _source() -> str:
    """Where the measured bertlab comes from: its directory, and the git commit if any."""
    where = Path(bertlab.__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(where), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return str(where)
    return f"{where} @ {rev.stdout.strip()}" if rev.returncode == 0 else str(where)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report(kind: str, res: dict[str, Any]) -> None:
    title = {
        "bert": "tiny KerasHub BERT (2 layers, hidden 128, batch 32, seq 64)",
        "fast": "fast model (Embedding(2000, 32) + GlobalAveragePooling1D + Dense(4), batch 32)",
        "minilm": "pretrained all-MiniLM-L6-v2 on BBC News (6 layers, h384)",
        "bertbase": "BERT-base-sized random encoder (12 layers, h768)",
    }[kind]
    title += f" [batch {MODELS[kind].get('batch', BATCH)}, seq {SEQ}, {keras.backend.backend()}]"
    print(f"\n== {kind}: {title}")
    print(
        f"   {res['rounds']} interleaved rounds x {res['steps']} steps per fit, "
        f"first {DROP} steps of each fit dropped"
    )
    print(
        f"   {'arm':<12} {'ms/step':>8} {'ratio':>7}   {'per-round ratio (min-max)':<26}"
        f"{'mean ms/step':>12} {'mean ratio':>10}"
    )
    for name, a in res["arms"].items():
        spread = f"{a['round_ratio_min']:.3f}-{a['round_ratio_max']:.3f}"
        print(
            f"   {name:<12} {a['median_ms']:>8.2f} {a['ratio']:>6.3f}x   {spread:<26}"
            f"{a['mean_ms']:>12.2f} {a['mean_ratio']:>9.3f}x"
        )
    w = res["arms"]["watch"]
    verdict = "MET" if res["target_met"] else "NOT MET"
    low, high = w["ratio_ci95"]
    print(
        f"   target: watch <= {res['target']:.2f}x plain -> {w['ratio']:.3f}x "
        f"[95 % interval {low:.3f}, {high:.3f}]: {verdict} (met: the whole interval is under)"
    )
    fits = ", ".join(f"{name} {a['fit_median_ms']:.0f}" for name, a in res["arms"].items())
    print(f"   whole fit, median ms (per-fit work included, e.g. epoch-end histograms): {fits}")
    print(
        f"   watch: {res['watch_counted_steps']} steps counted, {res['watch_rows']} rows "
        f"recorded (every={res['watch_every']} after {res['watch_settle_steps']} settling "
        "steps before the rounds; bertlab.cadence)"
    )
    if res["watch_counted_steps"] != res["watch_expected_steps"]:
        print(
            f"   WARNING: the Watch counted {res['watch_counted_steps']} of "
            f"{res['watch_expected_steps']} steps; its timing is not representative"
        )
    if "record" in res:
        r = res["record"]
        print(
            f"   watch+path record: {r['writes']} writes by its thread, {r['write_ms_mean']:.2f} "
            f"ms each (mean, fsync at each fit's end included), {r['steps']} steps of "
            f"{r['row_bytes']} B, file {r['file_bytes'] / 1e6:.2f} MB"
        )
    if res["watch_notes"]:
        print(f"   watch notes: {res['watch_notes']}")
    if res["watch_findings"]:
        found = ", ".join(res["watch_findings"])
        print(f"   watch findings (expected: the labels are random): {found}")


def _record_arm(path: Path, made: list[Any]) -> Callable[[], list]:
    """The callbacks of the ``watch+path`` arm: a Watch that also writes its crash-safe record
    (``flush_every_s`` at its default, 2 s; a flush with fsync at every ``fit``'s end)."""

    def callbacks() -> list:
        watch = bertlab.Watch(verbose=False, path=path)
        made.append(watch)
        return [watch]

    return callbacks


def _record_costs(watch: Any) -> dict[str, Any]:
    """What the record's writer thread did: writes, their mean cost, the file's size."""
    recorder = watch.recorder
    recorder.close()
    return {
        "writes": recorder.writes,
        "write_ms_mean": recorder.write_seconds / max(1, recorder.writes) * 1e3,
        "file_bytes": recorder.path.stat().st_size if recorder.path.exists() else 0,
        "steps": watch.run.steps,
        "row_bytes": 8 * (watch.run.store.width if watch.run.store is not None else 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--model", choices=("bert", "fast", "minilm", "bertbase", "both"), default="both"
    )
    parser.add_argument("--seq", type=int, help=f"sequence length (default {SEQ})")
    parser.add_argument("--batch", type=int, help="batch size (default: per model)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: per model)")
    parser.add_argument("--steps", type=int, help="steps per fit (default: per model)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: KERAS_BACKEND, else tensorflow); TensorBoard's arm is "
        "TensorFlow's only",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="add a second plain arm (A/A control: the ratio it gets is the resolution)",
    )
    parser.add_argument(
        "--path",
        action="store_true",
        help="add a 'watch+path' arm: Watch(path=...) also appends the run to a file (the "
        "crash-safe record, bertlab.record) from its background thread",
    )
    parser.add_argument(
        "--every",
        default="auto",
        help="the Watch arm's every= ('auto', the default, or an int; 1 records every step)",
    )
    args = parser.parse_args(argv)
    if args.every != "auto":
        globals()["EVERY"] = int(args.every)
    if args.seq:
        globals()["SEQ"] = args.seq  # read by the builders and make_data at call time
    if args.batch:
        for cfg in MODELS.values():
            cfg["batch"] = args.batch
    if args.steps is not None and args.steps < DROP + 3:
        parser.error(f"--steps must be at least {DROP + 3}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")

    info = machine()
    print("bertlab Watch overhead benchmark")
    print(
        f"machine: {info['cpu_count']} CPU cores ({info['cpu']}), {info['gpus']} GPU, "
        f"{info['platform']}"
    )
    print(
        f"versions: python {info['python']}, tensorflow {info['tensorflow']}, "
        f"keras {info['keras']}, keras-hub {info['keras_hub']}, bertlab {info['bertlab']}, "
        f"tensorboard {info['tensorboard'] or '-'}"
    )
    print(f"bertlab measured: {info['bertlab_source']}")
    print(f"keras backend: {keras.backend.backend()}")
    with_tb = info["tensorboard"] is not None and keras.backend.backend() == "tensorflow"
    if info["tensorboard"] is None:
        print(
            "note: tensorboard is not installed, so the TensorBoard reference arm is skipped "
            "(pip install tensorboard)"
        )

    kinds = ["bert", "fast"] if args.model == "both" else [args.model]
    results: dict[str, Any] = {"machine": info, "models": {}}
    t0 = time.perf_counter()
    for kind in kinds:
        rounds = args.rounds or MODELS[kind]["rounds"]
        steps = args.steps or MODELS[kind]["steps"]
        recorded: list[Any] = []
        with tempfile.TemporaryDirectory(prefix="bertlab-bench-record-") as folder:
            extra = {"watch+path": _record_arm(Path(folder) / f"{kind}.bertlab", recorded)}
            res = bench(kind, rounds, steps, with_tb, args.control, extra if args.path else None)
            if recorded:
                res["record"] = _record_costs(recorded[0])
        results["models"][kind] = res
        report(kind, res)
        sys.stdout.flush()
    results["total_s"] = time.perf_counter() - t0
    print(f"\ntotal {results['total_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
