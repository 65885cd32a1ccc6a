"""``%load_ext bertlab``: the ``%bertlab`` line magic and readable bertlab notes on exceptions.

    %bertlab watch on          every model.fit in this notebook gets a bertlab.Watch
    %bertlab watch off         back to plain fit
    %bertlab check model [x y] pre-flight findings for a compiled model (and its data)
    %bertlab open run.bertlab  reopen a saved run as a dashboard
    %bertlab open --follow run.bertlab   a dashboard that follows a run another process writes
    %bertlab compare a.bertlab b.bertlab   runs overlaid (paths, or names of runs/watches)

When ``fit`` raises and bertlab attached its findings to the exception (PEP 678 notes starting
with ``bertlab:``), the usual traceback is followed by those findings in a box, so the cause is
not lost at the bottom of a long TensorFlow traceback.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import Any

USAGE = __doc__.split("\n\n")[1]
_NOTE = "bertlab:"


def _show_findings_box(shell: Any, notes: list[str]) -> None:
    from IPython.display import display

    text = "bertlab found the cause of this error:\n\n" + "\n\n".join(notes)
    body = "".join(
        f"<pre style='white-space:pre-wrap;margin:4px 0'>{html.escape(note)}</pre>"
        for note in notes
    )
    box = (
        "<div class='bertlab-error-notes' style='border-left:4px solid #d62728;"
        "padding:6px 10px;margin:6px 0;background:rgba(214,39,40,.06)'>"
        f"<b>bertlab found the cause of this error</b>{body}</div>"
    )
    display({"text/plain": text, "text/html": box}, raw=True)


def _exception_handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset=None):
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    notes = [n for n in getattr(value, "__notes__", []) or [] if str(n).startswith(_NOTE)]
    if notes:
        _show_findings_box(shell, notes)
    return None


class _Magic:
    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def __call__(self, line: str) -> Any:
        args = shlex.split(line)
        if not args:
            print(USAGE)
            return None
        command, rest = args[0], args[1:]
        handler = getattr(self, f"_{command}", None)
        if handler is None:
            raise ValueError(f"%bertlab: unknown command {command!r}\n{USAGE}")
        return handler(rest)

    def _watch(self, rest: list[str]) -> None:
        from bertlab.probes.keras import autowatch

        state = rest[0] if rest else ("off" if autowatch.enabled() else "on")
        if state == "on":

            def bind(watch: Any) -> None:
                self.shell.user_ns["bertlab_watch"] = watch

            autowatch.enable(bind)
            print("bertlab: every model.fit now gets a Watch (the latest is `bertlab_watch`)")
        elif state == "off":
            autowatch.disable()
            print("bertlab: model.fit is plain again")
        else:
            raise ValueError(f"%bertlab watch: expected 'on' or 'off', got {state!r}")

    def _check(self, rest: list[str]) -> Any:
        if not rest:
            raise ValueError("%bertlab check: name a compiled model, e.g. %bertlab check model x y")
        from bertlab.probes.keras.check import check

        values = [eval(name, self.shell.user_ns) for name in rest[:3]]  # noqa: S307 - user code
        findings = check(*values)
        if not findings:
            print("bertlab: no pre-flight findings.")
        for finding in findings:
            print(finding.text(), end="\n\n")
        return None

    def _open(self, rest: list[str]) -> Any:
        following = "--follow" in rest
        rest = [arg for arg in rest if arg != "--follow"]
        if len(rest) != 1:
            raise ValueError(
                "%bertlab open: give one run, e.g. %bertlab open run.bertlab "
                "or %bertlab open --follow runs/exp1.bertlab"
            )
        import bertlab
        from bertlab.views.dashboard import Dashboard

        if following:  # the run is `bertlab_followed`, to stop it: .stop_following()
            run = bertlab.follow(rest[0])
            self.shell.user_ns["bertlab_followed"] = run
            return Dashboard(run, title=f"following {rest[0]}")
        return Dashboard(bertlab.load(rest[0]))

    def _compare(self, rest: list[str]) -> Any:
        if not rest:
            raise ValueError(
                "%bertlab compare: give runs, e.g. %bertlab compare a.bertlab b.bertlab"
            )
        import bertlab

        items = [self.shell.user_ns.get(arg, arg) for arg in rest]  # a variable, else a path
        return bertlab.compare(*items, names=[Path(arg).stem for arg in rest])


def _after_cell(result: Any) -> None:
    """A cell that raised may have left a Keras fit without its on_train_end (Keras skips it
    when a callback raises, e.g. a Ctrl-C): finish those Watches now (model restored, record
    written). A PyTorch Watch outside ``with`` legitimately spans cells: only an error ends it."""
    if getattr(result, "error_in_exec", None) is None:
        return
    from bertlab.probes.core import _TRAINING

    for watch in list(_TRAINING):
        if type(watch).__module__.startswith("bertlab.probes.keras"):
            watch.abandon(f"the cell stopped: {type(result.error_in_exec).__name__}")


def load_ipython_extension(shell: Any) -> None:
    """Register ``%bertlab`` and the exception-notes display (``%load_ext bertlab``)."""
    shell.register_magic_function(_Magic(shell), magic_kind="line", magic_name="bertlab")
    shell.events.register("post_run_cell", _after_cell)
    if not getattr(shell, "custom_exceptions", ()):  # never replace a user's own handler
        shell.set_custom_exc((Exception,), _exception_handler)


def unload_ipython_extension(shell: Any) -> None:
    """Undo ``load_ipython_extension`` (``%unload_ext bertlab``)."""
    try:
        shell.events.unregister("post_run_cell", _after_cell)
    except ValueError:  # not registered
        pass
    if getattr(shell, "custom_exceptions", ()) == (Exception,):
        shell.set_custom_exc((), None)
    try:
        from bertlab.probes.keras import autowatch

        autowatch.disable()
    except ImportError:
        pass
