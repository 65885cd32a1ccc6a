"""Tests for the saved-run format in bertlab.runfile (numpy/pyarrow only)."""

import io
import json
import math
import os
import struct
import threading
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bertlab import runfile
from bertlab.runfile import FORMAT, VERSION, RunFileError, load_run, save_run
from bertlab.store import RunStore

CHANNELS = [("loss", 1), ("grad_norm", 3), ("pred_count", 4)]
D = 8


def make_store(rows=3000, seed=0):
    """A small-budget store with archive, open bucket, NaN and inf values."""
    rng = np.random.default_rng(seed)
    store = RunStore(CHANNELS, budget_bytes=8192)
    data = rng.standard_normal((rows, D))
    data[rng.random(data.shape) < 0.01] = np.nan
    data[5, 1], data[-2, 0], data[-1, 3] = np.inf, -np.inf, np.nan
    for i in range(0, rows, 37):
        store.append(data[i : i + 37])
    return store


def save_example(path, store=None):
    """Save a run with numpy values in meta, epochs and findings; return its parts."""
    store = store if store is not None else make_store()
    meta = {
        "model": {"name": "tiny", "params": np.int64(1234)},
        "lr": np.float32(0.5),
        "flags": (np.bool_(True), None, "x"),
        "class_weights": np.array([0.25, 0.75]),
        "bad": float("nan"),
        "big": np.float64(np.inf),
    }
    epochs = [
        {"epoch": 0, "loss": np.float64(1.5), "val_confusion": np.arange(9).reshape(3, 3)},
        {"epoch": 1, "loss": float("-inf"), "val_confusion": np.eye(3, dtype=np.int32)},
    ]
    findings = [{"rule": "nan_loss", "step": np.int64(17), "evidence": {"steps": [1, 2]}}]
    save_run(path, meta=meta, store=store, epochs=epochs, findings=findings)
    return meta, store, epochs, findings


def assert_same_store(a, b):
    exported, again = a.export(), b.export()
    assert set(exported) == set(again)
    for key, value in exported.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    assert a.channels == b.channels and a.cursor == b.cursor


def rewrite(src, dst, replace=None, drop=()):
    """Copy the ZIP ``src`` to ``dst``, replacing or dropping members."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename not in drop:
                zout.writestr(info.filename, replace.get(info.filename, zin.read(info)))


def edit_json(src, dst, edit):
    with zipfile.ZipFile(src) as zf:
        doc = json.loads(zf.read("run.json"))
    edit(doc)
    rewrite(src, dst, {"run.json": json.dumps(doc).encode()})


def test_round_trip(tmp_path):
    path = tmp_path / "run.bertlab"
    _, store, _, _ = save_example(path)
    meta, loaded, epochs, findings = load_run(path)
    assert_same_store(store, loaded)
    np.testing.assert_array_equal(loaded.recent().rows, store.recent().rows)
    assert np.isinf(store.archive().max).any() or np.isinf(store.recent().rows).any()
    assert meta["model"] == {"name": "tiny", "params": 1234}
    assert type(meta["model"]["params"]) is int
    assert meta["lr"] == 0.5 and meta["flags"] == [True, None, "x"]
    assert meta["class_weights"] == [0.25, 0.75]
    assert math.isnan(meta["bad"]) and meta["big"] == math.inf
    assert epochs[0]["val_confusion"] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert epochs[1]["val_confusion"] == np.eye(3, dtype=int).tolist()
    assert epochs[1]["loss"] == -math.inf
    assert findings == [{"rule": "nan_loss", "step": 17, "evidence": {"steps": [1, 2]}}]
    # the loaded store keeps working
    loaded.append(np.ones((500, D)))
    assert loaded.cursor == store.cursor + 500


def test_layout_is_as_documented(tmp_path):
    path = tmp_path / "run.bertlab"
    _, store, _, _ = save_example(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["archive.parquet", "recent.parquet", "run.json"]
        doc = json.loads(zf.read("run.json"))
        recent = pq.read_table(io.BytesIO(zf.read("recent.parquet")))
        archive = pq.read_table(io.BytesIO(zf.read("archive.parquet")))
    assert doc["format"] == FORMAT and doc["version"] == VERSION
    assert doc["channels"] == [list(c) for c in CHANNELS]
    assert doc["store"]["cursor"] == store.cursor
    assert recent.column_names == ["loss", "grad_norm", "pred_count"]
    assert recent.schema.field("loss").type == pa.float64()
    assert recent.schema.field("grad_norm").type == pa.list_(pa.float64(), 3)
    np.testing.assert_array_equal(recent.column("loss").to_numpy(), store.column("loss"))
    assert archive.column_names[0] == "count"
    assert "max:pred_count" in archive.column_names
    np.testing.assert_array_equal(archive.column("count").to_numpy(), store.archive().count)


def test_empty_store_round_trip(tmp_path):
    path = tmp_path / "empty.bertlab"
    store = RunStore([("step", 1)], budget_bytes=2**16)
    save_run(path, meta={}, store=store, epochs=[], findings=[])
    meta, loaded, epochs, findings = load_run(path)
    assert (meta, epochs, findings) == ({}, [], [])
    assert loaded.cursor == 0 and loaded.channels == [("step", 1)]
    assert_same_store(store, loaded)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "run.bertlab"
    save_example(path)
    before = path.read_bytes()
    calls = []

    def failing_writestr(self, name, data, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, name, data, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(OSError, match="disk full"):
        save_example(path, make_store(seed=1))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.bertlab"]  # no temporary file left behind


def test_unsavable_values_raise_type_error(tmp_path):
    path = tmp_path / "run.bertlab"
    with pytest.raises(TypeError, match=r"meta\['obj'\]"):
        save_run(path, meta={"obj": object()}, store=make_store(), epochs=[], findings=[])
    with pytest.raises(TypeError, match="key"):
        save_run(path, meta={}, store=make_store(), epochs=[{(1, 2): 3}], findings=[])
    assert not path.exists()


def test_save_while_appending(tmp_path):
    store = RunStore(CHANNELS, budget_bytes=1 << 16)
    stop = threading.Event()

    def train():
        block = np.random.default_rng(0).standard_normal((50, D))
        while not stop.is_set():
            store.append(block)

    thread = threading.Thread(target=train)
    thread.start()
    try:
        cursors = []
        for i in range(5):
            save_run(tmp_path / "live.bertlab", meta={"i": i}, store=store, epochs=[], findings=[])
            meta, loaded, _, _ = load_run(tmp_path / "live.bertlab")
            assert meta == {"i": i}
            cursors.append(loaded.cursor)
    finally:
        stop.set()
        thread.join()
    assert cursors == sorted(cursors) and cursors[-1] > 0


def test_garbage_and_truncated_files(tmp_path):
    path = tmp_path / "run.bertlab"
    save_example(path)
    data = path.read_bytes()
    bad = tmp_path / "bad.bertlab"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(RunFileError, match="not a bertlab run file"):
        load_run(bad)
    bad.write_bytes(b"")
    with pytest.raises(RunFileError):
        load_run(bad)
    for cut in (100, len(data) // 3, len(data) // 2, len(data) - 30):
        bad.write_bytes(data[:cut])
        with pytest.raises(RunFileError):
            load_run(bad)
    assert issubclass(RunFileError, ValueError)
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "missing.bertlab")


def test_corrupt_members(tmp_path):
    path = tmp_path / "run.bertlab"
    save_example(path)
    bad = tmp_path / "bad.bertlab"
    cases = [
        ({"recent.parquet": b"PAR1 not really parquet PAR1"}, "recent.parquet"),
        ({"run.json": b"{not json"}, "invalid JSON"),
        ({"run.json": b"[1, 2]"}, "not a bertlab run file"),
        ({"run.json": b"\xff\xfe"}, "invalid JSON"),
        ({"run.json": b"[" * 100_000 + b"]" * 100_000}, "invalid JSON"),
    ]
    for replace, message in cases:
        rewrite(path, bad, replace)
        with pytest.raises(RunFileError, match=message):
            load_run(bad)
    rewrite(path, bad, drop={"run.json"})
    with pytest.raises(RunFileError, match="no run.json"):
        load_run(bad)
    rewrite(path, bad, drop={"archive.parquet"})
    with pytest.raises(RunFileError, match="archive.parquet"):
        load_run(bad)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="something-else"), "format"),
        (lambda d: d.update(version="1"), "version"),
        (lambda d: d.update(meta=[1]), "meta"),
        (lambda d: d.update(epochs=[1]), "epochs"),
        (lambda d: d["channels"].pop(), "columns"),
        (lambda d: d["channels"][1].__setitem__(1, 4), "grad_norm"),
        (lambda d: d["channels"][1].__setitem__(1, "3"), "channel"),
        (lambda d: d["store"].update(cursor=d["store"]["cursor"] + 1), "cursor"),
        (lambda d: d["store"].update(open_count=-1), "store"),
        (lambda d: d["store"].update(bucket_size=10**30), "store"),
    ],
)
def test_invalid_run_json(tmp_path, edit, message):
    save_example(tmp_path / "run.bertlab")
    edit_json(tmp_path / "run.bertlab", tmp_path / "bad.bertlab", edit)
    with pytest.raises(RunFileError, match=message):
        load_run(tmp_path / "bad.bertlab")


def test_newer_version_names_the_bertlab_needed(tmp_path):
    save_example(tmp_path / "run.bertlab")

    def edit(doc):
        doc.update(version=99, written_by="bertlab 7.3.0")

    edit_json(tmp_path / "run.bertlab", tmp_path / "new.bertlab", edit)
    with pytest.raises(RunFileError, match=r"version 99.*bertlab 7\.3\.0.*upgrade"):
        load_run(tmp_path / "new.bertlab")


def test_parquet_width_must_match_channels(tmp_path):
    path = tmp_path / "run.bertlab"
    save_example(path)
    rows = np.zeros((4, D - 1))  # grad_norm two wide instead of three
    wrong = [("loss", 1), ("grad_norm", 2), ("pred_count", 4)]
    table = runfile._parquet(wrong, [("", rows)])
    rewrite(path, tmp_path / "bad.bertlab", {"recent.parquet": table})
    with pytest.raises(RunFileError, match="grad_norm"):
        load_run(tmp_path / "bad.bertlab")
    # right names and widths but integer values: refused as well
    ints = pa.table(
        [pa.array([1]), pa.FixedSizeListArray.from_arrays(pa.array([1.0] * 3), 3)]
        + [pa.FixedSizeListArray.from_arrays(pa.array([1.0] * 4), 4)],
        names=["loss", "grad_norm", "pred_count"],
    )
    buf = io.BytesIO()
    pq.write_table(ints, buf)
    rewrite(path, tmp_path / "bad.bertlab", {"recent.parquet": buf.getvalue()})
    with pytest.raises(RunFileError, match="'loss'"):
        load_run(tmp_path / "bad.bertlab")


def test_member_claiming_huge_size_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "run.bertlab"
    save_example(path)
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")  # central directory entries
    patched = 0
    while pos != -1:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + name_len] == b"recent.parquet":
            struct.pack_into("<I", data, pos + 24, 0xF000_0000)  # ~3.75 GiB uncompressed
            patched += 1
        pos = data.find(b"PK\x01\x02", pos + 4)
    assert patched == 1
    bomb = tmp_path / "bomb.bertlab"
    bomb.write_bytes(bytes(data))
    opened = []
    original = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    with pytest.raises(RunFileError, match="bytes"):
        load_run(bomb)
    assert opened == []
