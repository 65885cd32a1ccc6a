"""bertlab: see what happens inside every training batch of a text classifier, and why it fails.

``import bertlab`` is light: the Keras adapter (and TensorFlow) is only imported when
``bertlab.Watch`` is first used, so reading a saved run needs no training framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertlab.findings import Finding
from bertlab.guard import BertlabWarning, missing_extra
from bertlab.run import Run
from bertlab.runfile import RunFileError

if TYPE_CHECKING:
    from bertlab.probes.keras import Watch
    from bertlab.probes.keras.check import check

__version__ = "0.1.0"
__all__ = [
    "BertlabWarning",
    "Finding",
    "Run",
    "RunFileError",
    "Watch",
    "check",
    "compare",
    "follow",
    "load",
]


def load_ipython_extension(shell) -> None:
    """``%load_ext bertlab``: registers the ``%bertlab`` magic (see ``bertlab.magic``)."""
    from bertlab.magic import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell) -> None:
    """``%unload_ext bertlab``."""
    from bertlab.magic import unload_ipython_extension as unload

    unload(shell)


def load(path) -> Run:
    """Reopen a run saved with ``watch.save(path)``; safe on untrusted files (no pickle)."""
    return Run.load(path)


def follow(path, interval_s: float = 0.5, stale_s: float = 15.0) -> Any:
    """A ``Run`` that keeps reading a record another process writes (``Watch(path=...)``);
    see ``bertlab.following``. ``run.stop_following()`` ends it. A folder gives its records
    side by side (one per rank with ``rank="all"``), as a comparison of followed runs."""
    from bertlab.following import follow as follow_run

    return follow_run(path, interval_s=interval_s, stale_s=stale_s)


def compare(*runs_or_paths, names=None, title: str = ""):
    """Overlay runs (``Run``, ``Watch``, followed runs or paths) in one dashboard; see
    ``bertlab.views.compare``. Display it in a cell or write ``.to_html(path)``."""
    from bertlab.views.compare import compare as compare_runs

    return compare_runs(*runs_or_paths, names=names, title=title)


def __getattr__(name: str) -> Any:
    if name not in ("Watch", "check"):
        raise AttributeError(f"module 'bertlab' has no attribute {name!r}")
    try:
        from bertlab.probes.keras import Watch
        from bertlab.probes.keras.check import check
    except ModuleNotFoundError as exc:  # say which extra brings the missing framework
        needs = f"bertlab.{name} is the Keras probe and needs Keras 3 (PyTorch: bertlab.torch)"
        raise missing_extra(exc, ("keras", "tensorflow"), needs, "keras") from exc
    return Watch if name == "Watch" else check
