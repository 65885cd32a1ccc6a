"""The contract every rule follows: a pure function from a ``Context`` to ``Evidence`` or None.

A rule is one file in ``bertlab/rules/`` that defines ``RULE = Rule(...)``. It reads only
numbers (the recorded steps and epochs, a data summary) and ``ModelFacts``: never a Keras or
widget object, so every framework adapter gets the same diagnoses. Thresholds are named
constants at the top of each rule file with a comment saying where they come from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bertlab.datafacts import DataFacts
from bertlab.facts import ModelFacts
from bertlab.layout import Layout

PHASES = ("preflight", "live", "epoch")


@dataclass
class Evidence:
    """What a rule found: the evidence text and optional overrides of the rule's defaults.

    ``extra`` is kept on the finding; ``extra["not_a_cause"] = True`` marks a finding that is
    harmless in this run, so the engine never names it as the cause of a symptom.
    """

    text: str
    steps: tuple[int, int] | None = None
    severity: str | None = None
    title: str | None = None
    fix: str | None = None
    explanation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Everything a rule may look at.

    Attributes
    ----------
    facts
        Static facts about model, loss, optimizer, metrics.
    layout
        Row layout (None before the first step is recorded).
    columns
        Recorded per-step channels over the recent full-resolution window, by name (scalars are
        1-D, vectors 2-D ``(steps, width)``); use :meth:`col`.
    epochs
        Per-epoch records (Keras logs + validation summaries).
    data
        Summary of the training data (pre-flight check or the batches seen so far).
    meta
        The run's metadata: trace-time facts ``inputs`` ({token_key, mask_key}),
        ``label_shape``/``label_dtype`` (as traced, batch dim first), ``output_op`` (TF op that
        produced the output, e.g. "Softmax"), ``output_shape``, ``sample_weight`` (True when
        sample or class weights reach the loss), ``notes``.
    error
        Message of the exception ``fit`` raised, when diagnosing a failure.
    live
        Codes of the findings currently live (rules may refine themselves on them).
    """

    facts: ModelFacts
    layout: Layout | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    data: DataFacts | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    live: frozenset[str] = frozenset()

    def col(self, name: str) -> np.ndarray:
        """A recorded channel (empty if not recorded)."""
        return self.columns.get(name, np.empty(0))

    @property
    def n_steps(self) -> int:
        """Number of steps in the window."""
        return len(self.col("step"))

    def step_range(self, start: int, stop: int | None = None) -> tuple[int, int]:
        """Global step numbers of window positions ``start`` .. ``stop - 1`` (default: last)."""
        steps = self.col("step")
        last = len(steps) - 1 if stop is None else stop - 1
        return int(steps[start]), int(steps[last])


@dataclass(frozen=True)
class Rule:
    """One named pathology.

    Attributes
    ----------
    code, severity, title, explanation, fix, panel
        Defaults of the finding (a rule's ``Evidence`` may override severity/title/fix). ``fix``
        (and ``explanation``) are written for Keras, where the rules began.
    fixes, explanations
        The fix (explanation) for another framework, by ``ModelFacts.framework`` (``"torch"``):
        a PyTorch or Hugging Face user must be shown code they can paste, not Keras code. A
        framework without an entry gets ``fix`` (``explanation``); only explanations that are
        factually Keras-only need an entry.
    phase
        ``"preflight"`` (model facts and data, before/at the first steps), ``"live"`` (recorded
        steps) or ``"epoch"`` (per-epoch records).
    check
        The rule itself: ``Context -> Evidence | None``.
    rank
        Order in ``watch.findings``: lower is more fundamental (setup errors < data problems <
        optimisation causes < symptoms).
    causes
        Codes that, when live at the same time, are the root cause of this finding.
    sticky
        Keep the finding live once raised (setup facts do not heal); live symptoms are withdrawn
        when their condition stops holding.
    """

    code: str
    severity: str
    phase: str
    title: str
    explanation: str
    fix: str
    check: Callable[[Context], Evidence | None]
    panel: str = "overview"
    rank: int = 50
    causes: tuple[str, ...] = ()
    sticky: bool = False
    fixes: Mapping[str, str] = field(default_factory=dict, hash=False)
    explanations: Mapping[str, str] = field(default_factory=dict, hash=False)

    def fix_for(self, framework: str | None) -> str:
        """The fix written for this framework (``fix``, the Keras one, when there is none)."""
        return self.fixes.get(framework or "keras", self.fix)

    def explanation_for(self, framework: str | None) -> str:
        """The explanation for this framework (``explanation`` when there is none)."""
        return self.explanations.get(framework or "keras", self.explanation)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"{self.code}: phase must be one of {PHASES}")
