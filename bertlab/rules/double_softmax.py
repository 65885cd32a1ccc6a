"""double-softmax: softmax outputs fed to a loss told they are logits (from_logits=True)."""

from __future__ import annotations

from bertlab.rules._lossconfig import loss_text
from bertlab.rules.base import Context, Evidence, Rule

_CROSS_ENTROPY = ("sparse_categorical_crossentropy", "categorical_crossentropy")


def check(ctx: Context) -> Evidence | None:
    f = ctx.facts
    softmax_out = f.output_activation == "softmax"
    if not (softmax_out or f.softmax_layers) or f.from_logits is not True:
        return None
    if f.loss not in _CROSS_ENTROPY and "categorical" not in (f.loss or ""):
        return None
    output_op = ctx.meta.get("output_op")
    last_op_softmax = output_op == "Softmax" if output_op else softmax_out
    where = "the output layer applies softmax" if softmax_out else "the model has a Softmax layer"
    text = f"{where} and the loss is {loss_text(f)}"
    if f.backend == "tensorflow" and last_op_softmax:
        return Evidence(
            text + "; on TensorFlow Keras silently feeds the pre-softmax logits to the loss "
            "(only a UserWarning), so the loss is right on this backend only",
            severity="warning",
            title="Softmax output with from_logits=True (works only by a TensorFlow shortcut)",
            extra={"not_a_cause": True},
        )
    return Evidence(text + "; the loss applies softmax a second time", severity="error")


RULE = Rule(
    check=check,
    code="double-softmax",
    severity="error",
    phase="preflight",
    panel="outputs",
    rank=10,
    sticky=True,
    title="Softmax applied twice: softmax outputs and a loss with from_logits=True",
    explanation=(
        "from_logits=True tells the loss to apply softmax itself. If the model already ends in "
        "a softmax, the loss sees softmax(softmax(z)): all classes get nearly equal probability, "
        "the gradients shrink, and the loss stalls near ln K. Keras on TensorFlow detects a "
        "softmax that is the very last op and uses its input instead, so the same code trains on "
        "TensorFlow but not on JAX or PyTorch, or as soon as anything follows the softmax."
    ),
    fix=(
        "Pick one: output logits and keep from_logits=True (recommended, more stable):\n"
        "  outputs = keras.layers.Dense(K)(h)  # no activation\n"
        "  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
        "or keep the softmax and set from_logits=False."
    ),
    fixes={
        "torch": (
            "Return logits and let nn.CrossEntropyLoss apply the (log-)softmax itself:\n"
            "  self.head = nn.Linear(hidden, K)  # no nn.Softmax() / .softmax() in forward()\n"
            "  loss_fn = nn.CrossEntropyLoss()\n"
            "  probs = logits.softmax(-1)  # only for predictions, outside the loss\n"
            "or, if the model must output probabilities, end it in nn.LogSoftmax(-1) and use "
            "nn.NLLLoss()."
        ),
    },
    explanations={
        "torch": (
            "nn.CrossEntropyLoss applies log-softmax to its input itself. If the model already "
            "ends in a softmax, the loss sees softmax(softmax(z)): all classes get nearly "
            "equal probability, the gradients shrink, and the loss stalls near ln K."
        ),
    },
)
