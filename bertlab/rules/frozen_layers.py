"""frozen-layers: most of the model's parameters do not train (a frozen encoder).

A frozen weight gets no gradient (``trainable = False``, ``requires_grad_(False)``), so neither
probe lists it among the gradient groups: its update is never measured, and the facts' count of
trainable parameters is the evidence. What the update ratio adds is the opposite case: layers
that get a gradient but never move are not frozen. In PyTorch the facts count a parameter the
optimizer does not hold as not training; when such parameters receive gradients
(``meta["unoptimized_params"]``) they are held still by the optimizer, which
params-not-in-optimizer names, and this rule steps aside (benchmark b42: the optimizer of an
old network, "0 of 324,485 parameters trainable" while every layer gets a gradient). Layers
that get no gradient and do not move are dead-gradients'.
"""

from __future__ import annotations

from bertlab.rules._dynamics import held_still, layer_name, names
from bertlab.rules.base import Context, Evidence, Rule

#: Fewer than half of the parameters train: the bulk of the model is frozen (feature
#: extraction, adapters/LoRA, or a `trainable = False` left on). Common partial freezes, such as
#: BERT's embeddings (about a fifth of BERT-base), stay below the radar.
FROZEN_SHARE = 0.5
#: Stalls a frozen model explains; with one of them live the rule becomes a warning.
SYMPTOMS = ("chance-loss", "stagnant-loss", "single-class", "multilabel-collapse")
TITLE = "Most of the model is frozen"


def _frozen_part(ctx: Context) -> str:
    """What is frozen, and which layers train when they are few (the gradient groups)."""
    layers = ctx.layout.layers if ctx.layout is not None else ()
    if not layers or len(layers) > 4:
        return "the rest is frozen"  # many training layers: adapters/LoRA or partial freezing
    encoder = "the encoder is frozen" if ctx.facts.encoders else "the rest is frozen"
    return f"{encoder}; only {', '.join(layers)} train"


def _outside_optimizer(ctx: Context, text: str) -> Evidence | None:
    """The low count comes from parameters with gradients that the optimizer does not hold."""
    unoptimized = ctx.meta.get("unoptimized_params")
    if not isinstance(unoptimized, list) or not unoptimized:
        return None
    still = [layer_name(ctx, i) for i in held_still(ctx)]
    measured = f"; {names(still)} get a gradient but move by exactly 0" if still else ""
    return Evidence(
        f"{text}, but {len(unoptimized)} parameter tensors counted as not training get "
        f"gradients{measured}: they are trainable and outside the optimizer "
        "(params-not-in-optimizer), not frozen",
        severity="info",
        title="Parameters held still by the optimizer, not frozen",
        extra={"not_a_cause": True, "held_still": still},
    )


def check(ctx: Context) -> Evidence | None:
    f = ctx.facts
    total, trainable = f.params_total, f.params_trainable
    if not total or trainable is None:
        return None
    if trainable < FROZEN_SHARE * total:
        share = f"only {trainable / total:.1%} of parameters are counted as training"
        outside = _outside_optimizer(ctx, f"{share} ({trainable:,} of {total:,})")
        if outside is not None:
            return outside
    if trainable == 0:
        return Evidence(
            f"0 of {total:,} parameters are trainable: fit updates nothing",
            severity="error",
            title="Nothing trains: every layer is frozen",
        )
    share = trainable / total
    if share >= FROZEN_SHARE:
        return None
    text = f"only {share:.1%} of parameters train ({trainable:,} of {total:,}): {_frozen_part(ctx)}"
    symptoms = [code for code in SYMPTOMS if code in ctx.live]
    if symptoms:
        return Evidence(
            text + f"; the model is stuck ({', '.join(symptoms)})",
            severity="warning",
            title="Most of the model is frozen and the rest cannot learn the task alone",
        )
    return Evidence(text, severity="info", title=TITLE)


RULE = Rule(
    check=check,
    code="frozen-layers",
    severity="info",
    phase="live",
    panel="gradients",
    rank=32,
    title=TITLE,
    explanation=(
        "Layers with trainable=False keep their weights: only the rest learns. Training just a "
        "small head on a frozen pretrained encoder (feature extraction) works when the encoder's "
        "features already separate the classes, but it is much weaker than fine-tuning, and on "
        "a randomly initialised or mismatched encoder the head has nothing useful to learn from, "
        "so the loss stays near the no-information level. A frozen model is often a leftover "
        "`trainable = False` from an earlier stage, or a freeze applied after `compile`."
    ),
    fix=(
        "Unfreeze the encoder and fine-tune it with a small learning rate, then recompile "
        "(trainable changes take effect at compile):\n"
        "  model.backbone.trainable = True  # or set it on the layers you froze\n"
        "  model.compile(optimizer=keras.optimizers.Adam(2e-5), loss=..., metrics=[...])\n"
        "If the freeze is intended, train the head first with a higher learning rate, or "
        "unfreeze the top encoder layers only."
    ),
    fixes={
        "torch": (
            "Unfreeze the encoder and fine-tune it with a small learning rate, with an "
            "optimizer that holds its parameters (build it after unfreezing):\n"
            "  for p in model.base_model.parameters():  # or the layers you froze\n"
            "      p.requires_grad_(True)\n"
            "  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)\n"
            "If the freeze is intended, train the head first with a higher learning rate, or "
            "unfreeze the top encoder layers only (e.g. model.bert.encoder.layer[-2:])."
        ),
    },
)
