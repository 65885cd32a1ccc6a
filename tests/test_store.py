"""Tests for bertlab.store.RunStore (numpy only, no deep-learning framework)."""

import time
import tracemalloc

import numpy as np
import pytest

from bertlab.store import Archive, Delta, RunStore

CHANNELS = [("loss", 1), ("grad_norm", 3), ("lr", 1)]
D = 5


def random_rows(rng, n, special=0.0):
    """Random (n, D) rows; a fraction ``special`` of entries are NaN/inf/-inf."""
    rows = rng.standard_normal((n, D)) * 10
    if special:
        mask = rng.random((n, D)) < special
        rows[mask] = rng.choice([np.nan, np.inf, -np.inf], size=mask.sum())
    return rows


def fill(store, rng, total, special=0.0, max_block=50):
    """Append ``total`` rows in random-size blocks; return every appended row."""
    appended = []
    while sum(len(b) for b in appended) < total:
        block = random_rows(rng, int(rng.integers(0, max_block + 1)), special)
        store.append(block)
        appended.append(block)
    return np.concatenate(appended)


def check_archive(store, reference):
    """Compare the archive with bucket stats recomputed from all original rows."""
    arc = store.archive()
    n_recent = len(store.recent().rows)
    assert arc.count.sum() == len(reference) - n_recent
    assert arc.count.dtype == np.int64 and np.all(arc.count >= 1)
    bounds = np.concatenate([[0], np.cumsum(arc.count)])
    for i in range(len(arc.count)):
        orig = reference[bounds[i] : bounds[i + 1]]
        with np.errstate(invalid="ignore"):
            np.testing.assert_allclose(arc.mean[i], orig.mean(axis=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(arc.min[i], np.fmin.reduce(orig, axis=0))
        np.testing.assert_array_equal(arc.max[i], np.fmax.reduce(orig, axis=0))
    return arc


def test_channels_slices_and_validation():
    store = RunStore(CHANNELS)
    assert store.channels == CHANNELS
    assert store.width == D
    assert store.slice("loss") == slice(0, 1)
    assert store.slice("grad_norm") == slice(1, 4)
    assert store.slice("lr") == slice(4, 5)
    with pytest.raises(KeyError, match="unknown channel 'nope'.*grad_norm"):
        store.slice("nope")
    with pytest.raises(ValueError, match="unique"):
        RunStore([("a", 1), ("a", 2)])
    with pytest.raises(ValueError, match="positive int"):
        RunStore([("a", 0)])
    with pytest.raises(ValueError, match="at least one channel"):
        RunStore([])
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        store.append(np.zeros((3, 4)))
    with pytest.raises(TypeError):
        store.append(np.array([["a"] * D]))
    assert store.cursor == 0


def test_single_rows_dtypes_and_column():
    store = RunStore(CHANNELS)
    store.append(np.arange(D, dtype=np.float32))
    store.append(np.arange(D, 2 * D))  # integers are stored as float64
    store.append(np.empty((0, D)))
    assert store.cursor == 2
    rows = store.recent().rows
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows, np.arange(2 * D).reshape(2, D))
    np.testing.assert_array_equal(store.column("loss"), [0.0, 5.0])
    np.testing.assert_array_equal(store.column("grad_norm"), [[1, 2, 3], [6, 7, 8]])
    assert store.column("lr").shape == (2,)


def test_since_recent_and_gap_against_reference():
    rng = np.random.default_rng(1)
    store = RunStore(CHANNELS, budget_bytes=4096)  # ring floor: 64 rows
    reference = np.empty((0, D))
    client, gaps = 0, 0
    for step in range(600):
        n = int(rng.integers(0, 40)) if step % 50 else 300  # some blocks > ring
        block = random_rows(rng, n, special=0.01)
        store.append(block)
        reference = np.concatenate([reference, block])
        assert store.cursor == len(reference)
        if rng.random() < 0.3:  # a client polling at irregular intervals
            delta = store.since(client)
            assert isinstance(delta, Delta)
            assert delta.stop == store.cursor
            recent = store.recent()
            assert not recent.gap
            assert delta.gap == (client < recent.start)
            assert delta.start == (recent.start if delta.gap else client)
            gaps += delta.gap
            np.testing.assert_array_equal(delta.rows, reference[delta.start :])
            client = delta.stop
    assert gaps > 0
    recent = store.recent()
    assert 0 < len(recent.rows) <= 64
    assert recent.stop == store.cursor
    np.testing.assert_array_equal(recent.rows, reference[recent.start :])
    assert len(store.since(store.cursor).rows) == 0
    with pytest.raises(ValueError, match="outside"):
        store.since(store.cursor + 1)
    kept = store.since(store.cursor - 3)
    kept.rows[:] = 0  # a copy: the store is unaffected
    np.testing.assert_array_equal(store.since(store.cursor - 3).rows, reference[-3:])


def test_archive_matches_reference_with_nan_and_inf():
    rng = np.random.default_rng(2)
    store = RunStore(CHANNELS, budget_bytes=4096)
    reference = fill(store, rng, 30_000, special=0.002, max_block=150)
    arc = check_archive(store, reference)
    assert isinstance(arc, Archive)
    assert len(arc.count) < 2 * 32  # compacted many times
    assert arc.count[0] >= 512
    # a non-finite value leaves a trace in the mean of its bucket
    assert np.isnan(arc.mean).any() or np.isinf(arc.mean).any()


def test_open_bucket_is_reported_last():
    rng = np.random.default_rng(3)
    store = RunStore(CHANNELS, budget_bytes=4096)
    blocks = [random_rows(rng, 7) for _ in range(500)]
    for block in blocks:
        store.append(block)
    arc = check_archive(store, np.concatenate(blocks))
    assert 0 < arc.count[-1] < arc.count[0]  # the open bucket is partial


def test_huge_block_larger_than_ring():
    rng = np.random.default_rng(4)
    store = RunStore(CHANNELS, budget_bytes=4096)
    first = random_rows(rng, 10)
    big = random_rows(rng, 5000)
    store.append(first)
    store.append(big)
    reference = np.concatenate([first, big])
    assert store.cursor == 5010
    recent = store.recent()
    np.testing.assert_array_equal(recent.rows, reference[recent.start :])
    check_archive(store, reference)


def test_extremes_survive_compaction():
    store = RunStore(CHANNELS, budget_bytes=4096)
    block = np.zeros((1000, D))
    store.append(block[:10])
    spike = np.zeros(D)
    spike[2], spike[4] = 1e6, -1e6
    store.append(spike)
    for _ in range(200):
        store.append(block)
    arc = store.archive()
    assert arc.count[0] > 1000  # the spike's bucket was merged many times
    assert arc.max[:, 2].max() == 1e6
    assert arc.min[:, 4].min() == -1e6
    assert arc.max[0, 2] == 1e6
    assert np.all(store.recent().rows == 0)


def test_nbytes_bounded_by_budget():
    rng = np.random.default_rng(5)
    budget = 64 * 1024
    store = RunStore(CHANNELS, budget_bytes=budget)
    block = random_rows(rng, 700)
    for _ in range(300):
        store.append(block)
        assert store.nbytes <= budget
    assert store.cursor == 210_000


def test_million_steps_wide_rows_stay_bounded():
    d = 300
    store = RunStore([("loss", 1), ("grads", d - 1)])
    block = np.random.default_rng(6).standard_normal((1000, d))
    block[17, 5] = np.nan
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        for _ in range(1000):
            store.append(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    assert store.cursor == 1_000_000
    assert store.nbytes <= store.budget_bytes < 100e6
    assert peak < 100e6, f"peak traced memory {peak / 1e6:.1f} MB"
    assert elapsed < 20
    arc = store.archive()
    assert arc.count.sum() + len(store.recent().rows) == 1_000_000
    # exactly the buckets that contain a step with index % 1000 == 17 saw the NaN
    starts = np.concatenate([[0], np.cumsum(arc.count)[:-1]])
    has_nan = (starts + arc.count - 1 - 17) // 1000 >= (starts - 17 + 999) // 1000
    np.testing.assert_array_equal(np.isnan(arc.mean[:, 5]), has_nan)
    assert not np.isnan(arc.max).any()
    np.testing.assert_array_equal(np.fmax.reduce(arc.max, axis=0), np.fmax.reduce(block, axis=0))


def test_export_round_trip_is_exact():
    rng = np.random.default_rng(7)
    store = RunStore(CHANNELS, budget_bytes=8192)
    fill(store, rng, 5000, special=0.01)
    store.append(random_rows(rng, 3))  # leaves a partial open bucket
    exported = store.export()
    assert all(isinstance(a, np.ndarray) for a in exported.values())
    assert all(a.dtype.kind in "if" for a in exported.values())
    clone = RunStore.from_export(CHANNELS, exported)
    assert clone.cursor == store.cursor
    assert clone.budget_bytes == store.budget_bytes
    again = clone.export()
    assert set(again) == set(exported)
    for key in exported:
        np.testing.assert_array_equal(again[key], exported[key], err_msg=key)
    for field in ("count", "mean", "min", "max"):
        a, b = getattr(store.archive(), field), getattr(clone.archive(), field)
        np.testing.assert_array_equal(a, b)
    # both stores keep evolving identically
    more = random_rows(rng, 777, special=0.01)
    store.append(more)
    clone.append(more)
    for key, value in store.export().items():
        np.testing.assert_array_equal(clone.export()[key], value, err_msg=key)
    empty = RunStore.from_export(CHANNELS, RunStore(CHANNELS).export())
    assert empty.cursor == 0 and len(empty.archive().count) == 0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("cursor"),
        lambda e: e.update(extra=np.zeros(1)),
        lambda e: e.update(recent=e["recent"].astype(np.float32)),
        lambda e: e.update(recent=e["recent"][:, :3]),
        lambda e: e.update(archive_min=e["archive_min"][:-1]),
        lambda e: e.update(archive_count=e["archive_count"] + 1),
        lambda e: e.update(cursor=e["cursor"] + 1),
        lambda e: e.update(bucket_size=np.array(3, dtype=np.int64)),
        lambda e: e.update(open_mean=e["open_mean"].tolist()),
        lambda e: e.update(budget_bytes=np.array(0, dtype=np.int64)),
    ],
)
def test_from_export_rejects_inconsistent_state(mutate):
    store = RunStore(CHANNELS, budget_bytes=4096)
    fill(store, np.random.default_rng(8), 2000)
    exported = store.export()
    mutate(exported)
    with pytest.raises(ValueError):
        RunStore.from_export(CHANNELS, exported)


def test_from_export_rejects_state_larger_than_budget():
    store = RunStore(CHANNELS, budget_bytes=1 << 16)
    fill(store, np.random.default_rng(9), 5000)
    with pytest.raises(ValueError, match="budget"):
        RunStore.from_export(CHANNELS, store.export(), budget_bytes=4096)
