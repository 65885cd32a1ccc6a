"""Static facts about the model being trained, extracted once by a framework adapter.

The rules never look at a Keras (or PyTorch) object: what they need to know about the model,
its loss, optimizer and metrics is read once, when training starts, into a ``ModelFacts``. This
keeps the rules pure functions of numbers and these facts, so the same rule works for every
framework an adapter exists for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class ModelFacts:
    """What is known about the model, loss, optimizer and metrics when training starts.

    ``None`` means "could not be determined"; rules must treat it as unknown, not as false.

    Attributes
    ----------
    framework, backend
        ``"keras"`` or ``"torch"``, and the backend (``"tensorflow"``, ``"torch"``...).
    model_class
        Class name of the model (``"Sequential"``, ``"BertTextClassifier"``...).
    loss
        Canonical loss name, e.g. ``"sparse_categorical_crossentropy"``,
        ``"categorical_crossentropy"``, ``"binary_crossentropy"``, ``"mean_squared_error"``;
        for a user function, its ``__name__``.
    from_logits, label_smoothing
        The loss's settings, where it has them.
    loss_display
        The loss as the user wrote it, where that is not the Keras name (``"nn.BCELoss()"``,
        ``"F.cross_entropy"``): evidence names what the user can find in their code.
    output_activation
        Activation applied by the model's last op (``"softmax"``, ``"sigmoid"``, ``"linear"``...).
    softmax_layers
        Number of separate Softmax/Activation('softmax') layers in the model.
    n_outputs
        Size of the output's last axis (K), where the model exposes it before training.
    n_model_outputs
        Number of model outputs (only the first is summarised for multi-output models).
    optimizer, learning_rate, lr_schedule
        Optimizer class name, initial learning rate, schedule class name if any.
    params_total, params_trainable
        Parameter counts.
    metrics
        The metric names as passed to ``compile`` (strings as given; objects by name).
    embeddings
        ``[(layer path, vocabulary size)]`` of embedding layers (token-id range checks).
    masked_embeddings
        Paths of embeddings with ``mask_zero=True``: they pass a padding mask downstream
        implicitly, so no mask input is needed.
    lookup_layers
        Class names of layers that remap ids before an embedding (Hashing, IntegerLookup,
        StringLookup, TextVectorization): then raw input ids are not embedding rows.
    encoders
        Class names of pretrained-encoder building blocks found in the model (KerasHub
        backbones, transformer layers), evidence that this is a fine-tune of a transformer.
    unk_token_id, pad_token_id
        Ids of the tokenizer's unknown and padding tokens, learnt from what produced the ids
        (``bertlab.probes.tokens``): a KerasHub preprocessor or a TextVectorization /
        StringLookup the model carries, or the tokenizer passed as ``Watch(tokenizer=...)`` (a
        Hugging Face or KerasHub tokenizer, a KerasHub preprocessor, a Keras lookup layer), or
        ``Watch(unk_token_id=...)``. ``None``: unknown (the probes then take 0 as the pad id,
        the BERT/Keras convention).
    vocabulary_kind
        ``"subword"`` (WordPiece/BPE/SentencePiece tokenizers: [UNK] is rare) or ``"word"``
        (a TextVectorization / StringLookup vocabulary: out-of-vocabulary words are common),
        where the tokenizer is known.
    steps_per_execution, run_eagerly, jit_compile
        Execution settings that change what the probe can see.
    mode_dependent
        Number of modules that behave differently in training and inference mode (dropout with
        p > 0, batch norm), where the framework leaves switching modes to the user (PyTorch).
    """

    framework: str = "keras"
    backend: str | None = None
    model_class: str | None = None
    loss: str | None = None
    from_logits: bool | None = None
    label_smoothing: float | None = None
    loss_display: str | None = None
    output_activation: str | None = None
    softmax_layers: int = 0
    n_outputs: int | None = None
    n_model_outputs: int = 1
    optimizer: str | None = None
    learning_rate: float | None = None
    lr_schedule: str | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    metrics: list[str] = field(default_factory=list)
    embeddings: list[tuple[str, int]] = field(default_factory=list)
    masked_embeddings: list[str] = field(default_factory=list)
    lookup_layers: list[str] = field(default_factory=list)
    encoders: list[str] = field(default_factory=list)
    unk_token_id: int | None = None
    pad_token_id: int | None = None
    vocabulary_kind: str | None = None
    steps_per_execution: int = 1
    run_eagerly: bool = False
    jit_compile: bool = False
    mode_dependent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in a run's metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelFacts:
        """Inverse of ``to_dict``; unknown keys are ignored so old readers accept newer files."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "embeddings" in kwargs:
            kwargs["embeddings"] = [(str(a), int(b)) for a, b in kwargs["embeddings"]]
        return cls(**kwargs)
