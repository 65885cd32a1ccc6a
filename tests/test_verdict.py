"""The verdict: one sentence naming the root cause, its symptoms and the evidence that ties them
(or that the run looks healthy / that no cause is named), printed at train end in scripts, on
``watch.verdict`` (Keras and PyTorch), and sent to the dashboard."""

from __future__ import annotations

import keras
from training import codes, sparse_ce, token_data

import bertlab
from bertlab.verdict import verdict
from bertlab.views import protocol


def _f(code, severity="warning", cause=None, status="live", steps=(3, 22), evidence="ev"):
    return {
        "code": code,
        "severity": severity,
        "cause": cause,
        "status": status,
        "steps": list(steps),
        "title": code.title(),
        "evidence": evidence,
        "extra": {},
    }


def test_root_cause_with_its_symptoms_and_their_evidence_unit():
    findings = [
        _f("high-learning-rate", "warning", evidence="Adam lr 0.2 on a pretrained encoder; usual"),
        _f("single-class", "error", "high-learning-rate", evidence="steps 3–22: class 0; loss 4"),
        _f("chance-loss", "warning", "single-class", steps=(28, 67)),
        _f("heavy-truncation", "info"),
    ]
    text = verdict(findings, steps=100)
    assert text.startswith("Root cause: high-learning-rate")
    assert "Adam lr 0.2 on a pretrained encoder" in text and "; usual" not in text
    assert "It explains single-class from step 3, chance-loss from step 28" in text
    assert "steps 3–22: class 0" in text  # the first symptom's evidence
    assert "heavy-truncation" not in text  # an unrelated info is not part of the verdict


def test_healthy_and_unexplained_runs_unit():
    healthy = verdict([_f("chance-loss", status="resolved"), _f("heavy-truncation", "info")], 90)
    assert healthy.startswith("The run looks healthy: no live warning or error after 90 steps")
    assert "1 earlier finding(s) withdrawn" in healthy and "heavy-truncation" in healthy
    alone = verdict([_f("single-class", "error", evidence="steps 40–59: class 2")], 60)
    assert alone.startswith("No root cause named: single-class") and "class 2" in alone
    setup = verdict([_f("double-softmax", "error")], 10)
    assert setup.startswith("Root cause: double-softmax") and "no symptom of it shows yet" in setup
    assert verdict([], 0).startswith("No verdict yet")
    # A data fact that may have a cause upstream is still a root when that cause is not live.
    for code in ("class-imbalance", "train-val-overlap"):
        data = verdict([_f(code, "warning", evidence="64 of 64 rows")], 30)
        assert data.startswith(f"Root cause: {code}") and "64 of 64 rows" in data, data


def test_keras_script_prints_the_verdict_at_train_end_and_the_dashboard_gets_it(capsys):
    from test_rules_core import _relu_classifier

    x, y, _ = token_data(n=45 * 12, k=45, seed=3)
    model = _relu_classifier(45)  # the forum's collapse: Adam 0.2 wrecks a ReLU encoder
    model.compile(optimizer=keras.optimizers.Adam(0.2), loss=sparse_ce())
    watch = bertlab.Watch(verbose=True, dashboard=False)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[watch])
    printed = capsys.readouterr().out.splitlines()
    last = [line for line in printed if line.startswith("bertlab verdict: ")]
    assert last and last[-1] == f"bertlab verdict: {watch.verdict}"
    assert watch.run.meta["verdict"] == watch.verdict
    loud = codes(watch, ("error", "warning"))
    assert loud, "this run is broken: the verdict must name something"
    assert "single-class" in loud and "single-class" in watch.verdict
    assert protocol.state(watch.run)["verdict"] == watch.verdict


def test_torch_watch_verdict_on_a_healthy_loop():
    from torch import nn
    from torch_training import model_and_optimizer, tensors

    import bertlab.torch

    ids, mask, y = tensors(n=256)
    model, optimizer = model_and_optimizer(k=4)
    watch = bertlab.torch.Watch(model, optimizer, nn.CrossEntropyLoss(), verbose=False)
    for _ in range(2):
        for i in range(0, 256, 32):
            optimizer.zero_grad()
            s = slice(i, i + 32)
            nn.CrossEntropyLoss()(model(ids[s], mask[s]), y[s]).backward()
            optimizer.step()
    watch.close()
    assert watch.verdict.startswith("The run looks healthy"), watch.verdict
    assert watch.run.meta["verdict"] == watch.verdict
