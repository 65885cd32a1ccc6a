"""Keras 2 (tf_keras) tests (a package, so its conftest is not imported as the top-level
``conftest`` that the other test modules import helpers from)."""
