"""Score bertlab on the bug benchmark: every program in its own process, then the summary.

::

    python benchmarks/bugs/run.py                 # all programs, with bertlab attached
    python benchmarks/bugs/run.py --only b03,h01  # some of them
    python benchmarks/bugs/run.py --subset fast   # the handful CI runs
    python benchmarks/bugs/run.py --validate      # no bertlab: fault shown / learns?
    python benchmarks/bugs/run.py --json out.json # every result as JSON

Definitions (issue 14): a buggy program is *detected* when its expected code is among the run's
findings with ``loud_at`` set (it was a warning or error at some point); a healthy one is
*clean* when no finding ever had ``loud_at``; *cause first* is the share of buggy programs whose
first live finding at the end is the expected code; the *detection step* is the ``loud_at`` of
the expected code. The last line reads exactly::

    bugs: buggy D/B detected (recall R), healthy C/H clean, cause first F, median detection step S
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
TIMEOUT_S = 180  # per program; each is meant to take <= ~40 s on one core (README)
# What CI runs: programs bertlab detects (buggy) or stays clean on (healthy) today, chosen
# among the fastest; tests/test_bugs_benchmark.py asserts exactly that.
FAST = ("b01", "b04", "b07", "h03", "h08")


def programs(only: list[str] | None = None) -> list[Path]:
    """Program files, buggy then healthy, in name order; ``only`` keeps those whose name
    starts with one of the given prefixes (``b03`` or ``b03_label``)."""
    files = sorted(PROGRAMS.glob("[bh][0-9][0-9]_*.py"), key=lambda p: (p.name[0] != "b", p.name))
    if only:
        files = [p for p in files if any(p.stem.startswith(o) for o in only)]
    return files


def run_one(path: Path, validate: bool, timeout_s: float) -> dict[str, Any]:
    """Run one program in a fresh process and return its result (or what went wrong)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ)
        env.update(
            BUGS_RESULT=str(out),
            PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")])),
            OMP_NUM_THREADS="1",
            TF_CPP_MIN_LOG_LEVEL="2",
            KERAS_BACKEND="tensorflow",
            TOKENIZERS_PARALLELISM="false",
        )
        env.pop("BUGS_NO_WATCH", None)
        if validate:
            env["BUGS_NO_WATCH"] = "1"
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(path)],
                cwd=HERE,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            tail = (proc.stderr or proc.stdout)[-600:]
            rc: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            tail, rc = f"timed out after {timeout_s:.0f} s", "timeout"
        if out.exists():
            result = json.loads(out.read_text(encoding="utf-8"))
        else:
            result = {"name": path.stem, "crashed": True, "rc": rc, "stderr": tail}
        result.setdefault("kind", "healthy" if path.name.startswith("h") else "buggy")
        result["wall_s"] = round(time.perf_counter() - start, 1)
        return result


def loud_step(result: dict[str, Any], code: str) -> int | None:
    """First step at which ``code`` was a warning or error in the run, else ``None``."""
    found = result.get("findings", [])
    steps = [f["loud_at"] for f in found if f["code"] == code and f.get("loud_at") is not None]
    return min(steps) if steps else None


def loud_codes(result: dict[str, Any]) -> list[str]:
    """Codes that were a warning or error at some point of the run."""
    return sorted({f["code"] for f in result.get("findings", []) if f.get("loud_at") is not None})


def describe(result: dict[str, Any], validate: bool) -> str:
    """One line per program."""
    name = result["name"]
    if result.get("crashed"):
        return f"{name:<40} CRASHED rc={result['rc']}: {result['stderr'].strip()[-200:]!r}"
    if validate:
        verdict = {True: "ok", False: "NOT SHOWN", None: "no check"}[result.get("ok")]
        symptom = ", ".join(f"{k}={v}" for k, v in result.get("symptom", {}).items())
        if result.get("error") and "error" not in result.get("symptom", {}):
            symptom += f", error={result['error']['type']}"
        return f"{name:<40} {verdict:<9} {result.get('seconds', 0):5.1f}s  {symptom}"
    expect = result.get("expect", "")
    if result["kind"] == "healthy":
        loud = loud_codes(result)
        state = "clean" if not loud else "WARNS " + ",".join(loud)
        return f"{name:<40} healthy {state}"
    step = loud_step(result, expect)
    state = f"detected at step {step}" if step is not None else "missed"
    return (
        f"{name:<40} expect {expect:<24} {state:<22} first={result.get('first')} "
        f"loud={','.join(loud_codes(result)) or '-'}"
    )


def summary(results: list[dict[str, Any]]) -> str:
    """The last line (format fixed by issue 14)."""
    buggy = [r for r in results if r["kind"] == "buggy"]
    healthy = [r for r in results if r["kind"] == "healthy"]
    steps = [loud_step(r, r.get("expect", "")) for r in buggy]
    detected = [s for s in steps if s is not None]
    clean = sum(1 for r in healthy if not r.get("crashed") and not loud_codes(r))
    first = sum(1 for r in buggy if r.get("first") and r.get("first") == r.get("expect"))
    recall = len(detected) / len(buggy) if buggy else 0.0
    cause = first / len(buggy) if buggy else 0.0
    median = f"{statistics.median(detected):g}" if detected else "n/a"
    return (
        f"bugs: buggy {len(detected)}/{len(buggy)} detected (recall {recall:.2f}), "
        f"healthy {clean}/{len(healthy)} clean, cause first {cause:.2f}, "
        f"median detection step {median}"
    )


def verdict(result: dict[str, Any]) -> str:
    """bertlab's verdict on one watched run, for the README table."""
    if result.get("crashed"):
        return f"crashed ({result.get('rc')})"
    loud = ", ".join(loud_codes(result)) or "none"
    if result["kind"] == "healthy":
        return "clean" if not loud_codes(result) else f"WARNS: {loud}"
    step = loud_step(result, result.get("expect", ""))
    found = f"detected at step {step}" if step is not None else "**missed**"
    return f"{found}; first: {result.get('first')}; loud: {loud}"


def markdown(validated: list[dict[str, Any]], watched: list[dict[str, Any]]) -> str:
    """The README table: program, source, mistake, expected code, the symptom measured without
    bertlab (a ``--validate`` run) and bertlab's verdict (a scored run)."""
    sys.path.insert(0, str(HERE))
    from common import header

    scored = {r["name"]: r for r in watched}
    rows = [
        "| program | source | mistake | expected code | measured without bertlab | bertlab |",
        "|---|---|---|---|---|---|",
    ]
    for r in validated:
        path = PROGRAMS / f"{r['name']}.py"
        title = header(path)["title"] if path.exists() else ""
        source = r.get("source", "")
        link = (
            f"[{source.split('github.com/')[-1]}]({source})"
            if source.startswith("http")
            else source
        )
        if r.get("crashed"):
            seen = f"crashed ({r.get('rc')})"
        else:
            seen = ", ".join(f"{k}={v}" for k, v in r.get("symptom", {}).items())
            if r.get("error") and "error" not in r.get("symptom", {}):
                seen += f", error={r['error']['type']}"
            seen += "" if r.get("ok") else " (NOT SHOWN)"
        other = verdict(scored[r["name"]]) if r["name"] in scored else "not run"
        name = r["name"].split("_")[0]
        rows.append(f"| {name} | {link} | {title} | {r.get('expect', '')} | {seen} | {other} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated name prefixes (b03,h01)")
    parser.add_argument("--subset", choices=["fast"], help="the fast subset CI runs")
    parser.add_argument("--validate", action="store_true", help="run without bertlab")
    parser.add_argument("--json", help="write every result to this file")
    parser.add_argument(
        "--markdown",
        nargs=2,
        metavar=("VALIDATE_JSON", "RUN_JSON"),
        help="print the README table from a --validate --json file and a scored --json file",
    )
    parser.add_argument("-j", "--jobs", type=int, default=2, help="programs run at once")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per program")
    args = parser.parse_args(argv)
    if args.markdown:
        val, run = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.markdown)
        print(markdown(val, run))
        return 0
    only = args.only.split(",") if args.only else (list(FAST) if args.subset else None)
    files = programs(only)
    if not files:
        print("no programs matched", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, p, args.validate, args.timeout) for p in files]
        results = []
        for future in futures:  # printed in name order as each finishes
            results.append(future.result())
            print(describe(results[-1], args.validate), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.validate:
        shown = sum(1 for r in results if r.get("ok"))
        print(f"validate: {shown}/{len(results)} programs show their declared behaviour")
        return 0 if shown == len(results) else 1
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
