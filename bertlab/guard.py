"""Warnings bertlab shows: its own faults and what it cannot observe, each reported once."""

from __future__ import annotations


class BertlabWarning(UserWarning):
    """Something bertlab could not observe, or a fault inside bertlab (training went on)."""


def missing_extra(exc: ModuleNotFoundError, frameworks: tuple[str, ...], what: str, extra: str):
    """The error to raise when importing a probe failed because its framework is missing.

    Returns a ``ModuleNotFoundError`` that names the extra to install (raise it ``from exc``),
    or re-raises ``exc`` itself when the missing module is not one of ``frameworks`` (a real
    import error inside bertlab must not be disguised as a missing install).
    """
    if exc.name is None or exc.name.split(".")[0] not in frameworks:
        raise exc
    return ModuleNotFoundError(
        f"{what} ({exc}); install it with: pip install 'bertlab[{extra}]'", name=exc.name
    )
