"""Run the rules over a run and keep its findings: raise once, update, link causes, withdraw.

The engine is framework-free: it reads the run's store and epoch records and the model facts,
and hands every rule the same ``Context``. Each finding is raised once and then updated; a live
(non-sticky) finding whose condition stops holding is withdrawn from the live list and kept in
the record as ``resolved`` (healthy runs often sit near chance loss for their first steps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from bertlab import datafacts
from bertlab.facts import ModelFacts
from bertlab.findings import Finding
from bertlab.rules import all_rules
from bertlab.rules.base import Context, Evidence, Rule
from bertlab.run import Run

#: How loud a severity is, for ordering cause chains (rank of the loudest symptom explained).
_LOUDNESS = {"error": 2, "warning": 1, "info": 0}


class Diagnoser:
    """Keeps the findings of one run.

    Parameters
    ----------
    run
        The run whose steps/epochs the rules read; ``run.findings`` mirrors the record.
    rules
        The rules to run (default: every rule in ``bertlab/rules``).
    on_new
        Called with each finding the first time it is raised (plain scripts print its line).
    """

    def __init__(
        self,
        run: Run,
        rules: Iterable[Rule] | None = None,
        on_new: Callable[[Finding], None] | None = None,
    ) -> None:
        self.run = run
        self.rules = list(rules) if rules is not None else all_rules()
        self.by_code = {rule.code: rule for rule in self.rules}
        self.on_new = on_new
        self.live: dict[str, Finding] = {}
        self.record: dict[str, Finding] = {}
        self.data: datafacts.DataFacts | None = None
        self.faults: list[str] = []

    # ------------------------------------------------------------------ context
    def context(self, facts: ModelFacts, error: str | None = None, window: int = 1024) -> Context:
        """The context of the run as recorded so far (the latest ``window`` steps)."""
        run = self.run
        columns: dict[str, Any] = {}
        if run.store is not None and run.steps:
            rows = run.store.since(max(0, run.store.cursor - window)).rows
            for name, width in run.store.channels:
                block = rows[:, run.store.slice(name)]
                columns[name] = block[:, 0] if width == 1 else block
        data = self.data
        if data is None and columns:
            data = datafacts.from_steps(columns, run.meta)
        return Context(
            facts=facts,
            layout=run.layout,
            columns=columns,
            epochs=run.epoch_records,
            data=data,
            meta=run.meta,
            error=error,
            live=frozenset(self.live),
        )

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, ctx: Context, phases: Iterable[str]) -> list[Finding]:
        """Run the rules of these phases; returns the findings raised for the first time.

        If the set of live findings changed, the rules run once more with the new set, so a
        cause rule (which may look at which symptoms are live) sees this evaluation's symptoms.
        """
        phases = set(phases)
        before = frozenset(self.live)
        new = self._pass(ctx, phases)
        if frozenset(self.live) != before:
            ctx.live = frozenset(self.live)
            new += self._pass(ctx, phases)
        self._link_causes()
        self._publish()
        for finding in new:
            if self.on_new is not None:
                self.on_new(finding)
        return new

    def _pass(self, ctx: Context, phases: set[str]) -> list[Finding]:
        new: list[Finding] = []
        for rule in self.rules:
            if rule.phase not in phases:
                continue
            try:
                evidence = rule.check(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the others
                self._fault(rule, exc)
                continue
            if evidence is None:
                if not rule.sticky:
                    self._withdraw(rule.code)
                continue
            finding, is_new = self._raise(rule, evidence, ctx.facts.framework)
            if is_new:
                new.append(finding)
        return new

    def _raise(self, rule: Rule, ev: Evidence, framework: str | None) -> tuple[Finding, bool]:
        # The fix (and a Keras-only explanation) speaks the user's framework; an override in
        # the evidence still wins, as it was written for this very run.
        existing = self.live.get(rule.code)
        if existing is not None:
            if ev.severity:  # the rule's own fresh word replaces an escalation (_link_causes)
                existing.extra.pop("escalated_from", None)
            existing.evidence = ev.text
            existing.severity = ev.severity or existing.severity
            existing.title = ev.title or existing.title
            existing.fix = ev.fix or existing.fix
            existing.explanation = ev.explanation or existing.explanation
            existing.extra.update(ev.extra)
            if ev.steps is not None:
                first = existing.steps[0] if existing.steps else ev.steps[0]
                existing.steps = (min(first, ev.steps[0]), ev.steps[1])
            return existing, False
        finding = Finding(
            code=rule.code,
            severity=ev.severity or rule.severity,
            title=ev.title or rule.title,
            evidence=ev.text,
            explanation=ev.explanation or rule.explanation_for(framework),
            fix=ev.fix or rule.fix_for(framework),
            steps=ev.steps,
            panel=rule.panel,
            extra={**ev.extra, "raised_at": self.run.steps},
        )
        # A finding withdrawn and raised again is the same problem returning: it keeps when it
        # was first raised and first loud (the benchmark's detection step), not the return's.
        earlier = self.record.get(rule.code)
        if earlier is not None:
            for key in ("raised_at", "loud_at"):
                if key in earlier.extra:
                    finding.extra[key] = earlier.extra[key]
        self.live[rule.code] = finding
        self.record[rule.code] = finding
        return finding, True

    def _withdraw(self, code: str) -> None:
        finding = self.live.pop(code, None)
        if finding is not None:
            finding.status = "resolved"

    def _link_causes(self) -> None:
        # A finding that is harmless in this run (e.g. a softmax that Keras on TensorFlow
        # silently bypasses) is never named as the cause of a symptom.
        candidates = {c for c, f in self.live.items() if not f.extra.get("not_a_cause")}
        for code, finding in self.live.items():
            causes = self.by_code[code].causes
            finding.cause = next((c for c in causes if c in candidates), None)
        # A cause is never quieter than its symptoms: an "info" named as the cause of a live
        # warning or error is itself a warning for as long as that holds (the imbalance behind a
        # collapse is the thing to fix, not a remark).
        for finding in self.live.values():
            if "escalated_from" in finding.extra:
                finding.severity = finding.extra.pop("escalated_from")
        changed = True
        while changed:  # along chains: a cause of an escalated cause is escalated too
            changed = False
            for finding in self.live.values():
                cause = self.live.get(finding.cause) if finding.cause else None
                loud = finding.severity in ("warning", "error")
                if cause is not None and loud and cause.severity == "info":
                    cause.extra["escalated_from"] = cause.severity
                    cause.severity = "warning"
                    changed = True

    def _fault(self, rule: Rule, exc: Exception) -> None:
        text = f"rule {rule.code} failed: {type(exc).__name__}: {exc}"
        if text not in self.faults:
            self.faults.append(text)
            self.run.note(text)

    def _root(self, finding: Finding) -> Finding:
        """The live finding at the end of this one's cause chain (itself if it has no cause)."""
        seen = {finding.code}
        while finding.cause in self.live and finding.cause not in seen:
            finding = self.live[finding.cause]
            seen.add(finding.code)
        return finding

    def _rank(self, finding: Finding) -> tuple[int, int, int]:
        # Chains that end in an error come first, then warnings, then remarks: a cause is
        # ranked by the loudest symptom it explains (an exploding gradient behind a NaN loss
        # before an unrelated truncation warning). Within that, a symptom sorts right after its
        # cause; otherwise by the rule's rank.
        root = self._root(finding) if finding.status == "live" else finding
        loud = max(
            (_LOUDNESS[f.severity] for f in self.live.values() if self._root(f) is root),
            default=_LOUDNESS[finding.severity],
        )
        own = self.by_code[finding.code].rank
        if finding.cause is not None and finding.cause in self.by_code:
            return (-loud, self.by_code[finding.cause].rank, own)
        return (-loud, own, 0)

    @property
    def findings(self) -> list[Finding]:
        """Live findings, most fundamental cause first."""
        return sorted(self.live.values(), key=self._rank)

    def _publish(self) -> None:
        # When each finding first became loud (warning/error), in steps recorded so far: the
        # detection step the bug benchmark reports (``raised_at`` is when it first appeared).
        for finding in self.live.values():
            if finding.severity != "info" and "loud_at" not in finding.extra:
                finding.extra["loud_at"] = self.run.steps
        ordered = sorted(self.record.values(), key=self._rank)
        self.run.findings = [f.to_dict() for f in ordered]
