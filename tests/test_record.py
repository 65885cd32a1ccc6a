"""The crash-safe record: a run written while it trains, readable after kill -9 at any moment."""

from __future__ import annotations

import inspect
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import embedding_classifier, token_data

import bertlab
from bertlab import record, runlog
from bertlab.record import Recorder, rank_path
from bertlab.runfile import RunFileError

TESTS = Path(__file__).resolve().parent
#: The subprocess scripts' common start: a double-softmax classifier (a finding before the
#: first step) trained with a recorded Watch; ``WATCH_KW`` and ``EPOCHS`` are filled in.
CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
import keras
from conftest import embedding_classifier, token_data
import bertlab

class Slow(keras.callbacks.Callback):  # a step of a few ms is over before the kill can land
    def on_train_batch_end(self, batch, logs=None):
        time.sleep({sleep})

x, y, _ = token_data(n=512)
model = embedding_classifier(activation="softmax")
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
watch = bertlab.Watch(verbose=False, path={path!r}, flush_every_s={every_s})
model.fit(x, y, batch_size=8, epochs={epochs}, callbacks=[watch, Slow()], verbose=0)
print("flushed", watch.recorder.flush(), watch.run.steps, flush=True)
watch.recorder.close()
"""


def child_script(
    tmp_path: Path, path: Path, *, epochs: int, every_s: float, sleep: float, prelude: str = ""
) -> Path:
    script = tmp_path / "child.py"
    body = CHILD.format(
        tests=str(TESTS), path=str(path), epochs=epochs, every_s=every_s, sleep=sleep
    )
    script.write_text(textwrap.dedent(prelude) + body)
    return script


def child_env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def compile_softmax_model():
    model = embedding_classifier(activation="softmax")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def recorded_training(path: Path, *, epochs=2, every_s=0.05, budget_mb=None, callbacks=()):
    """Train in this process with ``Watch(path=...)``; returns (watch, its recorder)."""
    x, y, _ = token_data(n=256)
    model = compile_softmax_model()
    kwargs = {} if budget_mb is None else {"budget_mb": budget_mb}
    watch = bertlab.Watch(verbose=False, path=path, flush_every_s=every_s, **kwargs)
    model.fit(x, y, batch_size=8, epochs=epochs, callbacks=[watch, *callbacks], verbose=0)
    assert watch.recorder.ok  # the Watch flushed at train end
    watch.recorder.close()
    return watch, watch.recorder


def assert_same_steps(loaded, live, n=None):
    """The first ``n`` full-resolution steps of two runs are the same rows."""
    a, b = loaded.history, live.history
    n = len(a) if n is None else n
    np.testing.assert_array_equal(a.iloc[:n].to_numpy(), b.iloc[:n].to_numpy())


# --------------------------------------------------------------------------- kill -9
def test_sigkill_mid_epoch_leaves_a_loadable_record(tmp_path):
    path = tmp_path / "killed.bertlab"
    script = child_script(tmp_path, path, epochs=50, every_s=0.3, sleep=0.03)
    proc = subprocess.Popen([sys.executable, str(script)], env=child_env(), cwd=tmp_path)
    seen = []  # loads of the file while the child trains (a reader may open it any time)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                run = bertlab.load(path)
                if not seen or run.steps > seen[-1].steps:
                    seen.append(run)
                # two loads that grew within an epoch after the first: kill mid-epoch
                if len(seen) >= 2 and 64 + 5 < seen[-2].steps and seen[-1].steps % 64 > 5:
                    break
            time.sleep(0.05)
        assert len(seen) >= 2, "the child never wrote a mid-epoch record"
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    run, seen = bertlab.load(path), seen[-1]
    assert run.steps >= seen.steps
    assert run.steps > 64 * len(run.epoch_records)  # killed mid-epoch: its steps are there
    history = run.history
    np.testing.assert_array_equal(history["step"], np.arange(run.steps))
    assert_same_steps(run, seen, seen.steps)
    assert len(run.epoch_records) >= len(seen.epoch_records) >= 1
    assert run.epoch_records[0]["steps"] == 64
    assert "double-softmax" in {f["code"] for f in run.findings}
    assert run.meta["model"]["model_class"] == "Sequential"
    assert run.meta["model"]["from_logits"] is True
    assert run.layout is not None and run.layout.n_classes == 4


# --------------------------------------------------------------------------- damaged tails
@pytest.fixture(scope="module")
def log_bytes(tmp_path_factory):
    """A real training's record written with frequent writes (many records: the steps are
    slowed so that the Watch reads rows several times per epoch)."""

    class Pause(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)

    keras.backend.clear_session()
    path = tmp_path_factory.mktemp("log") / "run.bertlab"
    watch, _ = recorded_training(path, epochs=3, every_s=0.01, callbacks=[Pause()])
    data = path.read_bytes()
    rows = [k for k, _ in runlog.split(data, len(runlog.HEADER))[0] if k == runlog.ROWS]
    assert len(rows) >= 3, f"only {len(rows)} rows records"
    return data, watch.run


def record_ends(data: bytes) -> list[int]:
    records, end, damaged = runlog.split(data, len(runlog.HEADER))
    assert not damaged and end == len(data)
    ends, pos = [], len(runlog.HEADER)
    for _, payload in records:
        pos += 9 + len(payload)
        ends.append(pos)
    return ends


def test_full_record_equals_the_live_run(tmp_path, log_bytes):
    data, live = log_bytes
    path = tmp_path / "run.bertlab"
    path.write_bytes(data)
    run = bertlab.load(path)
    assert run.steps == live.steps == 96
    assert_same_steps(run, live)
    assert run.findings == live.findings
    assert [r["loss"] for r in run.epoch_records] == [r["loss"] for r in live.epoch_records]
    assert run.meta["model"] == json.loads(json.dumps(live.meta["model"]))  # tuples: lists
    records = runlog.split(data, len(runlog.HEADER))[0]
    assert set(b"ISMTREFD") <= {kind for kind, _ in records}  # every kind (H: when idle)
    assert [kind for kind, _ in records[:2]] == [runlog.IDENTITY, runlog.SNAPSHOT]
    other = runlog.identity_record()  # a file rewritten in place starts differently
    assert other[:9] != data[16:25] and len(json.loads(other[9:])["id"]) == 32


def test_every_truncation_loads_the_prefix(tmp_path, log_bytes):
    data, live = log_bytes
    path = tmp_path / "cut.bertlab"
    ends = record_ends(data)
    cuts = sorted({c for e in ends for c in (e - 1, e, e + 5)} | set(range(16, len(data), 997)))
    last = -1
    for cut in cuts:
        path.write_bytes(data[: min(cut, len(data))])
        run = bertlab.load(path)  # never an error: the tail is ignored
        assert run.steps >= last  # a longer prefix never holds fewer steps
        last = run.steps
        if run.steps:
            assert_same_steps(run, live, run.steps)
    assert last == live.steps
    path.write_bytes(data[:10])  # not even a header: that is not a run file
    with pytest.raises(RunFileError, match="not a bertlab run"):
        bertlab.load(path)


def test_corrupted_record_stops_the_replay_there(tmp_path, log_bytes):
    data, live = log_bytes
    ends = record_ends(data)
    path = tmp_path / "bad.bertlab"
    records = runlog.split(data, len(runlog.HEADER))[0]
    # just after the first rows record: damage there cuts off the later rows records
    middle = ends[[k for k, _ in records].index(runlog.ROWS)]
    for offset in (middle + 2, middle + 9 + 3):  # in the head's checksum, in the payload
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(bytes(damaged))
        run = bertlab.load(path)
        path.write_bytes(data[:middle])
        prefix = bertlab.load(path)
        assert run.steps == prefix.steps < live.steps
        assert run.findings == prefix.findings
    oversized = bytearray(data)
    struct.pack_into("<I", oversized, middle, runlog.MAX_RECORD_BYTES + 1)
    path.write_bytes(bytes(oversized))
    assert bertlab.load(path).steps == prefix.steps


def forged(data: bytes, kind: int, payload: bytes) -> bytes:
    """``data`` with a record whose checksum is right (so not a crash's tail) appended."""
    return data + runlog.record(kind, payload)


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (runlog.ROWS, struct.pack("<qI", 5, 3) + bytes(24), "width"),
        (runlog.ROWS, b"\x00\x01", "too short"),
        (runlog.META, b"[1, 2]", "not an object"),
        (runlog.META, b"{not json", "invalid JSON"),
        (runlog.FINDINGS, b"[1]", "list of objects"),
        (runlog.EPOCH, b"3", "not an object"),
        (runlog.STORE, b'{"channels": [["a", 1]], "budget_bytes": 9}', "second step store"),
        (runlog.SNAPSHOT, b"PK\x03\x04 not a zip", "snapshot"),
    ],
)
def test_intact_records_with_invalid_content_raise(tmp_path, log_bytes, kind, payload, message):
    path = tmp_path / "forged.bertlab"
    path.write_bytes(forged(log_bytes[0], kind, payload))
    with pytest.raises(RunFileError, match=message):
        bertlab.load(path)


def test_rows_must_follow_on_and_need_a_store(tmp_path, log_bytes):
    data, live = log_bytes
    width = live.store.width
    path = tmp_path / "forged.bertlab"
    rows = np.zeros((2, width))
    path.write_bytes(forged(data, runlog.ROWS, runlog.rows_record(live.steps + 1, rows)[9:]))
    with pytest.raises(RunFileError, match="expected 96"):
        bertlab.load(path)
    path.write_bytes(runlog.HEADER + runlog.rows_record(0, rows))
    with pytest.raises(RunFileError, match="before the step store"):
        bertlab.load(path)
    store = {"channels": [["a", 1 << 30]], "budget_bytes": 4096}
    path.write_bytes(runlog.HEADER + runlog.json_record(runlog.STORE, store, "store"))
    with pytest.raises(RunFileError, match="channel width"):
        bertlab.load(path)
    path.write_bytes(runlog.MAGIC + b"\x07" + data[16:])
    with pytest.raises(RunFileError, match="upgrade bertlab"):
        bertlab.load(path)
    path.write_bytes(runlog.HEADER + runlog.record(ord("Z"), b"future kind") + data[16:])
    assert bertlab.load(path).steps == live.steps  # unknown kinds are skipped


def test_zip_run_files_still_load(tmp_path, log_bytes):
    path = tmp_path / "saved.bertlab"
    log_bytes[1].save(path)
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    run = bertlab.load(path)
    assert run.steps == log_bytes[1].steps
    assert_same_steps(run, log_bytes[1])


# --------------------------------------------------------------------------- bounded size
def test_log_is_compacted_to_a_bounded_size(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "COMPACT_MIN_BYTES", 20_000)
    path = tmp_path / "long.bertlab"
    sizes = []

    class Size(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            sizes.append(path.stat().st_size)

    watch, recorder = recorded_training(
        path, epochs=12, every_s=0.01, budget_mb=0.1, callbacks=[Size()]
    )
    run = bertlab.load(path)
    assert run.steps == watch.run.steps == 12 * 32
    assert len(run.epoch_records) == 12 and run.findings == watch.run.findings
    assert len(run.history) == len(watch.run.history)
    np.testing.assert_array_equal(run.column("loss"), watch.run.column("loss"))
    archive = run.store.archive()
    np.testing.assert_allclose(archive.max, watch.run.store.archive().max)
    # the rows written since the snapshot stay below 2x the snapshot + COMPACT_MIN_BYTES
    snapshot = recorder._snapshot_bytes
    assert max(sizes) < 3 * snapshot + 20_000 + 16 + 50_000
    raw_rows = run.steps * run.store.width * 8
    assert path.stat().st_size < raw_rows  # without compaction every row would be there
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# --------------------------------------------------------------------------- failures
def test_unwritable_path_warns_once_and_training_goes_on(tmp_path):
    x, y, _ = token_data(n=128)
    model = compile_softmax_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watch = bertlab.Watch(verbose=False, path="/dev/null/runs/run.bertlab", flush_every_s=0.01)
        recorder = watch.recorder
        model.fit(x, y, batch_size=8, epochs=2, callbacks=[watch], verbose=0)
        assert not recorder.flush()
        recorder.close()
    ours = [w for w in caught if issubclass(w.category, bertlab.BertlabWarning)]
    assert len(ours) == 1 and "cannot write the run record" in str(ours[0].message)
    assert recorder.writes > 3  # it kept trying
    assert watch.run.steps == 32 and len(watch.run.epoch_records) == 2


def test_full_disk_warns_once_and_training_completes(tmp_path):
    """RLIMIT_FSIZE makes writes past 200 kB fail with EFBIG, as a full disk fails them."""
    path = tmp_path / "full.bertlab"
    prelude = """
    import resource, signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    """
    script = child_script(tmp_path, path, epochs=12, every_s=0.02, sleep=0.0, prelude=prelude)
    out = subprocess.run(
        [sys.executable, "-W", "always", str(script)],
        env=child_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.count("BertlabWarning") == 1, out.stderr[-3000:]
    assert "cannot write the run record" in out.stderr
    assert "File too large" in out.stderr or "short write" in out.stderr  # EFBIG, or cut short
    assert out.stdout.startswith("flushed False 768")  # the last write failed; fit finished
    run = bertlab.load(path)  # what fitted under the limit
    assert 0 < run.steps < 768 and path.stat().st_size <= 200_000
    np.testing.assert_array_equal(run.history["step"], np.arange(run.steps))


class Interrupt(keras.callbacks.Callback):
    """Ctrl-C in the middle of the second epoch (raised from a callback, as Keras sees it)."""

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.03)  # slow enough that the Watch reads rows within the epoch
        if self.model.optimizer.iterations.numpy() == 45:
            raise KeyboardInterrupt


def interrupted_training(path):
    x, y, _ = token_data(n=256)
    model = compile_softmax_model()
    watch = bertlab.Watch(verbose=False, path=path, flush_every_s=3600)  # no timed writes
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=3, callbacks=[watch, Interrupt()], verbose=0)
    return watch


def test_flush_after_keyboard_interrupt_writes_every_recorded_step(tmp_path):
    path = tmp_path / "interrupted.bertlab"
    watch = interrupted_training(path)
    assert 32 < watch.run.steps <= 45  # rows of the interrupted epoch were read
    assert watch.recorder.flush()  # what the Watch does when training raises
    run = bertlab.load(path)
    assert run.steps == watch.run.steps
    assert_same_steps(run, watch.run)
    assert len(run.epoch_records) == 1 and run.findings == watch.run.findings
    watch.recorder.close()


def test_keyboard_interrupt_in_a_notebook_cell_leaves_the_record_flushed(tmp_path):
    """Keras skips on_train_end when another callback raises; with ``%load_ext bertlab`` the
    end of the cell finishes the Watch: every step that ran is on disk, the model restored."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bertlab")
    try:
        path = tmp_path / "interrupted.bertlab"
        shell.user_ns.update(interrupted_training=interrupted_training, path=path)
        shell.run_cell("watch = interrupted_training(path)\nraise KeyboardInterrupt")
        watch = shell.user_ns["watch"]
    finally:
        shell.run_line_magic("unload_ext", "bertlab")
        InteractiveShell.clear_instance()
    run = bertlab.load(path)
    assert run.steps == watch.run.steps == 45
    assert not watch._instrument.installed  # train_step & co. are the model's own again
    assert run.meta.get("error", "").startswith("the cell stopped")


def test_keyboard_interrupt_in_a_script_leaves_the_record_flushed(tmp_path):
    """The same Ctrl-C left uncaught in a plain script: the record is written at exit."""
    path = tmp_path / "script.bertlab"
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_record import interrupted_training_uncaught
            interrupted_training_uncaught({str(path)!r})
            """
        )
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr
    run = bertlab.load(path)
    assert run.steps == 45 and run.meta["error"] == "the process exited while training"


def interrupted_training_uncaught(path):
    x, y, _ = token_data(n=256)
    model = compile_softmax_model()
    watch = bertlab.Watch(verbose=False, path=path, flush_every_s=3600)  # no timed writes
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[watch, Interrupt()], verbose=0)


# --------------------------------------------------------------------------- API
def test_rank_path():
    assert rank_path("runs/exp1.bertlab", 1) == "runs/exp1.rank1.bertlab"
    assert rank_path(Path("runs/exp1.bertlab"), 0) == Path("runs/exp1.rank0.bertlab")
    assert rank_path("exp1", 12) == "exp1.rank12"
    with pytest.raises(ValueError, match="rank"):
        rank_path("exp1.bertlab", -1)


def test_watch_contract_signature():
    """What the Watch adapters rely on: Recorder(run, path, every_s=...), flush(), close()."""
    parameters = inspect.signature(Recorder).parameters
    assert list(parameters) == ["run", "path", "every_s"]
    assert parameters["every_s"].default == 2.0
    assert "timeout" in inspect.signature(Recorder.flush).parameters
    with pytest.raises(ValueError, match="every_s"):
        Recorder(bertlab.Run(), "never-written.bertlab", every_s=0)
    assert not Path("never-written.bertlab").exists()


def test_close_writes_what_is_left_and_stops_the_thread(tmp_path):
    run = bertlab.Run(meta={"notes": [], "purpose": "close test"})
    recorder = Recorder(run, tmp_path / "r.bertlab", every_s=3600)
    run.meta["later"] = 1
    recorder.close()
    assert not recorder._thread.is_alive() and recorder._on_event not in run.listeners
    loaded = bertlab.load(tmp_path / "r.bertlab")
    assert loaded.meta["later"] == 1 and loaded.steps == 0
    assert zlib.crc32(b"") == 0 and not recorder.flush()  # closed: nothing more is written
