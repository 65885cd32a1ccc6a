"""Keras 3 adapter: the ``Watch`` callback and what it measures inside the train step."""

from bertlab.probes.keras.callback import Watch

__all__ = ["Watch"]
