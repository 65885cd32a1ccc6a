"""Training-dynamics rules (group C): each fires on a real training that has the pathology.

Every run here is a few seconds of real Keras training with a ``bertlab.Watch``; the healthy
suite (``test_rules_healthy.py``) checks that the same rules stay silent on healthy runs. A few
pure-numpy tests build a ``Context`` by hand for edges a short training cannot reach reliably.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from training import (
    SEQ,
    VOCAB,
    bert_inputs,
    embedding_classifier,
    fit_watched,
    recorded_alarms,
    sparse_ce,
    tiny_bert,
    token_data,
)

from bertlab.facts import ModelFacts
from bertlab.layout import Layout
from bertlab.rules import (
    dead_gradients,
    exploding_gradients,
    exploding_loss,
    multilabel_collapse,
    oscillating_loss,
    overfitting,
    saturated_logits,
    stagnant_loss,
    vanishing_gradients,
)
from bertlab.rules.base import Context


def record(watch, code):
    """The finding ``code`` as recorded in the run (live or withdrawn), or None."""
    return next((f for f in watch.run.findings if f["code"] == code), None)


def live(watch, code):
    """The live Finding ``code`` at the end of training, or None."""
    return next((f for f in watch.findings if f.code == code), None)


def numbers(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", text)]


def noisy_labels(n=512, k=4, noise=0.3, seed=0):
    """token_data whose labels are replaced by a random class in ``noise`` of the rows."""
    x, y, mask = token_data(n=n, k=k, seed=seed)
    rng = np.random.default_rng(seed + 7)
    flip = rng.random(n) < noise
    return x, np.where(flip, rng.integers(0, k, size=n), y), mask


def stack(n_layers: int, activation: str, seed: int = 1, **dense_kw):
    """Embedding + pooling + ``n_layers`` Dense(16, activation) + Dense(4) logits."""
    keras.utils.set_random_seed(seed)
    layers = [
        keras.Input((SEQ,), dtype="int32"),
        keras.layers.Embedding(VOCAB, 16),
        keras.layers.GlobalAveragePooling1D(),
    ]
    layers += [keras.layers.Dense(16, activation=activation, **dense_kw) for _ in range(n_layers)]
    layers.append(keras.layers.Dense(4))
    return keras.Sequential(layers)


# --------------------------------------------------------------------------- exploding


def test_sgd_with_huge_learning_rate_explodes_loss_and_gradients():
    # SGD + momentum at lr 10: every update overshoots further; the loss grows ~10x every few
    # steps until it overflows to inf/NaN around step 58.
    x, y, _ = token_data(n=512, k=4)
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.SGD(10.0, momentum=0.9), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=2, batch_size=16)

    loss = live(watch, "exploding-loss")
    assert loss is not None and loss.severity == "error"
    assert loss.extra["ratio"] >= 1e6  # the loss level rose a million-fold and more
    assert "no-information level 1.3" in loss.evidence  # ln 4 = 1.386 for 4 balanced classes
    assert loss.cause == "exploding-gradients"

    grads = record(watch, "exploding-gradients")
    assert grads is not None
    assert max(numbers(grads["evidence"])) >= 1e3
    assert any(layer in grads["evidence"] for layer in watch.run.layout.layers)
    nan = live(watch, "nan-loss")
    assert nan is not None and nan.cause == "exploding-gradients"


def test_gradient_spike_unit():
    # One step 1000x the running median of the norm, with a per-layer breakdown.
    n = 80
    norm = np.full(n, 0.5)
    norm[70] = 500.0
    layers = np.tile([0.1, 0.4], (n, 1))
    layers[70] = [499.0, 10.0]
    ctx = _ctx({"grad_norm": norm, "grad_layer_norm": layers}, layers=("emb", "head"))
    ev = exploding_gradients.check(ctx)
    assert ev is not None and ev.severity is None  # a spike alone: warning (rule default)
    assert "step 70" in ev.text and "x1e+03" in ev.text and "emb (499)" in ev.text


def test_tiny_gradients_after_convergence_are_not_a_spike_unit():
    # A model that fits its batches has gradients ~1e-10; the next imperfect batch is 1e4x that.
    norm = np.concatenate([np.full(30, 0.5), np.full(49, 1e-10), [1e-6]])
    assert exploding_gradients.check(_ctx({"grad_norm": norm})) is None


# --------------------------------------------------------------------------- vanishing / dead


def test_deep_sigmoid_stack_vanishes():
    # Ten sigmoid layers between the embeddings and the head: every layer shrinks the gradient
    # by ~4x and more, the embeddings get ~1e-7 of the head's gradient.
    x, y, _ = token_data(n=512, k=4)
    model = stack(10, "sigmoid")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=2, batch_size=16)

    found = live(watch, "vanishing-gradients")
    assert found is not None and found.severity == "warning"
    assert found.extra["ratio"] < 1e-4
    assert "sequential/embedding" in found.evidence
    assert live(watch, "dead-gradients") is None  # tiny is not zero


def test_healthy_bert_embedding_gradient_is_far_above_the_threshold():
    # In a healthy BERT the embeddings get a smaller gradient than the head, but not orders of
    # magnitude smaller: measured 0.06-0.7 here (the threshold is 1e-3).
    x, y, mask = token_data(n=192, k=4)
    model = tiny_bert(k=4)
    model.compile(optimizer=keras.optimizers.Adam(5e-5), loss=sparse_ce())
    watch = fit_watched(model, bert_inputs(x, mask), y, epochs=2, batch_size=16)

    norms = watch.history.filter(like="grad_layer_norm").to_numpy()
    layers = watch.run.layout.layers
    k = max(1, round(vanishing_gradients.EDGE * len(layers)))
    assert "embedding" in layers[0]
    ratio = norms[:, :k].max(axis=1) / norms[:, -k:].max(axis=1)
    assert ratio.min() > 30 * vanishing_gradients.RATIO
    assert record(watch, "vanishing-gradients") is None


def test_unused_branch_gets_no_gradient():
    # A subclassed model computes an auxiliary head and never uses it: its weights are
    # trainable, built, and get no gradient (Keras returns None for them).
    class Branchy(keras.Model):
        def __init__(self):
            super().__init__()
            self.emb = keras.layers.Embedding(VOCAB, 16)
            self.pool = keras.layers.GlobalAveragePooling1D()
            self.aux = keras.layers.Dense(8, name="aux_head")
            self.head = keras.layers.Dense(4, name="head")

        def call(self, x):
            h = self.pool(self.emb(x))
            self.aux(h)  # computed, not returned: not connected to the loss
            return self.head(h)

    x, y, _ = token_data(n=384, k=4)
    keras.utils.set_random_seed(0)
    model = Branchy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce(), metrics=["accuracy"])
    watch = fit_watched(model, x, y, epochs=2, batch_size=16)

    found = live(watch, "dead-gradients")
    assert found is not None and found.severity == "warning"
    assert found.extra["layers"] == ["branchy/aux_head"]
    assert "1 of 3 trainable layers" in found.evidence
    assert "2 variables get no gradient at all" in found.evidence


def test_dead_relu_layer_blocks_the_gradient():
    # A ReLU layer whose pre-activations are negative for every input (here a -5 bias, as after
    # one too-large update) outputs 0 everywhere and passes no gradient to anything below it.
    x, y, _ = token_data(n=384, k=4)
    model = stack(1, "relu", bias_initializer=keras.initializers.Constant(-5.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=2, batch_size=16)

    found = live(watch, "dead-gradients")
    assert found is not None
    assert found.extra["layers"] == ["sequential/embedding", "sequential/dense"]
    assert "2 of 3 trainable layers" in found.evidence
    # embedding table, dense kernel and bias, and the head's kernel (its inputs are all 0; its
    # bias still learns): 4 all-zero variable gradients.
    assert "4 variables get an all-zero gradient" in found.evidence
    assert found.steps[0] == 0  # dead from the first step on


def test_no_gradient_at_all_unit():
    n = 30
    ctx = _ctx(
        {"grad_norm": np.full(n, np.nan), "grad_missing": np.full(n, 4.0)},
        layers=("a", "b"),
        layer_norms=np.full((n, 2), np.nan),
    )
    ev = dead_gradients.check(ctx)
    assert ev is not None and ev.severity == "error" and "none of the 4" in ev.text


# --------------------------------------------------------------------------- multi-label


def imbalanced_tags(n=768, seed=3):
    """13 tags, most rare (2-35 % positive), each only weakly announced by its marker token."""
    rates = np.array([0.35, 0.2, 0.12, 0.08, 0.06, 0.05, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02, 0.02])
    rng = np.random.default_rng(seed)
    x, _, _ = token_data(n=n, k=2, seed=seed, learnable=False)
    y = (rng.random((n, len(rates))) < rates).astype("float32")
    for j in range(len(rates)):  # marker in half the positive rows and a tenth of the others
        put = rng.random(n) < np.where(y[:, j] > 0, 0.5, 0.1)
        x[np.flatnonzero(put), rng.integers(0, 8, size=n)[put]] = 1 + j
    return x, y


def test_thirteen_imbalanced_tags_collapse_to_all_negative():
    # The forum case: 13 imbalanced tags, sigmoid + binary cross-entropy, accuracy "stuck at
    # 60 %": the model answers "no" to every tag.
    x, y = imbalanced_tags()
    model = embedding_classifier(k=13, activation="sigmoid")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"]
    )
    watch = fit_watched(model, x, y, epochs=4, batch_size=32, validation_split=0.2)

    found = live(watch, "multilabel-collapse")
    assert found is not None and found.severity == "error"
    assert "13 of 13 labels" in found.evidence and "never positive" in found.evidence
    assert found.extra["labels"] == list(range(13))
    assert watch.epochs["val_accuracy"].iloc[-1] < 0.7  # the "stuck at 60 %" the user saw


def test_collapse_waits_while_the_loss_is_still_falling_unit():
    # Constant predictions early on, but the loss is far above the label-frequency level and
    # falling fast: the model is still learning the frequencies, not stuck.
    n, k = 60, 4
    ctx = _ctx(
        {
            "loss": np.linspace(0.69, 0.45, n),
            "pred_count": np.zeros((n, k)),
            "label_count": np.tile([10.0, 4.0, 2.0, 1.0], (n, 1)),
        },
        task="multilabel",
        k=k,
    )
    assert multilabel_collapse.check(ctx) is None
    ctx.columns["loss"] = np.full(n, 0.36)  # flat, at the label-frequency level
    ev = multilabel_collapse.check(ctx)
    assert ev is not None and "4 of 4 labels" in ev.text


# --------------------------------------------------------------------------- loss curves


def test_learning_rate_schedule_decayed_too_fast_leaves_loss_stagnant():
    # decay_steps given in epochs instead of steps: the rate halves every 20 steps, training
    # stops after ~150 steps with the loss well above 0 and below the chance level.
    x, y, _ = noisy_labels()
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=20, decay_rate=0.5)
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=8, batch_size=16)

    found = live(watch, "stagnant-loss")
    assert found is not None and found.severity == "warning"
    assert abs(found.extra["change"]) < stagnant_loss.MAX_DROP
    assert "decayed from 0.01" in found.evidence
    assert "chance-loss" not in {f.code for f in watch.findings}  # not at chance: no overlap


def test_stagnant_stays_silent_at_chance_and_on_noisy_small_batches_unit():
    n = 120
    rng = np.random.default_rng(0)
    at_chance = _ctx({"loss": np.full(n, np.log(4))})
    assert stagnant_loss.check(at_chance) is None  # chance-loss's territory
    falling = np.linspace(1.2, 1.0, n) + rng.normal(0, 0.4, n)  # batches of 4: +-40 %
    assert stagnant_loss.check(_ctx({"loss": falling})) is None
    assert stagnant_loss.check(_ctx({"loss": np.full(n, 1.0)})) is not None


def test_label_smoothing_floor_is_not_a_plateau_unit():
    # Binary targets smoothed by 0.3 become 0.15/0.85: a perfect model still scores
    # H(0.15) = 0.423 nats, 61 % of ln 2. Flat there is converged, not stuck.
    flat = _ctx({"loss": np.full(120, 0.423)}, task="binary", k=1)
    flat.facts.label_smoothing = 0.3
    assert stagnant_loss.check(flat) is None
    flat.facts.label_smoothing = 0.0
    assert stagnant_loss.check(flat) is not None


def test_loss_back_up_after_a_schedule_restart_is_not_exploding_unit():
    # A regression loss that converged to 0.001 and jumps 50x at a warm restart stays far below
    # where it started: not an explosion. Climbing past the start and still rising is one.
    n = 60
    loss = np.concatenate([np.geomspace(1.0, 0.001, 40), np.full(20, 0.05)])
    ctx = _ctx({"loss": loss}, task="regression", k=1)
    assert exploding_loss.check(ctx) is None
    ctx.columns["loss"] = np.concatenate([np.full(30, 1.0), np.geomspace(1.0, 1e3, n - 30)])
    ev = exploding_loss.check(ctx)
    assert ev is not None and "its starting level" in ev.text and "x1e+03" in ev.text


def test_huge_logits_unit():
    n = 30
    cols = {
        "prob_max": np.full(n, 1.0),
        "prob_entropy": np.full(n, 1e-9),
        "out_min": np.full(n, -150.0),
        "out_max": np.full(n, 150.0),
        "loss": np.full(n, 1e-6),
    }
    ev = saturated_logits.check(_ctx(cols))
    assert ev is not None and ev.severity == "info" and "150" in ev.text  # right, overconfident
    cols["loss"] = np.full(n, 30.0)  # ... and now wrong
    ev = saturated_logits.check(_ctx(cols))
    assert ev is not None and ev.severity is None and "loss 30" in ev.text


def test_adam_with_learning_rate_one_oscillates():
    # Adam at lr 1.0 on labels with 30 % noise: every update throws the logits around, the loss
    # jumps between ~0.5 and ~10 and never settles (7-8 swings per window at the end).
    x, y, _ = noisy_labels()
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss=sparse_ce())
    watch = fit_watched(model, x, y, epochs=4, batch_size=16)

    found = live(watch, "oscillating-loss")
    assert found is not None and found.severity == "warning"
    assert found.extra["swings"] >= oscillating_loss.MIN_SWINGS
    assert "mean of 2 steps" in found.evidence  # batches of 16: groups of 32 samples
    assert "no-information level 1.3" in found.evidence
    assert found.cause == "saturated-logits"  # the logits were blown up to 0/1 first


def test_converged_regression_is_not_judged_for_oscillation_unit():
    # A healthy MSE near its noise floor alternates 0.04 <-> 0.12 (measured: noisy targets,
    # batch size 16); with no no-information level there is no scale to call that a swing.
    loss = np.tile([0.04, 0.04, 0.12, 0.12], 30)
    assert oscillating_loss.check(_ctx({"loss": loss}, task="regression", k=1)) is None
    # A cross-entropy jumping 0.5 <-> 3 (ln 4 = 1.39 is the no-information level) does swing.
    swinging = _ctx({"loss": np.tile([0.5, 0.5, 3.0, 3.0], 30)})
    assert oscillating_loss.check(swinging).extra["swings"] == 19  # every turn in 40 steps


def test_small_noisy_batches_are_not_oscillation():
    # A healthy binary classifier on 30 %-noisy labels at batch size 4: single batches swing
    # between 0.1 and 0.9 by composition alone; the rule reads groups of >= 32 samples.
    x, y, _ = noisy_labels(k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    watch = fit_watched(model, x, y.astype("float32"), epochs=3, batch_size=4)
    ours = {"oscillating-loss", "stagnant-loss", "exploding-loss", "saturated-logits"}
    assert not [alarm for alarm in recorded_alarms(watch) if alarm.split(" ")[0] in ours]


# --------------------------------------------------------------------------- outputs


def test_sigmoid_output_at_huge_learning_rate_saturates():
    # A sigmoid output driven by Adam at lr 1.0 on noisy binary labels: probabilities pinned at
    # 0/1, a confidently wrong row costs ~16 nats (Keras clips at 1e-7), the loss sits at ~3-8.
    x, y, _ = noisy_labels(k=2)
    model = embedding_classifier(k=1, activation="sigmoid")
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss="binary_crossentropy")
    watch = fit_watched(model, x, y.astype("float32"), epochs=4, batch_size=16)

    found = live(watch, "saturated-logits")
    assert found is not None and found.severity == "warning"
    assert found.extra["ratio"] >= saturated_logits.OVERCONFIDENT
    top = float(re.search(r"mean top probability ([0-9.]+)", found.evidence).group(1))
    assert top >= saturated_logits.CONFIDENT


# --------------------------------------------------------------------------- overfitting


def test_small_noisy_dataset_many_epochs_overfits():
    # 160 rows, half of the labels random, 20 epochs: training accuracy reaches 0.99 (every
    # row memorised, noise included) while validation stays near 0.5.
    x, y, _ = noisy_labels(n=160, noise=0.5, seed=5)
    model = embedding_classifier(k=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sparse_ce(), metrics=["accuracy"])
    watch = fit_watched(model, x, y, epochs=20, batch_size=16, validation_split=0.25)

    found = live(watch, "overfitting")
    assert found is not None and found.severity == "warning"
    train = float(re.search(r"training accuracy ([0-9.]+)", found.evidence).group(1))
    assert train >= overfitting.MEMORISED
    gap = float(re.search(r"gap ([0-9.]+)", found.evidence).group(1))
    assert gap >= overfitting.GAP
    assert "val_loss rose" in found.evidence
    assert "EarlyStopping" in found.fix and "restore_best_weights=True" in found.fix


@pytest.mark.parametrize(
    ("val_loss", "fires"),
    [
        ([1.0, 0.9, 0.85, 0.9, 0.95], True),  # two epochs up, +12 % over the best
        ([1.0, 0.9, 0.85, 0.9], False),  # one epoch up: wobble
        ([1.0, 0.9, 0.85, 0.86, 0.87], False),  # +2 %: within epoch-to-epoch noise
    ],
)
def test_validation_loss_rising_unit(val_loss, fires):
    epochs = [
        {"epoch": i, "loss": 1.0 - 0.1 * i, "val_loss": v, "accuracy": 0.8, "val_accuracy": 0.75}
        for i, v in enumerate(val_loss)
    ]
    ctx = Context(facts=ModelFacts(), epochs=epochs)
    assert (overfitting.check(ctx) is not None) is fires


# --------------------------------------------------------------------------- helpers


def _ctx(cols, *, task="multiclass", k=4, layers=("emb", "head"), layer_norms=None):
    """A Context with these columns; others filled with healthy defaults."""
    n = len(next(iter(cols.values())))
    layout = Layout(task, k, tuple(layers))
    c = max(layout.n_classes, 1)
    defaults = {
        "step": np.arange(n, dtype=float),
        "loss": np.full(n, 1.0),
        "batch_size": np.full(n, 32.0),
        "lr": np.full(n, 1e-3),
        "grad_norm": np.full(n, 0.5),
        "grad_zero": np.zeros(n),
        "grad_missing": np.zeros(n),
        "label_count": np.tile(np.full(c, 32.0 / c), (n, 1)),
        "pred_count": np.tile(np.full(c, 32.0 / c), (n, 1)),
        "grad_layer_norm": layer_norms
        if layer_norms is not None
        else np.tile(np.full(len(layers), 0.3), (n, 1)),
    }
    defaults.update(cols)
    names = {"multiclass": None, "regression": "mean_squared_error"}
    facts = ModelFacts(loss=names.get(task, "binary_crossentropy"))
    return Context(facts=facts, layout=layout, columns=defaults)
