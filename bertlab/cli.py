"""Command line: ``bertlab demo`` (also ``python -m bertlab demo``), ``bertlab show RUN`` and
``bertlab report RUN [--markdown]`` (setup, findings and summaries, e.g. for a forum post),
``bertlab compare A B --html cmp.html`` and ``bertlab follow RUN`` (a live text view of a record
another process writes)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path


def demo(args: argparse.Namespace) -> int:
    """Fine-tune pretrained MiniLM on BBC News: the forum's broken setup, then the fixed one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bertlab.demo import bbc, minilm

    begin = time.perf_counter()
    try:
        corpus = bbc.load()
        minilm.preset_dir()
    except FileNotFoundError as exc:  # MissingCorpusError / MissingModelError
        print(f"bertlab demo: {exc}", file=sys.stderr)
        return 2
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)  # Keras's own hints, not bertlab's
    from bertlab.demo.phases import describe_findings, run_phase

    phases = {None: ["broken", "fixed"], True: ["fixed"], False: ["broken"]}[args.fix]
    data = minilm.bbc_arrays(args.seq_len, args.text)
    n_layers = args.layers or 6
    print(
        f"bertlab demo: pretrained all-MiniLM-L6-v2 ({n_layers} of 6 layers, hidden 384) "
        f"fine-tuned on BBC News: {len(corpus):,} articles ({corpus.duplicates} exact "
        f"duplicates dropped), {len(corpus.topics)} topics ({', '.join(corpus.topics)}); "
        f"{len(data.y_train)} train / {len(data.y_val)} validation / {len(data.y_test)} test; "
        f"{'headline + lead paragraph' if args.text == 'lead' else 'whole articles'}, "
        f"{args.seq_len} tokens. Loaded in {time.perf_counter() - begin:.0f} s.",
        flush=True,
    )
    out = Path(args.out)
    results = []
    for i, setup in enumerate(phases, 1):
        label = f"[{i}/{len(phases)}] "
        result = run_phase(
            setup,
            data,
            steps=args.steps,
            epochs=args.epochs,
            batch_size=args.batch_size,
            out=out,
            num_layers=args.layers,
            label=label,
        )
        print(describe_findings(result))
        print("saved " + ", ".join(str(p) for p in result.files), flush=True)
        results.append(result)
    if len(results) == 2:
        before, after = results
        print(
            f"\ntest accuracy: {before.test_accuracy:.1%} with the forum's setup -> "
            f"{after.test_accuracy:.1%} fixed ({len(data.y_test)} held-out articles)"
        )
    print(f"total wall time {time.perf_counter() - begin:.0f} s")
    print(f"reopen a run with: bertlab show {results[-1].files[0]}")
    return 0


def show(args: argparse.Namespace) -> int:
    """Print the summary of a saved run."""
    import bertlab
    from bertlab.text import summary

    print(summary(bertlab.load(args.run)))
    return 0


def report(args: argparse.Namespace) -> int:
    """Print a saved (or still written) run: Markdown for a forum post, or the text summary."""
    import bertlab

    run = bertlab.load(args.run)
    if args.markdown:
        print(run.to_markdown(), end="")
        return 0
    from bertlab.findings import Finding
    from bertlab.text import summary

    print(summary(run))
    for finding in run.findings:
        if finding.get("status") == "live":
            print("\n" + Finding.from_dict(finding).text())
    return 0


def compare(args: argparse.Namespace) -> int:
    """Overlay saved runs: an HTML comparison (``--html``) and a line per run."""
    import bertlab
    from bertlab.text import follow_line

    runs = [bertlab.load(path) for path in args.runs]
    for path, run in zip(args.runs, runs, strict=True):
        print(f"{Path(path).stem}: {follow_line(run)}")
    if args.html:
        names = [Path(path).stem for path in args.runs]
        written = bertlab.compare(*runs, names=names).to_html(args.html)
        print(f"wrote {written}")
    return 0


def follow(args: argparse.Namespace) -> int:
    """Print a followed run as it grows: steps, last loss, findings as they appear (Ctrl-C)."""
    from bertlab.following import follow as follow_run
    from bertlab.text import follow_line

    run = follow_run(args.run, interval_s=args.interval)
    seen: set[tuple[str, str]] = set()
    last = ""
    # Ctrl-C sets a flag instead of raising KeyboardInterrupt wherever the main thread happens
    # to be: raised between a lock's acquire and its ``with`` block (the follower thread shares
    # the run's locks) it could leave the lock held, and stopping would then wait forever.
    stop = threading.Event()
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
        previous = None
    print(f"bertlab: following {args.run} (Ctrl-C to stop)", flush=True)
    try:
        while not stop.is_set():
            line = follow_line(run)
            if line != last:
                print(line, flush=True)
                last = line
            for f in run.findings:
                key = (str(f.get("code")), str(f.get("status")))
                if key not in seen and f.get("status") == "live":
                    cause = f" (caused by {f['cause']})" if f.get("cause") else ""
                    print(f"  [{f.get('severity')}] {f.get('code')}: {f.get('title')}{cause}")
                    print(f"      {f.get('evidence')}", flush=True)
                seen.add(key)
            if args.exit_when_done and run.follow_status in ("done", "error"):
                return 0
            stop.wait(args.interval)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        run.stop_following()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bertlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "demo",
        help="fine-tune pretrained MiniLM on BBC News: the forum's broken setup, then the fix",
        description=(
            "Phase 1 trains the forum's setup (softmax head + from_logits=True, Adam 1e-3) "
            "with bertlab.Watch and prints the findings as they appear and the root cause; "
            "phase 2 trains the corrected setup (logits, Adam 5e-5). Prints test accuracy "
            "before/after and saves <out>/demo-broken.bertlab, <out>/demo-fixed.bertlab and "
            "an HTML report of each."
        ),
    )
    p.add_argument("--steps", type=int, default=40, help="steps per epoch (default 40)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per phase (default 2)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per article (default 64)")
    p.add_argument("--batch-size", type=int, default=16, help="default 16")
    fix = p.add_mutually_exclusive_group()
    fix.add_argument(
        "--fix",
        dest="fix",
        action="store_true",
        default=None,
        help="only the corrected setup (default: both phases)",
    )
    fix.add_argument(
        "--no-fix", dest="fix", action="store_false", help="only the forum's broken setup"
    )
    p.add_argument(
        "--text",
        choices=("lead", "full"),
        default="lead",
        help="headline + lead paragraph (default), or whole articles (mostly truncated)",
    )
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        help="keep only the first N of MiniLM's 6 pretrained layers (quick checks)",
    )
    p.add_argument("--out", default="out", help="folder for the saved runs and reports")
    p.set_defaults(func=demo)
    p = sub.add_parser("show", help="print the summary of a saved run")
    p.add_argument("run")
    p.set_defaults(func=show)
    p = sub.add_parser(
        "report", help="a run's setup, findings (evidence, cause, fix) and loss/class summary"
    )
    p.add_argument("run")
    p.add_argument(
        "--markdown", action="store_true", help="Markdown to paste into a forum post or issue"
    )
    p.set_defaults(func=report)
    p = sub.add_parser("compare", help="overlay saved runs (loss, gradients, classes, findings)")
    p.add_argument("runs", nargs="+", help="run files")
    p.add_argument("--html", help="write the comparison dashboard to this HTML file")
    p.set_defaults(func=compare)
    p = sub.add_parser(
        "follow",
        help="live text view of a run another process writes (Watch(path=...)); Ctrl-C ends",
    )
    p.add_argument("run", help="the record file (it may not exist yet)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between reads")
    p.add_argument("--exit-when-done", action="store_true", help="stop when the training has ended")
    p.set_defaults(func=follow)
    args = parser.parse_args(argv)
    return args.func(args)
