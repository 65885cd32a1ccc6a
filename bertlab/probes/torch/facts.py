"""Read a PyTorch model, loss and optimizer into ``ModelFacts`` (the rules' view of the setup).

The rules speak Keras's loss vocabulary (``binary_crossentropy`` + ``from_logits``...), so each
torch loss is described in it: ``nn.BCELoss`` reads probabilities (``from_logits=False``),
``nn.BCEWithLogitsLoss`` logits, ``nn.CrossEntropyLoss`` logits with class ids (sparse) or class
probabilities (dense) as targets. Everything is best-effort and read-only: what cannot be read
stays ``None`` ("unknown"), never a guess.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from bertlab.facts import ModelFacts

#: torch loss class -> (Keras-style loss name, from_logits).
_LOSSES: dict[str, tuple[str, bool | None]] = {
    "CrossEntropyLoss": ("sparse_categorical_crossentropy", True),
    "NLLLoss": ("nll_loss", None),
    "BCELoss": ("binary_crossentropy", False),
    "BCEWithLogitsLoss": ("binary_crossentropy", True),
    "MultiLabelSoftMarginLoss": ("binary_crossentropy", True),
    "MSELoss": ("mean_squared_error", None),
    "L1Loss": ("mean_absolute_error", None),
    "HuberLoss": ("huber", None),
    "SmoothL1Loss": ("huber", None),
    "KLDivLoss": ("kl_divergence", None),
}
#: Hugging Face ``config.problem_type`` -> the loss its ``*ForSequenceClassification`` computes.
_HF_PROBLEMS = {
    "single_label_classification": "CrossEntropyLoss",
    "multi_label_classification": "BCEWithLogitsLoss",
    "regression": "MSELoss",
}
#: Modules that behave differently in train() and eval() mode.
_MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
#: Evidence of a pretrained transformer encoder in the model (class names).
_ENCODER_HINTS = ("Bert", "Roberta", "Electra", "Deberta", "Transformer", "Encoder")


def _attends(module: nn.Module) -> bool:
    """Whether a module (or one inside it) is self-attention, where padding must be masked."""
    return any(
        isinstance(m, nn.MultiheadAttention) or "Attention" in type(m).__name__
        for m in module.modules()
    )


def unwrap_model(model: Any) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel / torch.compile."""
    for _ in range(4):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            break
        model = inner
    return model


def unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside Accelerate's ``AcceleratedOptimizer`` (and similar)."""
    for _ in range(4):
        inner = getattr(optimizer, "optimizer", None)
        if inner is None or inner is optimizer or not hasattr(inner, "param_groups"):
            break
        optimizer = inner
    return optimizer


def describe_loss(loss_fn: Any) -> tuple[str | None, bool | None, float | None, bool]:
    """(name, from_logits, label_smoothing, weighted) of a torch loss module or function."""
    if loss_fn is None:
        return None, None, None, False
    name = type(loss_fn).__name__ if isinstance(loss_fn, nn.Module) else loss_fn.__name__
    known = _LOSSES.get(name)
    if known is None and not isinstance(loss_fn, nn.Module):
        functional = {
            "cross_entropy": "CrossEntropyLoss",
            "binary_cross_entropy": "BCELoss",
            "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
            "mse_loss": "MSELoss",
            "nll_loss": "NLLLoss",
        }
        known = _LOSSES.get(functional.get(name, ""))
    smoothing = getattr(loss_fn, "label_smoothing", None)
    weighted = any(
        torch.is_tensor(getattr(loss_fn, attr, None)) for attr in ("weight", "pos_weight")
    )
    if known is None:
        return name, None, smoothing, weighted
    return known[0], known[1], smoothing, weighted


def output_activation(model: nn.Module) -> str | None:
    """What the model's last module applies, when the model is a plain stack of modules."""
    if not isinstance(model, nn.Sequential) or not len(model):
        return None
    last = model[-1]
    for cls, name in (
        (nn.Sigmoid, "sigmoid"),
        (nn.Softmax, "softmax"),
        (nn.LogSoftmax, "log_softmax"),
        (nn.ReLU, "relu"),
    ):
        if isinstance(last, cls):
            return name
    return "linear" if isinstance(last, nn.Linear) else None


def model_facts(model: Any, optimizer: Any = None, loss_fn: Any = None) -> ModelFacts:
    """Collect the facts the rules need from a model, its optimizer and its loss."""
    model = unwrap_model(model)
    facts = ModelFacts(framework="torch", backend="torch", model_class=type(model).__name__)
    config = getattr(model, "config", None)
    if loss_fn is None and config is not None and hasattr(config, "num_labels"):
        problem = getattr(config, "problem_type", None)
        facts.n_outputs = int(config.num_labels)
        if problem in _HF_PROBLEMS:
            facts.loss, facts.from_logits = _LOSSES[_HF_PROBLEMS[problem]]
        facts.output_activation = "linear"  # *ForSequenceClassification returns logits
    else:
        facts.loss, facts.from_logits, facts.label_smoothing, _ = describe_loss(loss_fn)
        # As written in the user's code (nn.BCELoss(), F.cross_entropy), for the evidence.
        if isinstance(loss_fn, nn.Module):
            cls = type(loss_fn)
            prefix = "nn." if cls.__module__.startswith("torch.nn") else ""
            facts.loss_display = f"{prefix}{cls.__name__}()"
        elif loss_fn is not None:
            prefix = "F." if (getattr(loss_fn, "__module__", None) or "") == F.__name__ else ""
            facts.loss_display = prefix + getattr(loss_fn, "__name__", type(loss_fn).__name__)
        facts.output_activation = output_activation(model)
    facts.softmax_layers = int(facts.output_activation == "softmax")
    opt = unwrap_optimizer(optimizer)
    if opt is not None:
        facts.optimizer = type(opt).__name__
        groups = getattr(opt, "param_groups", None) or [{}]
        lr = groups[0].get("lr")
        facts.learning_rate = float(lr) if isinstance(lr, (int, float)) else None
    params = list(model.parameters())
    facts.params_total = int(sum(p.numel() for p in params))
    # What trains is what needs a gradient *and* is updated: an optimizer that does not hold a
    # parameter never changes it (params-not-in-optimizer names those).
    held = {id(p) for g in getattr(opt, "param_groups", None) or [] for p in g.get("params", [])}
    facts.params_trainable = int(
        sum(p.numel() for p in params if p.requires_grad and (opt is None or id(p) in held))
    )
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            facts.embeddings.append((name or "embedding", int(module.num_embeddings)))
        cls = type(module).__name__
        if any(hint in cls for hint in _ENCODER_HINTS) and cls not in facts.encoders:
            if _attends(module):  # a convolutional "Encoder" has no padding to mask
                facts.encoders.append(cls)
    facts.mode_dependent = sum(
        1 for m in model.modules() if isinstance(m, _MODE_DEPENDENT) and getattr(m, "p", 1.0) != 0
    )
    return facts


def unoptimized_parameters(model: Any, optimizer: Any) -> list[str]:
    """Names of trainable parameters that no optimizer parameter group holds."""
    opt = unwrap_optimizer(optimizer)
    if opt is None:
        return []
    held = {id(p) for group in opt.param_groups for p in group.get("params", [])}
    return [
        name
        for name, p in unwrap_model(model).named_parameters()
        if p.requires_grad and id(p) not in held
    ]


def output_op(output: torch.Tensor) -> str | None:
    """The op that made the model's output, seen through view/reshape/squeeze ops.

    ``"Sigmoid"``/``"Softmax"``/``"LogSoftmax"`` (the names the Keras probe records from
    TensorFlow's graph), the autograd node's name otherwise, None without a graph.
    """
    node = getattr(output, "grad_fn", None)
    for _ in range(8):
        if node is None:
            return None
        name = node.name()
        base = name.removesuffix("0").removesuffix("Backward")
        if base in ("Sigmoid", "Softmax", "LogSoftmax"):
            return base
        shape_ops = ("View", "Reshape", "Squeeze", "Unsqueeze", "Select", "Slice", "Clone")
        if not any(base.startswith(op) for op in shape_ops) or not node.next_functions:
            return base
        node = node.next_functions[0][0]
    return None


def refine_loss(facts: ModelFacts, y_pred: torch.Tensor, y: torch.Tensor, builtin: bool) -> None:
    """What the first targets tell about the loss: ``nn.CrossEntropyLoss`` with probability
    targets is a categorical (not sparse) cross-entropy; a Hugging Face model's built-in loss
    (``builtin``) without ``config.problem_type`` is chosen by transformers exactly this way:
    one output -> MSE, float labels -> BCE with logits, integer labels -> cross-entropy."""
    dense = y.is_floating_point() and y.shape == y_pred.shape and y_pred.dim() > 1
    if facts.loss == "sparse_categorical_crossentropy" and dense:
        facts.loss = "categorical_crossentropy"
    if facts.loss is None and builtin:
        k = y_pred.shape[-1] if y_pred.dim() > 1 else 1
        if k == 1:
            facts.loss, facts.from_logits = "mean_squared_error", None
        elif y.is_floating_point():
            facts.loss, facts.from_logits = "binary_crossentropy", True
        else:
            facts.loss, facts.from_logits = "sparse_categorical_crossentropy", True
