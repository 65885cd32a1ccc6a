"""What every program of the bug benchmark shares: seeding, attaching bertlab, the result file.

A program is one small training (a reported failure rewritten, or a healthy classifier) that
reads::

    from common import Bench
    bench = Bench(__file__)            # seeds python/numpy/keras or torch, 1 thread
    model.fit(..., callbacks=bench.callbacks())          # Keras
    with bench.torch_watch(model, opt, loss_fn=loss_fn):  # PyTorch loop
        ...
    bench.finish(ok=val_acc < 0.3, val_accuracy=val_acc)  # the measured symptom

``BUGS_NO_WATCH=1`` (validation mode) runs the same program without bertlab, not even
imported: the symptom measured then is the fault itself, not something the probe caused.
``BUGS_RESULT=<path>`` names the JSON file ``finish`` writes (``run.py`` reads it).
The module docstring of a program carries its fields (``source:``, ``expect:``,
``framework:``, ``symptom:``); see README.md.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the programs run from benchmarks/bugs/programs
    sys.path.insert(0, str(ROOT))

FIELDS = ("source", "expect", "framework", "symptom")
PAD, UNK = 0, 1  # ids ``encode`` reserves, as Keras' TextVectorization does


def header(path: str | Path) -> dict[str, str]:
    """The fields of a program's module docstring (``source``, ``expect``, ``framework``,
    ``symptom``), plus ``title`` (its first line) and ``notes`` (the lines after the fields)."""
    doc = ast.get_docstring(ast.parse(Path(path).read_text(encoding="utf-8"))) or ""
    lines = doc.splitlines()
    out: dict[str, str] = {"title": lines[0].strip() if lines else ""}
    notes: list[str] = []
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip() in FIELDS and key.strip() not in out:
            out[key.strip()] = value.strip()
        elif line.strip():
            notes.append(line.strip())
    out["notes"] = " ".join(notes)
    return out


class Bench:
    """One program's run: seeds, the Watch (or none), the symptom and the result file.

    Parameters
    ----------
    file
        The program's ``__file__``: its name and docstring fields go into the result.
    seed
        Seed of python, numpy and the program's framework (runs are deterministic).
    """

    def __init__(self, file: str, seed: int = 0) -> None:
        self.path = Path(file).resolve()
        self.name = self.path.stem
        self.fields = header(self.path)
        self.framework = self.fields.get("framework", "keras")
        self.watching = os.environ.get("BUGS_NO_WATCH", "") != "1"
        self.result_path = os.environ.get("BUGS_RESULT")
        self.seed = seed
        self.error: dict[str, str] | None = None
        self._watches: list[Any] = []
        self._start = time.perf_counter()
        random.seed(seed)
        np.random.seed(seed)
        if self.framework == "keras":
            import keras
            import tensorflow as tf

            with contextlib.suppress(RuntimeError):  # already initialised: keep as is
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            keras.utils.set_random_seed(seed)
        else:
            import torch

            torch.set_num_threads(1)
            torch.manual_seed(seed)

    # ------------------------------------------------------------------ attaching bertlab
    def keras_watch(self, **options: Any) -> list[Any]:
        """``[bertlab.Watch(verbose=False, **options)]``, or ``[]`` without bertlab."""
        if not self.watching:
            return []
        import bertlab

        options.setdefault("verbose", False)
        options.setdefault("dashboard", False)
        watch = bertlab.Watch(**options)
        self._watches.append(watch)
        return [watch]

    def callbacks(self) -> list[Any]:
        """Keras callbacks for ``fit``: a quiet ``bertlab.Watch``, or none without bertlab."""
        return self.keras_watch()

    def torch_watch(self, model: Any, optimizer: Any = None, **options: Any) -> Any:
        """A ``bertlab.torch.Watch`` context (``loss_fn=`` and the Watch's options pass
        through), or a context that does nothing without bertlab."""
        if not self.watching:
            return contextlib.nullcontext()
        from bertlab.probes.torch import Watch

        options.setdefault("verbose", False)
        options.setdefault("dashboard", False)
        watch = Watch(model, optimizer, **options)
        self._watches.append(watch)
        return watch

    def hf_callbacks(self, **options: Any) -> list[Any]:
        """Callbacks for a Hugging Face ``Trainer``: ``[bertlab.hf.Watch(...)]`` or ``[]``."""
        if not self.watching:
            return []
        from bertlab.probes.hf import Watch

        options.setdefault("verbose", False)
        options.setdefault("dashboard", False)
        watch = Watch(**options)
        self._watches.append(watch)
        return [watch]

    @contextlib.contextmanager
    def expect_error(self) -> Iterator[None]:
        """Run code whose exception is the bug's symptom: it is caught and recorded."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - the exception is the measured symptom
            self.error = {"type": type(exc).__name__, "message": str(exc)[:300]}

    # ------------------------------------------------------------------ the result
    def _findings(self) -> tuple[list[dict[str, Any]], str | None, int]:
        findings: list[dict[str, Any]] = []
        first: str | None = None
        steps = 0
        for watch in self._watches:
            inner = getattr(watch, "__dict__", {}).get("watch", watch)  # hf.Watch wraps one
            if inner is None:
                continue
            run = inner.run
            steps += int(run.steps)
            for f in run.findings:
                extra = f.get("extra") or {}
                findings.append(
                    {
                        "code": f["code"],
                        "severity": f["severity"],
                        "status": f["status"],
                        "cause": f.get("cause"),
                        "raised_at": extra.get("raised_at"),
                        "loud_at": extra.get("loud_at"),
                    }
                )
            live = inner.findings
            if live:
                first = live[0].code
        return findings, first, steps

    def finish(self, ok: bool | None = None, **symptom: Any) -> dict[str, Any]:
        """Record the measured symptom and bertlab's findings; write ``BUGS_RESULT``.

        Parameters
        ----------
        ok
            The program's own verdict on its validation: a buggy program shows its fault
            (accuracy at chance, NaN, one class...), a healthy one learns.
        **symptom
            Plain numbers or strings (``val_accuracy=0.25``, ``loss_nan=True``).
        """
        for watch in self._watches:  # a torch Watch left open still writes its last findings
            inner = getattr(watch, "__dict__", {}).get("watch", watch)
            if inner is not None and hasattr(inner, "close") and self.framework != "keras":
                with contextlib.suppress(Exception):
                    inner.close()
        findings, first, steps = self._findings()
        clean = {k: _plain(v) for k, v in symptom.items()}
        result = {
            "name": self.name,
            "kind": "healthy" if self.name.startswith("h") else "buggy",
            "expect": self.fields.get("expect", ""),
            "source": self.fields.get("source", ""),
            "framework": self.framework,
            "reported": self.fields.get("symptom", ""),
            "symptom": clean,
            "ok": None if ok is None else bool(ok),
            "error": self.error,
            "watched": self.watching,
            "seconds": round(time.perf_counter() - self._start, 2),
            "steps": steps,
            "findings": findings,
            "first": first,
        }
        if self.result_path:
            Path(self.result_path).write_text(json.dumps(result, indent=1), encoding="utf-8")
        else:
            print(json.dumps(result, indent=1))
        return result


def _plain(value: Any) -> Any:
    """A JSON-able form of a measured value (numpy scalars, floats rounded to 4 places)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 4)
    return value if isinstance(value, (str, type(None))) else str(value)


# ---------------------------------------------------------------------- data
def bbc(lead_only: bool = True, seed: int = 0) -> dict[str, Any]:
    """BBC News (5 topics, offline, see ``bertlab/demo/bbc.py``) split into train / val.

    Returns ``{"train": (texts, labels), "val": (texts, labels), "topics": names}``; with
    ``lead_only`` each article is its headline and first paragraph (short and fast).
    """
    from bertlab.demo import bbc as corpus

    data = corpus.load()
    parts = corpus.split(data.labels, val=0.2, test=0.0, seed=seed)
    texts = [corpus.lead(t) if lead_only else t for t in data.texts]
    pick = lambda rows: ([texts[i] for i in rows], data.labels[rows])  # noqa: E731
    return {"train": pick(parts.train), "val": pick(parts.val), "topics": data.topics}


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (what a standardize + whitespace split gives)."""
    return _WORD.findall(text.lower())


def build_vocab(texts: Sequence[str], size: int) -> dict[str, int]:
    """The ``size - 2`` most frequent words of ``texts`` mapped to ids from 2 (0 pad, 1 UNK)."""
    counts = Counter(w for t in texts for w in words(t))
    return {w: i + 2 for i, (w, _) in enumerate(counts.most_common(size - 2))}


def encode(texts: Sequence[str], vocab: dict[str, int], seq_len: int) -> np.ndarray:
    """Token ids, right-padded with ``PAD`` and truncated to ``seq_len`` (int64)."""
    out = np.full((len(texts), seq_len), PAD, dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [vocab.get(w, UNK) for w in words(text)][:seq_len]
        out[row, : len(ids)] = ids
    return out
