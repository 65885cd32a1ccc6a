"""``Finding``: one named training pathology, with the evidence that triggered it and the fix.

Findings are what bertlab is for: a user reads them instead of posting on a forum. A finding is
raised once and then updated (its evidence and step range move as training goes on), never
repeated per batch; when its condition stops holding it is withdrawn from the live list (a run
that sits near chance loss for its first steps and then learns was healthy) and kept in the
run's record as ``resolved``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """A diagnosis.

    Attributes
    ----------
    code
        Stable identifier from the catalog (``"nan-loss"``, ``"single-class"``...); never renamed.
    severity
        ``"error"``: training cannot work as set up; ``"warning"``: likely hurting results;
        ``"info"``: worth knowing.
    title
        One line.
    evidence
        The numbers and steps that triggered it.
    explanation
        Why this happens, in 2-4 sentences a newcomer understands.
    fix
        The concrete change, with a short code snippet where one helps.
    steps
        ``(first, last)`` step the evidence covers, or ``None`` for pre-flight findings.
    panel
        Dashboard panel that shows the evidence (``overview``, ``gradients``, ``outputs``,
        ``predictions``, ``data``).
    cause
        Code of the finding that is the root cause of this one, when both are present.
    status
        ``"live"`` or ``"resolved"`` (condition no longer holds).
    """

    code: str
    severity: str
    title: str
    evidence: str
    explanation: str
    fix: str
    steps: tuple[int, int] | None = None
    panel: str = "overview"
    cause: str | None = None
    status: str = "live"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def line(self, again: bool = False) -> str:
        """One concise line, as printed in a plain script.

        ``again``: the finding was withdrawn and has come back; the line says so instead of
        repeating the title (one problem returning, not a new one).
        """
        if again:
            return f"bertlab {self.severity}: [{self.code}] again — {self.evidence}"
        cause = f" (caused by {self.cause})" if self.cause else ""
        return f"bertlab {self.severity}: [{self.code}] {self.title}{cause} — {self.evidence}"

    def text(self) -> str:
        """The full text: title, evidence, explanation and fix."""
        parts = [
            f"[{self.severity}] {self.code}: {self.title}",
            f"  evidence: {self.evidence}",
        ]
        if self.cause:
            parts.append(f"  probably caused by: {self.cause}")
        parts.append(f"  why: {self.explanation}")
        parts.append("  fix: " + self.fix.replace("\n", "\n       "))
        return "\n".join(parts)

    def note(self) -> str:
        """The PEP 678 note attached to an exception raised by ``fit``."""
        return f"bertlab: [{self.code}] {self.title} — {self.evidence}\nfix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (saved with the run)."""
        data = asdict(self)
        data["steps"] = list(self.steps) if self.steps is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """Inverse of ``to_dict``."""
        data = dict(data)
        steps = data.get("steps")
        data["steps"] = (int(steps[0]), int(steps[1])) if steps else None
        return cls(**data)

    def __repr__(self) -> str:
        return f"<Finding {self.severity} {self.code}: {self.title}>"
