"""``bertlab.check(model, x, y)``: pre-flight findings for a compiled Keras model and its data.

No training and no gradient: it reads the model's facts (loss, output activation, optimizer,
metrics, embeddings), summarises the labels and inputs with numpy, and runs the pre-flight
rules, the same rules ``Watch`` runs when ``fit`` starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bertlab import datafacts
from bertlab.diagnose import Diagnoser
from bertlab.findings import Finding
from bertlab.layout import Layout
from bertlab.run import Run

#: Batches read from a tf.data.Dataset to summarise it (the rest is not iterated).
MAX_DATASET_BATCHES = 64


def _from_dataset(ds: Any) -> tuple[Any, Any]:
    xs, ys = [], []
    for batch in ds.take(MAX_DATASET_BATCHES):
        xb, yb = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
        xs.append(xb)
        ys.append(yb)
    if not xs:
        return None, None

    def cat(parts: list) -> Any:
        if parts[0] is None:
            return None
        if isinstance(parts[0], dict):
            return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
        return np.concatenate([np.asarray(p) for p in parts])

    return cat(xs), cat(ys)


def check(
    model: Any,
    x: Any = None,
    y: Any = None,
    *,
    validation_data: Any = None,
    unk_token_id: Any = None,
) -> list[Finding]:
    """Pre-flight findings for ``model`` trained on ``(x, y)``, most fundamental first.

    Parameters
    ----------
    model
        A compiled Keras model: Keras 3, or Keras 2 (``tf_keras``, transformers' TF models).
    x, y
        Training inputs (array or dict of arrays, e.g. token_ids + padding_mask) and labels; or
        a ``tf.data.Dataset`` of ``(x, y)`` batches as ``x`` (its first batches are read).
    validation_data
        ``(x_val, y_val)``, to compare label distributions and find validation examples that
        are also training examples.
    unk_token_id
        The tokenizer's unknown-token id (or the tokenizer), to measure the [UNK] share.
    """
    from bertlab.probes.keras.callback import unk_id
    from bertlab.probes.keras.legacy import is_legacy_model

    if is_legacy_model(model):  # Keras 2 (tf_keras, tf.keras 2, transformers' TF models)
        from bertlab.probes.keras.legacy_facts import model_facts
    else:
        from bertlab.probes.keras.facts import model_facts
    compiled = getattr(model, "compiled", getattr(model, "_is_compiled", True))
    if getattr(model, "optimizer", None) is None or not compiled:
        raise ValueError(
            "bertlab.check: the model is not compiled; call "
            "model.compile(optimizer=..., loss=...) first"
        )
    if x is not None and hasattr(x, "take") and hasattr(x, "element_spec"):
        x, y = _from_dataset(x)
    facts = model_facts(model)
    if unk_token_id is not None:
        facts.unk_token_id = unk_id(unk_token_id)
    pair = isinstance(validation_data, (tuple, list))
    val_x = validation_data[0] if pair else None
    val_y = validation_data[1] if pair and len(validation_data) > 1 else None
    data = datafacts.from_arrays(
        x, y, n_outputs=facts.n_outputs, unk_id=facts.unk_token_id, val_y=val_y, val_x=val_x
    )
    layout = Layout.for_model(
        loss=facts.loss,
        from_logits=facts.from_logits,
        output_activation=facts.output_activation,
        n_outputs=facts.n_outputs or 1,
        layers=(),
    )
    diagnoser = Diagnoser(Run())
    diagnoser.data = data
    ctx = diagnoser.context(facts)
    ctx.layout = layout
    diagnoser.evaluate(ctx, ("preflight",))
    return diagnoser.findings
