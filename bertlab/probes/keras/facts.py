"""Read a compiled Keras model's static facts (loss, activations, optimizer...) into ModelFacts.

Everything here is best-effort and read-only: an attribute that a model or a Keras version does
not have leaves the fact ``None`` rather than failing.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from bertlab.facts import ModelFacts
from bertlab.probes.tokens import special_ids, vocabulary_kind

# Canonical names of the loss functions Keras resolves strings to (aliases included).
_LOSS_ALIASES = {
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "binary_crossentropy": "binary_crossentropy",
    "categorical_focal_crossentropy": "categorical_focal_crossentropy",
    "binary_focal_crossentropy": "binary_focal_crossentropy",
    "mean_squared_error": "mean_squared_error",
    "mse": "mean_squared_error",
    "mean_absolute_error": "mean_absolute_error",
    "mae": "mean_absolute_error",
    "kl_divergence": "kl_divergence",
    "kld": "kl_divergence",
    "hinge": "hinge",
    "categorical_hinge": "categorical_hinge",
    "huber": "huber",
}


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def describe_loss(
    loss: Any, loss_class: type | None = None
) -> tuple[str | None, bool | None, float | None]:
    """(canonical name, from_logits, label_smoothing) of a loss as passed to ``compile``.

    Strings and plain functions use Keras's defaults (``from_logits=False``); ``Loss`` objects
    report their config. Multi-output dict/list losses describe their first entry.
    ``loss_class`` is the base class of loss objects (default Keras 3's ``keras.losses.Loss``;
    Keras 2's ``tf_keras.losses.Loss`` for a Keras 2 model), whose config and wrapped function
    have the same names in both.
    """
    loss_class = loss_class or keras.losses.Loss
    if isinstance(loss, dict) and loss:
        loss = next(iter(loss.values()))
    if isinstance(loss, (list, tuple)) and loss:
        loss = loss[0]
    if loss is None:
        return None, None, None
    if isinstance(loss, str):
        return _LOSS_ALIASES.get(loss.lower(), loss.lower()), False, 0.0
    if isinstance(loss, loss_class):
        config: dict = {}
        try:
            config = loss.get_config() or {}
        except Exception:  # noqa: BLE001 - a user Loss may not implement get_config
            pass
        fn = getattr(loss, "fn", None)
        name = getattr(fn, "__name__", None) if fn is not None else None
        name = name or _snake(type(loss).__name__)
        from_logits = config.get("from_logits")
        return _LOSS_ALIASES.get(name, name), from_logits, config.get("label_smoothing")
    name = getattr(loss, "__name__", type(loss).__name__)
    return _LOSS_ALIASES.get(name, name), False if name in _LOSS_ALIASES else None, None


def _activation_name(layer: Any) -> str | None:
    act = getattr(layer, "activation", None)
    if act is None:
        if isinstance(layer, keras.layers.Softmax):
            return "softmax"
        return None
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", type(act).__name__)


def output_layer(model: keras.Model) -> Any:
    """The layer producing the model's (first) output, or ``None`` for subclassed models."""
    outputs = getattr(model, "outputs", None)
    try:
        if outputs:
            return outputs[0]._keras_history.operation
    except (AttributeError, IndexError, TypeError, ValueError):
        pass
    layers = getattr(model, "layers", None)
    return layers[-1] if layers else None


def _inbound_layer(layer: Any) -> Any:
    """The single layer feeding ``layer`` in a functional graph, or None."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if len(nodes) != 1:
        return None
    parents = getattr(nodes[0], "parent_nodes", None) or []
    return parents[0].operation if len(parents) == 1 else None


def output_softmax_count(model: keras.Model) -> int:
    """Softmaxes applied on the way out of the model (not the ones inside attention blocks).

    Walks back from the output through weight-free layers (Dropout, Activation, Reshape...),
    counting Softmax layers and softmax activations, and stops at the first layer with weights.
    """
    count, layer, seen = 0, output_layer(model), 0
    sequential = list(getattr(model, "layers", [])) if isinstance(model, keras.Sequential) else None
    while layer is not None and seen < 50:
        seen += 1
        if _activation_name(layer) == "softmax":
            count += 1
        if getattr(layer, "weights", None) or isinstance(layer, keras.layers.InputLayer):
            break
        if sequential is not None:
            idx = sequential.index(layer) if layer in sequential else 0
            layer = sequential[idx - 1] if idx > 0 else None
        else:
            layer = _inbound_layer(layer)
    return count


def model_facts(model: keras.Model) -> ModelFacts:
    """Collect the facts the rules need from a compiled model."""
    facts = ModelFacts(model_class=type(model).__name__, backend=keras.backend.backend())
    config = getattr(getattr(model, "_compile_config", None), "config", {}) or {}
    facts.loss, facts.from_logits, facts.label_smoothing = describe_loss(
        config.get("loss", getattr(model, "loss", None))
    )
    last = output_layer(model)
    act = _activation_name(last) if last is not None else None
    facts.output_activation = act if act is not None else ("linear" if last is not None else None)
    layers = model._flatten_layers(include_self=False, recursive=True)
    facts.softmax_layers = output_softmax_count(model)
    outputs = getattr(model, "outputs", None) or []
    facts.n_model_outputs = max(1, len(outputs))
    if outputs and outputs[0].shape is not None and len(outputs[0].shape) >= 1:
        last_dim = outputs[0].shape[-1]
        facts.n_outputs = int(last_dim) if last_dim is not None and len(outputs[0].shape) > 1 else 1
    opt = getattr(model, "optimizer", None)
    if opt is not None:
        inner = getattr(opt, "inner_optimizer", opt)
        facts.optimizer = type(inner).__name__
        lr = getattr(inner, "_learning_rate", None)
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            facts.lr_schedule = type(lr).__name__
            try:
                facts.learning_rate = float(keras.ops.convert_to_numpy(lr(0)))
            except Exception:  # noqa: BLE001 - exotic schedules: leave unknown
                facts.learning_rate = None
        elif lr is not None and not callable(lr) or isinstance(lr, keras.Variable):
            facts.learning_rate = float(keras.ops.convert_to_numpy(lr))
    try:
        facts.params_total = int(model.count_params())
        facts.params_trainable = int(sum(math.prod(v.shape) for v in model.trainable_weights))
    except (ValueError, AttributeError):
        pass
    facts.metrics = _metric_names(config.get("metrics"))
    lookups = (
        keras.layers.Hashing,
        keras.layers.IntegerLookup,
        keras.layers.StringLookup,
        keras.layers.TextVectorization,
    )
    for layer in layers:
        if isinstance(layer, keras.layers.Embedding):
            facts.embeddings.append((layer.path, int(layer.input_dim)))
            if getattr(layer, "mask_zero", False):
                facts.masked_embeddings.append(layer.path)
        if isinstance(layer, lookups):
            facts.lookup_layers.append(type(layer).__name__)
        name = type(layer).__name__
        if name.endswith("Backbone") or "TransformerEncoder" in name or "Bert" in name:
            if name not in facts.encoders:
                facts.encoders.append(name)
    facts.unk_token_id, facts.pad_token_id, facts.vocabulary_kind = _token_ids(model, layers)
    facts.steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    facts.run_eagerly = bool(getattr(model, "run_eagerly", False))
    facts.jit_compile = bool(getattr(model, "jit_compile", False))
    return facts


def _token_ids(model: Any, layers: list[Any]) -> tuple[int | None, int | None, str | None]:
    """The (unk, pad) ids of the tokenizer the model carries: a KerasHub task's preprocessor,
    else the first TextVectorization / StringLookup in the model (its vocabulary)."""
    preprocessor = getattr(model, "preprocessor", None)
    unk, pad = special_ids(preprocessor)
    kind = vocabulary_kind(preprocessor) if unk is not None else None
    for layer in layers:
        if unk is not None and pad is not None:
            break
        if isinstance(layer, (keras.layers.TextVectorization, keras.layers.StringLookup)):
            lunk, lpad = special_ids(layer)
            kind = kind or ("word" if lunk is not None else None)
            unk = unk if unk is not None else lunk
            pad = pad if pad is not None else lpad
    return unk, pad, kind


def _metric_names(metrics: Any) -> list[str]:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = [m for v in metrics.values() for m in (v if isinstance(v, list) else [v])]
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    names = []
    for m in metrics:
        if isinstance(m, str):
            names.append(m)
        elif isinstance(m, (list, tuple)):
            names.extend(_metric_names(m))
        else:
            names.append(getattr(m, "name", None) or getattr(m, "__name__", type(m).__name__))
    return names
