"""The rules for what PyTorch loops get wrong and Keras users cannot: each fires on a real
PyTorch training with the mistake and stays silent on real loops without it (gradient
accumulation, a model without dropout trained in eval() mode, unused parameters)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn
from torch_training import MeanPool, live_codes, model_and_optimizer, tensors, train_loop

import bertlab.torch


def alarms(watch) -> list[str]:
    """Every warning/error ever raised in the run, live or withdrawn."""
    return [
        f"{d['code']} ({d['status']}): {d['evidence']}"
        for d in watch.run.findings
        if d["severity"] in ("error", "warning")
    ]


def finding(watch, code: str):
    """The live finding with this code (fails the test when absent)."""
    found = [f for f in watch.findings if f.code == code]
    assert found, f"{code} not raised; live: {[f.code for f in watch.findings]}"
    return found[0]


def accumulating_loop(model, optimizer, *, k: int = 4, zero_after_step: bool = True, epochs=2):
    """Gradient accumulation as users write it: k micro-batches of 8 per optimizer step, the
    loss divided by k, ``zero_grad()`` after each ``optimizer.step()`` (unless told not to)."""
    ids, mask, y = tensors()
    loss_fn = nn.CrossEntropyLoss()
    watch = bertlab.torch.Watch(model, optimizer, loss_fn, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            model.train()
            for i, start in enumerate(range(0, 384, 8)):
                s = slice(start, start + 8)
                (loss_fn(model(ids[s], mask[s]), y[s]) / k).backward()
                if (i + 1) % k == 0:
                    optimizer.step()
                    if zero_after_step:
                        optimizer.zero_grad()
            model.eval()
            with torch.no_grad():
                for start in range(384, 512, 32):
                    s = slice(start, start + 32)
                    loss_fn(model(ids[s], mask[s]), y[s])
    watch.close()
    return watch


def eval_once_loop(model, optimizer, epochs: int = 3):
    """model.train() once before the loop, model.eval() for each validation, and no
    model.train() after it: every epoch after the first trains in eval() mode."""
    ids, mask, y = tensors()
    loss_fn = nn.CrossEntropyLoss()
    watch = bertlab.torch.Watch(model, optimizer, loss_fn, verbose=False)
    model.train()
    for _ in range(epochs):
        for start in range(0, 384, 32):
            s = slice(start, start + 32)
            optimizer.zero_grad()
            loss_fn(model(ids[s], mask[s]), y[s]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for start in range(384, 512, 32):
                s = slice(start, start + 32)
                loss_fn(model(ids[s], mask[s]), y[s])
    watch.close()
    return watch


# --------------------------------------------------------------------------- grads-not-zeroed
def test_grads_not_zeroed_fires_without_zero_grad():
    model, optimizer = model_and_optimizer()
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), zero_grad=False)
    stale = watch.history["grad_stale"].to_numpy()
    assert stale[0] == 0 and (stale[1:] > 0).all()  # the mechanism, as recorded
    f = finding(watch, "grads-not-zeroed")
    assert f.severity == "error" and f.panel == "gradients"
    assert "left over from earlier steps" in f.evidence and f.steps[0] == 1
    assert "optimizer.zero_grad()" in f.fix
    assert {a.split(" ")[0] for a in alarms(watch)} == {"grads-not-zeroed"}


def test_grads_not_zeroed_silent_with_gradient_accumulation():
    model, optimizer = model_and_optimizer()
    watch = accumulating_loop(model, optimizer, k=4)
    assert (watch.history["micro_batches"] == 4).all()
    assert (watch.history["grad_stale"] == 0).all()
    assert alarms(watch) == []  # every rule: a healthy run


def test_grads_not_zeroed_fires_with_accumulation_never_zeroed():
    model, optimizer = model_and_optimizer()
    watch = accumulating_loop(model, optimizer, k=4, zero_after_step=False)
    f = finding(watch, "grads-not-zeroed")
    assert "accumulates 4 backward passes per optimizer step" in f.evidence


# --------------------------------------------------------------------------- eval-mode-training
def test_eval_mode_training_fires_in_eval_mode_with_dropout():
    model, optimizer = model_and_optimizer(dropout=0.1)
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), train_mode=False)
    assert (watch.history["train_mode"] == 0).all()
    f = finding(watch, "eval-mode-training")
    assert f.severity == "warning" and "1 module that behaves" in f.evidence
    assert "model.train()" in f.fix
    assert live_codes(watch) == {"eval-mode-training"}


def test_eval_mode_training_names_the_forgotten_train_call():
    model, optimizer = model_and_optimizer(dropout=0.1)
    watch = eval_once_loop(model, optimizer)
    first_epoch = watch.history[watch.history["epoch"] == 0]
    assert (first_epoch["train_mode"] == 1).all()
    f = finding(watch, "eval-mode-training")
    assert f"last in train() mode at step {int(first_epoch['step'].max())}" in f.evidence


def test_eval_mode_training_silent_without_mode_dependent_modules():
    model, optimizer = model_and_optimizer(dropout=0.0)
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), train_mode=False)
    assert watch.run.meta["model"]["mode_dependent"] == 0
    assert (watch.history["train_mode"] == 0).all()
    assert alarms(watch) == []


# --------------------------------------------------------------------------- validation-train-mode
def test_validation_train_mode_fires_when_validating_in_train_mode():
    model, optimizer = model_and_optimizer(dropout=0.1)
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), eval_mode_for_validation=False)
    assert (watch.epochs["val_train_mode"] == 1.0).all()
    f = finding(watch, "validation-train-mode")
    assert f.severity == "warning" and f.evidence.startswith("epochs 0 (100 %), 1 (100 %)")
    assert "model.eval()" in f.fix
    assert live_codes(watch) == {"validation-train-mode"}


def test_validation_train_mode_silent_in_eval_mode_or_without_dropout():
    model, optimizer = model_and_optimizer(dropout=0.1)
    healthy = train_loop(model, optimizer, nn.CrossEntropyLoss())
    assert (healthy.epochs["val_train_mode"] == 0.0).all()
    assert alarms(healthy) == []
    model, optimizer = model_and_optimizer(dropout=0.0)
    no_dropout = train_loop(model, optimizer, nn.CrossEntropyLoss(), eval_mode_for_validation=False)
    assert (no_dropout.epochs["val_train_mode"] == 1.0).all()
    assert alarms(no_dropout) == []


# ------------------------------------------------------------------------- params-not-in-optimizer
def test_params_not_in_optimizer_fires_when_the_head_is_left_out():
    torch.manual_seed(0)
    model = MeanPool(k=4)
    optimizer = torch.optim.Adam(model.emb.parameters(), lr=1e-2)
    head_before = model.head.weight.detach().clone()
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss())
    assert torch.equal(model.head.weight, head_before)  # it really never changed
    f = finding(watch, "params-not-in-optimizer")
    assert f.severity == "error" and f.panel == "gradients"
    assert "2 trainable parameter tensors (head.weight, head.bias)" in f.evidence
    assert "Adam" in f.evidence


class WithSpare(MeanPool):
    """MeanPool plus a trainable layer the forward never uses."""

    def __init__(self) -> None:
        super().__init__(k=4)
        self.spare = nn.Linear(16, 16)


def test_params_not_in_optimizer_silent_for_parameters_without_gradient():
    torch.manual_seed(0)
    model = WithSpare()
    used = [p for name, p in model.named_parameters() if not name.startswith("spare")]
    optimizer = torch.optim.Adam(used, lr=1e-2)
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss())
    assert watch.run.meta["params_outside_optimizer"] == ["spare.weight", "spare.bias"]
    assert watch.run.meta["unoptimized_params"] == []
    assert "params-not-in-optimizer" not in {d["code"] for d in watch.run.findings}


def test_params_not_in_optimizer_is_named_as_the_cause_of_a_stalled_model():
    """The classifier head replaced after the optimizer was built, on a frozen encoder: nothing
    the optimizer holds is used any more, so the loss stalls; the stall names its cause."""
    torch.manual_seed(0)
    model = MeanPool(k=4)
    model.emb.weight.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.head = nn.Linear(16, 4)  # a new head, after the optimizer
    watch = train_loop(model, optimizer, nn.CrossEntropyLoss(), epochs=14)
    stalls = [f for f in watch.findings if f.code in ("stagnant-loss", "chance-loss")]
    assert stalls and all(f.cause == "params-not-in-optimizer" for f in stalls)
    assert watch.findings[0].code == "params-not-in-optimizer"  # the root cause comes first


def test_class_imbalance_is_a_warning_when_no_label_is_ever_predicted():
    """A multi-label head that never says yes has drowned every rare label: that is the
    strongest evidence of harm, not "nothing to judge" (seen on the 13-tag MiniLM notebook)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    rates = np.array([0.37, 0.2, 0.18, 0.09, 0.075, 0.05, 0.044, 0.04, 0.03, 0.03, 0.02])
    x = torch.randn(960, 8)
    y = torch.tensor((rng.random((960, len(rates))) < rates).astype("float32"))
    model = torch.nn.Sequential(torch.nn.Linear(8, len(rates)), torch.nn.Sigmoid())
    torch.nn.init.constant_(model[0].bias, -6.0)  # starts (and stays) predicting "no"
    loss_fn = torch.nn.BCELoss()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    with bertlab.torch.Watch(model, opt, loss_fn, verbose=False, dashboard=False) as watch:
        for i in range(60):
            opt.zero_grad()
            loss_fn(model(x[16 * i : 16 * i + 16]), y[16 * i : 16 * i + 16]).backward()
            opt.step()
    assert watch.history[[c for c in watch.history if c.startswith("pred_count")]].sum().sum() == 0
    finding = next(f for f in watch.findings if f.code == "class-imbalance")
    assert finding.severity == "warning"
    assert "predicted the rare labels" in finding.evidence and "0 times" in finding.evidence


def test_relu_on_the_logits_is_named_with_the_module_that_clamps_them():
    """nn.ReLU as the last module, then nn.CrossEntropyLoss: the logits never go below 0 and
    the clamped ones pass no gradient (benchmark b34's mistake in PyTorch)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 640)
    centers = rng.normal(size=(4, 16))
    x = torch.tensor(centers[y] + rng.normal(scale=1.5, size=(640, 16)), dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4), nn.ReLU())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    target = torch.tensor(y)
    with bertlab.torch.Watch(model, opt, loss_fn, verbose=False) as watch:
        for _ in range(2):
            for i in range(0, 640, 32):
                opt.zero_grad()
                loss_fn(model(x[i : i + 32]), target[i : i + 32]).backward()
                opt.step()
    f = finding(watch, "dead-gradients")
    assert f.severity in ("warning", "error")
    assert "relu activation" in f.evidence
    assert watch.run.meta["model"]["output_activation"] == "relu"
