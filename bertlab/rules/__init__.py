"""The catalog: one pathology per module, each defining ``RULE`` (see ``rules/base.py``).

Adding a rule is adding one file here (and its tests); it is found automatically.
"""

from __future__ import annotations

import importlib
import pkgutil

from bertlab.rules.base import Context, Evidence, Rule

__all__ = ["Context", "Evidence", "Rule", "all_rules"]

_CACHE: list[Rule] | None = None


def all_rules() -> list[Rule]:
    """Every rule in this package, ordered by rank then code."""
    global _CACHE
    if _CACHE is None:
        rules = []
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name == "base":
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            rule = getattr(module, "RULE", None)
            if not isinstance(rule, Rule):
                raise TypeError(f"bertlab.rules.{info.name} defines no RULE")
            rules.append(rule)
        codes = [r.code for r in rules]
        duplicates = {c for c in codes if codes.count(c) > 1}
        if duplicates:
            raise ValueError(f"duplicate rule codes: {sorted(duplicates)}")
        _CACHE = sorted(rules, key=lambda r: (r.rank, r.code))
    return list(_CACHE)
