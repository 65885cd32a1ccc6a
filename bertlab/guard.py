"""Warnings bertlab shows: its own faults and what it cannot observe, each reported once."""

from __future__ import annotations


class BertlabWarning(UserWarning):
    """Something bertlab could not observe, or a fault inside bertlab (training went on)."""
