"""Read a compiled Keras 2 (``tf_keras``) model's static facts into ModelFacts.

The Keras 2 counterpart of :mod:`bertlab.probes.keras.facts`, for models built with the
``tf_keras`` package or tf.keras 2 (``TF_USE_LEGACY_KERAS=1``), transformers' TensorFlow models
(``TFBertModel``...) included. The facts mean the same as for Keras 3, so the rules are
unchanged; what differs is where Keras 2 keeps them:

- the loss as compiled: ``compiled_loss._user_losses`` (strings, functions or
  ``tf_keras.losses.Loss`` objects, whose ``from_logits`` is in their config);
- the metrics as compiled: ``compiled_metrics._user_metrics``. Keras 2 resolves ``'acc'`` /
  ``'accuracy'`` like Keras 3 (tf_keras/src/engine/compile_utils.py,
  ``_get_metric_object``): BinaryAccuracy for one output column, SparseCategoricalAccuracy for
  class ids, CategoricalAccuracy otherwise, so multi-hot targets get CategoricalAccuracy
  whatever the loss (only TF 1's graph-mode ``training_v1`` chose by the loss);
- the output layer: ``outputs[0]._keras_history.layer`` (Keras 3: ``.operation``);
- the learning rate: ``optimizer._learning_rate`` (a variable or a schedule), or the
  ``learning_rate`` hyperparameter of ``tf_keras.optimizers.legacy`` optimizers;
- embedding vocabularies: ``Embedding`` layers, and transformers' ``TF*Embeddings`` layers,
  which hold the word-embedding table as their own ``weight`` of shape (vocab, hidden) rather
  than as an ``Embedding`` layer.

Best-effort and read-only, like the Keras 3 reader: what a model does not have leaves the fact
``None``.
"""

from __future__ import annotations

import math
from typing import Any

from bertlab.facts import ModelFacts
from bertlab.probes.keras.facts import _metric_names, describe_loss
from bertlab.probes.keras.legacy import variable_name


def _activation_name(layer: Any, softmax_class: type) -> str | None:
    act = getattr(layer, "activation", None)
    if act is None:
        return "softmax" if isinstance(layer, softmax_class) else None
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", type(act).__name__)


def output_layer(model: Any) -> Any:
    """The layer producing the model's (first) output, or its last layer (subclassed models)."""
    try:
        return model.outputs[0]._keras_history.layer
    except (AttributeError, IndexError, TypeError):
        layers = getattr(model, "layers", None)
        return layers[-1] if layers else None


def _inbound_layer(layer: Any) -> Any:
    """The single layer feeding ``layer`` in a Keras 2 functional graph, or None."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if len(nodes) != 1:
        return None
    parents = getattr(nodes[0], "parent_nodes", None) or []
    return parents[0].layer if len(parents) == 1 else None


def output_softmax_count(model: Any, k2: Any) -> int:
    """Softmaxes on the way out of the model, walking back through weight-free layers."""
    count, layer, seen = 0, output_layer(model), 0
    sequential = list(model.layers) if isinstance(model, k2.Sequential) else None
    while layer is not None and seen < 50:
        seen += 1
        if _activation_name(layer, k2.layers.Softmax) == "softmax":
            count += 1
        if getattr(layer, "weights", None) or isinstance(layer, k2.layers.InputLayer):
            break
        if sequential is not None:
            idx = sequential.index(layer) if layer in sequential else 0
            layer = sequential[idx - 1] if idx > 0 else None
        else:
            layer = _inbound_layer(layer)
    return count


def _group(variable: Any) -> str:
    """The gradient group (layer) of a variable, as the probe names it."""
    name = variable_name(variable)
    return name.rsplit("/", 1)[0] if "/" in name else name


def word_embeddings(layer: Any, k2: Any) -> tuple[str, int] | None:
    """(group, vocabulary size) of an embedding table held by ``layer``, or None.

    A Keras ``Embedding`` layer, or a transformers ``TF*Embeddings`` layer whose word table is
    its ``weight`` variable (``TFBertEmbeddings``: shape (vocab_size, hidden_size)).
    """
    if isinstance(layer, k2.layers.Embedding):
        return _group(layer.embeddings), int(layer.input_dim)
    table = getattr(layer, "weight", None)
    shape = getattr(table, "shape", None)
    if type(layer).__name__.endswith("Embeddings") and shape is not None and len(shape) == 2:
        return _group(table), int(shape[0])
    return None


def learning_rate(opt: Any, k2: Any) -> tuple[float | None, str | None]:
    """(initial learning rate, schedule class name) of a Keras 2 optimizer."""
    lr = getattr(opt, "_learning_rate", None)
    if lr is None:  # tf_keras.optimizers.legacy: a hyperparameter
        hyper = getattr(opt, "_hyper", {})
        lr = hyper.get("learning_rate")
    schedules = k2.optimizers.schedules.LearningRateSchedule
    if isinstance(lr, schedules):
        try:
            return float(lr(0)), type(lr).__name__
        except Exception:  # noqa: BLE001 - exotic schedules: leave unknown
            return None, type(lr).__name__
    try:
        return (float(lr) if lr is not None and not callable(lr) else None), None
    except (TypeError, ValueError):
        return None, None


def model_facts(model: Any) -> ModelFacts:
    """Collect the facts the rules need from a compiled Keras 2 model."""
    import tf_keras as k2  # a Keras 2 model exists, so tf_keras is already imported

    facts = ModelFacts(model_class=type(model).__name__, backend="tensorflow")
    compiled_loss = getattr(model, "compiled_loss", None)
    loss = getattr(compiled_loss, "_user_losses", None) or getattr(model, "loss", None)
    facts.loss, facts.from_logits, facts.label_smoothing = describe_loss(loss, k2.losses.Loss)
    last = output_layer(model)
    act = _activation_name(last, k2.layers.Softmax) if last is not None else None
    facts.output_activation = act if act is not None else ("linear" if last is not None else None)
    facts.softmax_layers = output_softmax_count(model, k2)
    outputs = getattr(model, "outputs", None) or []
    facts.n_model_outputs = max(1, len(outputs))
    if outputs and outputs[0].shape.rank:
        last_dim = outputs[0].shape[-1]
        facts.n_outputs = int(last_dim) if last_dim is not None and outputs[0].shape.rank > 1 else 1
    opt = getattr(model, "optimizer", None)
    if opt is not None:
        inner = getattr(opt, "inner_optimizer", opt)  # mixed precision's LossScaleOptimizer
        facts.optimizer = type(inner).__name__
        facts.learning_rate, facts.lr_schedule = learning_rate(inner, k2)
    try:
        facts.params_total = int(model.count_params())
        facts.params_trainable = int(sum(math.prod(v.shape) for v in model.trainable_weights))
    except (ValueError, AttributeError, TypeError):
        pass
    compiled_metrics = getattr(model, "compiled_metrics", None)
    facts.metrics = _metric_names(getattr(compiled_metrics, "_user_metrics", None))
    lookups = tuple(
        getattr(k2.layers, name)
        for name in ("Hashing", "IntegerLookup", "StringLookup", "TextVectorization")
        if hasattr(k2.layers, name)
    )
    for layer in model._flatten_layers(include_self=False, recursive=True):
        table = word_embeddings(layer, k2)
        if table is not None and table not in facts.embeddings:
            facts.embeddings.append(table)
            if getattr(layer, "mask_zero", False):
                facts.masked_embeddings.append(table[0])
        if isinstance(layer, lookups):
            facts.lookup_layers.append(type(layer).__name__)
        name = type(layer).__name__
        encoder = name.endswith(("Backbone", "MainLayer")) or "TransformerEncoder" in name
        if encoder or "Bert" in name:
            if name not in facts.encoders:
                facts.encoders.append(name)
    spe = getattr(model, "_steps_per_execution", None)
    try:
        facts.steps_per_execution = int(spe.numpy()) if spe is not None else 1
    except (AttributeError, TypeError, ValueError):
        facts.steps_per_execution = 1
    facts.run_eagerly = bool(getattr(model, "run_eagerly", False))
    facts.jit_compile = bool(getattr(model, "jit_compile", False))
    return facts
