"""The update size (``update_ratio``) as evidence in high-learning-rate, frozen-layers and
dead-gradients: what the optimizer steps actually did to the weights, next to the configured
learning rate and the parameter counts (issue 14)."""

from __future__ import annotations

import keras
import numpy as np
import torch
from conftest import token_data
from torch import nn
from torch_training import MeanPool, tensors, tiny_hf_bert, train_loop
from training import bert_inputs, fit_watched, recorded_alarms, sparse_ce, tiny_bert

from bertlab.rules.high_learning_rate import FAST_RATIO, HIGH_LR, SLOW_RATIO


def _finding(watch, code):
    return next(f for f in watch.findings if f.code == code)


class Logits(nn.Module):
    """A Hugging Face classifier called like the loops' models: ``model(ids, mask)`` -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask).logits


# ------------------------------------------------------------------------- high-learning-rate
def test_an_encoder_moving_fast_is_evidence_when_the_recorded_rate_is_a_fine_tuning_one():
    """Discriminative learning rates set up backwards: the head's group (the first, whose rate
    is the one recorded) at 5e-5, the encoder's at 1e-2. The configured number the rule reads is
    a fine-tuning one; the encoder's measured steps are not."""
    torch.manual_seed(0)
    model = Logits(tiny_hf_bert())
    optimizer = torch.optim.AdamW(
        [
            {"params": model.model.classifier.parameters(), "lr": 5e-5},
            {"params": model.model.bert.parameters(), "lr": 1e-2},
        ]
    )
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), tensors(n=640), batch_size=16)
    assert np.nanmax(watch.history["lr"]) <= HIGH_LR  # the number alone says nothing
    f = _finding(watch, "high-learning-rate")
    assert f.severity == "warning" and "symptoms present" in f.evidence
    assert f.extra["encoder_ratio"] > FAST_RATIO
    assert "the encoder's median layer moved by" in f.evidence
    assert "learning rate" not in f.evidence.split(";")[0]
    assert any(s.cause == "high-learning-rate" for s in watch.findings if s is not f)


def test_a_large_sgd_rate_that_moves_the_encoder_at_fine_tuning_pace_is_not_a_cause():
    """Plain SGD at 2e-3: the number is ten times the fine-tuning range, but SGD's step is
    rate x gradient, and the encoder's weights move by ~3e-6 per step."""
    x, y, mask = token_data(n=480, k=4)
    model = tiny_bert(k=4)
    model.compile(optimizer=keras.optimizers.SGD(2e-3), loss=sparse_ce())
    watch = fit_watched(model, bert_inputs(x, mask), y, epochs=1, batch_size=16)
    f = _finding(watch, "high-learning-rate")
    assert f.severity == "info" and f.extra["not_a_cause"] is True
    assert f.extra["encoder_ratio"] < SLOW_RATIO
    assert "learning rate 0.002" in f.evidence and "fine-tuning pace" in f.evidence


# ------------------------------------------------------------------------------ frozen-layers
def test_layers_outside_the_optimizer_are_not_called_frozen_or_slow():
    """The optimizer of an old network (benchmark b42): the facts count 0 trainable
    parameters, yet every layer gets a gradient; what holds them still is the optimizer, not a
    freeze and not a small learning rate (they move by exactly 0 at lr 1e-2)."""
    torch.manual_seed(0)
    old = MeanPool(k=4)
    optimizer = torch.optim.Adam(old.parameters(), lr=1e-2)
    model = MeanPool(k=4)  # the network rebuilt after the optimizer
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), epochs=3)
    assert watch.run.meta["model"]["params_trainable"] == 0
    f = _finding(watch, "frozen-layers")
    assert f.severity == "info" and f.extra["not_a_cause"] is True
    assert set(f.extra["held_still"]) == set(watch.run.layout.layers)
    assert "get a gradient but move by exactly 0" in f.evidence
    alarms = recorded_alarms(watch)
    assert not any(a.startswith(("frozen-layers", "low-learning-rate")) for a in alarms)
    assert watch.findings[0].code == "params-not-in-optimizer"


# ----------------------------------------------------------------------------- dead-gradients
class Unused(MeanPool):
    """MeanPool plus a branch whose output reaches the loss multiplied by 0 (an all-zero
    gradient, not a missing one), and one the forward never calls (no gradient at all)."""

    def __init__(self) -> None:
        super().__init__(k=4)
        self.zeroed = nn.Linear(16, 4)
        self.unused = nn.Linear(16, 16)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = super().forward(ids, mask)
        pooled = self.emb(ids).mean(dim=1)
        return logits + 0.0 * self.zeroed(pooled)


def test_dead_layers_are_named_with_what_their_weights_did():
    torch.manual_seed(0)
    model = Unused()
    plain = train_loop(model, torch.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss())
    f = _finding(plain, "dead-gradients")
    assert {"zeroed", "unused"} <= set(f.extra["layers"])
    assert "they get no gradient and do not move" in f.evidence

    torch.manual_seed(0)
    model = Unused()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    decayed = train_loop(model, optimizer, nn.CrossEntropyLoss())
    f = _finding(decayed, "dead-gradients")
    # AdamW decays the weights of a zero gradient (not of a missing one): they drift, unlearned.
    assert "zeroed still move" in f.evidence and "weight decay alone" in f.evidence
    ratios = decayed.history["update_ratio[zeroed]"].to_numpy()
    assert np.all(ratios[-20:] > 0) and np.all(decayed.history["grad_layer_norm[zeroed]"] == 0)
