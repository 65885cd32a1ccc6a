"""params-not-in-optimizer: parameters receive gradients the optimizer never applies (PyTorch).

A PyTorch optimizer updates exactly the parameters it was given when it was created (plus
``add_param_group``). The PyTorch probe compares them with the model's trainable parameters and,
in the first backward pass, notes which of those outside the optimizer actually received a
gradient (``meta["unoptimized_params"]``): those are meant to learn (``requires_grad`` and
connected to the loss) but ``optimizer.step()`` never touches them. Trainable parameters outside
the optimizer that get no gradient either (an unused branch) are another matter. Keras has no
such split (``model.compile`` hands the optimizer every trainable variable): silent.
"""

from __future__ import annotations

from bertlab.rules.base import Context, Evidence, Rule

#: Parameter names spelled out in the evidence; the rest are counted.
MAX_NAMES = 4

TITLE = "Parameters get gradients but are not in the optimizer: they never change"


def check(ctx: Context) -> Evidence | None:
    """Fire when trainable parameters with gradients are in no optimizer parameter group."""
    names = ctx.meta.get("unoptimized_params")
    if not isinstance(names, list) or not names:
        return None
    shown = ", ".join(str(n) for n in names[:MAX_NAMES])
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    plural = len(names) != 1
    optimizer = ctx.facts.optimizer or "the optimizer"
    text = (
        f"{len(names)} trainable parameter tensor{'s' if plural else ''} ({shown}{more}) "
        f"received gradients in the first backward pass, but no parameter group of {optimizer} "
        f"holds {'them' if plural else 'it'}: optimizer.step() leaves "
        f"{'them' if plural else 'it'} at {'their' if plural else 'its'} initial values"
    )
    outside = ctx.meta.get("params_outside_optimizer")
    if isinstance(outside, list) and len(outside) > len(names):
        text += (
            f" ({len(outside) - len(names)} other trainable tensors outside the optimizer got no "
            "gradient)"
        )
    return Evidence(text)


RULE = Rule(
    check=check,
    code="params-not-in-optimizer",
    severity="error",
    phase="live",
    panel="gradients",
    rank=16,
    sticky=True,
    title=TITLE,
    explanation=(
        "A PyTorch optimizer only updates the parameters passed to it when it was created. "
        "Gradients are computed for every parameter with requires_grad=True that the loss "
        "depends on, so the loss, the backward pass and the gradient norms all look normal, but "
        "the parameters outside the optimizer stay at their initial values for the whole run. "
        "The usual causes: the optimizer was built before a layer was added or replaced (a new "
        "classifier head, model.resize_token_embeddings(), which makes new embedding "
        "matrices), or from one submodule only (model.encoder.parameters()). A randomly "
        "initialised head that never trains caps what the model can learn; an encoder left out "
        "on purpose still costs a full backward pass through it."
    ),
    fix=(
        "Create the optimizer last, over every parameter meant to train:\n"
        "  model.classifier = nn.Linear(hidden, num_labels)  # changes to the model first\n"
        "  optimizer = torch.optim.AdamW(\n"
        "      [p for p in model.parameters() if p.requires_grad], lr=2e-5)\n"
        "or add the missing ones:\n"
        "  optimizer.add_param_group({'params': model.classifier.parameters(), 'lr': 1e-3})\n"
        "If leaving them out was meant as a freeze, freeze them properly (no gradient is "
        "computed then): for p in model.encoder.parameters(): p.requires_grad_(False)"
    ),
)
