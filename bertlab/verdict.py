"""The verdict: one sentence over a run's findings that names the root cause, its symptoms and
the evidence that ties them, or says the run looks healthy, or that no cause is named.

A list of findings leaves the reader to work out which one to fix; the engine already knows the
cause links (each rule lists the codes that explain it, ``diagnose._link_causes``), so the
verdict reads them off the run's record: framework-free, and the same for a live Watch, a saved
run, a followed file and the HTML report.
"""

from __future__ import annotations

from typing import Any

#: Longest evidence excerpt quoted in the verdict (characters); the full text is in the finding.
EXCERPT = 160
_LOUD = ("error", "warning")
_ORDER = {"error": 0, "warning": 1, "info": 2}


def _excerpt(text: str) -> str:
    """The first clause of an evidence text, cut at EXCERPT characters."""
    head = (text or "").split("; ")[0].strip()
    return head if len(head) <= EXCERPT else head[: EXCERPT - 1].rstrip() + "…"


def _since(f: dict[str, Any]) -> str:
    steps = f.get("steps")
    if isinstance(steps, (list, tuple)) and steps:
        return f" from step {int(steps[0])}"
    extra = f.get("extra") or {}
    at = extra.get("loud_at", extra.get("raised_at"))
    return f" from step {int(at)}" if isinstance(at, (int, float)) else ""


def verdict(findings: list[dict[str, Any]], steps: int = 0) -> str:
    """One sentence judging a run from its recorded findings (``Run.findings`` dicts).

    Parameters
    ----------
    findings
        Every finding of the run, live and resolved (``Finding.to_dict`` form).
    steps
        Steps recorded so far ("" when nothing has run yet).
    """
    if steps <= 0 and not findings:
        return "No verdict yet: nothing has been recorded."
    live = [f for f in findings if f.get("status", "live") == "live"]
    loud = [f for f in live if f.get("severity") in _LOUD]
    if not loud:
        withdrawn = [f for f in findings if f.get("status") == "resolved"]
        text = f"The run looks healthy: no live warning or error after {steps} steps"
        notes = []
        if withdrawn:
            notes.append(f"{len(withdrawn)} earlier finding(s) withdrawn")
        infos = [f["code"] for f in live]
        if infos:
            notes.append("for information: " + ", ".join(infos))
        return text + (f" ({'; '.join(notes)})." if notes else ".")
    by_code = {f["code"]: f for f in live}
    symptoms: dict[str, list[dict[str, Any]]] = {}
    for f in live:
        cause = f.get("cause")
        if cause in by_code and cause != f["code"]:
            symptoms.setdefault(cause, []).append(f)

    def root_of(f: dict[str, Any]) -> dict[str, Any]:
        seen = {f["code"]}
        while f.get("cause") in by_code and f["cause"] not in seen:
            f = by_code[f["cause"]]
            seen.add(f["code"])
        return f

    def tree(code: str) -> list[dict[str, Any]]:
        out = []
        for s in symptoms.get(code, []):
            out += [s, *tree(s["code"])]
        return out

    roots = {root_of(f)["code"]: root_of(f) for f in loud}

    def weight(r: dict[str, Any]) -> tuple[int, int, int]:
        worst = min(_ORDER.get(s.get("severity"), 3) for s in [r, *tree(r["code"])])
        return (-len(tree(r["code"])), worst, list(by_code).index(r["code"]))

    root = min(roots.values(), key=weight)
    below = tree(root["code"])
    others = [c for c in roots if c != root["code"]]
    tail = f" Also live, unexplained by it: {', '.join(others)}." if others else ""
    if below:
        named = ", ".join(f"{s['code']}{_since(s)}" for s in below)
        return (
            f"Root cause: {root['code']} ({root.get('title', '')}) — "
            f"{_excerpt(root.get('evidence', ''))}. It explains {named}: "
            f"{_excerpt(below[0].get('evidence', ''))}.{tail}"
        )
    if _known_causes(root["code"]):
        return (
            f"No root cause named: {root['code']} ({root.get('title', '')}) — "
            f"{_excerpt(root.get('evidence', ''))}; none of the causes bertlab knows for it "
            f"({', '.join(_known_causes(root['code'])[:4])}...) is live, so look at its fix.{tail}"
        )
    return (
        f"Root cause: {root['code']} ({root.get('title', '')}) — "
        f"{_excerpt(root.get('evidence', ''))}; no symptom of it shows yet.{tail}"
    )


def _known_causes(code: str) -> tuple[str, ...]:
    """The codes a live rule (a symptom seen in training) lists as its possible causes; empty
    for a root-cause rule. A pre-flight rule names a fact of the setup or the data, a problem in
    its own right even where it may have a cause upstream (an imbalance that a bad split made,
    overlap from texts turned all-[UNK]): with none of those live it is the root, not an
    unexplained symptom."""
    from bertlab.rules import all_rules

    rule = next((r for r in all_rules() if r.code == code), None)
    return rule.causes if rule is not None and rule.phase != "preflight" else ()
