"""``%bertlab watch on``: give every ``keras.Model.fit`` call a ``Watch`` without editing code.

``fit`` is wrapped once at class level; a call that already has a ``bertlab.Watch`` in its
callbacks is left alone. When ``fit`` fails before any callback runs (Keras converts the data
first), the pre-flight check of the same arguments is attached to the exception as notes.
``off`` puts the original ``fit`` back. The Watch of the latest call is kept in ``LAST`` (the
magic also binds it to ``bertlab_watch`` in the notebook).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras

from bertlab.probes.keras.callback import Watch

_ORIGINAL: dict[str, Callable] = {}
LAST: list[Watch] = []


def _on_new(callback: Callable[[Watch], None] | None, watch: Watch) -> None:
    LAST[:] = [watch]
    if callback is not None:
        callback(watch)


def enable(on_new: Callable[[Watch], None] | None = None) -> bool:
    """Wrap ``keras.Model.fit``; False if it was already wrapped."""
    if "fit" in _ORIGINAL:
        return False
    original = keras.Model.fit
    _ORIGINAL["fit"] = original

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        callbacks = list(kwargs.get("callbacks") or [])
        watches = [c for c in callbacks if isinstance(c, Watch)]
        if not watches:
            watch = Watch()
            callbacks.append(watch)
            kwargs["callbacks"] = callbacks
            _on_new(on_new, watch)
            watches = [watch]
        begun = [w.fits_begun for w in watches]
        try:
            return original(self, *args, **kwargs)
        except Exception as exc:
            if [w.fits_begun for w in watches] == begun:  # no Watch saw this fit begin
                explain_early_failure(self, args, kwargs, exc)
            raise

    keras.Model.fit = fit
    return True


def explain_early_failure(model: Any, args: tuple, kwargs: dict, exc: BaseException) -> None:
    """``fit`` raised before any callback ran (Keras converts the data first: text labels,
    mismatched shapes): the Watch never saw a batch, so the pre-flight check of the same
    arguments explains the error, as PEP 678 notes on it (errors only; never raises)."""
    from bertlab.probes.keras.check import check

    try:
        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        for finding in check(model, x, y, validation_data=kwargs.get("validation_data")):
            if finding.severity == "error":
                exc.add_note(finding.note())
    except Exception:  # noqa: BLE001 - never mask the user's error
        return


def disable() -> bool:
    """Restore the original ``keras.Model.fit``; False if it was not wrapped."""
    original = _ORIGINAL.pop("fit", None)
    if original is None:
        return False
    keras.Model.fit = original
    return True


def enabled() -> bool:
    """Whether every ``fit`` currently gets a Watch."""
    return "fit" in _ORIGINAL
