"""What every Watch does whatever the framework: the run, the rules' cadence, faults, views.

A probe (``probes/keras``, ``probes/torch``, ``probes/hf``) measures inside its framework's
training step and hands rows of numbers to a :class:`WatchCore`, which owns everything that is
the same for all of them: the :class:`~bertlab.run.Run` record, the :class:`~bertlab.diagnose.
Diagnoser` and how often it runs, printing findings in scripts, the dashboard in notebooks,
saving, reporting a fault in bertlab once and going on. Framework-free: no Keras, no torch.
"""

from __future__ import annotations

import atexit
import math
import time
import warnings
import weakref
from typing import Any

import numpy as np

from bertlab.diagnose import Diagnoser
from bertlab.findings import Finding
from bertlab.guard import BertlabWarning
from bertlab.run import DEFAULT_BUDGET_BYTES, Run
from bertlab.views import in_kernel

_STEP, _EPOCH, _BATCH, _TIME = 0, 1, 2, 3  # leading scalar columns of a row (see layout.SCALARS)
#: Recorded rows are read out of the probe's (device) ring at least this often (seconds).
READ_EVERY_S = 0.25
#: Live rules run every MIN_EVAL_STEPS recorded steps at least (a collapse is named within a
#: few steps of the 20 it must last; with a stride, bertlab.cadence, there is nothing new to
#: judge between rows), less often only as far as needed to keep their measured cost under
#: EVAL_BUDGET of the training time; at once when the loss turns non-finite; and at every
#: epoch end and the end of training.
MIN_EVAL_STEPS = 4
EVAL_BUDGET = 0.02
#: The same once a Watch thins its rows (bertlab.cadence: a small, fast model, where 1 % of the
#: time is still several evaluations a second).
EVAL_BUDGET_THINNED = 0.01
#: Steps the live rules look back over (the rows copied out of the store per evaluation).
RULE_WINDOW = 1024
ALL_PHASES = ("preflight", "live", "epoch")

#: Watches whose training has started and not ended. Keras skips ``on_train_end`` when another
#: callback raises (a Ctrl-C, an error), and a PyTorch loop may die outside ``with``: these are
#: finished when the cell ends (``%load_ext bertlab``) or the process exits, so that the model is
#: restored and the record holds every step that ran.
_TRAINING: weakref.WeakSet = weakref.WeakSet()


def finish_abandoned(reason: str) -> int:
    """Finish every Watch still training (see ``_TRAINING``); returns how many there were."""
    watches = list(_TRAINING)
    for watch in watches:
        watch.abandon(reason)
    return len(watches)


atexit.register(finish_abandoned, "the process exited while training")


class WatchCore:
    """The framework-free half of a Watch (mixed into each probe's Watch class).

    Parameters
    ----------
    budget_mb
        Memory bound of the per-step history. Old steps are downsampled (bucket mean/min/max)
        so that a run of any length stays within it.
    unk_token_id
        Id of the tokenizer's unknown token, to measure the [UNK] share of the inputs.
    verbose
        Print each new finding as one line (default: in plain scripts, not in notebooks).
    dashboard
        Show the live dashboard when training starts (default: inside a Jupyter kernel).
    class_names
        Names of the classes (labels), shown in the dashboard and reports instead of 0..K-1.
    path, flush_every_s
        Append the run to this file while it trains (at most every ``flush_every_s`` seconds,
        at every epoch end and at the end), so that a killed process leaves a readable record.
    """

    def _init_core(
        self,
        *,
        budget_mb: float = DEFAULT_BUDGET_BYTES / 2**20,
        unk_token_id: int | None = None,
        verbose: bool | None = None,
        dashboard: bool | None = None,
        class_names: list[str] | None = None,
        path: Any = None,
        flush_every_s: float = 2.0,
        record: bool = True,
    ) -> None:
        self.run = Run(budget_bytes=int(budget_mb * 2**20))
        if class_names is not None:
            self.run.meta["class_names"] = [str(name) for name in class_names]
        self.show_dashboard = (in_kernel() if dashboard is None else dashboard) and record
        self._dashboard: Any = None
        self._displayed = False
        self.unk_token_id = unk_token_id
        self.verbose = ((not in_kernel()) if verbose is None else verbose) and record
        self._diagnoser = Diagnoser(self.run, on_new=self._announce)
        self._facts: Any = None
        self._eval_clock = -math.inf
        self._since_eval = 0
        self._eval_every = MIN_EVAL_STEPS
        self._eval_budget = EVAL_BUDGET
        self._last_read = -math.inf  # "never": perf_counter()'s origin is arbitrary (boot)
        self._broken = False
        self._epoch = 0
        self._batch = 0
        self._t0 = time.perf_counter()
        self._reported_notes: set[str] = set()
        self._announced: set[str] = set()
        self.recorder: Any = None
        if path is not None and record:
            self._start_recorder(path, flush_every_s)

    def _start_recorder(self, path: Any, every_s: float) -> None:
        try:
            from bertlab.record import Recorder
        except ImportError:  # the crash-safe record is not part of this build
            self._say("path= needs bertlab.record, which this bertlab lacks; call save() instead")
            return
        self.recorder = Recorder(self.run, path, every_s=every_s)

    # ------------------------------------------------------------------ public reading API
    @property
    def history(self):
        """Per-batch DataFrame (see ``bertlab.Run.history``)."""
        return self.run.history

    @property
    def epochs(self):
        """Per-epoch DataFrame (see ``bertlab.Run.epochs``)."""
        return self.run.epochs

    @property
    def findings(self) -> list[Finding]:
        """Live diagnoses, most fundamental cause first (withdrawn ones are in the run record)."""
        return self._diagnoser.findings

    @property
    def verdict(self) -> str:
        """One sentence over the findings: the root cause, its symptoms and the evidence that
        ties them (or that the run looks healthy, or that no cause is named)."""
        from bertlab.verdict import verdict

        return verdict(self.run.findings, self.run.steps)

    def _announce_verdict(self) -> None:
        """At the end of training: keep the verdict in the record and print it in scripts."""
        try:
            text = self.verdict
        except Exception as exc:  # noqa: BLE001 - a verdict must never break the end of a run
            self.run.note(f"the verdict failed: {type(exc).__name__}: {exc}")
            return
        self.run.meta["verdict"] = text
        if self.verbose:
            print(f"bertlab verdict: {text}", flush=True)

    def report(self) -> str:
        """Full text of the live findings: evidence, explanation and fix of each."""
        findings = self.findings
        if not findings:
            return "bertlab: no findings."
        return "\n\n".join(f.text() for f in findings)

    def save(self, path) -> None:
        """Save the run (finished or still running) to ``path``; reopen with ``bertlab.load``."""
        self.run.save(path)

    def to_html(self, path, title: str | None = None):
        """Write the dashboard and findings as one self-contained HTML file (opens offline)."""
        return self.run.to_html(path, title)

    @property
    def dashboard(self):
        """The live dashboard widget of this Watch (created on first use)."""
        if self._dashboard is None:
            from bertlab.views.dashboard import Dashboard

            self._dashboard = Dashboard(self.run)
        return self._dashboard

    def _repr_mimebundle_(self, include=None, exclude=None):
        if not in_kernel():
            return {"text/plain": repr(self)}
        self._displayed = True
        return self.dashboard._repr_mimebundle_(include=include, exclude=exclude)

    def _show(self) -> None:
        """Display the dashboard once, when training first starts in a notebook."""
        if not self.show_dashboard or self._displayed:
            return
        self._displayed = True
        try:
            from IPython.display import display

            display(self.dashboard)
        except Exception as exc:  # noqa: BLE001 - no widgets: findings still print/record
            self.verbose = True
            self._say(f"the live dashboard could not be shown ({type(exc).__name__}: {exc})")

    # ------------------------------------------------------------------ training state
    def _training(self, running: bool) -> None:
        """Mark this Watch as in the middle of training (or not) for ``finish_abandoned``."""
        if running:
            _TRAINING.add(self)
        else:
            _TRAINING.discard(self)

    def abandon(self, reason: str) -> None:
        """Training stopped without telling this Watch (an exception elsewhere, the process
        exiting): read what was recorded, restore what was hooked, end the run, write it."""
        _TRAINING.discard(self)
        try:
            self.run.meta.setdefault("error", reason)
            self._collect()
            self._evaluate(ALL_PHASES)
        except Exception as exc:  # noqa: BLE001 - never raise from a clean-up
            self._fault("finishing an interrupted run", exc)
        finally:
            self.detach()
            self.run.end()
            self._flush_record()

    def _collect(self) -> None:
        """Read the probe's recorded rows into the run (each probe implements it)."""

    # ------------------------------------------------------------------ faults and notes
    def detach(self) -> None:
        """Stop observing (each probe restores what it hooked); overridden by the probes."""

    def _fault(self, where: str, exc: BaseException) -> None:
        """A fault in bertlab: report it once, detach, and let training go on unobserved."""
        first = not self._broken
        self._broken = True
        try:
            self.detach()
        finally:
            if first:
                self.run.note(f"internal error while {where}: {type(exc).__name__}: {exc}")
                warnings.warn(
                    f"bertlab: internal error while {where} ({type(exc).__name__}: {exc}). "
                    "Training continues; the rest of this run is not observed.",
                    BertlabWarning,
                    stacklevel=3,
                )

    def _say(self, text: str) -> None:
        """Tell the user once about something bertlab cannot observe in this run."""
        if text in self._reported_notes:
            return
        self._reported_notes.add(text)
        self.run.note(text)
        warnings.warn(f"bertlab: {text}", BertlabWarning, stacklevel=3)

    # ------------------------------------------------------------------ rows and rules
    def _add_rows(self, rows: np.ndarray, steps: np.ndarray | None = None) -> None:
        """Append rows whose leading bookkeeping columns are filled here (step, epoch, ...).

        ``steps``: the global step of each row, when not every step has a row
        (:mod:`bertlab.cadence`); ``self._batch`` is then the global step the epoch began at.
        By default the rows are the steps that follow the last one recorded.
        """
        n = len(rows)
        if steps is None:
            rows[:, _STEP] = self.run.steps + np.arange(n)
            rows[:, _BATCH] = self._batch + np.arange(n)
            self._batch += n
        else:
            rows[:, _STEP] = steps
            rows[:, _BATCH] = steps - self._batch
        rows[:, _EPOCH] = self._epoch
        rows[:, _TIME] = time.perf_counter() - self._t0
        self.run.add_steps(rows)

    def _evaluate(self, phases, error: str | None = None) -> None:
        if self._facts is None:
            return
        ctx = self._diagnoser.context(self._facts, error=error, window=RULE_WINDOW)
        self._diagnoser.evaluate(ctx, phases)

    def _evaluate_live(self) -> None:
        """Run the live rules and adapt their cadence to their measured cost."""
        now = time.perf_counter()
        step_time = (now - self._eval_clock) / max(1, self._since_eval)
        self._evaluate(("preflight", "live"))
        cost = time.perf_counter() - now
        self._eval_clock = time.perf_counter()
        self._since_eval = 0
        needed = math.ceil(cost / (self._eval_budget * step_time)) if step_time > 0 else 1
        self._eval_every = max(MIN_EVAL_STEPS, needed)

    def _announce(self, finding: Finding) -> None:
        if self.verbose:
            print(finding.line(again=finding.code in self._announced), flush=True)
        self._announced.add(finding.code)

    def _flush_record(self) -> None:
        """Write what the crash-safe record has not written yet (end of training, an error)."""
        if self.recorder is not None:
            try:
                self.recorder.flush()
            except Exception as exc:  # noqa: BLE001 - the record must never stop training
                self._say(f"the run could not be written ({type(exc).__name__}: {exc})")
