"""Which steps get a row (bertlab/cadence.py): the policy on given times, then real fits.

The policy is fed wall times here, so what it decides from them is checked exactly; how long a
row really costs is the overhead benchmark's business (benchmarks/README.md), never a timed
test. The fits check what a stride means in the record: rows of whole steps, in order, with
their real step numbers, every step back after a non-finite loss, training unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bertlab import cadence
from bertlab.cadence import Cadence, choose_every, parse_every


def _feed(
    c: Cadence, steps: int, t_row: float, t_bare: float, t0: float = 0.0, spill: float = 0.0
) -> list[bool]:
    """Run ``steps`` one-step calls whose duration depends on whether they record a row
    (``spill``: extra time of the call after a recorded one)."""
    recorded, now, prev = [], t0, False
    for _ in range(steps):
        row = c.record_next
        recorded.append(row)
        now += (t_row if row else t_bare) + (spill if prev else 0.0)
        c.call_done(1, row, now)
        prev = row
    return recorded


def test_every_is_an_int_or_auto():
    assert parse_every("auto") is None
    assert parse_every(3) == 3
    for bad in (0, -2, 1.5, "fast", True):
        with pytest.raises(ValueError, match="every must be"):
            parse_every(bad)


def test_a_fixed_stride_records_steps_0_k_2k():
    c = Cadence(3)
    assert _feed(c, 9, 1.0, 1.0) == [True, False, False] * 3
    assert c.decided is None


@pytest.fixture
def quick(monkeypatch):
    """The whole-recording start measured in steps only (it is 30 s of training too)."""
    monkeypatch.setattr(cadence, "FULL_SECONDS", 0.0)


def test_the_first_seconds_of_training_are_recorded_whole():
    c = Cadence("auto")
    recorded = _feed(c, 5000, 2.5e-3, 2.0e-3)  # 12.5 s of 2.5 ms steps: all recorded
    assert all(recorded) and c.decided is None
    now = 12.5
    while c.record_next and now < cadence.FULL_SECONDS + 1:
        now += 2.5e-3
        c.call_done(1, True, now)
    assert now >= cadence.FULL_SECONDS  # measuring starts once 30 s have been recorded


def test_auto_records_every_step_then_measures_then_strides(quick):
    c = Cadence("auto")
    # a row costs 0.5 ms on a 2 ms step (25 %): at a 1 % budget every 25th step
    recorded = _feed(c, 600, 2.5e-3, 2.0e-3)
    full = cadence.FULL_STEPS
    assert all(recorded[:full])
    probe = recorded[full : full + 3 * (cadence.PROBE_CALLS + cadence.PROBE_SKIP)]
    assert probe == [False, False, True] * (len(probe) // 3)  # in threes while measuring
    assert c.every == choose_every(0.5e-3, 2.0e-3) == 25
    tail = recorded[-250:]
    assert sum(tail) == 10 and tail.count(True) == 10
    assert "every 25 steps" in c.decided and "cost 0.5 ms (" in c.decided


def test_what_a_row_costs_includes_the_call_after_it(quick):
    """A recorded step's work that spills into the next call (JAX dispatches asynchronously;
    cold caches) is part of its cost: alternating recorded and unrecorded calls would hide it
    in the unrecorded ones' time."""
    c = Cadence("auto")
    # 0.2 ms in the recorded call and 0.3 ms more in the next one, on a 2 ms step
    _feed(c, 600, 2.2e-3, 2.0e-3, spill=0.3e-3)
    assert c.every == choose_every(0.5e-3, 2.0e-3) == 25
    assert "cost 0.5 ms (" in c.decided


def test_noisy_steps_are_measured_longer_and_stride_on_the_upper_end(quick):
    """Steps that vary by more than a row costs (the torch backend's 95 ms BERT steps): 24
    calls of each kind cannot tell the cost, so measuring goes on, and the stride is chosen
    for the upper end of the cost's interval, never for a lucky low median."""
    rng = np.random.default_rng(0)
    c = Cadence("auto")
    now, calls = 0.0, 0
    while c.decided is None and calls < 5000:
        row = c.record_next
        now += 95e-3 + (2.5e-3 if row else 0.0) + rng.normal(0, 5e-3)
        c.call_done(1, row, now)
        calls += 1
    assert c.decided is not None
    measured = calls - cadence.FULL_STEPS
    assert measured > 3 * (cadence.PROBE_CALLS + cadence.PROBE_SKIP)  # it measured longer
    assert measured <= 3 * (cadence.PROBE_MAX + cadence.PROBE_SKIP) + 3
    assert c.every >= choose_every(2.5e-3, 95e-3)  # at least the stride the true cost needs
    assert "95 % up to" in c.decided


def test_auto_keeps_every_step_when_a_row_is_cheap(quick):
    c = Cadence("auto")
    recorded = _feed(c, 400, 100.5e-3, 100e-3)  # 0.5 % of a 100 ms step
    assert c.every == 1 and all(recorded[-50:])
    assert "at every step" in c.decided


def test_time_outside_training_is_not_counted(quick):
    """A validation pass or an epoch boundary between two calls must not read as a slow row."""
    c = Cadence("auto")
    now = 0.0
    for i in range(400):
        row = c.record_next
        if i % 10 == 0:
            c.gap()  # e.g. an epoch ended: the next interval is not a step
            now += 5.0
        now += 2.0e-3
        c.call_done(1, row, now)
    assert c.every == 1  # rows cost nothing here; the 5 s gaps were not taken as their cost


def test_a_non_finite_loss_brings_every_step_back():
    c = Cadence(5)
    _feed(c, 7, 1.0, 1.0)
    c.full()
    assert _feed(c, 4, 1.0, 1.0) == [True] * 4 and c.every == 1


def test_choose_every_bounds():
    assert choose_every(0.0, 1.0) == 1
    assert choose_every(float("nan"), 1.0) == 1
    assert choose_every(-1.0, 1.0) == 1  # noise: a row measured as cheaper than none
    assert choose_every(100.0, 1.0) == cadence.MAX_EVERY


# ---------------------------------------------------------------------- real fits (TensorFlow)
keras = pytest.importorskip("keras")

import bertlab  # noqa: E402


def _model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            keras.layers.Embedding(50, 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3),
        ]
    )
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _data(n: int = 160):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, (n, 10)).astype("int32")
    return x, (x[:, 0] % 3).astype("int32")


def _fit(watch, epochs=2, x=None, y=None):
    m = _model()
    if x is None:
        x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=watch)
    return m


def test_a_strided_fit_records_real_steps_and_trains_the_same():
    watch = bertlab.Watch(verbose=False, dashboard=False, every=3)
    m = _fit([watch])
    plain = _fit([])
    full = bertlab.Watch(verbose=False, dashboard=False, every=1)
    _fit([full])
    for a, b in zip(m.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    h, f = watch.history, full.history
    assert h["step"].tolist() == list(range(0, 40, 3))
    assert h["batch"].tolist() == [s % 20 for s in range(0, 40, 3)]
    assert h["epoch"].tolist() == [s // 20 for s in range(0, 40, 3)]
    assert [e["steps"] for e in watch.run.epoch_records] == [20, 40]
    assert watch.run.steps_trained == 40 and watch.run.steps == 14
    # the first epoch hashed every training row; after it unrecorded steps hash nothing
    assert not bool(watch._instrument.ring.first_pass.numpy())
    # the same rows as when every step is recorded (the layer names differ between the two
    # models, so the columns are compared by position): whole steps, nothing carried over
    assert len(h.columns) == len(f.columns) and "update_ratio" in " ".join(h.columns)
    same = f.to_numpy(float)[h["step"].to_numpy()]
    keep = [i for i, c in enumerate(h.columns) if c != "time"]
    np.testing.assert_allclose(h.to_numpy(float)[:, keep], same[:, keep], rtol=1e-6)


def test_auto_records_the_first_steps_whole_then_a_regular_stride(quick, monkeypatch):
    # measuring stops after the least calls, however noisy this machine's 1 ms steps are
    monkeypatch.setattr(cadence, "PROBE_MAX", cadence.PROBE_CALLS)
    watch = bertlab.Watch(verbose=False, dashboard=False)  # every="auto"
    x, y = _data(8 * 200)
    _fit([watch], epochs=3, x=x, y=y)  # 600 steps: a stride of up to 50 shows a few gaps
    steps = watch.history["step"].to_numpy()
    assert steps[: cadence.FULL_STEPS].tolist() == list(range(cadence.FULL_STEPS))
    every = watch.run.meta.get("every")
    assert every is not None, "auto measured nothing in 600 steps"
    decided = [n for n in watch.run.meta["notes"] if "a recorded step cost" in n]
    assert len(decided) == 1
    # after the measuring calls, rows come at the chosen stride (or at every step)
    start = cadence.FULL_STEPS + 3 * (cadence.PROBE_CALLS + cadence.PROBE_SKIP) + 2 * every
    gaps = np.diff(steps[steps >= start])
    assert len(gaps) and set(gaps.tolist()) == {every}


def test_a_non_finite_loss_brings_every_step_back_in_a_fit():
    x, y = _data(8 * 40)
    x = x.astype("float32")
    x[8 * 25 :] = np.nan  # from batch 25 on the inputs, hence the loss, are NaN
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])
    m.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    watch = bertlab.Watch(verbose=False, dashboard=False, every=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[watch])
    steps = watch.history["step"].tolist()
    assert steps[:7] == [0, 4, 8, 12, 16, 20, 24]
    assert steps[-10:] == list(range(30, 40))  # every step once the loss turned NaN
    assert "nan-loss" in {f.code for f in watch.findings}


def test_with_steps_per_execution_every_kth_call_records_all_its_steps():
    """Under XLA (Keras's default on a GPU) with 2 steps per call: calls 0, 2, 4... record."""
    keras.utils.set_random_seed(0)
    m = _model()
    m.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
        steps_per_execution=2,
    )
    x, y = _data()
    watch = bertlab.Watch(verbose=False, dashboard=False, every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[watch])
    assert watch.history["step"].tolist() == [s for s in range(20) if s % 4 < 2]
    assert watch.run.epoch_records[-1]["steps"] == 20
