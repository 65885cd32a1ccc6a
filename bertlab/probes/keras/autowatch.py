"""``%bertlab watch on``: give every ``keras.Model.fit`` call a ``Watch`` without editing code.

``fit`` is wrapped once at class level; a call that already has a ``bertlab.Watch`` in its
callbacks is left alone. ``off`` puts the original ``fit`` back. The Watch of the latest call is
kept in ``LAST`` (the magic also binds it to ``bertlab_watch`` in the notebook).
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
        if not any(isinstance(c, Watch) for c in callbacks):
            watch = Watch()
            callbacks.append(watch)
            kwargs["callbacks"] = callbacks
            _on_new(on_new, watch)
        return original(self, *args, **kwargs)

    keras.Model.fit = fit
    return True


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
