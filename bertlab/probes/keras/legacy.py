"""Record every training step inside Keras 2's compiled train step (``tf_keras``, tf.keras 2).

Keras 2 (the ``tf_keras`` package, or ``tf.keras`` with ``TF_USE_LEGACY_KERAS=1``, which is what
transformers' TensorFlow models are built on) compiles ``train_step(data)`` into
``train_function`` like Keras 3 on TensorFlow, and its default train step calls
``compute_loss(x, y, y_pred, sample_weight)`` like Keras 3. What differs is how the gradients
reach the optimizer: ``optimizer.minimize(loss, variables, tape=tape)`` ends in
``optimizer.apply_gradients(zip(grads, variables))`` (both for tf_keras's optimizers and its
``optimizers.legacy`` ones), the variables have ``name`` (``dense/kernel:0``) instead of Keras
3's ``path``, and a learning-rate schedule is read differently. This module is that difference;
everything else (the wrappers, the in-graph ring, the quantities) is :class:`Instrument`'s.

Importing it imports neither TensorFlow nor ``tf_keras`` (the Keras 3 Watch asks
``is_legacy_model`` on every backend, JAX and torch without TensorFlow included): the model's own
Keras is used through the model object.
"""

from __future__ import annotations

import sys
from typing import Any

from bertlab.probes.keras.instrument import Instrument


def is_legacy_model(model: Any) -> bool:
    """Whether ``model`` is a Keras 2 model (``tf_keras.Model``, or tf.keras 2's).

    Only looks at an already imported ``tf_keras`` (a Keras 2 model cannot exist without it), so
    the Keras 3 path never imports it.
    """
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras is not None and isinstance(model, tf_keras.Model)


def variable_name(variable: Any) -> str:
    """A Keras 2 variable's name without the ``:0`` suffix (``dense/kernel:0`` -> ``dense/kernel``).

    Keras 2 names a layer's weights under the layer's name scope, so the part before the last
    ``/`` is the layer, the gradient group (as Keras 3's ``path`` is).
    """
    name = str(getattr(variable, "name", "") or "")
    head, sep, tail = name.rpartition(":")
    return head if sep and tail.isdigit() else name


def current_learning_rate(optimizer: Any) -> Any:
    """The learning rate of the step being taken, as a tensor or number.

    tf_keras optimizers keep a schedule in ``_learning_rate`` (``learning_rate`` then returns the
    value of the *previous* step, updated inside ``apply_gradients``), so a schedule is evaluated
    at ``iterations`` here, which is what ``apply_gradients`` is about to use.
    ``optimizers.legacy`` ones compute it with ``_decayed_lr``.
    """
    import tensorflow as tf  # a Keras 2 model exists, so TensorFlow is already imported

    lr = getattr(optimizer, "_learning_rate", None)
    if lr is None:  # optimizers.legacy: hyperparameters, decayed (or scheduled) by _decayed_lr
        return optimizer._decayed_lr(tf.float32)
    if callable(lr) and not isinstance(lr, tf.Variable):
        return lr(optimizer.iterations)
    return lr


class LegacyInstrument(Instrument):
    """In-graph recording for one Keras 2 model on behalf of one Watch.

    The same wrappers as :class:`Instrument` on ``train_step``, ``test_step`` and
    ``compute_loss``; the gradients are read where Keras 2 hands them to the optimizer,
    ``apply_gradients(grads_and_vars)``, before clipping and aggregation (Keras 3's ``apply``
    sees them at the same point). ``restore()`` puts every attribute back as it was.
    """

    OPTIMIZER_METHOD = "apply_gradients"
    BACKEND = "tensorflow"

    def install(self) -> None:
        """Instrument's wrappers, plus a recording proxy on ``compiled_loss`` (see below)."""
        super().install()
        loss = self.model.__dict__.get("compiled_loss")
        self._saved["compiled_loss"] = loss
        if loss is not None:
            object.__setattr__(self.model, "compiled_loss", _CompiledLoss(loss, self))

    def restore(self) -> None:
        """Put the model, its ``compiled_loss`` and the optimizer back as they were."""
        if self.installed and self._saved.get("compiled_loss") is not None:
            object.__setattr__(self.model, "compiled_loss", self._saved["compiled_loss"])
        super().restore()

    def _record_train(self, p: dict[str, Any]) -> None:
        super()._record_train(_with_compiled(p))

    def _record_val(self, p: dict[str, Any]) -> None:
        super()._record_val(_with_compiled(p))

    def _optimizer_call(self, grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
        """Keras 2's ``apply_gradients(grads_and_vars, ...)``: stash the gradients.

        ``minimize`` passes a ``zip`` (consumed once), so the pairs are materialised and the
        same list is handed on.
        """
        pairs = list(grads_and_vars)
        opt = self.model.optimizer
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        self._stash_gradients(grads, variables, lambda: current_learning_rate(opt))
        before = self._snapshot(variables)
        result = self._orig["optimizer"](pairs, *args, **kwargs)
        self._stash_update(variables, before)
        return result

    def _var_names(self, variables: Any) -> list[str]:
        return [variable_name(v) for v in variables]


def _with_compiled(p: dict[str, Any]) -> dict[str, Any]:
    """The step's record, completed from ``compiled_loss`` when ``compute_loss`` was not called.

    transformers' ``TFPreTrainedModel.train_step`` (the ``TF*For*`` models compiled directly)
    calls ``self.compiled_loss(y, y_pred, ...)`` itself; the standard Keras 2 step calls it from
    ``compute_loss``, whose record (the user's override included) is preferred.
    """
    compiled = p.get("compiled")
    if "loss" in p or compiled is None:
        return p
    data = p.get("data")
    x = data[0] if isinstance(data, (tuple, list)) else data  # (x, y[, sample_weight]) or x
    return {**p, "x": x, **compiled}


class _CompiledLoss:
    """Stands in for a Keras 2 model's ``compiled_loss`` (a ``LossesContainer``) while watched.

    A call records ``y``, ``y_pred``, ``sample_weight`` and the loss into the step being traced,
    then returns the container's own result; every other attribute is the container's.
    """

    def __init__(self, container: Any, instrument: LegacyInstrument) -> None:
        self._container = container
        self._instrument = instrument

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None, **kwargs: Any) -> Any:
        loss = self._container(y_true, y_pred, sample_weight, **kwargs)
        pending = self._instrument._pending
        model = self._instrument.model
        # With no loss given to compile, transformers passes its internal loss as y and y_pred.
        dummy = getattr(model, "_using_dummy_loss", False)
        if pending is not None and "compiled" not in pending and not dummy:
            pending["compiled"] = {
                "y": y_true,
                "y_pred": y_pred,
                "sample_weight": sample_weight,
                "loss": loss,
            }
        return loss
